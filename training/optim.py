"""Optimisers: LARS around Adam/SGD, weight-decay parameter groups, warm-up + cosine schedule.

LARS (You et al. 2017) as used by PeCLR/SimCLR: before the base optimiser's step, each weight
tensor's gradient gets the weight decay added and is scaled by its trust ratio

    ratio = eta * ||w|| / (||g|| + wd * ||w|| + eps)   (1 when ||w|| or ||g|| is 0)
    g <- ratio * (g + wd * w)

and the base optimiser then steps with its own weight decay switched off. Parameter groups
with ``"lars": False`` (biases and normalisation parameters, see :func:`param_groups`) are
neither adapted nor decayed. With Adam as the base, the ratio scales the gradient that enters
Adam's moments (as the PeCLR public code does with Lightning-Bolts' LARS wrapper).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from .train_config import TrainConfig

__all__ = ["LARS", "param_groups", "build_optimizer", "WarmupCosine"]


class LARS(Optimizer):
    """Layer-wise adaptive rate scaling around a base optimiser (shares its param groups).

    Args:
        optimizer: the base optimiser (e.g. Adam or SGD). Groups may carry ``"lars": False``.
        eta: trust coefficient (> 0).
        eps: added to the denominator of the ratio.
        clip: LARC clipping: use ``min(ratio / lr, 1)`` so the effective rate never exceeds lr.
    """

    def __init__(
        self, optimizer: Optimizer, eta: float = 1e-3, eps: float = 1e-8, clip: bool = False
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise ValueError(f"optimizer: expected a torch Optimizer, got {type(optimizer)}")
        if eta <= 0:
            raise ValueError(f"eta: expected > 0, got {eta}")
        # Deliberately not Optimizer.__init__: the groups and state are the base optimiser's.
        self.optimizer = optimizer
        self.eta, self.eps, self.clip = float(eta), float(eps), bool(clip)
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._optimizer_state_dict_pre_hooks = OrderedDict()
        self._optimizer_state_dict_post_hooks = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks = OrderedDict()
        self._optimizer_load_state_dict_post_hooks = OrderedDict()

    # the base optimiser's groups, state and defaults are ours (GradScaler and the schedule
    # read and write them through this object)
    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.optimizer.param_groups

    @property
    def state(self) -> Any:  # type: ignore[override]
        return self.optimizer.state

    @property
    def defaults(self) -> dict[str, Any]:  # type: ignore[override]
        return self.optimizer.defaults

    def __repr__(self) -> str:
        return f"LARS(eta={self.eta}, clip={self.clip}, base={self.optimizer!r})"

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        self.optimizer.add_param_group(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"base": self.optimizer.state_dict(), "eta": self.eta, "clip": self.clip}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict["base"])
        self.eta, self.clip = float(state_dict["eta"]), bool(state_dict["clip"])

    @torch.no_grad()
    def adapt_gradients(self) -> list[torch.Tensor]:
        """Apply decay + trust ratio to the gradients of every LARS group, in place.

        Returns:
            the per-tensor ratios (0-d tensors) in group/parameter order, for inspection.
        """
        ratios: list[torch.Tensor] = []
        for group in self.param_groups:
            if not group.get("lars", True):
                continue
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            wd = float(group.get("weight_decay", 0.0))
            grads = [p.grad for p in params]
            w_norm = torch._foreach_norm(params)
            g_norm = torch._foreach_norm(grads)
            for p, g, wn, gn in zip(params, grads, w_norm, g_norm, strict=True):
                ratio = self.eta * wn / (gn + wd * wn + self.eps)
                ratio = torch.where((wn > 0) & (gn > 0), ratio, torch.ones_like(ratio))
                if self.clip:
                    ratio = torch.clamp(ratio / group["lr"], max=1.0)
                if wd:
                    g.add_(p, alpha=wd)
                g.mul_(ratio.to(g.dtype))
                ratios.append(ratio)
        return ratios

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        """Adapt the gradients, then step the base optimiser with its weight decay off."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.adapt_gradients()
        saved = []
        for group in self.param_groups:
            saved.append(group.get("weight_decay", 0.0))
            if group.get("lars", True):
                group["weight_decay"] = 0.0
        try:
            self.optimizer.step()
        finally:
            for group, wd in zip(self.param_groups, saved, strict=True):
                group["weight_decay"] = wd
        return loss


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split trainable parameters: weights (decayed, LARS-adapted) vs biases and norm params.

    A parameter with fewer than two dimensions (biases, BatchNorm/LayerNorm scales and shifts)
    goes to the group ``{"weight_decay": 0, "lars": False}``.

    Args:
        model: the module whose ``requires_grad`` parameters are trained.
        weight_decay: decay for the weight group (>= 0).
    Returns:
        up to two param-group dicts (empty groups are left out).
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay, "lars": True})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "lars": False})
    if not groups:
        raise ValueError("model: has no trainable parameters (all requires_grad=False?)")
    return groups


def build_optimizer(groups: list[dict[str, Any]], cfg: TrainConfig, lr: float) -> Optimizer:
    """The base optimiser of ``cfg.optimizer`` over ``groups``, wrapped in LARS if ``cfg.lars``.

    Args:
        groups: param groups (e.g. from :func:`param_groups`); extra keys are kept.
        cfg: the train section (optimizer, momentum, betas, lars, lars_eta, lars_clip).
        lr: the peak learning rate (after scaling).
    """
    betas = (float(cfg.betas[0]), float(cfg.betas[1]))
    opt: Optimizer
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum)
    elif cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(groups, lr=lr, betas=betas)
    else:
        opt = torch.optim.Adam(groups, lr=lr, betas=betas)
    return LARS(opt, eta=cfg.lars_eta, clip=cfg.lars_clip) if cfg.lars else opt


class WarmupCosine:
    """Linear warm-up then cosine decay, in closed form of the update index.

    With peak rate ``L`` (each group's ``initial_lr``), warm-up ``W`` and total ``T`` updates,
    the rate used by update ``t`` (0-based) is

        t < W:       L * (t + 1) / W
        W <= t < T:  L * (r + (1 - r) * (1 + cos(pi * (t - W) / (T - W))) / 2)
        t >= T:      L * r

    with ``r = min_ratio``; "constant" keeps ``L`` after the warm-up. The closed form makes a
    resumed run's rate depend on the step alone (no chained recursion to replay).

    Args:
        optimizer: its groups get ``initial_lr`` (their current ``lr``) if absent.
        total_steps: T (>= 1). warmup_steps: W (0 <= W <= T). min_ratio: r in [0, 1].
        kind: "cosine" or "constant".
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: int,
        warmup_steps: int = 0,
        min_ratio: float = 0.0,
        kind: str = "cosine",
    ) -> None:
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"total_steps >= 1 and 0 <= warmup_steps <= total_steps required, got "
                f"total_steps={total_steps}, warmup_steps={warmup_steps}"
            )
        if kind not in ("cosine", "constant"):
            raise ValueError(f"kind: expected 'cosine' or 'constant', got {kind!r}")
        self.optimizer = optimizer
        self.total, self.warmup = int(total_steps), int(warmup_steps)
        self.min_ratio, self.kind = float(min_ratio), kind
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.last_step = -1

    def factor(self, step: int) -> float:
        """The multiplier of the peak rate for update ``step`` (0-based)."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind == "constant":
            return 1.0
        if step >= self.total:
            return self.min_ratio
        span = max(self.total - self.warmup, 1)
        cos = 0.5 * (1.0 + math.cos(math.pi * (step - self.warmup) / span))
        return self.min_ratio + (1.0 - self.min_ratio) * cos

    def set_step(self, step: int) -> list[float]:
        """Set every group's ``lr`` for update ``step``; returns the rates."""
        f = self.factor(step)
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * f
        self.last_step = step
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "warmup": self.warmup,
            "min_ratio": self.min_ratio,
            "kind": self.kind,
            "last_step": self.last_step,
            "initial_lr": [g["initial_lr"] for g in self.optimizer.param_groups],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.total, self.warmup = int(state["total"]), int(state["warmup"])
        self.min_ratio, self.kind = float(state["min_ratio"]), str(state["kind"])
        self.last_step = int(state["last_step"])
        for g, lr in zip(self.optimizer.param_groups, state["initial_lr"], strict=True):
            g["initial_lr"] = lr
