"""Run logging on the main process: TensorBoard, ``metrics.jsonl``, a tqdm bar, skeleton images.

Every scalar logged goes both to TensorBoard (``<run>/tb``) and, as one JSON line per call, to
``<run>/metrics.jsonl`` (easy to read back in tests, notebooks and the app). Other ranks get a
logger that does nothing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np
import torch

from handpose.core.skeleton import BONES, FINGERS

__all__ = ["RunLogger", "draw_skeletons"]

# one colour per finger (RGB), the palm bones grey
_FINGER_RGB = ((230, 60, 60), (240, 200, 40), (60, 200, 80), (60, 150, 240), (190, 80, 230))
_BONE_RGB = tuple(
    next((_FINGER_RGB[f] for f, js in enumerate(FINGERS) if c in js), (160, 160, 160))
    for _, c in BONES
)


def draw_skeletons(
    images: torch.Tensor | np.ndarray,
    uv: torch.Tensor | np.ndarray,
    uv_gt: torch.Tensor | np.ndarray | None = None,
) -> np.ndarray:
    """Draw 21-joint skeletons (and optionally the ground truth in white) on images.

    Args:
        images: (N, 3, H, W) uint8 RGB, or float in [0, 1].
        uv: (N, 21, 2) joint pixels in those images.
        uv_gt: optional (N, 21, 2) ground-truth pixels, drawn thin and white underneath.
    Returns:
        (N, 3, H, W) uint8 RGB with the skeletons drawn.
    """
    imgs = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else images
    pts = uv.detach().cpu().float().numpy() if isinstance(uv, torch.Tensor) else np.asarray(uv)
    if imgs.ndim != 4 or imgs.shape[1] != 3:
        raise ValueError(f"images: expected (N, 3, H, W), got {tuple(imgs.shape)}")
    if pts.shape != (imgs.shape[0], 21, 2):
        raise ValueError(f"uv: expected ({imgs.shape[0]}, 21, 2), got {tuple(pts.shape)}")
    if imgs.dtype != np.uint8:
        imgs = (np.clip(imgs, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    gt = None
    if uv_gt is not None:
        gt = uv_gt.detach().cpu().float().numpy() if isinstance(uv_gt, torch.Tensor) else uv_gt
    out = np.ascontiguousarray(imgs.transpose(0, 2, 3, 1))
    thick = max(1, round(out.shape[1] / 128))
    for i in range(out.shape[0]):
        canvas = out[i]
        if gt is not None:
            for p, c in BONES:
                a, b = _pt(gt[i, p]), _pt(gt[i, c])
                if a and b:
                    cv2.line(canvas, a, b, (255, 255, 255), 1, cv2.LINE_AA)
        for k, (p, c) in enumerate(BONES):
            a, b = _pt(pts[i, p]), _pt(pts[i, c])
            if a and b:
                cv2.line(canvas, a, b, _BONE_RGB[k], thick, cv2.LINE_AA)
        for j in range(21):
            q = _pt(pts[i, j])
            if q:
                cv2.circle(canvas, q, thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
    return out.transpose(0, 3, 1, 2).copy()


def _pt(p: np.ndarray) -> tuple[int, int] | None:
    x, y = float(p[0]), float(p[1])
    if not (math.isfinite(x) and math.isfinite(y)) or abs(x) > 1e5 or abs(y) > 1e5:
        return None
    return round(x), round(y)


class RunLogger:
    """TensorBoard + ``metrics.jsonl`` + tqdm for one run (inactive when ``enabled`` is False).

    Args:
        run_dir: the run folder (TensorBoard writes to ``run_dir/tb``).
        total_steps: length of the progress bar.
        initial_step: where the bar starts (a resumed run).
        enabled: False on non-main ranks: every method does nothing.
        progress: show the tqdm bar.
    """

    def __init__(
        self,
        run_dir: Path,
        total_steps: int,
        initial_step: int = 0,
        enabled: bool = True,
        progress: bool = True,
    ) -> None:
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self._tb: Any = None
        self._bar: Any = None
        self._jsonl: Any = None
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter
        from tqdm.auto import tqdm

        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._tb = SummaryWriter(log_dir=str(self.run_dir / "tb"))
        self._jsonl = open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        if progress:
            self._bar = tqdm(total=total_steps, initial=initial_step, dynamic_ncols=True)

    def scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        """Log scalars (TensorBoard tags ``prefix/name``) and one JSON line."""
        if not self.enabled:
            return
        clean = {f"{prefix}/{k}" if prefix else k: float(v) for k, v in values.items()}
        for tag, v in clean.items():
            self._tb.add_scalar(tag, v, step)
        self._jsonl.write(json.dumps({"step": step, **clean}) + "\n")
        self._jsonl.flush()

    def images(self, tag: str, images: torch.Tensor | np.ndarray, step: int) -> None:
        """Log a batch of images (N, 3, H, W) uint8 or float in [0, 1] as one grid."""
        if not self.enabled:
            return
        arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else images
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[1] not in (1, 3):
            raise ValueError(f"images {tag!r}: expected (N, 3, H, W), got {arr.shape}")
        if arr.dtype == np.uint8:
            arr = arr.astype(np.float32) / 255.0
        self._tb.add_images(tag, np.clip(arr, 0.0, 1.0), step, dataformats="NCHW")

    def progress(self, step: int, postfix: dict[str, float] | None = None) -> None:
        """Move the bar to ``step`` (updates done) and show a few numbers."""
        if self._bar is None:
            return
        self._bar.update(step - self._bar.n)
        if postfix:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
