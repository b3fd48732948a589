"""``handpose-train dual``: the dual-modality network (dissertation ch. 7; METHODS §5).

**stage=pretrain** on synthetic RGB + depth (+ masks; ``handpose-data synth``): one geometric
augmentation G moves image, depth map, mask and 2.5D targets together; two views differ by
their texture augmentations (colour jitter, grey-scale, erasing for RGB; erasing and
salt-and-pepper noise for depth on the second view). Loss ``L_s + lambda_c L_c``:
L_s = M on the RGB, DM and fusion branches of the first view, L_c the multi-modal contrastive
loss (:mod:`.dual_losses`); the fusion branch reads the DM attention through a stop-gradient.

**stage=finetune** from a pre-trained dual network (``init``) on unlabelled real RGB crops
(``unlabelled``), with the synthetic set (``data``, optional) still supervised by L_s. Per
unlabelled crop a weak view (small shift, +-2 deg or a quarter turn) and a strong view (G plus
texture) are made. On the weak view (no gradient) the RGB branch predicts pose and depth; its
depth feeds the DM branch, whose attention drives the fusion branch; the pseudo-label r is
the mean of the RGB and fusion poses before and after the biomechanical correction, confident
when their variance is at most epsilon. r, mapped into the strong view, supervises the poses
of all three branches on the strong view (L_l); the RGB branch also imitates the (detached)
fusion branch, M(y_RGB, y_F) (L_f). The DM input of the strong view is the weak view's
predicted depth warped into it. Loss ``L_s + lambda_f L_f + lambda_l L_l``.

**RGB-D sessions** (``unlabelled.format=session`` of a recording with ``depth/``): where a crop
has measured depth, the DM branch reads that depth instead of the prediction and the RGB
branch's depth output is supervised by it (``lambda_d``), with the default hand scale.

Outputs: ``dual.pt`` (``dual_resnetN``, the whole network, to fine-tune from) and
``model.pt`` (``posenet_resnetN_multimodal``, the RGB branch alone: what the tracker, ``eval``
and ``export`` use; the dual network's ``forward`` is the same function).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from handpose.core.augment import AppearanceAugmentation, transform_points, warp_images
from handpose.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from handpose.core.data.sample import collate
from handpose.core.geometry.crop import crop_intrinsics
from handpose.core.models import IMAGENET_NORMALIZATION, build_model, normalize_images
from handpose.core.models.dual import (
    DualModalityNet,
    normalize_depth,
    reference_depth,
    rgb_branch,
    upsample_depth,
)

from ..config import ConfigError, input_path, to_dict
from ..loop import train
from ..train_config import TrainConfig
from .data import LabelledData, UnlabelledData, require_path, unlabelled_dataset
from .dual_losses import DualLossSpec, multimodal_contrastive, multimodal_loss, pseudo_labels
from .models import load_encoder_weights, resolve_model_file
from .multimodal_data import (
    GeometricSpec,
    PairedDataset,
    augmented_targets,
    compose_affines,
    multimodal_dataset,
    perturb_depth,
    pool_maps,
    warp_depth,
    warp_mask,
    weak_matrices,
)
from .pose_recipe import PoseRecipe

__all__ = ["DualModelSpec", "DualAugSpec", "Config", "DualRecipe", "check", "run"]


@dataclass(frozen=True)
class DualModelSpec:
    """The network: ResNet depth/width of both encoders (101 in the paper), decoder channels
    and upsamplings, heatmap sharpness, contrastive projection sizes."""

    depth: int = 18
    width: int = 64
    channels: int = 256
    num_deconv: int = 3
    beta: float = 10.0
    proj_hidden: int = 512
    proj_dim: int = 128

    def kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "depth"}


@dataclass(frozen=True)
class DualAugSpec:
    """Augmentations (dissertation 7.4.3; probabilities *(choose)*).

    Attributes:
        geometric: G (also the geometry of the strong view).
        grayscale_prob, erase_prob: the RGB texture augmentation T_RGB (with colour jitter).
        depth_erase_prob, depth_noise: T_DM (erasing, salt-and-pepper fraction).
        weak_translation: shift of the weak view as a fraction of the crop (8 / 256).
        weak_angle_deg, quarter_turn_prob: its rotation: +-2 deg, or a quarter turn.
    """

    geometric: GeometricSpec = field(default_factory=GeometricSpec)
    grayscale_prob: float = 0.2
    erase_prob: float = 0.5
    depth_erase_prob: float = 0.5
    depth_noise: float = 0.02
    weak_translation: float = 0.031
    weak_angle_deg: float = 2.0
    quarter_turn_prob: float = 0.5


@dataclass(frozen=True)
class Config:
    """``handpose-train dual``.

    Attributes:
        stage: "pretrain" (synthetic RGB + depth) or "finetune" (unlabelled real RGB).
        out: run folder ("" = runs/dual-<time>).
        init: pretrain: RGB encoder weights (PeCLR / ImageNet / a pretrain run), optional;
            finetune: the pre-trained dual network (a dual run folder or its dual.pt).
        input_size: crop side in pixels (256 in the paper).
        data: synthetic labelled crops with depth (and masks); required for pretrain.
        unlabelled: real images (finetune); ``load_size`` is replaced by ``input_size``.
        val: optional labelled set evaluated with the RGB branch.
        rgb_only: pretrain the RGB branch alone with M and no depth, no L_c: the paper's
            baseline (synthetic multi-modal supervision only), same network and data.
    """

    stage: Literal["pretrain", "finetune"] = "pretrain"
    rgb_only: bool = False
    out: str = ""
    init: str = input_path("", doc="encoder weights (pretrain) or a dual network (finetune)")
    input_size: int = 128
    data: LabelledData = field(default_factory=LabelledData)
    unlabelled: UnlabelledData = field(default_factory=UnlabelledData)
    val: LabelledData = field(default_factory=LabelledData)
    model: DualModelSpec = field(default_factory=DualModelSpec)
    loss: DualLossSpec = field(default_factory=DualLossSpec)
    aug: DualAugSpec = field(default_factory=DualAugSpec)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=2000, batch_size=32, optimizer="adam", lr=2.5e-4, betas=(0.9, 0.99),
        warmup_steps=50, checkpoint_every=500))

    def __post_init__(self) -> None:
        if self.input_size < 32 or self.input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, >= 32; got {self.input_size}")
        if self.rgb_only and self.stage != "pretrain":
            raise ValueError("rgb_only (the RGB-only baseline) is a pre-training setting")


class DualRecipe(PoseRecipe):
    """Both stages of the dual-modality recipe (module docstring)."""

    name = "dual"

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        a = cfg.aug
        self.geometric = a.geometric.augmentation(cfg.input_size)
        self.texture = AppearanceAugmentation(grayscale_prob=a.grayscale_prob,
                                              erase_prob=a.erase_prob)

    @property
    def net(self) -> DualModalityNet:
        m = self.raw_model
        assert isinstance(m, DualModalityNet)
        return m

    # --- model and data ------------------------------------------------------------------------

    def build_model(self) -> nn.Module:
        c = self.cfg
        model = build_model(f"dual_resnet{c.model.depth}", **c.model.kwargs())
        assert isinstance(model, DualModalityNet)
        if c.stage == "finetune":
            _load_dual(model, c)
        elif c.init:
            load_encoder_weights(model.encoder, c.init, "init")
            bn = {k: v for k, v in model.encoder.state_dict().items() if "conv" not in k
                  and "downsample.0" not in k}
            model.fusion_encoder.load_state_dict(bn, strict=False)  # start from the RGB BN
        return model

    def train_dataset(self) -> Dataset[Any]:
        c = self.cfg
        seed = c.train.seed
        if c.stage == "pretrain":
            return multimodal_dataset(c.data, c.input_size, seed)
        unl = unlabelled_dataset(dataclasses.replace(c.unlabelled, load_size=c.input_size),
                                 seed=seed, key="unlabelled.root")
        lab = multimodal_dataset(c.data, c.input_size, seed) if c.data.root else None
        return PairedDataset(unl, lab)

    def collate(self, samples: list[Any]) -> Any:
        if self.cfg.stage == "pretrain":
            return collate(samples)
        out = {"unl": collate([s["unl"] for s in samples])}
        if "lab" in samples[0]:
            out["lab"] = collate([s["lab"] for s in samples])
        return out

    # --- helpers -------------------------------------------------------------------------------

    def _depth_input(self, batch: dict[str, Any], scale: torch.Tensor) -> torch.Tensor:
        """Measured depth of the crops, normalised (B, 1, S, S)."""
        depth = batch["depth"].float()
        return normalize_depth(depth, reference_depth(depth), scale, self.cfg.loss.depth_range)

    def _m(self, pred: dict[str, torch.Tensor], uv: torch.Tensor, z: torch.Tensor,
           mask: torch.Tensor | None, depth: torch.Tensor | None,
           weights: torch.Tensor | None = None) -> torch.Tensor:
        return multimodal_loss(pred, uv, z, mask, depth, float(self.cfg.input_size),
                               self.cfg.loss, weights)

    def _decode3(self, feats: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """One decoder call for several branches (one set of BN statistics), split back."""
        s = self.cfg.input_size
        out = self.net.decode(torch.cat(feats), (s, s)) if len(feats) > 1 else \
            self.net.decode(feats[0], (s, s))
        b = feats[0].shape[0]
        return [{k: v[i * b:(i + 1) * b] for k, v in out.items()} for i in range(len(feats))]

    # --- losses --------------------------------------------------------------------------------

    def supervised(self, lab: dict[str, Any], contrastive: bool) -> dict[str, torch.Tensor]:
        """L_s on synthetic crops (+ L_c with ``contrastive``)."""
        c, net = self.cfg, self.net
        s = c.input_size
        with self.full_precision():
            rgb = lab["rgb"].float() / 255.0
            params = self.geometric.sample(rgb.shape[0], (s, s), device=rgb.device)
            m = params.matrix
            K2, uv, z, scale = augmented_targets(lab["joints3d"].float(), lab["K"].float(), m)
            x = warp_images(rgb, m, (s, s))
            d = warp_depth(self._depth_input(lab, scale), m, s)
            mask = warp_mask(lab["mask"].float(), m, s) if "mask" in lab else None
            xa = self.texture(x)
            views = [normalize_images(xa)]
            depths = [d]
            if contrastive:
                views.append(normalize_images(self.texture(x)))
                depths.append(perturb_depth(d, c.aug.depth_erase_prob, c.aug.depth_noise))
        n = rgb.shape[0]
        if c.rgb_only:
            y_r = _f32(net.decode(net.encode_rgb(views[0]), (s, s)))
            with self.full_precision():
                side = int(y_r["depth"].shape[-1])
                m_t = None if mask is None else pool_maps(mask, side)
                sup = self._m(y_r, uv, z, m_t, pool_maps(d, side))
            self._last = {"images": xa[:4].detach(), "uv": y_r["uv"][:4].detach(),
                          "uv_gt": uv[:4]}
            return {"sup_rgb": sup, "sup": sup}
        f_r = net.encode_rgb(torch.cat(views))
        f_d, att = net.encode_depth(torch.cat(depths))
        f_f = net.encode_fusion(torch.cat(views), att, c.loss.stop_gradient)
        y_r, y_d, y_f = self._decode3([f_r[:n], f_d[:n], f_f[:n]])
        with self.full_precision():
            side = int(y_r["depth"].shape[-1])
            m_t = None if mask is None else pool_maps(mask, side)
            d_t = pool_maps(d, side)
            out = {name: self._m(_f32(y), uv, z, m_t, d_t)
                   for name, y in (("sup_rgb", y_r), ("sup_depth", y_d), ("sup_fusion", y_f))}
            out["sup"] = out["sup_rgb"] + out["sup_depth"] + out["sup_fusion"]
            if contrastive:
                zr, zd, zf = net.project(f_r), net.project(f_d, "depth"), net.project(f_f)
                out.update(multimodal_contrastive(zr[:n].float(), zr[n:].float(),
                                                  zd[:n].float(), zd[n:].float(),
                                                  zf[:n].float(), zf[n:].float(),
                                                  c.loss.temperature))
        self._last = {"images": xa[:4].detach(), "uv": y_r["uv"][:4].detach(), "uv_gt": uv[:4]}
        return out

    def unsupervised(self, unl: dict[str, Any]) -> dict[str, torch.Tensor]:
        """L_l (pseudo-labels weak -> strong) and L_f (self-distillation) on real crops."""
        c, net = self.cfg, self.net
        s = c.input_size
        b = unl["rgb"].shape[0]
        dev = unl["rgb"].device
        with self.full_precision():
            rgb = unl["rgb"].float() / 255.0
            w = weak_matrices(b, s, c.aug.weak_translation, c.aug.weak_angle_deg,
                              c.aug.quarter_turn_prob, device=dev)
            st = self.geometric.sample(b, (s, s), device=dev).matrix
            xw = normalize_images(warp_images(rgb, w, (s, s)))
            xs_raw = self.texture(warp_images(rgb, st, (s, s)))
            xs = normalize_images(xs_raw)
            has_d = unl.get("has_depth", torch.zeros(b, dtype=torch.bool, device=dev)).to(dev)
            measured = None
            if bool(has_d.any()):
                scale = torch.full((b,), c.loss.default_scale_m, device=dev)
                measured = self._depth_input(unl, scale)
        with torch.no_grad():
            y_w = net.decode(net.encode_rgb(xw), (s, s))
            d_w = upsample_depth(y_w["depth"], s)
            if measured is not None:
                d_w = torch.where(has_d.view(b, 1, 1, 1), warp_depth(measured, w, s), d_w)
            _, att_w = net.encode_depth(d_w)
            y_fw = net.decode(net.encode_fusion(xw, att_w), (s, s))
        with self.full_precision():
            Kw = crop_intrinsics(unl["K"].float(), w)
            labels = pseudo_labels(_f32(y_w), _f32(y_fw), Kw, unl["handedness"], float(s),
                                   c.loss)
            to_strong = compose_affines(st, w, invert_first=True)
            r_uv = transform_points(labels.uv, to_strong)
            d_s = warp_depth(d_w, to_strong, s)  # the weak view's depth, in the strong view
            if measured is not None:
                d_s = torch.where(has_d.view(b, 1, 1, 1), warp_depth(measured, st, s), d_s)
        f_r = net.encode_rgb(xs)
        f_d, att = net.encode_depth(d_s)
        f_f = net.encode_fusion(xs, att, c.loss.stop_gradient)
        y_r, y_d, y_f = self._decode3([f_r, f_d, f_f])
        with self.full_precision():
            y_r, y_d, y_f = _f32(y_r), _f32(y_d), _f32(y_f)
            use = labels.use.float()
            pl = torch.stack([self._m(y, r_uv, labels.z_rel, None, None, use)
                              for y in (y_r, y_d, y_f)]).sum()
            teacher = {k: v.detach() for k, v in y_f.items()}
            distill = self._m(y_r, teacher["uv"], teacher["z_rel"], teacher["mask"],
                              teacher["depth"])
            out = {"pseudo": pl, "distill": distill, "confident": use.mean(),
                   "label_confidence": labels.confidence.mean()}
            if measured is not None:
                side = int(y_r["depth"].shape[-1])
                err = (y_r["depth"] - pool_maps(d_s, side)).abs().mean(dim=(1, 2))
                out["depth_rgbd"] = (err * has_d.float()).sum() / has_d.float().sum()
        self._last = {"images": xs_raw[:4].detach(), "uv": y_r["uv"][:4].detach(),
                      "uv_gt": r_uv[:4]}
        return out

    def training_step(self, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        c = self.cfg
        if c.stage == "pretrain":
            out = self.supervised(batch, contrastive=not c.rgb_only)
            out["loss"] = out["sup"] + c.loss.lambda_c * out.get("contrast", 0.0)
            return out
        out = self.unsupervised(batch["unl"])
        loss = c.loss.lambda_f * out["distill"] + c.loss.lambda_l * out["pseudo"]
        if "depth_rgbd" in out:
            loss = loss + c.loss.lambda_d * out["depth_rgbd"]
        if "lab" in batch:
            sup = self.supervised(batch["lab"], contrastive=False)
            out.update(sup)
            loss = loss + sup["sup"]
        out["loss"] = loss
        return out

    # --- logging, evaluation, outputs --------------------------------------------------------

    def on_train_end(self) -> dict[str, Any]:
        c = self.cfg
        info = {"recipe": f"dual/{c.stage}", "config": to_dict(c), "data": c.data.root,
                "unlabelled": c.unlabelled.root, "init": c.init}
        kw = dict(input_size=c.input_size, normalization=IMAGENET_NORMALIZATION,
                  training=info, metrics=self.metrics)
        full = save_checkpoint(self.run_dir / "dual.pt", self.net, **kw)  # type: ignore[arg-type]
        arch = {"name": f"posenet_resnet{c.model.depth}_multimodal",
                "kwargs": {k: getattr(c.model, k) for k in ("width", "channels", "num_deconv",
                                                             "beta")}}
        rgb = save_checkpoint(self.run_dir / "model.pt", rgb_branch(self.net), arch=arch,
                              **kw)  # type: ignore[arg-type]
        return {"model": str(rgb), "dual": str(full)}


def _f32(d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float() for k, v in d.items()}


def _dual_file(path: str) -> Path:
    p = Path(path)
    if p.is_dir() and (p / "dual.pt").is_file():
        return p / "dual.pt"
    return resolve_model_file(path, "init")


def _load_dual(model: DualModalityNet, cfg: Config) -> None:
    if not cfg.init:
        raise ConfigError("init is not set: stage=finetune starts from a pre-trained dual "
                          "network (init=RUN_DIR of a 'dual stage=pretrain' run)")
    path = _dual_file(cfg.init)
    try:
        src, meta = load_checkpoint(path)
    except CheckpointError as e:
        raise ConfigError(f"init: {e}") from None
    want = f"dual_resnet{cfg.model.depth}"
    if meta.arch["name"] != want or meta.arch["kwargs"] != cfg.model.kwargs():
        raise ConfigError(f"init: {path} holds {meta.arch['name']} {meta.arch['kwargs']}, but "
                          f"model.* asks for {want} {cfg.model.kwargs()}: set model.* to match")
    model.load_state_dict(src.state_dict())


def check(cfg: Config) -> None:
    """Pretrain needs ``data.root``; finetune needs ``unlabelled.root`` and ``init``."""
    if cfg.stage == "pretrain":
        require_path(cfg.data.root, "data.root")
        return
    require_path(cfg.unlabelled.root, "unlabelled.root")
    if not cfg.init:
        raise ConfigError("init is not set: stage=finetune starts from a pre-trained dual "
                          "network (init=RUN_DIR of a 'dual stage=pretrain' run)")
    _dual_file(cfg.init)


def run(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Train one stage; returns the checkpoints, the last losses and validation metrics."""
    res = train(DualRecipe(cfg), cfg.train, run_dir)
    return {**res.outputs, "steps": res.steps, "losses": res.losses, "metrics": res.metrics}
