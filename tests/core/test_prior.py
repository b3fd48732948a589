"""Pose VAE prior: normalisation invariances, sphere/joint equivalence, ELBO terms, gradients."""

from __future__ import annotations

import pytest
import torch

from handpose.core.checkpoint import load_checkpoint, save_checkpoint
from handpose.core.geometry.rotations import random_rotation
from handpose.core.models import build_model
from handpose.core.models.prior import (
    PoseVAE,
    canonical_pose,
    joints_from_spheres,
    prior_loss,
)


def _rest(hand_model) -> torch.Tensor:
    return torch.tensor(hand_model.rest_pose, dtype=torch.float64)


def _poses(hand_model, n: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    j = _rest(hand_model).expand(n, 21, 3)
    return j + 0.004 * torch.randn(n, 21, 3, generator=g, dtype=torch.float64)


def test_canonical_pose_of_rest_pose_is_rest_pose_over_metacarpal_length(hand_model):
    rest = _rest(hand_model)
    mcp_len = rest[[5, 9, 13, 17]].norm(dim=-1).mean()
    out = canonical_pose(rest[None])[0]
    torch.testing.assert_close(out, rest / mcp_len, atol=1e-9, rtol=0)


@pytest.mark.parametrize("n_points", [21, 41])
def test_canonical_pose_is_invariant_to_rigid_motion_and_scale(hand_model, n_points):
    joints = _poses(hand_model)
    if n_points == 41:
        w = torch.tensor(hand_model.sphere_weights, dtype=torch.float64)
        joints = w @ joints
    R = random_rotation(4, torch.Generator().manual_seed(1), dtype=torch.float64)
    moved = 1.3 * joints @ R.transpose(-1, -2) + torch.tensor([0.1, -0.2, 0.6],
                                                             dtype=torch.float64)
    torch.testing.assert_close(canonical_pose(moved), canonical_pose(joints), atol=1e-8,
                               rtol=0)
    # without rotation normalisation a rotation changes the result
    assert not torch.allclose(canonical_pose(moved, False), canonical_pose(joints, False),
                              atol=1e-3)


def test_joints_from_spheres_inverts_sphere_placement(hand_model):
    joints = _poses(hand_model)
    w = torch.tensor(hand_model.sphere_weights, dtype=torch.float64)
    torch.testing.assert_close(joints_from_spheres(w @ joints), joints, atol=1e-12, rtol=0)


def test_prior_over_spheres_accepts_joints_or_centres(hand_model):
    torch.manual_seed(0)
    vae = PoseVAE(41, hidden=16, latent=4).double().eval()
    joints = _poses(hand_model)
    w = torch.tensor(hand_model.sphere_weights, dtype=torch.float64)
    torch.testing.assert_close(vae.prior_loss(joints), vae.prior_loss(w @ joints))
    vae21 = PoseVAE(21, hidden=16, latent=4).double().eval()
    torch.testing.assert_close(vae21.prior_loss(w @ joints), vae21.prior_loss(joints))


def test_negative_elbo_terms_match_their_formulas(hand_model):
    torch.manual_seed(0)
    vae = PoseVAE(21, hidden=8, latent=3, sigma=0.1, beta=0.5).double().eval()
    # encoder output fixed: mu = 1, logvar = 0 -> KL = 0.5 * latent
    last = vae.encoder[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]))
    joints = _poses(hand_model, 2)
    out = vae(joints)
    torch.testing.assert_close(out["kl"], torch.full((2,), 1.5, dtype=torch.float64))
    x = canonical_pose(joints).flatten(1)
    recon = vae.decode(torch.ones(2, 3, dtype=torch.float64))
    nll = ((recon - x) ** 2).sum(-1) / (2 * 0.1**2)
    torch.testing.assert_close(out["nll"], nll)
    torch.testing.assert_close(vae.prior_loss(joints), nll + 0.5 * 1.5)
    torch.testing.assert_close(prior_loss(vae, joints), out["loss"])


def test_prior_loss_is_deterministic_in_training_mode_and_differentiable(hand_model):
    torch.manual_seed(0)
    vae = PoseVAE(41, hidden=8, latent=2).double().train()
    joints = _poses(hand_model, 2)
    torch.testing.assert_close(vae.prior_loss(joints), vae.prior_loss(joints))
    vae.requires_grad_(False)
    assert torch.autograd.gradcheck(vae.prior_loss, (joints.clone().requires_grad_(True),),
                                    eps=1e-6, atol=1e-4)


def test_registry_checkpoint_round_trip(tmp_path, hand_model):
    vae = build_model("pose_vae", num_points=21, hidden=16, latent=4)
    path = save_checkpoint(tmp_path / "vae.pt", vae, input_size=63,
                           normalization={"mean": (0, 0, 0), "std": (1, 1, 1)})
    loaded, meta = load_checkpoint(path)
    assert isinstance(loaded, PoseVAE) and meta.arch["name"] == "pose_vae"
    joints = _poses(hand_model).float()
    torch.testing.assert_close(loaded.prior_loss(joints), vae.eval().prior_loss(joints))


def test_bad_inputs_raise_value_errors():
    vae = PoseVAE(41, hidden=8, latent=2)
    with pytest.raises(ValueError, match=r"\(B, 21, 3\)"):
        vae.prior_loss(torch.zeros(2, 20, 3))
    with pytest.raises(ValueError, match="num_points"):
        PoseVAE(20)
    with pytest.raises(ValueError, match="sigma"):
        PoseVAE(21, sigma=0.0)
    with pytest.raises(ValueError, match="41, 3"):
        joints_from_spheres(torch.zeros(2, 21, 3))
    with pytest.raises(ValueError, match="PoseVAE"):
        prior_loss(torch.nn.Linear(2, 2), torch.zeros(1, 21, 3))  # type: ignore[arg-type]
