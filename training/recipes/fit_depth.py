"""``handpose-train fit-depth``: self-supervision by fitting a sphere model to depth (Wan et al.
2019, METHODS §6).

Two stages of one network (:class:`~handpose.core.models.fcn.DepthFCN`, registry name
``depth_fcn``) on 64 x 64 crop-cube depth (:mod:`handpose.core.data.depth_crop`):

* ``stage=synthetic`` (a): supervised initialisation on synthetic depth with sensor-like noise
  (:mod:`.depth_synth`, made on the fly from the pose sampler): L1 between every hourglass
  stack's integral points and the ground truth, in normalised cube units (Wan et al. use an
  L2 on coordinates or heatmap targets; L1 is the integral-regression choice of Sun et al.
  2018 *(choose)*), plus ``heatmap_weight`` x the cross-entropy of the last stack's heatmaps
  against Gaussians at the targets (:func:`heatmap_cross_entropy`).
* ``stage=fit`` (b): from ``init`` (a stage-a run), fine-tune on *unlabelled* depth
  (``data``: a folder, single or multi-view, or an unlabelled synthetic set) with the
  self-supervised energy of :mod:`.fit_energy` (model-to-data, data-to-model, multi-view
  median consistency with cross-view data terms, the frozen VAE prior from ``prior``, bone
  lengths, collisions). Optional extras (0 by default): ``sup_weight`` keeps the synthetic
  supervision of stage a in the mix ("the trained network ... still leveraging supervision
  from synthesized labeled data"), ``corrected_weight`` pulls the predicted joints towards
  their biomechanically corrected version (``correct_pose``, a pseudo-label as in the
  dissertation's SemiHand/dual-modality recipes).

Biomechanical correction: every update logs to TensorBoard the fraction of predicted hands
that are infeasible before (``train/infeasible_before``) and after correction
(``train/infeasible_after``, 0 by construction), and the evaluation reports the EPE of raw and
corrected predictions. Labels, when the data has them, are used for these metrics only.

Evaluation (``val``, or the synthetic validation set of stage a): ``eval/epe_mm``,
``eval/epe_corrected_mm``, ``eval/pa_epe_mm``, ``eval/infeasible_before``/``after``; on the
first view of each hand. The result is a core checkpoint ``model.pt`` whose ``training``
entry records the crop convention (``crop``: cube side, size, input normalisation).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from handpose.core.biomech import correct_pose, count_violations
from handpose.core.checkpoint import load_checkpoint, save_checkpoint
from handpose.core.data.depth_crop import from_cube, to_cube
from handpose.core.data.depth_noise import DepthNoise
from handpose.core.metrics import epe, pa_epe
from handpose.core.models import build_model
from handpose.core.models.prior import PoseVAE

from ..config import ConfigError, input_path, to_dict
from ..loop import train
from ..recipe import Recipe
from ..train_config import TrainConfig
from .depth_data import DepthData, depth_folder_dataset
from .depth_synth import DepthSynthesizer, SynthSpec
from .fit_energy import EnergyWeights, fitting_energy, model_points
from .models import resolve_model_file
from .prior import IDENTITY_NORMALIZATION, IndexDataset

__all__ = ["FCNSpec", "Config", "FitDepthRecipe", "heatmap_cross_entropy", "evaluate_views",
           "check", "run"]


@dataclass(frozen=True)
class FCNSpec:
    """The depth FCN: K points (21 joints or 41 sphere centres), width, hourglass stacks and
    levels, softmax sharpness beta (Wan et al.: 10)."""

    num_points: int = 21
    width: int = 64
    stacks: int = 1
    depth: int = 3
    beta: float = 10.0


@dataclass(frozen=True)
class Config:
    """``handpose-train fit-depth`` (see the module docstring).

    Attributes:
        out: run folder ("" = runs/fit-depth-<time>).
        stage: "synthetic" (initialisation) or "fit" (self-supervised fine-tuning).
        init: stage fit: the stage-a run folder or model.pt (stage synthetic: optional, to
            continue training).
        prior: the frozen pose VAE (a ``prior`` run or its model.pt); "" = no L_vae.
        cube_side: crop cube side, metres. input_size: crop cells (network input side).
        synthetic, noise: the synthetic data of stage a (and of ``sup_weight``).
        data: stage fit: the unlabelled depth.
        val: evaluation data with labels ("none": stage a evaluates on ``val_size``
            synthetic hands of seed ``synthetic.seed + 1``).
        energy: weights of the self-supervised energy.
        sup_weight: stage fit: weight of the synthetic supervised loss mixed in.
        corrected_weight: stage fit: weight of L1 (metres) towards the corrected joints.
        heatmap_weight: supervised loss: weight of the heatmap cross-entropy against Gaussians
            (1 cell) at the target points, beside the L1 on the integral points (Wan et al.
            supervise heatmaps). Off by default: 400 updates of the cpu preset reached 41.3 /
            41.7 / 44.8 mm EPE with weights 0 / 0.1 / 1.
        val_size: synthetic validation hands.
    """

    out: str = ""
    stage: Literal["synthetic", "fit"] = "synthetic"
    init: str = input_path("", doc="the stage-a (synthetic) run or its model.pt")
    prior: str = input_path("", doc="a prior run or its model.pt")
    cube_side: float = 0.3
    input_size: int = 64
    model: FCNSpec = field(default_factory=FCNSpec)
    synthetic: SynthSpec = field(default_factory=SynthSpec)
    noise: DepthNoise = field(default_factory=DepthNoise)
    data: DepthData = field(default_factory=DepthData)
    val: DepthData = field(default_factory=DepthData)
    energy: EnergyWeights = field(default_factory=EnergyWeights)
    sup_weight: float = 0.0
    corrected_weight: float = 0.0
    heatmap_weight: float = 0.0
    val_size: int = 256
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(steps=3000, batch_size=16, optimizer="adam",
                                            lr=1e-3, warmup_steps=100, checkpoint_every=500,
                                            log_every=20))

    def __post_init__(self) -> None:
        if not 0.05 <= self.cube_side <= 1.0:
            raise ValueError(f"cube_side must be in [0.05, 1] metres; got {self.cube_side}")
        if min(self.sup_weight, self.corrected_weight, self.heatmap_weight) < 0 or \
                self.val_size < 1:
            raise ValueError("sup_weight, corrected_weight, heatmap_weight >= 0 and "
                             "val_size >= 1 required")


def _frozen_prior(path: str) -> PoseVAE | None:
    if not path:
        return None
    model, _ = load_checkpoint(resolve_model_file(path, "prior"))
    if not isinstance(model, PoseVAE):
        raise ConfigError(f"prior: {path} holds a {type(model).__name__}, not a pose_vae")
    return model.requires_grad_(False).eval()


class FitDepthRecipe(Recipe):
    """Both stages of the fitting recipe (see the module docstring)."""

    name = "fit-depth"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.synth = DepthSynthesizer(cfg.synthetic, cfg.noise, cfg.cube_side, cfg.input_size)
        self.vae = _frozen_prior(cfg.prior) if cfg.stage == "fit" else None
        self.data_synth: DepthSynthesizer | None = None
        if cfg.stage == "fit" and cfg.data.source == "synthetic":
            self.data_synth = DepthSynthesizer(cfg.data.synthetic, cfg.data.noise,
                                               cfg.cube_side, cfg.input_size)
        self.metrics: dict[str, float] = {}
        self._val: dict[str, torch.Tensor] | None = None

    # -- model and data ------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        c, m = self.cfg, self.cfg.model
        model = build_model("depth_fcn", num_points=m.num_points, width=m.width,
                            stacks=m.stacks, depth=m.depth, beta=m.beta,
                            input_size=c.input_size)
        if c.init:  # stage fit always; stage synthetic continues a run when given
            init, _ = load_checkpoint(resolve_model_file(c.init, "init"))
            try:
                model.load_state_dict(init.state_dict())
            except RuntimeError as e:
                raise ConfigError(f"init: {c.init} does not fit model.* ({e})") from None
        return model

    def train_dataset(self) -> Dataset[Any]:
        c = self.cfg
        if c.stage == "synthetic" or c.data.source == "synthetic":
            spec = c.synthetic if c.stage == "synthetic" else c.data.synthetic
            return IndexDataset(spec.length)
        return depth_folder_dataset(c.data, c.cube_side, c.input_size, "data")

    def collate(self, samples: list[Any]) -> Any:
        if isinstance(samples[0], int):
            return torch.tensor(samples, dtype=torch.int64)
        return default_collate(samples)

    def _views(self, batch: Any, synth: DepthSynthesizer) -> dict[str, torch.Tensor]:
        if isinstance(batch, torch.Tensor):
            with torch.no_grad():
                out = synth(batch.cpu())
            return {k: v.to(self.device) for k, v in out.items()}
        return batch

    def _predict(self, model: nn.Module, views: dict[str, torch.Tensor]
                 ) -> dict[str, torch.Tensor]:
        b, v = views["input"].shape[:2]
        out = model(views["input"].reshape(b * v, *views["input"].shape[2:]))
        return {"points": out["points"].reshape(b, v, *out["points"].shape[1:]),
                "stack_points": out["stack_points"], "heatmaps": out["heatmaps"]}

    def _targets(self, views: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B*V, K, 3) ground-truth points in the normalised cube."""
        b, v = views["joints"].shape[:2]
        joints = views["joints"].reshape(b * v, 21, 3)
        if self.cfg.model.num_points == 41:
            pts = model_points(joints, EnergyWeights(hand_scale=0.0)).centres
        else:
            pts = joints
        return to_cube(pts, views["centre"].reshape(-1, 3), views["side"].reshape(-1))

    def _supervised(self, views: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred = self._predict(self.model, views)
        with self.full_precision():
            target = self._targets(views)
            stacks = pred["stack_points"].float()
            l1 = (stacks - target).abs().mean()
            loss = l1
            out = {"sup_l1": l1.detach()}
            if self.cfg.heatmap_weight > 0:
                ce = heatmap_cross_entropy(pred["heatmaps"].float(), target[..., :2])
                loss = loss + self.cfg.heatmap_weight * ce
                out["heatmap_ce"] = ce.detach()
            err = self._epe_mm(pred["points"].float(), views)
        return {"loss": loss, **out, "epe_mm": err}

    def _epe_mm(self, points: torch.Tensor, views: dict[str, torch.Tensor]) -> torch.Tensor:
        joints = self._joints_m(points, views)
        return (joints - views["joints"]).norm(dim=-1).mean().detach() * 1000

    def _joints_m(self, points: torch.Tensor, views: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, V, K, 3) normalised -> (B, V, 21, 3) metres in each view's camera."""
        b, v = points.shape[:2]
        m = from_cube(points.reshape(b * v, *points.shape[2:]), views["centre"].reshape(-1, 3),
                      views["side"].reshape(-1))
        return model_points(m.detach(), self.cfg.energy).joints.reshape(b, v, 21, 3)

    # -- training ------------------------------------------------------------------------
    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        c = self.cfg
        if c.stage == "synthetic":
            return self._supervised(self._views(batch, self.synth))
        views = self._views(batch, self.data_synth) if self.data_synth else batch
        pred = self._predict(self.model, views)
        with self.full_precision():
            terms = fitting_energy(pred["points"].float(), views, c.energy, self.vae)
            loss = terms["loss"]
            joints = terms["joints"][:, 0]  # first view, metres
            flat = joints.detach().double().cpu().numpy()
            before = count_violations(flat, "right") > 0
            corrected = correct_pose(flat, handedness="right")
            after = count_violations(corrected, "right") > 0
            out = {k: terms[k].detach() for k in ("m2d", "d2m", "multiview", "vae", "bone",
                                                  "collision")}
            if c.corrected_weight > 0:
                b, v = pred["points"].shape[:2]
                metres = from_cube(pred["points"].float().reshape(b * v, -1, 3),
                                   views["centre"].reshape(-1, 3), views["side"].reshape(-1))
                own = model_points(metres, c.energy).joints.reshape(b, v, 21, 3)[:, 0]
                target = torch.as_tensor(corrected, dtype=own.dtype, device=own.device)
                pl = (own - target).abs().sum(-1).mean()
                loss = loss + c.corrected_weight * pl
                out["corrected_l1"] = pl.detach()
        if c.sup_weight > 0:
            idx = torch.arange(c.train.batch_size) + step * c.train.batch_size
            sup = self._supervised(self._views(idx % c.synthetic.length, self.synth))
            loss = loss + c.sup_weight * sup["loss"]
            out["sup_l1"] = sup["sup_l1"]
        has = views["has_joints"].bool()
        if bool(has.any()):
            out["epe_mm"] = ((joints[has] - views["joints"][has, 0]).norm(dim=-1).mean()
                             * 1000).detach()
        out["infeasible_before"] = torch.tensor(float(before.mean()))
        out["infeasible_after"] = torch.tensor(float(after.mean()))
        return {"loss": loss, **out}

    # -- evaluation ----------------------------------------------------------------------
    def _val_views(self) -> dict[str, torch.Tensor] | None:
        c = self.cfg
        if self._val is None:
            if c.val.source == "folder":
                ds = depth_folder_dataset(c.val, c.cube_side, c.input_size, "val")
                self._val = default_collate([ds[i] for i in range(len(ds))])
            else:
                synth = DepthSynthesizer(
                    replace(c.synthetic, seed=c.synthetic.seed + 1), c.noise, c.cube_side,
                    c.input_size) if c.val.source == "none" else DepthSynthesizer(
                    c.val.synthetic, c.val.noise, c.cube_side, c.input_size)
                chunks = [synth(torch.arange(i, min(i + 64, c.val_size)))
                          for i in range(0, c.val_size, 64)]
                self._val = {k: torch.cat([ch[k] for ch in chunks]) for k in chunks[0]}
        return self._val

    def evaluate(self, step: int) -> dict[str, float]:
        views = self._val_views()
        if views is None or not bool(views["has_joints"].all()):
            return {}
        self.metrics = evaluate_views(self.raw_model, views, self.cfg.energy, self.device)
        return self.metrics

    def on_train_end(self) -> dict[str, Any]:
        c = self.cfg
        path = save_checkpoint(
            self.run_dir / "model.pt", self.raw_model, input_size=c.input_size,
            normalization=IDENTITY_NORMALIZATION,
            training={"recipe": "fit-depth", "stage": c.stage, "config": to_dict(c),
                      "init": c.init, "prior": c.prior,
                      "crop": {"cube_side_m": c.cube_side, "size": c.input_size,
                               "input": "(Z - c_z) / (side / 2) clipped to [-1, 1]",
                               "output": "normalised cube coordinates (p - c) / (side / 2)",
                               "points": "joints" if c.model.num_points == 21 else "spheres"}},
            metrics=self.metrics)
        return {"model": str(path)}


def heatmap_cross_entropy(prob: torch.Tensor, xy: torch.Tensor, sigma_cells: float = 1.0
                          ) -> torch.Tensor:
    """Cross-entropy of integral heatmaps against Gaussians at the target points.

    Args:
        prob: (N, K, h, w) softmax probabilities (the FCN's ``heatmaps``).
        xy: (N, K, 2) targets in normalised cube coordinates (cell grid of
            :func:`handpose.core.models.fcn.integral_points`).
        sigma_cells: Gaussian standard deviation in cells.
    Returns:
        scalar nats, the mean over points.
    """
    n, k, h, w = prob.shape
    gy = (torch.arange(h, dtype=prob.dtype, device=prob.device) + 0.5) * (2.0 / h) - 1.0
    gx = (torch.arange(w, dtype=prob.dtype, device=prob.device) + 0.5) * (2.0 / w) - 1.0
    sx, sy = sigma_cells * 2.0 / w, sigma_cells * 2.0 / h
    ex = torch.exp(-0.5 * ((gx - xy[..., :1]) / sx) ** 2)  # (N, K, w)
    ey = torch.exp(-0.5 * ((gy - xy[..., 1:]) / sy) ** 2)  # (N, K, h)
    target = ey[..., :, None] * ex[..., None, :]
    target = target / target.sum((-2, -1), keepdim=True).clamp(min=1e-12)
    return -(target * torch.log(prob.clamp(min=1e-12))).sum((-2, -1)).mean()


def evaluate_views(model: nn.Module, views: dict[str, torch.Tensor], energy: EnergyWeights,
                   device: torch.device | str = "cpu", batch_size: int = 64) -> dict[str, float]:
    """Accuracy of a depth FCN on labelled view batches (first view of each hand).

    Returns:
        ``epe_mm``, ``pa_epe_mm``, ``epe_corrected_mm`` (after ``correct_pose``),
        ``infeasible_before``, ``infeasible_after`` (fractions of hands).
    """
    preds = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(views["input"]), batch_size):
            x = views["input"][i:i + batch_size, 0].to(device)
            pts = model(x)["points"].float().cpu()
            m = from_cube(pts, views["centre"][i:i + batch_size, 0],
                          views["side"][i:i + batch_size, 0])
            preds.append(model_points(m, energy).joints)
    pred = torch.cat(preds).double().numpy()
    gt = views["joints"][:, 0].double().numpy()
    corrected = correct_pose(pred, handedness="right")
    return {"epe_mm": 1000 * float(epe(pred, gt)), "pa_epe_mm": 1000 * float(pa_epe(pred, gt)),
            "epe_corrected_mm": 1000 * float(epe(corrected, gt)),
            "infeasible_before": float(np.mean(count_violations(pred, "right") > 0)),
            "infeasible_after": float(np.mean(count_violations(corrected, "right") > 0))}


def check(cfg: Config) -> None:
    """Stage fit needs ``init`` and unlabelled ``data``; ``centre=labels`` needs labels."""
    if cfg.stage == "fit":
        if not cfg.init:
            raise ConfigError("init: stage=fit starts from a stage=synthetic run; set init=")
        if cfg.data.source == "none":
            raise ConfigError("data.source: stage=fit needs unlabelled depth: data.source="
                              "folder data.root=DIR, or data.source=synthetic")
        if cfg.energy.vae > 0 and not cfg.prior:
            raise ConfigError("prior: energy.vae > 0 needs the frozen VAE: prior=RUN_DIR (a "
                              "`handpose-train prior` run), or energy.vae=0")


def run(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Run the stage; returns the checkpoint path, the last losses and the metrics."""
    res = train(FitDepthRecipe(cfg), cfg.train, run_dir)
    return {**res.outputs, "steps": res.steps, "losses": res.losses, "metrics": res.metrics}
