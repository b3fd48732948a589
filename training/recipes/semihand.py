"""SemiHand: labelled synthetic + unlabelled real images (Yang et al. ICCV 2021, METHODS §4).

``L = L_sup + L_unsup + 0.1 L_cons`` on a PoseNet with a mask head (``posenet_resnetN_mask``):

- ``L_sup = l(p, p_gt) + 100 |w - w_gt|_1`` on strongly augmented labelled crops (the mask
  term where the labelled set has masks; plus the regression head's confidence term);
- ``L_unsup = 1[C(p^) <= tau] l(p, T(p^)) + l(T(r), p)`` on unlabelled crops, with the
  pseudo-labels p^, their corrections r = P(p^) and confidences C of
  :mod:`.semihand_labels`, refreshed in ``pseudo.rounds`` rounds spread evenly over the run;
- ``L_cons = L_vc + L_cc``: view consistency ``l(f(T(x)), T(f(x))) + |w(T(x)) - T(w(x))|_1``
  on both sets, and the cross-modal consistency of the 55-circle hand placed on the predicted
  2D joints with the (stop-gradient) predicted mask, ``L_m2d + L_d2m``.

``l`` is :func:`~handpose.core.losses.consistency.pose_distance` (2D on a 64-px grid, z_rel,
lambda_d = 50, mean over joints). Self-paced augmentation: labelled crops and confident
unlabelled crops get the strong augmentation, the other unlabelled crops the weak
perturbation. The initial pseudo-labels come from ``init`` (``pseudo.source=model``) or from
MediaPipe Hands (``pseudo.source=teacher``: run once over the unlabelled images, cached,
corrected, filtered by C or by MediaPipe's score) — the way to bootstrap on a user's own
recordings (``unlabelled.format=session``). Without ``labelled.root`` the run has no L_sup.

Per round ``rounds.jsonl`` and TensorBoard (``pseudo/*``) get the share of pseudo-labels that
were infeasible before and after the correction, the share passing tau and C. The result is
a core checkpoint ``model.pt``. Not reproduced: the paper's two-stacked hourglass (a ResNet
with a regression head and a deconvolution mask head here) and its step learning-rate drop at
round 5 (the shared loop's cosine schedule instead).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from handpose.core.augment import transform_points, warp_images
from handpose.core.checkpoint import load_checkpoint, save_checkpoint
from handpose.core.circles import circles_from_joints2d, reference_length_px_2d
from handpose.core.data.errors import DataError
from handpose.core.data.sample import collate
from handpose.core.data.synthetic.backgrounds import BackgroundSource
from handpose.core.data.teacher import MediaPipeTeacher, label_dataset, teacher_cache_path
from handpose.core.geometry.lifting import to_25d
from handpose.core.losses.consistency import pose_distance, view_consistency
from handpose.core.losses.fitting import circles_to_mask, mask_to_circles
from handpose.core.losses.pose import confidence_l1
from handpose.core.models import IMAGENET_NORMALIZATION, build_model, normalize_images
from handpose.core.safe_load import CheckpointError

from ..config import ConfigError, to_dict
from ..distributed import barrier
from ..loop import train
from ..train_config import plan_batches
from .data import labelled_dataset, require_path, seeded_subset, unlabelled_reader
from .models import load_encoder_weights, resolve_model_file
from .pose_recipe import PoseRecipe
from .semihand_config import Config, LossSpec, MaskSpec, TeacherSpec, check
from .semihand_data import (
    PairedDataset,
    UnlabelledCrops,
    collate_pairs,
    weak_perturbation,
)
from .semihand_labels import PseudoLabels, refresh_pseudo_labels

__all__ = ["Config", "LossSpec", "MaskSpec", "TeacherSpec", "SemiHandRecipe", "check", "run",
           "load_init"]


def load_init(model: nn.Module, path: str) -> str:
    """Fill ``model`` (a PoseMaskNet) from ``path``: a PoseNet checkpoint with the regression
    head (encoder + head; a mask head too when it has one) or encoder weights.

    Returns:
        "posenet" or "encoder" (what was loaded).
    Raises:
        ConfigError: missing file, or weights of another depth/width.
    """
    p = resolve_model_file(path, "init")
    try:
        loaded, meta = load_checkpoint(p)
    except CheckpointError:
        loaded, meta = None, None
    name = "" if meta is None else str(meta.arch["name"])
    own = model.state_dict()
    sd = {} if loaded is None else loaded.state_dict()
    same_head = {k for k in own if k.startswith("head.")} <= set(sd)
    if loaded is None or not name.startswith("posenet_resnet") or not same_head:
        # encoder weights only (pre-training, or a PoseNet with another kind of head)
        load_encoder_weights(model.encoder, path, "init")  # type: ignore[arg-type]
        return "encoder"
    for k, v in sd.items():
        if k in own and own[k].shape != v.shape:
            raise ConfigError(f"init: {p} does not fit model.depth/model.width/mask: {k} is "
                              f"{tuple(v.shape)} in the file, {tuple(own[k].shape)} here")
    missing = [k for k in own if k not in sd and not k.startswith("mask_head.")]
    if missing:
        raise ConfigError(f"init: {p} lacks {missing[:3]}... of the pose network")
    model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    return "posenet"


class SemiHandRecipe(PoseRecipe):
    """The SemiHand recipe (see the module docstring)."""

    name = "semihand"

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.strong_geo = cfg.strong.geometric(cfg.input_size, cfg.loss.uv_grid)
        self.strong_app = cfg.strong.appearance()
        self.round_stats: list[dict[str, float]] = []
        self.init_kind = "none"
        self._tb: Any = None

    # --- model and data ----------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        c = self.cfg
        h = c.heatmap
        model = build_model(f"posenet_resnet{c.model.depth}_mask", width=c.model.width,
                            mask_channels=c.mask.channels, mask_deconv=c.mask.deconv,
                            head=c.head, channels=h.channels, num_deconv=h.num_deconv,
                            beta=h.beta)
        if c.init:
            self.init_kind = load_init(model, c.init)
        return model

    def train_dataset(self) -> Dataset[Any]:
        c = self.cfg
        seed = c.train.seed
        labelled = None
        if c.labelled.root:
            labelled = labelled_dataset(c.labelled, c.input_size, seed, "labelled.root",
                                        load_mask=True)
        base, ident = unlabelled_reader(c.unlabelled, None, "unlabelled.root")
        sub = seeded_subset(base, 1.0, c.unlabelled.limit, seed)
        ids = list(sub.indices) if isinstance(sub, Subset) else list(range(len(base)))
        labels = None
        if c.pseudo.enabled and c.pseudo.source == "teacher":
            labels = self._teacher_labels(base, ident, ids)
        self.unlabelled = UnlabelledCrops(base, ids, c.input_size, c.unlabelled.crop_margin,
                                          labels, upright=c.unlabelled.upright,
                                          background_prob=c.strong.background_prob,
                                          backgrounds=self._backgrounds(),
                                          mirror_left=c.unlabelled.mirror_left)
        self.pseudo = PseudoLabels(len(ids))
        ds = PairedDataset(self.unlabelled, labelled)
        plan = plan_batches(c.train, len(ds), self.dist.world_size)
        self.micro = plan.micro
        self.steps_per_round = max(1, math.ceil(plan.total_steps / c.pseudo.rounds))
        return ds

    def _backgrounds(self) -> BackgroundSource | None:
        folder = self.cfg.strong.background_dir
        if not folder:
            return None
        try:
            return BackgroundSource(require_path(folder, "strong.background_dir"))
        except ValueError as e:
            raise ConfigError(f"strong.background_dir: {e}") from e

    def _teacher_labels(self, base: Any, ident: dict[str, Any], ids: list[int]) -> Any:
        t = self.cfg.teacher
        teacher = MediaPipeTeacher(t.model_complexity, t.min_detection_confidence, t.pad_retry,
                                   t.mirrored)
        try:
            key = {**ident, "teacher": teacher.name}
            path = teacher_cache_path(t.cache_dir or self.run_dir / "teacher", key)
            if self.dist.is_main:
                labels = label_dataset(base, teacher, path, key, self.cfg.train.progress, ids)
            barrier()
            if not self.dist.is_main:
                labels = label_dataset(base, teacher, path, key, False, ids)
        finally:
            teacher.close()
        found = int(labels.found[ids].sum())
        if found == 0:
            raise DataError(path, f"the teacher found no hand in any of the {len(ids)} images "
                            f"of {ident['root']}: check the images, or start from a model "
                            "(pseudo.source=model init=...)")
        if found < len(ids):
            warnings.warn(f"semihand: the teacher found a hand in {found} of {len(ids)} "
                          f"images; the others are used for consistency only", stacklevel=2)
        return labels

    def collate(self, samples: list[Any]) -> Any:
        return collate_pairs(samples)

    # --- pseudo-label rounds -----------------------------------------------------------------
    def _refresh(self, round_index: int, step: int) -> None:
        c = self.cfg
        loader = DataLoader(self.unlabelled, batch_size=self.micro, shuffle=False,
                            collate_fn=collate, num_workers=c.train.num_workers)
        swap, self.unlabelled.background_prob = self.unlabelled.background_prob, 0.0
        try:  # the labels are made on the crops as they are
            with self.full_precision():
                stats = refresh_pseudo_labels(
                    self.raw_model, loader, self.pseudo, round_index, spec=c.pseudo,
                    weak=c.weak, crop_size=c.input_size, uv_grid=c.loss.uv_grid,
                    lambda_d=c.loss.lambda_d, device=self.device, seed=c.train.seed,
                    teacher_filter=c.teacher.filter, min_score=c.teacher.min_score)
        finally:
            self.unlabelled.background_prob = swap
        stats["step"] = float(step)
        self.round_stats.append(stats)
        if self.dist.is_main:
            with open(self.run_dir / "rounds.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(stats) + "\n")
            if self._tb is None:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(self.run_dir / "tb"))
            for k, v in stats.items():
                if k not in ("round", "step"):
                    self._tb.add_scalar(f"pseudo/{k}", v, step)
            self._tb.flush()

    # --- one update --------------------------------------------------------------------------
    def _labelled_views(self, lab: dict[str, Any]) -> dict[str, Any]:
        s = self.cfg.input_size
        x = lab["rgb"].float() / 255.0
        m = self.strong_geo.sample(x.shape[0], (s, s), None, x.device).matrix
        aug = self.strong_app(warp_images(x, m, (s, s)))
        out = {"x": x, "aug": aug, "matrix": m, "uv": transform_points(lab["uv"].float(), m),
               "z": to_25d(lab["joints3d"].float(), lab["K"].float())[1]}
        if "mask" in lab:  # (B, 1, S, S), area-averaged to the predicted mask's size later
            out["mask"] = warp_images(lab["mask"].float(), m, (s, s))
            out["has_mask"] = lab.get("has_mask", torch.ones(x.shape[0], dtype=torch.bool))
        return out

    def training_step(self, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        c, s = self.cfg, self.cfg.input_size
        lw = c.loss
        if c.pseudo.enabled:
            r = min(step // self.steps_per_round, c.pseudo.rounds - 1)
            if r > self.pseudo.round:
                self._refresh(r, step)
        kw = dict(lambda_d=lw.lambda_d, uv_grid=lw.uv_grid)
        dev = self.device
        with self.full_precision():
            unl, idx = batch["unl"], batch["unl_index"].cpu()
            xu = unl["rgb"].float() / 255.0
            b = xu.shape[0]
            conf = self.pseudo.confident[idx].to(dev) if c.pseudo.enabled else \
                torch.zeros(b, dtype=torch.bool, device=dev)
            valid = self.pseudo.valid[idx].to(dev).float()
            mw = weak_perturbation(b, s, c.weak, lw.uv_grid, None, dev)
            ms = self.strong_geo.sample(b, (s, s), None, dev).matrix
            mu = torch.where(conf[:, None, None], ms, mw)
            xu_aug = warp_images(xu, mu, (s, s))
            xu_aug = torch.where(conf[:, None, None, None], self.strong_app(xu_aug), xu_aug)
            lab = self._labelled_views(batch["lab"]) if "lab" in batch else None
            nl = 0 if lab is None else lab["x"].shape[0]
            if not (c.pseudo.enabled or lw.view or lw.cross_modal):
                xu, xu_aug, mu = xu[:0], xu_aug[:0], mu[:0]  # L_sup only: no unlabelled pass
            x_aug = xu_aug if lab is None else torch.cat([lab["aug"], xu_aug])
            x_base = xu if lab is None else torch.cat([lab["x"], xu])
            matrix = mu if lab is None else torch.cat([lab["matrix"], mu])
        need_base = lw.view
        if need_base and not lw.view_detach:
            both = self.model(normalize_images(torch.cat([x_aug, x_base])))
            n = x_aug.shape[0]
            out = {k: v[:n] for k, v in both.items()}
            base = {k: v[n:] for k, v in both.items()}
        else:
            out = self.model(normalize_images(x_aug))
            base = {}
            if need_base:
                with torch.no_grad():
                    base = self.raw_model(normalize_images(x_base))
        terms: dict[str, torch.Tensor] = {}
        with self.full_precision():
            out = {k: v.float() for k, v in out.items()}
            zero = out["uv"].sum() * 0.0
            total = zero
            if lab is not None:
                lo = {k: v[:nl] for k, v in out.items()}
                terms["sup_pose"] = pose_distance(lo["uv"], lo["z_rel"], lab["uv"], lab["z"], s,
                                                  reduction="mean", **kw)  # type: ignore[arg-type]
                total = total + terms["sup_pose"]
                if "mask" in lab and lw.mask > 0:
                    hm = lab["has_mask"].to(dev).float()
                    gt = F.adaptive_avg_pool2d(lab["mask"], tuple(lo["mask"].shape[-2:]))[:, 0]
                    per = (lo["mask"] - gt).abs().mean(dim=(1, 2))
                    terms["sup_mask"] = (per * hm).sum() / hm.sum().clamp(min=1.0)
                    total = total + lw.mask * terms["sup_mask"]
                if lw.confidence > 0 and "uv_error" in lo:  # the regression head's confidence
                    terms["confidence"] = confidence_l1(lo["uv_error"], lo["uv"], lab["uv"], s)
                    total = total + lw.confidence * terms["confidence"]
            uo = {k: v[nl:] for k, v in out.items()}
            if c.pseudo.enabled:
                p_uv = transform_points(self.pseudo.uv[idx].to(dev), mu)
                r_uv = transform_points(self.pseudo.r_uv[idx].to(dev), mu)
                p_z, r_z = self.pseudo.z[idx].to(dev), self.pseudo.r_z[idx].to(dev)
                fc = conf.float()
                t1 = pose_distance(uo["uv"], uo["z_rel"], p_uv, p_z, s, **kw)  # type: ignore
                t2 = pose_distance(r_uv, r_z, uo["uv"], uo["z_rel"], s, **kw)  # type: ignore
                gate2 = fc if c.pseudo.gate_corrected else torch.ones_like(fc)
                terms["unsup"] = ((fc * t1 + gate2 * t2) * valid).mean()
                terms["confident_share"] = fc.mean()
                total = total + c.pseudo.weight * terms["unsup"]
                if c.pseudo.source == "teacher" and lw.confidence > 0 and "uv_error" in uo:
                    # MediaPipe's labels are near-true on real photos: the error output learns
                    # the network's real errors, not only its synthetic ones
                    m = (fc * valid)[:, None].expand_as(uo["uv_error"])
                    terms["confidence_unl"] = confidence_l1(uo["uv_error"], uo["uv"], p_uv, s,
                                                            mask=m)
                    total = total + lw.confidence * terms["confidence_unl"]
            cons = zero
            if lw.view:
                base = {k: v.float() for k, v in base.items()}
                vc = view_consistency(out["uv"], out["z_rel"], base["uv"], base["z_rel"], matrix,
                                      s, pred_t_mask=out["mask"], pred_mask=base["mask"],
                                      detach_target=lw.view_detach, **kw)  # type: ignore[arg-type]
                terms["view_pose"], terms["view_mask"] = vc["pose"].mean(), vc["mask"].mean()
                cons = cons + terms["view_pose"] + terms["view_mask"]
            if lw.cross_modal:
                m2d, d2m = self._cross_modal(out["uv"], out["mask"], s)
                terms["cross_m2d"], terms["cross_d2m"] = m2d, d2m
                cons = cons + m2d + d2m
            total = total + lw.consistency * cons
        if xu_aug.shape[0]:  # unlabelled crops: prediction and pseudo-label (white)
            self._last = {"images": xu_aug[:4].detach(), "uv": uo["uv"][:4].detach(),
                          "uv_gt": transform_points(self.pseudo.uv[idx[:4]].to(dev), mu[:4])}
        elif lab is not None:  # labelled crops: prediction and label (white)
            self._last = {"images": lab["aug"][:4], "uv": out["uv"][:4].detach(),
                          "uv_gt": lab["uv"][:4]}
        return {"loss": total, **terms}

    def _cross_modal(self, uv: torch.Tensor, mask: torch.Tensor, size: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """L_m2d and L_d2m of the 55 circles on the predicted joints vs the predicted mask."""
        side = mask.shape[-1]
        uv_m = (uv + 0.5) * (side / size) - 0.5
        scale = reference_length_px_2d(uv_m.detach()).clamp(min=0.5)
        centres, radii = circles_from_joints2d(uv_m, scale)
        m2d = mask_to_circles(centres, radii, mask, sharpness=self.cfg.loss.circle_sharpness)
        return m2d, circles_to_mask(centres, radii, mask)

    # --- logging, evaluation, state ----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"pseudo": self.pseudo.state_dict(), "round_stats": list(self.round_stats)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pseudo.load_state_dict(state["pseudo"])
        self.round_stats = [dict(r) for r in state["round_stats"]]

    def on_train_end(self) -> dict[str, Any]:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        c = self.cfg
        path = save_checkpoint(
            self.run_dir / "model.pt", self.raw_model, input_size=c.input_size,
            normalization=IMAGENET_NORMALIZATION,
            training={"recipe": "semihand", "config": to_dict(c), "init": c.init,
                      "init_kind": self.init_kind,
                      "data": {"labelled": c.labelled.root, "unlabelled": c.unlabelled.root},
                      "rounds": self.round_stats},
            metrics=self.metrics)
        return {"model": str(path), "rounds": self.round_stats}


def run(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Train; returns the checkpoint path, the last losses, the rounds and the metrics."""
    res = train(SemiHandRecipe(cfg), cfg.train, run_dir)
    return {**res.outputs, "steps": res.steps, "losses": res.losses, "metrics": res.metrics}
