"""Calibrate > Camera intrinsics from a file (Qt-free).

Accepted files (the camera matrix K, 3 x 3, pixels):

* ``.json``: ``{"K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]}``, ``{"camera_matrix": ...}``
  (also ``{"camera_matrix": {"data": [9 numbers]}}``), or a bare 3 x 3 list; a session's
  ``session.json`` works too;
* ``.yaml`` / ``.yml`` / ``.xml``: OpenCV ``FileStorage`` with ``camera_matrix`` or ``K``
  (what ``cv2.calibrateCamera`` tools write);
* ``.npy``: a (3, 3) array;
* ``.txt``: three rows of three numbers.

:func:`load_intrinsics` validates the matrix (finite, positive focal lengths, last row
0 0 1) and, given the frame size, that the principal point lies inside the image.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["load_intrinsics", "IntrinsicsError", "INTRINSICS_FILTER"]

#: File-dialog filter of the accepted formats.
INTRINSICS_FILTER = "Camera intrinsics (*.json *.yaml *.yml *.xml *.npy *.txt)"


class IntrinsicsError(ValueError):
    """A file that holds no usable camera matrix; the message names the file and why."""


def _from_json(obj: Any) -> Any:
    if isinstance(obj, dict):
        for key in ("K", "camera_matrix", "intrinsics"):
            if key in obj:
                v = obj[key]
                return v["data"] if isinstance(v, dict) and "data" in v else v
        raise ValueError(f"no 'K' or 'camera_matrix' entry (keys: {sorted(obj)[:8]})")
    return obj


def _from_opencv(path: Path) -> Any:
    import cv2

    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError) as e:  # OpenCV's parser raises on malformed files
        raise ValueError(f"OpenCV cannot parse it as YAML/XML ({str(e).strip()[:120]})"
                         ) from None
    try:
        if not fs.isOpened():
            raise ValueError("OpenCV cannot parse it as a FileStorage (YAML/XML) file")
        for key in ("camera_matrix", "K", "cameraMatrix"):
            node = fs.getNode(key)
            if not node.empty():
                return node.mat()
        raise ValueError("no 'camera_matrix' or 'K' node")
    finally:
        fs.release()


def load_intrinsics(path: str | os.PathLike[str], size: tuple[int, int] | None = None
                    ) -> np.ndarray:
    """Read and validate a camera matrix.

    Args:
        path: the file (formats in the module docstring).
        size: (width, height) of the frames in pixels, to check the principal point; None
            skips that check.

    Returns:
        (3, 3) float64 K in pixels.
    Raises:
        IntrinsicsError: unreadable file, no matrix in it, or an implausible matrix.
    """
    p = Path(path)
    if not p.is_file():
        raise IntrinsicsError(f"{p}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".json":
            raw = _from_json(json.loads(p.read_text(encoding="utf-8")))
        elif suffix in (".yaml", ".yml", ".xml"):
            raw = _from_opencv(p)
        elif suffix == ".npy":
            raw = np.load(p, allow_pickle=False)
        elif suffix == ".txt":
            raw = np.loadtxt(p, ndmin=2)
        else:
            raise ValueError(f"unknown file type {suffix!r} (use .json, .yaml, .xml, .npy or "
                             ".txt)")
        K = np.asarray(raw, np.float64)
    except IntrinsicsError:
        raise
    except (ValueError, TypeError, UnicodeDecodeError, OSError) as e:
        raise IntrinsicsError(f"{p}: cannot read a camera matrix ({e})") from None
    if K.size == 9:
        K = K.reshape(3, 3)
    if K.shape != (3, 3):
        raise IntrinsicsError(f"{p}: the camera matrix must be 3 x 3; got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise IntrinsicsError(f"{p}: the camera matrix has NaN or infinite entries")
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise IntrinsicsError(f"{p}: the focal lengths fx, fy must be > 0 pixels; got "
                              f"{K[0, 0]:g}, {K[1, 1]:g}")
    if not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0:
        raise IntrinsicsError(f"{p}: not an intrinsic matrix (the last row must be 0 0 1 and "
                              f"K[1, 0] = 0); got rows {K.tolist()}")
    if size is not None:
        w, h = size
        if not (0 <= K[0, 2] <= w and 0 <= K[1, 2] <= h):
            raise IntrinsicsError(f"{p}: the principal point ({K[0, 2]:g}, {K[1, 2]:g}) lies "
                                  f"outside the {w} x {h} frames: a calibration of another "
                                  "resolution?")
    return K
