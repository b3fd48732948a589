from __future__ import annotations

import numpy as np
import pytest
import torch

from handpose.core.skeleton import BONES
from handpose.core.spheres import (
    PART_NAMES,
    collision_pairs,
    estimate_hand_scale,
    sphere_parts,
    spheres_from_joints,
)


def template_skeleton(hand_model, rng: np.random.Generator, batch: int) -> torch.Tensor:
    """Random poses whose bones have exactly the template lengths."""
    joints = np.zeros((batch, 21, 3))
    for i, (parent, child) in enumerate(BONES):
        d = rng.normal(size=(batch, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        joints[:, child] = joints[:, parent] + hand_model.bone_lengths[i] * d
    return torch.tensor(joints)


def test_centres_are_the_anchor_combinations(hand_model, rng) -> None:
    joints = template_skeleton(hand_model, rng, 3) + torch.tensor([0.0, 0.0, 0.5])
    centres, radii = spheres_from_joints(joints)
    assert centres.shape == (3, 41, 3) and radii.shape == (3, 41)
    # naive: sphere i = sum over its anchors of weight * joint, read from the JSON entries
    import json

    from handpose.core.handmodel import default_hand_model_path

    entries = json.loads(default_hand_model_path().read_text())["spheres"]["values"]
    for i, e in enumerate(entries):
        want = sum(w * joints[:, j] for j, w in e["anchors"])
        assert torch.allclose(centres[:, i], want, atol=1e-12), e["name"]


def test_radii_scale_with_the_hand(hand_model, rng) -> None:
    joints = template_skeleton(hand_model, rng, 2)
    assert torch.allclose(estimate_hand_scale(joints), torch.ones(2, dtype=torch.float64))
    _, radii = spheres_from_joints(joints)
    assert np.allclose(radii.numpy(), hand_model.sphere_radii[None], atol=1e-12)
    # a hand 1.2x the template: estimated scale 1.2, radii 1.2x; an explicit scale wins
    _, big = spheres_from_joints(1.2 * joints)
    assert np.allclose(big.numpy(), 1.2 * hand_model.sphere_radii[None], atol=1e-12)
    _, given = spheres_from_joints(1.2 * joints, hand_scale=torch.tensor([0.9, 1.1]))
    assert np.allclose(given.numpy(), np.array([[0.9], [1.1]]) * hand_model.sphere_radii)
    _, fixed = spheres_from_joints(joints, hand_scale=0.5)
    assert np.allclose(fixed.numpy(), 0.5 * hand_model.sphere_radii[None])


def test_any_leading_dims_and_gradients(hand_model, rng) -> None:
    joints = template_skeleton(hand_model, rng, 6).reshape(2, 3, 21, 3).requires_grad_()
    centres, radii = spheres_from_joints(joints)
    assert centres.shape == (2, 3, 41, 3) and radii.shape == (2, 3, 41)
    (centres.sum() + radii.sum()).backward()
    assert joints.grad is not None and torch.isfinite(joints.grad).all()
    assert torch.autograd.gradcheck(
        lambda j: spheres_from_joints(j)[1], (joints.detach()[0, :1].clone().requires_grad_(),)
    )


def test_parts_and_collision_pairs(hand_model) -> None:
    parts = sphere_parts()
    counts = [parts.count(p) for p in range(len(PART_NAMES))]
    assert counts == [11, 6, 6, 6, 6, 6]  # 11 palm, 6 per finger (Wan et al.)
    for name, p in zip(hand_model.sphere_names, parts):
        assert name.startswith(PART_NAMES[p])
    pairs = collision_pairs()
    assert pairs.shape == (580, 2) and bool(torch.all(pairs[:, 0] < pairs[:, 1]))
    names = hand_model.sphere_names
    got = {(names[j], names[k]) for j, k in pairs.tolist()}
    for j, k in pairs.tolist():
        assert parts[j] != parts[k]
        palm_proximal = (parts[j] == 0 and "_proximal_" in names[k]) or (
            parts[k] == 0 and "_proximal_" in names[j])
        assert not palm_proximal
    assert ("index_distal_a", "middle_distal_a") in got or (
        "middle_distal_a", "index_distal_a") in got
    assert ("palm_knuckle_index", "index_distal_a") in got  # a fingertip may hit the palm
    # all pairs = same-part pairs + palm/proximal pairs + collision pairs
    n_same = sum(c * (c - 1) // 2 for c in counts)
    assert len(pairs) == 41 * 40 // 2 - n_same - 11 * 10


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"joints must have shape \(\.\.\., 21, 3\)"):
        spheres_from_joints(torch.zeros(2, 20, 3))
    with pytest.raises(ValueError, match="floating torch tensor"):
        spheres_from_joints(np.zeros((21, 3)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hand_scale must be positive"):
        spheres_from_joints(torch.rand(2, 21, 3), hand_scale=torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="hand_scale must broadcast"):
        spheres_from_joints(torch.rand(2, 21, 3), hand_scale=torch.ones(3))
