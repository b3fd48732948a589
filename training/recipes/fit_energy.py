"""The self-supervised fitting loss of Wan et al. (2019, eq. 4; METHODS §6) on view batches.

    L = L_m2d + l1 L_d2m + l2 L_multiview + l3 L_vae + l4 L_bone + l5 L_collision

Network outputs (B, V, K, 3) in each view's normalised crop cube become metres in the view's
camera (:func:`~handpose.core.data.depth_crop.from_cube`), then joints and sphere centres:
K = 21 joints give the centres by ``spheres_from_joints``; K = 41 centres give the joints by
least squares (:func:`~handpose.core.models.prior.joints_from_spheres`). Radii and reference
bone lengths: the template's times ``hand_scale`` (fixed, 1 = the adult template, as Wan et
al.'s predefined bone ranges; or, with 0, each hand's own scale estimated from the predicted
bones, detached and clamped into ``scale_range``).

Terms (pure energies from :mod:`handpose.core.losses.fitting`, all per sample):

* L_m2d: L1 between the sphere model rendered orthographically in the crop cube and the
  observed crop (valid cells). With several views and ``cross_view`` the estimate of each view
  is also moved into every other calibrated view and compared there (Wan et al. sec. 3.4.1);
  the term is the mean over the V x V (estimate view, observed view) pairs.
* L_d2m: mean distance of the observed hand cells (:func:`~handpose.core.data.depth_crop.
  cube_points`, a random subset of ``max_points``) to the model surface, clamped at
  ``d2m_max_distance``; the same pairs as L_m2d.
* Forearm: the sphere model has none, but real depth does. Observed cells beyond the plane
  through the estimated wrist (normal: middle MCP -> wrist, detached; ``wrist_cut`` metres
  beyond it) are left out of both data terms, as the wrist band of model-based trackers does.
* L_multiview: each view's centres in the canonical frame pulled to the per-sphere median of the
  views (stop-gradient), V >= 2 only.
* L_vae: the frozen prior's negative ELBO (``PoseVAE.prior_loss``).
* L_bone: squared excess outside ``[0.80, 1.05] x`` the template bone lengths times the scale
  (with the default scale 1 the band admits hands 0.8-1.05 times the template's size).
* L_collision: sphere overlap between fingers / palm beyond ``collision_margin`` per pair.

Weights: the paper gives no values. The defaults are *(choose)* values with energies in metres:
L_m2d and L_d2m are mean metres (weight 1), L_multiview square metres summed over 41 spheres
and V views (1), L_vae nats (5e-5), L_bone square metres (1), L_collision metres summed over
pairs (0.05, with a 5 mm margin per pair: real poses touch). They were set by (1) matching the
terms' gradient norms at 10 mm of joint noise on synthetic depth and (2) fitting the points of
ground-truth poses perturbed by 20 mm directly (Adam on the points, no network; 6-8 hands, 150
steps, forearm in view). Single view: the data terms alone end at 31 mm from the truth, with
the bone and collision terms at 24 mm, adding L_vae at 2e-5 / 5e-5 / 1e-4 at 11.7 / 9.5 /
9.3 mm. Three calibrated views (L_vae 2e-5), multi-view term 1 and cross-view data terms: 3.6 mm
(4.3 mm without the cross-view terms).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from handpose.core.data.depth_crop import CubeCrop, cube_points, from_cube
from handpose.core.handmodel import load_hand_model
from handpose.core.losses.fitting import (
    bone_length_band,
    collision,
    data_to_model,
    model_to_data,
    multiview_consistency,
)
from handpose.core.models.prior import PoseVAE, joints_from_spheres
from handpose.core.render import render_depth_orthographic
from handpose.core.spheres import estimate_hand_scale, spheres_from_joints

__all__ = ["EnergyWeights", "HandModelPoints", "model_points", "fitting_energy"]


@dataclass(frozen=True)
class EnergyWeights:
    """Weights and settings of :func:`fitting_energy` (see the module docstring).

    Attributes:
        m2d, d2m, multiview, vae, bone, collision: the lambdas (m2d is the reference, 1).
        cross_view: evaluate the data terms of each view's estimate in every other view.
        wrist_cut: metres; observed cells farther than this beyond the estimate's wrist (along
            middle MCP -> wrist) are the forearm and ignored by the data terms (< 0: off).
        d2m_max_distance: metres, clamp of the data-to-model distance.
        collision_margin: metres of overlap tolerated per sphere pair.
        bone_band: [lo, hi] fractions of the reference bone lengths.
        hand_scale: the hand's size relative to the template: the sphere radii and the bone
            reference lengths are the template's times it (1 = the default adult hand; set a
            user's calibration here). 0 = each hand's own scale estimated from the predicted
            bones (detached): the bone term then constrains proportions only, and a network
            that predicts shrunken hands (regression to the mean) is not pulled back.
        scale_range: clamp of the estimated scale (``hand_scale=0``).
        tau, sigma: soft renderer temperature (metres) and edge width (cells).
        max_points: observed hand cells per crop used by L_d2m (a random subset).
    """

    m2d: float = 1.0
    d2m: float = 1.0
    multiview: float = 1.0
    vae: float = 5e-5
    bone: float = 1.0
    collision: float = 0.05
    cross_view: bool = True
    wrist_cut: float = 0.01
    d2m_max_distance: float = 0.03
    collision_margin: float = 0.005
    bone_band: tuple[float, ...] = (0.80, 1.05)
    hand_scale: float = 1.0
    scale_range: tuple[float, ...] = (0.7, 1.3)
    tau: float = 0.004
    sigma: float = 1.0
    max_points: int = 256

    def __post_init__(self) -> None:
        for name in ("m2d", "d2m", "multiview", "vae", "bone", "collision", "collision_margin"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        if len(self.bone_band) != 2 or not 0 < self.bone_band[0] <= self.bone_band[1]:
            raise ValueError(f"bone_band must be [lo, hi], 0 < lo <= hi; got {self.bone_band}")
        if len(self.scale_range) != 2 or not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"scale_range must be [lo, hi]; got {self.scale_range}")
        if self.hand_scale < 0 or self.d2m_max_distance <= 0 or self.max_points < 1:
            raise ValueError("hand_scale >= 0, d2m_max_distance > 0, max_points >= 1 needed")
        if self.tau <= 0 or self.sigma <= 0:
            raise ValueError("tau and sigma must be > 0")


@dataclass(frozen=True)
class HandModelPoints:
    """The hand of a prediction: joints (N, 21, 3), centres (N, 41, 3), radii (N, 41) metres,
    scale (N,) relative to the template."""

    joints: torch.Tensor
    centres: torch.Tensor
    radii: torch.Tensor
    scale: torch.Tensor


def model_points(points: torch.Tensor, w: EnergyWeights) -> HandModelPoints:
    """Joints, sphere centres and radii of predicted points.

    Args:
        points: (N, 21, 3) joints or (N, 41, 3) sphere centres, metres.
        w: the settings (``hand_scale``, ``scale_range``).
    """
    if points.shape[-2] == 21:
        joints = points
    elif points.shape[-2] == 41:
        joints = joints_from_spheres(points)
    else:
        raise ValueError(f"points must be (N, 21, 3) or (N, 41, 3); got {tuple(points.shape)}")
    if w.hand_scale > 0:
        scale = torch.full(points.shape[:1], w.hand_scale, dtype=points.dtype,
                           device=points.device)
    else:
        scale = estimate_hand_scale(joints.detach()).clamp(*w.scale_range)
    centres, radii = spheres_from_joints(joints, scale)
    if points.shape[-2] == 41:
        centres = points
    return HandModelPoints(joints, centres, radii, scale)


def _pairs(v: int, cross: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if cross and v > 1:
        src, dst = torch.meshgrid(torch.arange(v), torch.arange(v), indexing="ij")
        return src.reshape(-1), dst.reshape(-1)
    return torch.arange(v), torch.arange(v)


def _move(x: torch.Tensor, to_world: torch.Tensor, src: torch.Tensor, dst: torch.Tensor
          ) -> torch.Tensor:
    """Points (B, P, N, 3) of views ``src`` expressed in the cameras of views ``dst``."""
    if torch.equal(src, dst):
        return x
    tw = to_world[:, src]
    world = x @ tw[..., :3, :3].transpose(-1, -2) + tw[..., None, :3, 3]
    td = to_world[:, dst]
    return (world - td[..., None, :3, 3]) @ td[..., :3, :3]


def fitting_energy(
    pred: torch.Tensor,
    batch: dict[str, torch.Tensor],
    w: EnergyWeights,
    vae: PoseVAE | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """The weighted self-supervised loss of a view batch.

    Args:
        pred: (B, V, K, 3) network points in each view's normalised cube (K = 21 or 41).
        batch: a view batch (``depth``, ``hand``, ``valid`` (B, V, S, S); ``centre`` (B, V, 3);
            ``side`` (B, V); ``to_world`` (B, V, 4, 4)), see :mod:`.depth_synth`.
        w: weights and settings.
        vae: the frozen prior (``None``: no L_vae; then ``w.vae`` is ignored).
        generator: draws the L_d2m points (``None``: the global generator).
    Returns:
        ``loss`` (scalar, the weighted sum), the unweighted per-term means ``m2d``, ``d2m``,
        ``multiview``, ``vae``, ``bone``, ``collision`` (scalars; 0 when not applicable), and
        ``joints`` (B, V, 21, 3) metres, each view's camera frame (detached).
    """
    bsz, v, k, _ = pred.shape
    s = batch["depth"].shape[-1]
    flat = lambda x: x.reshape(bsz * v, *x.shape[2:])  # noqa: E731
    metres = from_cube(flat(pred), flat(batch["centre"]), flat(batch["side"]))
    hand = model_points(metres, w)
    centres = hand.centres.reshape(bsz, v, 41, 3)
    radii = hand.radii.reshape(bsz, v, 41)
    to_world = batch["to_world"]
    src, dst = _pairs(v, w.cross_view)
    c = _move(centres[:, src], to_world, src, dst)  # (B, P, 41, 3) in view dst
    r = radii[:, src]
    crop = CubeCrop(depth=batch["depth"][:, dst].reshape(-1, s, s),
                    hand=batch["hand"][:, dst].reshape(-1, s, s),
                    valid=batch["valid"][:, dst].reshape(-1, s, s),
                    centre=batch["centre"][:, dst].reshape(-1, 3),
                    side=batch["side"][:, dst].reshape(-1))
    cf, rf = c.reshape(-1, 41, 3), r.reshape(-1, 41)
    keep_px: torch.Tensor | None = None
    wrist = axis = None
    if w.wrist_cut >= 0:  # the forearm: data beyond the wrist plane of the (detached) estimate
        j = _move(hand.joints.detach().reshape(bsz, v, 21, 3)[:, src], to_world, src, dst)
        wrist = j[:, :, 0].reshape(-1, 3)
        axis = wrist - j[:, :, 9].reshape(-1, 3)
        axis = axis / axis.norm(dim=-1, keepdim=True).clamp(min=1e-9)
        cells, _ = cube_points(crop)
        beyond = ((cells - wrist[:, None]) * axis[:, None]).sum(-1) > w.wrist_cut
        keep_px = ~beyond.reshape(-1, s, s)
    zero = pred.new_zeros(())
    terms = {name: zero for name in ("m2d", "d2m", "multiview", "vae", "bone", "collision")}
    if w.m2d > 0:
        rendered, _ = render_depth_orthographic(cf, rf, (s, s), crop.centre, crop.side,
                                                far=crop.far, tau=w.tau, sigma=w.sigma)
        valid = crop.valid if keep_px is None else crop.valid & keep_px
        terms["m2d"] = model_to_data(rendered, crop.depth, valid)
    if w.d2m > 0:
        pts, mask = cube_points(crop, max_points=w.max_points, generator=generator)
        if wrist is not None and axis is not None:
            mask = mask & (((pts - wrist[:, None]) * axis[:, None]).sum(-1) <= w.wrist_cut)
        terms["d2m"] = data_to_model(pts, cf, rf, mask, max_distance=w.d2m_max_distance)
    if w.multiview > 0 and v > 1:
        terms["multiview"] = multiview_consistency(centres.transpose(0, 1),
                                                   to_world.transpose(0, 1))
    if w.vae > 0 and vae is not None:
        terms["vae"] = vae.prior_loss(hand.centres if vae.num_points == 41 else hand.joints
                                      ).mean()
    if w.bone > 0:
        ref = torch.tensor(load_hand_model().bone_lengths, dtype=pred.dtype,
                           device=pred.device)
        terms["bone"] = bone_length_band(hand.joints, ref * hand.scale[:, None],
                                         lo=w.bone_band[0], hi=w.bone_band[1])
    if w.collision > 0:
        terms["collision"] = collision(hand.centres, hand.radii, margin=w.collision_margin)
    loss = (w.m2d * terms["m2d"] + w.d2m * terms["d2m"] + w.multiview * terms["multiview"]
            + w.vae * terms["vae"] + w.bone * terms["bone"] + w.collision * terms["collision"])
    return {"loss": loss, **terms,
            "joints": hand.joints.detach().reshape(bsz, v, 21, 3)}
