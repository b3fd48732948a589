"""The evaluation protocol's ``mirror_left``: left hands shown mirrored, keypoints mirrored back."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from handpose.core.biomech import forward_kinematics
from handpose.core.geometry.crop import uncrop_points
from handpose.core.handmodel import load_hand_model
from handpose.training.recipes.eval import predict

S = 32


class _Constant(nn.Module):
    """Keypoints at fixed crop pixels whatever the image; remembers what it was shown."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.seen.append(x.clone())
        b = len(x)
        uv = torch.tensor([[5.0, 20.0]]).repeat(b, 21, 1) + torch.arange(21.0)[None, :, None]
        return {"uv": uv, "z_rel": torch.zeros(b, 21)}


def _sample(i: int, left: bool) -> dict:
    m = load_hand_model()
    flex = np.full(15, np.radians(40.0))
    j = np.asarray(forward_kinematics(m.rest_pose, flex, np.zeros(15), m.bone_lengths))
    if left:
        j = j * np.array([-1.0, 1.0, 1.0])
    j = j + np.array([0.0, 0.0, 0.5])
    K = np.array([[40.0, 0, 15.5], [0, 40.0, 15.5], [0, 0, 1]])
    uv = (j @ K.T)[:, :2] / (j @ K.T)[:, 2:]
    rgb = torch.from_numpy(np.random.default_rng(i).integers(0, 255, (3, S, S), np.uint8))
    return {"rgb": rgb, "K": torch.tensor(K, dtype=torch.float32),
            "uv": torch.tensor(uv, dtype=torch.float32),
            "joints3d": torch.tensor(j, dtype=torch.float32),
            "scale": torch.tensor(float(np.linalg.norm(j[10] - j[9])), dtype=torch.float32),
            "crop_affine": torch.tensor([[1.0, 0, 0.5], [0, 1.0, -0.5]]), "index": i}


def test_left_hands_are_shown_mirrored_and_their_keypoints_mirrored_back() -> None:
    data = [_sample(0, False), _sample(1, True), _sample(2, True)]
    reference = _Constant()
    plain = predict(reference, data, batch_size=3)  # nothing mirrored
    crop_uv = torch.tensor([[5.0, 20.0]]) + torch.arange(21.0)[:, None]
    for mirror in (False, True):
        model = _Constant()
        pred = predict(model, data, batch_size=3, mirror_left=mirror)
        for i, left in enumerate((False, True, True)):
            ref = plain.uv[i]
            if mirror and left:
                want = crop_uv.clone()
                want[:, 0] = S - 1 - want[:, 0]
                ref = np.asarray(uncrop_points(data[i]["crop_affine"], want))
            np.testing.assert_allclose(pred.uv[i], ref, atol=1e-5)
            # the images: the left hands' flipped left to right, the right hand's as it was
            shown = reference.seen[0][i]
            want_x = torch.flip(shown, dims=[2]) if mirror and left else shown
            assert torch.equal(model.seen[0][i], want_x)
