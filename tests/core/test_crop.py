"""Crop affines: crop/uncrop round trips, exact pixels, cv2 vs kornia, the crop's K."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from handpose.core.geometry.camera import project
from handpose.core.geometry.crop import (
    DEFAULT_MARGIN,
    apply_affine,
    compose_affine,
    crop_from_box,
    crop_from_keypoints,
    crop_image,
    crop_images,
    crop_intrinsics,
    invert_affine,
    square_crop_affine,
    uncrop_points,
)


def test_keypoint_crop_geometry_analytic() -> None:
    # Keypoint box [100, 140] x [50, 70]: centre (120, 60), side 40 * margin.
    uv = np.array([[100.0, 50.0], [140.0, 70.0], [110.0, 65.0]])
    A = crop_from_keypoints(uv, margin=1.5, out_size=60)
    assert A.shape == (2, 3)
    np.testing.assert_allclose(A[:, :2], np.eye(2) * 60 / 60.0)
    # The box centre lands on the crop centre, the square's edges on -0.5 and 59.5.
    corners = np.array([[120.0, 60.0], [90.0, 30.0], [150.0, 90.0]])
    np.testing.assert_allclose(apply_affine(A, corners),
                               [[29.5, 29.5], [-0.5, -0.5], [59.5, 59.5]], atol=1e-12)
    assert DEFAULT_MARGIN == pytest.approx(1.4)


def test_rotated_crop_tightens_turned_box_and_keeps_the_hand_inside(rng) -> None:
    uv = rng.uniform(50, 250, (8, 21, 2))
    rot = rng.uniform(-math.pi, math.pi, 8)
    A = crop_from_keypoints(uv, margin=1.2, out_size=128, rotation=rot)
    inside = apply_affine(A, uv)
    # Margin 1.2: the turned keypoints fill 1/1.2 of the crop along the larger side, centred.
    span = inside.max(-2) - inside.min(-2)
    np.testing.assert_allclose(span.max(-1), 128 / 1.2, atol=1e-9)
    mid = (inside.max(-2) + inside.min(-2)) / 2
    np.testing.assert_allclose(mid, 63.5, atol=1e-9)
    # The linear part is scale x the OpenCV rotation (content turns counter-clockwise).
    lin = A[:, :, :2] / np.linalg.norm(A[:, :, 0], axis=-1)[:, None, None]
    np.testing.assert_allclose(lin[:, 0, 1], np.sin(rot), atol=1e-12)
    np.testing.assert_allclose(lin[:, 0, 0], np.cos(rot), atol=1e-12)


def test_crop_uncrop_round_trip(rng) -> None:
    uv = torch.tensor(rng.uniform(0, 640, (3, 4, 21, 2)))
    rot = torch.tensor(rng.uniform(-1, 1, (3, 4)))
    for dtype, tol in ((torch.float64, 1e-4), (torch.float32, 5e-4)):  # f32 ulp at 640 = 6e-5
        A = crop_from_keypoints(uv.to(dtype), out_size=128, rotation=rot.to(dtype))
        assert A.shape == (3, 4, 2, 3) and A.dtype == dtype
        back = uncrop_points(A, apply_affine(A, uv.to(dtype)))
        assert (back - uv).abs().max() < tol
    A64 = crop_from_box(rng.uniform(10, 300, (5, 4)), margin=1.3, out_size=96, rotation=0.3)
    pts = rng.uniform(0, 400, (5, 30, 2))
    np.testing.assert_allclose(apply_affine(invert_affine(A64), apply_affine(A64, pts)), pts,
                               atol=1e-9)
    # compose: B then A equals the composition of the two maps
    np.testing.assert_allclose(apply_affine(compose_affine(invert_affine(A64), A64), pts), pts,
                               atol=1e-9)


def test_integer_crop_matches_source_pixels_exactly(rng) -> None:
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    # A box exactly covering columns 17..48 and rows 9..40 (32 px): scale 1, integer shift.
    A = crop_from_box(np.array([16.5, 8.5, 32.0, 32.0]), margin=1.0, out_size=32)
    np.testing.assert_allclose(A, [[1, 0, -17], [0, 1, -9]], atol=1e-12)
    crop = crop_image(image, A, 32)
    np.testing.assert_array_equal(crop, image[9:41, 17:49])
    t = torch.tensor(image, dtype=torch.float64).permute(2, 0, 1)[None]
    crops = crop_images(t, torch.tensor(A)[None], 32)
    np.testing.assert_allclose(crops[0].permute(1, 2, 0).numpy(), image[9:41, 17:49], atol=1e-9)


def test_bilinear_crop_of_a_ramp_equals_the_ramp_at_the_inverse_map() -> None:
    # Bilinear interpolation is exact on a linear image: crop(p) == ramp(A^-1 p).
    H, W = 90, 120
    vv, uu = np.mgrid[0:H, 0:W].astype(np.float64)
    ramp = (0.7 * uu + 1.3 * vv + 5.0).astype(np.float32)
    A = square_crop_affine(np.array([60.0, 45.0]), 50.0, out_size=40, rotation=0.4)
    crop = crop_image(ramp, A, 40)
    cv, cu = np.mgrid[0:40, 0:40].astype(np.float64)
    src = apply_affine(invert_affine(A), np.stack([cu, cv], -1).reshape(-1, 2)).reshape(40, 40, 2)
    expected = 0.7 * src[..., 0] + 1.3 * src[..., 1] + 5.0
    # cv2 quantises source coordinates to 1/32 px: |error| <= (0.7 + 1.3) / 64.
    assert np.abs(crop - expected).max() < 0.032
    t = torch.tensor(ramp)[None, None]
    crops = crop_images(t, torch.tensor(A, dtype=torch.float32)[None], 40)
    assert np.abs(crops[0, 0].numpy() - expected).max() < 1e-3


def test_cv2_and_kornia_crops_agree_including_borders(rng) -> None:
    # A smooth image: a half-pixel convention mismatch would show as errors of several levels,
    # while cv2's 1/32 px coordinate quantisation and uint8 rounding stay below 1.
    vv, uu = np.mgrid[0:70, 0:90].astype(np.float64)
    image = np.stack([128 + 100 * np.sin(uu / 5.0) * np.cos(vv / 7.0), 2.0 * uu + vv,
                      np.full_like(uu, 200.0)], -1).round().astype(np.uint8)
    A = crop_from_keypoints(rng.uniform([45.0, 30.0], [100.0, 75.0], (21, 2)), out_size=48,
                            rotation=0.7)
    t = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None]
    cv, cu = np.mgrid[0:48, 0:48].astype(np.float64)
    src = apply_affine(invert_affine(A), np.stack([cu, cv], -1))
    interior = np.all((src > 1) & (src < np.array([88.0, 68.0])), -1)
    assert 0.2 < interior.mean() < 0.8, interior.mean()  # the crop crosses the image edge
    for border in ("constant", "replicate"):
        a = crop_image(image, A, 48, border=border).astype(np.float32)
        b = crop_images(t, torch.tensor(A, dtype=torch.float32)[None], 48, border=border)
        diff = np.abs(a - b[0].permute(1, 2, 0).numpy())
        assert np.mean(diff) < 0.4 and diff[interior].max() < 1.5
        # At the image edge the jump to the border value (up to 200 levels) meets the 1/32 px
        # quantisation: 200 / 64 + rounding.
        assert diff.max() < 200 / 64 + 1
    far = square_crop_affine(np.array([1000.0, 1000.0]), 10.0, 8)
    assert np.all(crop_image(image, far, 8) == 0)
    assert np.all(crop_image(image, far, 8, border="replicate") == image[-1, -1])


def test_crop_intrinsics_project_to_the_cropped_points(rng) -> None:
    K = np.array([[600.0, 0.0, 320.0], [0.0, 610.0, 240.0], [0.0, 0.0, 1.0]])
    P = np.stack([rng.uniform(-0.1, 0.1, (6, 21)), rng.uniform(-0.1, 0.1, (6, 21)),
                  rng.uniform(0.4, 0.8, (6, 21))], -1)
    uv = project(P, K)
    A = crop_from_keypoints(uv, out_size=128, rotation=rng.uniform(-1, 1, 6))
    Kc = crop_intrinsics(K, A)
    assert Kc.shape == (6, 3, 3)
    np.testing.assert_allclose(project(P, Kc), apply_affine(A, uv), atol=1e-9)
    Kt = crop_intrinsics(torch.tensor(K, dtype=torch.float32), torch.tensor(A, dtype=torch.float32))
    err = project(torch.tensor(P, dtype=torch.float32), Kt).numpy() - apply_affine(A, uv)
    assert np.abs(err).max() < 1e-3


def test_crop_affine_gradcheck() -> None:
    g = torch.Generator().manual_seed(1)
    uv = (torch.rand(2, 5, 2, generator=g, dtype=torch.float64) * 100).requires_grad_(True)
    rot = torch.tensor([0.2, -0.4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, r: crop_from_keypoints(a, 1.4, 64, r), (uv, rot))


def test_bad_inputs_raise_naming_the_argument() -> None:
    with pytest.raises(ValueError, match=r"uv must have shape \(\.\.\., N, 2\)"):
        crop_from_keypoints(np.zeros((21, 3)))
    with pytest.raises(ValueError, match="uv must be finite"):
        crop_from_keypoints(np.full((21, 2), np.nan))
    with pytest.raises(ValueError, match="margin"):
        crop_from_keypoints(np.zeros((21, 2)), margin=0.0)
    with pytest.raises(ValueError, match="out_size"):
        crop_from_box(np.array([0.0, 0.0, 5.0, 5.0]), out_size=0)
    with pytest.raises(ValueError, match="box w and h must be > 0"):
        crop_from_box(np.array([0.0, 0.0, 0.0, 5.0]))
    with pytest.raises(ValueError, match="A must be invertible"):
        invert_affine(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="image must be"):
        crop_image(np.zeros((2, 2, 2, 2), np.uint8), np.eye(2, 3))
    with pytest.raises(ValueError, match="border"):
        crop_image(np.zeros((4, 4), np.uint8), np.eye(2, 3), border="wrap")
    with pytest.raises(ValueError, match=r"A must have shape \(2, 2, 3\)"):
        crop_images(torch.zeros(2, 3, 8, 8), torch.zeros(1, 2, 3))
    # A single keypoint gives a min_side crop instead of a division by zero.
    A = crop_from_keypoints(np.array([[10.0, 20.0]]), out_size=16, min_side=4.0)
    np.testing.assert_allclose(A[:, :2], np.eye(2) * 4.0)


def test_mirror_affine_mirrors_the_crop_and_uncrops_back() -> None:
    from handpose.core.geometry import mirror_affine

    rng = np.random.default_rng(3)
    img = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
    A = np.asarray(square_crop_affine(np.array([40.0, 30.0]), 40.0, 32, 0.3))
    M = np.asarray(mirror_affine(A, 32))
    pts = rng.uniform(0, 60, (21, 2))
    a, m = np.asarray(apply_affine(A, pts)), np.asarray(apply_affine(M, pts))
    np.testing.assert_allclose(m[:, 0], 31.0 - a[:, 0], atol=1e-9)  # column u -> 31 - u
    np.testing.assert_allclose(m[:, 1], a[:, 1], atol=1e-9)
    np.testing.assert_allclose(np.asarray(uncrop_points(M, m)), pts, atol=1e-9)
    plain, mirrored = crop_image(img, A, 32), crop_image(img, M, 32)
    # the same sample points (OpenCV's fixed-point bilinear weights differ by a few levels)
    assert np.abs(plain[:, ::-1].astype(int) - mirrored.astype(int)).mean() < 1.0
    torch_m = mirror_affine(torch.as_tensor(A), 32)  # tensors and batches too
    np.testing.assert_allclose(torch_m.numpy(), M)
    np.testing.assert_allclose(np.asarray(mirror_affine(np.stack([A, A]), 32)), [M, M])
    with pytest.raises(ValueError, match="out_size"):
        mirror_affine(A, 0)
