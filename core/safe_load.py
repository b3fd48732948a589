"""Reading a torch file safely, with errors a user can act on.

:func:`safe_torch_load` never executes code from the file (``torch.load(weights_only=True)``)
and turns every failure into a :class:`CheckpointError` that says what is wrong with the file
and what to do: missing, a directory, another kind of file (an image, text, ...), truncated or
corrupt (zip CRCs are checked), or a pickle that wants to run code.
"""

from __future__ import annotations

import pickle
import zipfile
from os import PathLike
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "safe_torch_load", "sniff_file_type"]


class CheckpointError(ValueError):
    """A checkpoint or weights file cannot be used; the message says why and what to do."""


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive (unpack it first, e.g. tar -xzf)"),
    (b"\x08", "probably an ONNX model (run it with OnnxPoseNet; it is no checkpoint)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x89HDF", "an HDF5 file (Keras/TensorFlow weights?)"),
)


def sniff_file_type(head: bytes) -> str:
    """Name the kind of file from its first bytes: ``"torch-zip"``, ``"torch-legacy"``,
    or a human description (``"a JPEG image"``, ``"a text file"``, ``"an empty file"`` ...)."""
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] in range(2, 6):
        return "torch-legacy"
    if not head:
        return "an empty file"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "an unknown binary file"


def safe_torch_load(path: str | PathLike[str], what: str = "checkpoint") -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with actionable errors.

    Args:
        path: the file.
        what: how to call the file in messages ("checkpoint", "PeCLR weights", ...).

    Returns:
        the unpickled object (dicts, lists, tensors and plain values only).

    Raises:
        CheckpointError: the file is missing, not a torch file, truncated or corrupt, or
            holds Python objects whose unpickling would run code.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{what} file not found: {p} (check the path)")
    if p.is_dir():
        raise CheckpointError(f"{what} path {p} is a directory; give the .pt/.pth file in it")
    with p.open("rb") as f:
        head = f.read(16)
    kind = sniff_file_type(head)
    if kind not in ("torch-zip", "torch-legacy"):
        raise CheckpointError(
            f"{p} is {kind}, not a PyTorch {what} file (expected a file written by torch.save)"
        )
    if kind == "torch-zip":
        try:
            with zipfile.ZipFile(p) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise CheckpointError(
                f"{p} is truncated or corrupt ({e}); the copy or download was probably "
                f"interrupted: copy the {what} again"
            ) from None
        if bad is not None:
            raise CheckpointError(
                f"{p} is corrupt (bad checksum in member {bad!r}); copy the {what} again"
            )
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip()
        detail = next((ln.strip() for ln in first.splitlines() if "GLOBAL" in ln), "")
        raise CheckpointError(
            f"refusing to execute code from an untrusted {what}: {p} contains Python objects "
            f"that are not plain tensors/containers{' (' + detail + ')' if detail else ''}. "
            "If you made this file yourself, re-save only its tensors "
            "(e.g. torch.save({'state_dict': obj['state_dict']}, 'clean.pt'))"
        ) from None
    except (RuntimeError, OSError, EOFError, KeyError, ValueError) as e:
        raise CheckpointError(
            f"{p} could not be read as a PyTorch {what} ({type(e).__name__}: {e}); "
            "it is probably truncated or corrupt: copy it again"
        ) from None
