"""Several sessions as one, for a training run over all of them (Qt-free).

The training recipes read one session folder (``data.root``); "Fine-tune on sessions" with
several sessions first merges them into a new session folder: frames renumbered in order
(session by session), their image files hard-linked (copied when the folders are on
different file systems), their ``poses.jsonl`` lines and labels carried over with the new
indices, and each frame's own K kept (written per line when it differs from the merged
``session.json`` K). Bad lines and frames of the inputs are skipped (as replays skip them).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from handpose.core.data.jsonio import write_json_atomic
from handpose.core.data.session import (
    DEPTH_DIR,
    INFO_FILE,
    LABELS_FILE,
    POSES_FILE,
    RGB_DIR,
    SessionInfo,
    frame_stem,
    rounded,
)
from handpose.core.data.session_reader import SessionReader

__all__ = ["merge_sessions"]


def _place(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def merge_sessions(paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]
                   ) -> Path:
    """Merge sessions into the new session folder ``out`` (module docstring).

    Args:
        paths: two or more session folders.
        out: the new folder (must not exist or be empty).

    Returns:
        ``out`` as a Path.
    Raises:
        ValueError: fewer than two sessions, or ``out`` is not empty.
        DataError: an input is not a readable session.
    """
    if len(paths) < 2:
        raise ValueError(f"merge_sessions needs two or more sessions; got {len(paths)}")
    dest = Path(out)
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        readers = [SessionReader(p, skip_bad=True) for p in paths]
    K0 = next((r.info.K for r in readers if r.info.K is not None), None)
    info = SessionInfo(K=K0, K_calibrated=all(r.info.K_calibrated for r in readers),
                       source="merged: " + ", ".join(str(p) for p in paths),
                       model_version=readers[0].info.model_version,
                       extra={"merged_from": [str(Path(p).resolve()) for p in paths]})
    for d in (dest, dest / RGB_DIR, dest / DEPTH_DIR):
        d.mkdir(parents=True, exist_ok=True)
    n = 0
    poses_lines: list[str] = []
    label_lines: list[str] = []
    for r in readers:
        new_index: dict[int, int] = {}
        with open(r.path / POSES_FILE, "rb") as f:
            for rec in r.records:
                f.seek(rec.offset)
                line = json.loads(f.readline())
                stem = frame_stem(n)
                line["index"] = n
                line["rgb"] = f"{RGB_DIR}/{stem}.jpg"
                _place(rec.rgb, dest / line["rgb"])
                if rec.depth is not None and rec.depth.is_file():
                    line["depth"] = f"{DEPTH_DIR}/{stem}.png"
                    _place(rec.depth, dest / line["depth"])
                else:
                    line["depth"] = None
                line.pop("K", None)
                if K0 is None or not np.allclose(rec.K, K0, atol=1e-6):
                    line["K"] = rounded(rec.K, 6)
                poses_lines.append(json.dumps(line, separators=(",", ":")) + "\n")
                new_index[rec.index] = n
                n += 1
        for (index, _hand), lab in sorted(r.labels.items()):
            if index in new_index:
                d = lab.to_json()
                d["index"] = new_index[index]
                label_lines.append(json.dumps(d, separators=(",", ":")) + "\n")
    (dest / POSES_FILE).write_text("".join(poses_lines))
    (dest / LABELS_FILE).write_text("".join(label_lines))
    write_json_atomic(dest / INFO_FILE, info.to_json())  # last: the folder is complete
    return dest
