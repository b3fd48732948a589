"""The contract between a training recipe and the shared loop (:func:`~.loop.train`).

A recipe says *what* to train; the loop owns *how*: device, AMP, channels_last, DDP,
accumulation, optimiser and schedule, checkpoints and exact resume, logging. Randomness that
must be reproducible on resume (augmentations) belongs in :meth:`Recipe.training_step`, which
runs in the main process with generators the loop seeds and checkpoints; a dataset's
``__getitem__`` must be a deterministic function of the index.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from .distributed import DistInfo
from .optim import param_groups

__all__ = ["Recipe"]


class Recipe(ABC):
    """Base class of training recipes.

    The loop sets these attributes before calling :meth:`build_model` (``device``, ``dist``,
    ``run_dir``) and after it (``model``: what to call in :meth:`training_step`, DDP-wrapped
    when distributed; ``raw_model``: the unwrapped module, for evaluation and saving).
    """

    name: str = "recipe"
    device: torch.device = torch.device("cpu")  # until the loop sets them
    dist: DistInfo = DistInfo()
    run_dir: Path
    model: nn.Module
    raw_model: nn.Module

    @abstractmethod
    def build_model(self) -> nn.Module:
        """All trainable modules as one ``nn.Module`` (on CPU; the loop moves it)."""

    @abstractmethod
    def train_dataset(self) -> Dataset[Any]:
        """The training set; ``__getitem__`` deterministic, ``__len__`` defined."""

    @abstractmethod
    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """Losses of one micro-batch (already on ``self.device``) at update ``step`` (0-based).

        Returns:
            0-d tensors; ``"loss"`` is back-propagated (the others are logged).
        """

    def full_precision(self) -> torch.autocast:
        """A context that switches autocast off (losses, geometry, target computation)."""
        return torch.autocast(self.device.type, enabled=False)

    def collate(self, samples: list[Any]) -> Any:
        """Samples -> batch (``torch.utils.data.default_collate`` unless overridden)."""
        return default_collate(samples)

    def param_groups(self, model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
        """Optimiser groups; default: decayed weights vs. undecayed biases/norm parameters."""
        return param_groups(model, weight_decay)

    def evaluate(self, step: int) -> dict[str, float]:
        """Validation metrics (main process, ``raw_model`` in eval mode); {} = none."""
        return {}

    def images(self, batch: Any, step: int) -> dict[str, torch.Tensor | np.ndarray]:
        """Images to log for the last micro-batch, tag -> (N, 3, H, W); {} = none.

        Runs under ``torch.no_grad()`` on the main process; e.g. predicted skeletons drawn with
        :func:`handpose.training.logging.draw_skeletons`.
        """
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Extra recipe state to checkpoint (tensors and plain data); default none."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` on resume (the default has none to restore)."""
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, got keys {sorted(state)}")

    def on_train_end(self) -> dict[str, Any]:
        """Called on the main process after the last update (e.g. save the final model).

        Returns:
            outputs to report (e.g. ``{"model": path}``).
        """
        return {}
