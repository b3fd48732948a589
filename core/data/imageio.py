"""Robust image, mask and depth decoding/encoding for the dataset readers and sessions.

Every reader decodes through these functions so a missing, truncated or corrupt file always
raises the same :class:`~handpose.core.data.errors.DataError` naming the file. Files are read
as bytes and decoded with ``cv2.imdecode`` (OpenCV 4.11 rejects truncated JPEG and PNG data,
which the tests check), so non-ASCII paths work too.

Conventions: colour images are returned RGB (not OpenCV's BGR), (H, W, 3) uint8. Depth is
float32 metres, 0 = no reading. Depth PNGs are uint16 in a fixed unit (millimetres unless
told otherwise).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from .errors import DataError

__all__ = [
    "read_bytes",
    "decode_rgb",
    "read_rgb",
    "read_gray",
    "read_labels",
    "read_depth_png",
    "read_rhd_depth",
    "encode_jpeg",
    "encode_depth_png",
    "RHD_DEPTH_MAX_M",
]

#: RHD depth PNG: depth_m = (R * 256 + G) / (2**16 - 1) * RHD_DEPTH_MAX_M (its view_samples.py).
RHD_DEPTH_MAX_M = 5.0

_Path = str | os.PathLike[str]


def read_bytes(path: _Path) -> bytes:
    """The whole file as bytes; a missing/unreadable file raises DataError naming it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as e:
        raise DataError(path, f"cannot read file ({e.strerror or e})") from e
    if not data:
        raise DataError(path, "file is empty")
    return data


def _decode(path: _Path, data: bytes, flags: int) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None:
        raise DataError(path, "image cannot be decoded (corrupt, truncated or not an image)")
    return img


def decode_rgb(data: bytes, path: _Path = "<bytes>") -> np.ndarray:
    """Decode an encoded image (JPEG/PNG/...) to (H, W, 3) uint8 RGB; grey becomes 3 channels."""
    bgr = _decode(path, data, cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_rgb(path: _Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB. Raises DataError (missing/corrupt/truncated)."""
    return decode_rgb(read_bytes(path), path)


def read_gray(path: _Path) -> np.ndarray:
    """Read an image as (H, W) uint8 (masks: label values as stored; colour is converted)."""
    return _decode(path, read_bytes(path), cv2.IMREAD_GRAYSCALE)


def read_labels(path: _Path) -> np.ndarray:
    """Read a label image (segmentation ids) as (H, W) integers exactly as stored.

    Unlike :func:`read_gray` no colour conversion happens; a 3-channel file (ids repeated in
    every channel) gives its first channel.
    """
    img = _decode(path, read_bytes(path), cv2.IMREAD_UNCHANGED)
    if img.ndim == 3:
        img = img[..., 0]
    return img


def read_depth_png(path: _Path, unit_m: float = 0.001) -> np.ndarray:
    """Read a single-channel uint16 depth PNG as (H, W) float32 metres (0 = no reading).

    Args:
        path: the PNG file.
        unit_m: metres per stored unit (0.001 for millimetres).

    Raises:
        DataError: missing/corrupt file, or not a single-channel 16-bit image.
    """
    img = _decode(path, read_bytes(path), cv2.IMREAD_UNCHANGED)
    if img.ndim != 2 or img.dtype != np.uint16:
        raise DataError(
            path, f"depth must be a single-channel uint16 PNG; got {img.dtype} {img.shape}"
        )
    return img.astype(np.float32) * np.float32(unit_m)


def read_rhd_depth(path: _Path) -> np.ndarray:
    """Read an RHD depth PNG (16-bit depth split over R = high byte, G = low byte) as metres.

    depth = (R * 256 + G) / 65535 * 5 m (the dataset's own decoding). Returns (H, W) float32.
    """
    img = _decode(path, read_bytes(path), cv2.IMREAD_COLOR)  # BGR
    top = img[..., 2].astype(np.float32)
    bottom = img[..., 1].astype(np.float32)
    return (top * 256.0 + bottom) * np.float32(RHD_DEPTH_MAX_M / 65535.0)


def encode_jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    """Encode (H, W, 3) uint8 RGB as JPEG bytes (quality 1-100)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (H, W, 3) uint8; got {rgb.dtype} {rgb.shape}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in [1, 100]; got {quality}")
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def encode_depth_png(depth_m: np.ndarray, unit_m: float = 0.001) -> bytes:
    """Encode (H, W) float metres as a uint16 PNG in ``unit_m`` units (NaN/<=0 -> 0, clipped)."""
    if depth_m.ndim != 2:
        raise ValueError(f"depth must be (H, W); got {depth_m.shape}")
    d = np.nan_to_num(np.asarray(depth_m, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    q = np.clip(np.rint(d / unit_m), 0, 65535).astype(np.uint16)
    ok, buf = cv2.imencode(".png", q, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()
