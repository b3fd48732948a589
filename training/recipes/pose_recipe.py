"""The part every 2.5D pose recipe shares (finetune, semihand, dual): skeleton images of the
last batch for TensorBoard and evaluation on ``cfg.val`` by the ``handpose-train eval``
protocol."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from ..logging import draw_skeletons
from ..recipe import Recipe
from .data import labelled_dataset
from .eval import evaluate_model

__all__ = ["PoseRecipe"]


class PoseRecipe(Recipe):
    """A recipe whose model predicts 2.5D poses.

    Subclasses call ``super().__init__(cfg)`` (``cfg`` needs ``val``: a
    :class:`~.data.LabelledData`, ``input_size`` and ``train.batch_size``) and store the first
    crops of their last batch in ``self._last`` (``images`` (B, 3, S, S), ``uv`` and ``uv_gt``
    (B, 21, 2) crop pixels) for :meth:`images`.
    """

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.metrics: dict[str, float] = {}
        self._last: dict[str, torch.Tensor] = {}
        self._val: Dataset[Any] | None = None

    def images(self, batch: Any, step: int) -> dict[str, Any]:
        if not self._last:
            return {}
        return {"skeletons": draw_skeletons(self._last["images"], self._last["uv"],
                                            self._last["uv_gt"])}

    def evaluate(self, step: int) -> dict[str, float]:
        if not self.cfg.val.root:
            return {}
        if self._val is None:
            self._val = labelled_dataset(self.cfg.val, self.cfg.input_size, key="val.root")
        self.metrics, _ = evaluate_model(self.raw_model, self._val,
                                         batch_size=self.cfg.train.batch_size,
                                         device=self.device)
        return self.metrics
