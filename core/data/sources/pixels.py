"""Checking and converting the pixel arrays sources receive from devices and user code.

Devices and decoders deliver BGR, BGRA or grey images; a :class:`~handpose.core.types.Frame`
holds (H, W, 3) uint8 RGB and (H, W) float32 depth in metres. These functions convert what is
safe to convert and raise :class:`~.base.SourceError` naming the producer (``what``), the
expected layout and what arrived for anything else (a float or 16-bit image, a wrong shape),
so a bad frame never travels further into the pipeline.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .base import SourceError

__all__ = ["bgr_to_rgb", "check_rgb", "check_depth"]


def _describe(a: Any) -> str:
    return f"{getattr(a, 'dtype', type(a).__name__)} array of shape {getattr(a, 'shape', '?')}"


def bgr_to_rgb(img: Any, what: str) -> np.ndarray:
    """A device image as (H, W, 3) uint8 RGB.

    Args:
        img: uint8 (H, W, 3) BGR, (H, W, 4) BGRA, or (H, W) / (H, W, 1) grey.
        what: the producer for error messages ("camera 0").

    Raises:
        SourceError: another dtype or shape.
    """
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.size == 0:
        raise SourceError(f"{what} delivered a {_describe(img)}; expected 8-bit BGR/grey "
                          "images (uint8)")
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    raise SourceError(f"{what} delivered a {_describe(img)}; expected (H, W), (H, W, 3) or "
                      "(H, W, 4) uint8")


def check_rgb(img: Any, what: str) -> np.ndarray:
    """Validate an RGB frame: (H, W, 3) uint8 (returned as is, made C-contiguous).

    Raises:
        SourceError: another dtype or shape, with a hint for float images in [0, 1].
    """
    if isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 and \
            img.shape[2] == 3 and img.size > 0:
        return np.ascontiguousarray(img)
    hint = ""
    if isinstance(img, np.ndarray) and img.dtype.kind == "f":
        hint = " (for floats in [0, 1] use (x * 255).round().astype(np.uint8))"
    raise SourceError(f"{what}: rgb must be an (H, W, 3) uint8 RGB array; got a "
                      f"{_describe(img)}{hint}")


def check_depth(depth: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Validate depth in metres aligned to an image of ``shape`` (H, W); returns float32.

    Raises:
        SourceError: not a real-valued (H, W) array of that shape (integers are refused:
            they are device units, not metres).
    """
    if not isinstance(depth, np.ndarray) or depth.dtype.kind != "f" or \
            depth.shape != tuple(shape):
        raise SourceError(f"{what}: depth must be a float (H, W) = {tuple(shape)} array in "
                          f"metres aligned to rgb; got a {_describe(depth)}")
    return np.ascontiguousarray(depth, np.float32)
