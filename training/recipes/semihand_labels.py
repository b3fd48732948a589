"""SemiHand's pseudo-labels: the per-image store and the round update (METHODS §4, Alg. 6.1).

At the start of round t (before its network updates) every unlabelled crop x is predicted
once as it is (p') and once under a weak perturbation T (f(T(x))), in eval mode:

- round 0: p^ = the initial model's prediction (``source="model"``) or the teacher's label
  (``source="teacher"``; images where the teacher found no hand get no pseudo-label);
- round t > 0: p^ = (p' + r') / 2, the minimiser of l(p', p^) + l(r', p^) (eq. 6.7);
- r = P(p^) (:func:`~handpose.core.losses.consistency.correct_pose_25d` with the crop's K);
- C = l(T(p^), f(T(x))) + l(p^, r) (eq. 6.8); a label is confident when C <= tau.

With the teacher and ``filter="score"`` MediaPipe's own score decides instead (confident
when score >= min_score, every round) and the labels stay the teacher's (no eq. 6.7 update:
the score describes the teacher's label, not a mixture), useful when the initial network is
too weak to judge the teacher. C is still computed and reported.

The round's statistics (how many labels were infeasible before and after the correction, the
share passing the threshold, C) are returned for logging.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from handpose.core.augment import warp_images
from handpose.core.losses.consistency import (
    correct_pose_25d,
    pose_distance,
    pseudo_label_confidence,
    update_pseudo_labels,
)
from handpose.core.models import normalize_images

from .semihand_data import WeakAugSpec, weak_perturbation

__all__ = ["PseudoSpec", "PseudoLabels", "refresh_pseudo_labels"]


@dataclass(frozen=True)
class PseudoSpec:
    """Pseudo-labelling.

    Attributes:
        enabled: use pseudo-labels (L_unsup); off = consistency training only.
        source: initial labels from the ``init`` model or from the MediaPipe teacher.
        rounds: K, label updates over the run (the paper: 10); the run's updates are split
            evenly between them.
        tau: confidence threshold in the units of :func:`~handpose.core.losses.consistency.
            pose_distance` (the paper: 1.5).
        update_labels: update p^ and r every round (eq. 6.7); off = keep the initial labels
            (their confidence is still re-estimated).
        gate_corrected: also gate the l(r, p) term by the confidence (the paper does not).
        weight: weight of L_unsup (the paper: 1).
    """

    enabled: bool = True
    source: Literal["model", "teacher"] = "model"
    rounds: int = 10
    tau: float = 1.5
    update_labels: bool = True
    gate_corrected: bool = False
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.rounds < 1 or not self.tau > 0 or self.weight < 0:
            raise ValueError(f"pseudo.rounds >= 1, pseudo.tau > 0, pseudo.weight >= 0 needed; "
                             f"got {self.rounds}, {self.tau}, {self.weight}")


class PseudoLabels:
    """p^, r, C and validity for N unlabelled crops (crop pixels, z_rel); checkpointed."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.uv = torch.zeros(n, 21, 2)
        self.z = torch.zeros(n, 21)
        self.r_uv = torch.zeros(n, 21, 2)
        self.r_z = torch.zeros(n, 21)
        self.conf = torch.full((n,), float("inf"))
        self.valid = torch.zeros(n, dtype=torch.bool)
        self.confident = torch.zeros(n, dtype=torch.bool)
        self.round = -1

    _KEYS = ("uv", "z", "r_uv", "r_z", "conf", "valid", "confident")

    def state_dict(self) -> dict[str, Any]:
        return {"round": self.round, **{k: getattr(self, k).clone() for k in self._KEYS}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in self._KEYS:
            v = state[k]
            if v.shape[0] != self.n:
                raise ValueError(f"pseudo-label state has {v.shape[0]} images, the unlabelled "
                                 f"set {self.n}: resume with the same data")
            setattr(self, k, v.clone())
        self.round = int(state["round"])


def _hand_codes(batch: dict[str, Any]) -> torch.Tensor:
    codes = batch["handedness"].clone()
    if "teacher_hand" in batch:
        t = batch["teacher_hand"]
        codes = torch.where(t >= 0, t, codes)
    return codes


@torch.no_grad()
def refresh_pseudo_labels(
    model: nn.Module,
    loader: DataLoader[Any],
    labels: PseudoLabels,
    round_index: int,
    *,
    spec: PseudoSpec,
    weak: WeakAugSpec,
    crop_size: int,
    uv_grid: float,
    lambda_d: float,
    device: torch.device,
    seed: int,
    teacher_filter: Literal["confidence", "score"] = "confidence",
    min_score: float = 0.0,
) -> dict[str, float]:
    """Run one label round (module docstring) over ``loader`` (the unlabelled crops, in
    order, not shuffled); updates ``labels`` in place and returns the round's statistics."""
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed * 1009 + round_index)
    first = labels.round < 0
    use_teacher = spec.source == "teacher"
    before: list[np.ndarray] = []
    after: list[np.ndarray] = []
    change: list[torch.Tensor] = []
    pos = 0
    try:
        for batch in loader:
            b = batch["rgb"].shape[0]
            rows = slice(pos, pos + b)
            pos += b
            rgb = batch["rgb"].to(device).float() / 255.0
            T = weak_perturbation(b, crop_size, weak, uv_grid, gen).to(device)
            out = model(normalize_images(torch.cat([rgb, warp_images(rgb, T, (crop_size,) * 2)])))
            p_uv, p_z = out["uv"][:b].float().cpu(), out["z_rel"][:b].float().cpu()
            t_uv, t_z = out["uv"][b:].float().cpu(), out["z_rel"][b:].float().cpu()
            T = T.cpu()
            fixed = use_teacher and teacher_filter == "score"
            if first:
                if use_teacher:
                    uv, z = batch["teacher_uv"].float(), batch["teacher_z"].float()
                    labels.valid[rows] = batch["teacher_found"].bool()
                else:
                    uv, z = p_uv, p_z
                    labels.valid[rows] = True
            elif spec.update_labels and not fixed:
                uv, z = update_pseudo_labels(p_uv, p_z, labels.r_uv[rows], labels.r_z[rows])
            else:
                uv, z = labels.uv[rows], labels.z[rows]
            if not first:
                change.append(pose_distance(uv, z, labels.uv[rows], labels.z[rows], crop_size,
                                            lambda_d=lambda_d, uv_grid=uv_grid))
            valid = labels.valid[rows]
            r_uv, r_z = uv.clone(), z.clone()
            if bool(valid.any()):  # an image without a label has nothing to correct
                corr = correct_pose_25d(uv[valid], z[valid], batch["K"].float()[valid],
                                        _hand_codes(batch)[valid])
                r_uv[valid], r_z[valid] = corr.uv, corr.z_rel
                before.append(corr.violations_before)
                after.append(corr.violations_after)
            kw = dict(lambda_d=lambda_d, uv_grid=uv_grid)
            conf = pseudo_label_confidence(uv, z, t_uv, t_z, T, r_uv, r_z, crop_size,
                                           **kw)  # type: ignore[arg-type]
            if fixed:
                ok = batch["teacher_score"].float() >= min_score
            else:
                ok = conf <= spec.tau
            labels.uv[rows], labels.z[rows] = uv, z
            labels.r_uv[rows], labels.r_z[rows] = r_uv, r_z
            labels.conf[rows] = torch.where(valid, conf, torch.full_like(conf, float("inf")))
            labels.confident[rows] = ok & valid
    finally:
        model.train(was)
    if pos != labels.n:
        raise RuntimeError(f"the label loader gave {pos} crops, expected {labels.n}")
    labels.round = round_index
    vb = np.concatenate(before) if before else np.zeros(0, np.int64)
    va = np.concatenate(after) if after else np.zeros(0, np.int64)
    nv = max(int(labels.valid.sum()), 1)
    conf_valid = labels.conf[labels.valid]
    stats = {
        "round": float(round_index),
        "valid_share": float(labels.valid.float().mean()),
        "confident_share": float(labels.confident.float().mean()),
        "confident_share_of_valid": float(labels.confident.sum()) / nv,
        "confidence_median": float(conf_valid.median()) if conf_valid.numel() else float("nan"),
        # -1: a label the correction could not handle (counted as infeasible after it)
        "infeasible_before": float((vb != 0).mean()) if vb.size else 0.0,
        "infeasible_after": float((va != 0).mean()) if va.size else 0.0,
        "violations_before_mean": float(vb[vb >= 0].mean()) if (vb >= 0).any() else 0.0,
        "violations_after_mean": float(va[va >= 0].mean()) if (va >= 0).any() else 0.0,
    }
    if change:
        ch = torch.cat(change)[labels.valid]
        stats["label_change_mean"] = float(ch.mean()) if ch.numel() else 0.0
    return stats
