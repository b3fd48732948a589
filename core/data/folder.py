"""Unlabelled image folders, optionally with hand boxes from an index CSV.

Without a CSV every image file under ``root`` (recursively, sorted, hidden entries skipped)
is a sample; its ``source`` filter key is the first folder below ``root``.

With ``index_csv`` (the format of ``shared/data/real_hands/index.csv``) the CSV lists the
images, one row each, with a header. Columns read (others are ignored):

    path              image path relative to ``root`` (required)
    source            a source/folder name (default: first folder of ``path``)
    width, height     stored image size in px; checked against the decoded image when given
    framing           "crop" (the hand fills the image) or "scene" (use the box); may be empty
    box_x, box_y, box_w, box_h
                      the largest hand box, top-left corner and size in px, all four empty
                      when there is none. Corner coordinates are pixel EDGES (0 = the image's
                      left/top border); the sample's ``box`` is in the pixel-centre
                      convention of ``geometry.crop`` (x - 0.5, y - 0.5)
    hand_side         "left" / "right" / empty

A row with the wrong number of columns, a non-numeric or non-positive box, or an unknown
framing/hand_side raises :class:`DataError` naming the CSV and its line (``skip_bad=True``:
the row is skipped and counted).

Crops (``crop_size``): "scene" rows crop around their box with ``crop_margin``; "crop" rows
use the whole image as the box with margin 1 (the image is already a hand crop); rows or
files without a box take the centre square.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import HandDataset
from .errors import DataError
from .handcrop import DEFAULT_CROP_MARGIN, whole_image_box
from .imageio import read_rgb
from .sample import HANDEDNESS, make_sample

__all__ = ["IMAGE_EXTENSIONS", "FolderEntry", "read_index_csv", "list_images",
           "ImageFolderDataset"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_BOX_COLS = ("box_x", "box_y", "box_w", "box_h")


@dataclass(frozen=True)
class FolderEntry:
    """One image of a folder dataset.

    Attributes:
        path: the image file.
        source: source name (CSV ``source`` or the first folder below the root).
        framing: "crop", "scene" or "" (unknown).
        box: (4,) float32 x, y, w, h in the pixel-centre convention, or None.
        handedness: 1 right, 0 left, -1 unknown.
        size: (width, height) from the CSV, or None.
        line: the CSV line (1-based), or None without a CSV.
    """

    path: Path
    source: str
    framing: str = ""
    box: np.ndarray | None = None
    handedness: int = -1
    size: tuple[int, int] | None = None
    line: int | None = None


def list_images(root: str | os.PathLike[str],
                extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """All image files under ``root`` (recursive, sorted, hidden files/folders skipped)."""
    out: list[Path] = []
    exts = tuple(e.lower() for e in extensions)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames)
                if not f.startswith(".") and f.lower().endswith(exts)]
    return out


def _row_entry(path: Path, root: Path, line: int, row: dict[str, str]) -> FolderEntry:
    rel = row["path"].strip()
    if not rel:
        raise DataError(path, "empty 'path'", line=line)
    source = (row.get("source") or "").strip() or Path(rel).parts[0]
    framing = (row.get("framing") or "").strip()
    if framing not in ("", "crop", "scene"):
        raise DataError(path, f"framing must be 'crop', 'scene' or empty; got {framing!r}",
                        line=line)
    side = (row.get("hand_side") or "").strip().lower()
    if side not in ("", "left", "right"):
        raise DataError(path, f"hand_side must be 'left', 'right' or empty; got {side!r}",
                        line=line)
    size = None
    if (row.get("width") or "").strip() or (row.get("height") or "").strip():
        try:
            size = (int(row["width"]), int(row["height"]))
        except (ValueError, KeyError, TypeError):
            raise DataError(path, f"width/height must be integers; got {row.get('width')!r}, "
                            f"{row.get('height')!r}", line=line) from None
    box = None
    vals = [(row.get(c) or "").strip() for c in _BOX_COLS]
    if any(vals):
        try:
            x, y, w, h = (float(v) for v in vals)
        except ValueError:
            raise DataError(path, f"box_x, box_y, box_w, box_h must be numbers (or all empty); "
                            f"got {vals}", line=line) from None
        if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
            raise DataError(path, f"box must be finite with w, h > 0; got {vals}", line=line)
        box = np.array([x - 0.5, y - 0.5, w, h], np.float32)
    return FolderEntry(root / rel, source, framing, box,
                       HANDEDNESS[side] if side else -1, size, line)


def read_index_csv(path: str | os.PathLike[str], root: str | os.PathLike[str],
                   on_bad: Any = None) -> list[FolderEntry]:
    """Parse an index CSV (module docstring) into entries, in file order.

    Args:
        path: the CSV file.
        root: folder the ``path`` column is relative to.
        on_bad: None (raise the first DataError) or a callable taking each DataError of a bad
            row (the row is then skipped).

    Raises:
        DataError: missing file, no ``path`` column, or a bad row when ``on_bad`` is None.
    """
    path, root = Path(path), Path(root)
    try:
        f = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    entries: list[FolderEntry] = []
    with f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(path, "empty CSV (no header)", line=1) from None
        if "path" not in header:
            raise DataError(path, f"no 'path' column in the header {header}", line=1)
        try:
            for row in reader:
                line = reader.line_num
                if not any(c.strip() for c in row):
                    continue
                try:
                    if len(row) != len(header):
                        raise DataError(path, f"expected {len(header)} columns (as the header); "
                                        f"got {len(row)}", line=line)
                    entries.append(_row_entry(path, root, line, dict(zip(header, row))))
                except DataError as e:
                    if on_bad is None:
                        raise
                    on_bad(e)
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(path, f"malformed CSV ({e})", line=reader.line_num) from None
    return entries


class ImageFolderDataset(HandDataset):
    """Unlabelled images (recursive folder, or the rows of an index CSV), streamed from disk.

    Args:
        root: the image folder.
        index_csv: None (scan ``root``) or a CSV file as in the module docstring.
        sources: keep only these source names (None: all).
        framing: keep only "crop" or "scene" rows (None: all; needs a CSV).
        extensions: file extensions of a folder scan.
        handedness: code for images without a CSV ``hand_side`` (-1 unknown).
        crop_size, crop_margin, skip_bad: see :class:`HandDataset`.
    """

    source = "folder"

    def __init__(
        self,
        root: str | os.PathLike[str],
        index_csv: str | os.PathLike[str] | None = None,
        *,
        sources: tuple[str, ...] | list[str] | None = None,
        framing: str | None = None,
        extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
        handedness: int = -1,
        crop_size: int | None = None,
        crop_margin: float = DEFAULT_CROP_MARGIN,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(crop_size=crop_size, crop_margin=crop_margin, skip_bad=skip_bad)
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "image folder not found")
        if framing not in (None, "crop", "scene"):
            raise ValueError(f"framing must be None, 'crop' or 'scene'; got {framing!r}")
        if framing is not None and index_csv is None:
            raise ValueError("framing filtering needs index_csv (the framing comes from it)")
        if index_csv is not None:
            entries = read_index_csv(index_csv, self.root, None if not skip_bad else self._bad)
        else:
            entries = []
            for p in list_images(self.root, extensions):
                rel = p.relative_to(self.root)
                src = rel.parts[0] if len(rel.parts) > 1 else ""
                entries.append(FolderEntry(p, src, handedness=handedness))
        if sources is not None:
            keep = set(sources)
            entries = [e for e in entries if e.source in keep]
        if framing is not None:
            entries = [e for e in entries if e.framing == framing]
        self.entries = entries
        self.index_csv = None if index_csv is None else Path(index_csv)

    def __len__(self) -> int:
        return len(self.entries)

    def crop_margin_for(self, sample: dict[str, Any]) -> float:
        return 1.0 if self.entries[sample["index"]].framing == "crop" else self.crop_margin

    def load(self, index: int) -> dict[str, Any]:
        e = self.entries[index]
        rgb = read_rgb(e.path)
        h, w = rgb.shape[:2]
        if e.size is not None and e.size != (w, h):
            raise DataError(self.index_csv or e.path, f"{e.path} is {w}x{h} but the CSV says "
                            f"{e.size[0]}x{e.size[1]}", line=e.line)
        box = e.box
        if e.framing == "crop":
            box = whole_image_box(w, h)
        return make_sample(rgb, index=index, source=e.source or self.source,
                           handedness=e.handedness, box=box, path=str(e.path))
