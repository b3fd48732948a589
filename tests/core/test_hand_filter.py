"""HandFilter: the per-part smoothing of a tracked hand's 3D joints and 2D keypoints."""

from __future__ import annotations

import numpy as np
import pytest

from handpose.core.inference.filters import OneEuroFilter
from handpose.core.inference.hand_filter import SMOOTHING_LEVELS, HandFilter, HandSmoothing

K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
TS = np.arange(60) / 30.0


def _hand(depth: float = 0.5, flat: bool = False) -> np.ndarray:
    """(21, 3) a hand about 18 cm long, its wrist at depth ``depth`` (metres); ``flat``: all
    joints at that depth (its image is then exactly 1 / depth times as large)."""
    rng = np.random.default_rng(0)
    dz = 0.0 if flat else 0.02
    rel = np.concatenate([np.zeros((1, 3)), rng.uniform([-0.05, -0.18, -dz],
                                                        [0.05, -0.03, dz], (20, 3))])
    return rel + np.array([0.1, 0.04, 1.0]) * depth  # the wrist off the optical axis


def _pixels(j: np.ndarray) -> np.ndarray:
    p = j @ K.T
    return p[..., :2] / p[..., 2:]


def test_first_sample_passes_and_a_still_hand_stays() -> None:
    f = HandFilter()
    hand = _hand()
    for t in TS[:10]:
        joints, uv = f.smooth(hand, K, t)
        np.testing.assert_allclose(joints, hand, atol=1e-12)
        np.testing.assert_allclose(uv, _pixels(hand), atol=1e-9)


def test_noise_is_reduced_on_every_part() -> None:
    rng = np.random.default_rng(1)
    f = HandFilter(HandSmoothing())
    raw = _hand() + rng.normal(0, 0.003, (60, 21, 3))
    out = np.array([f(j, K, t) for j, t in zip(raw, TS)])
    for a, b in ((out, raw), (out - out[:, :1], raw - raw[:, :1])):  # absolute, root-relative
        assert np.std(np.diff(a, axis=0)) < 0.5 * np.std(np.diff(b, axis=0))


def test_root_depth_noise_does_not_move_the_hand_in_the_image() -> None:
    # The whole hand slides along the wrist's ray (the solved root depth's typical error):
    # the wrist stays on its pixel exactly and the depth is smoothed.
    rng = np.random.default_rng(2)
    f = HandFilter()
    hand = _hand(0.5)
    depths = 0.5 + rng.normal(0, 0.02, 60)
    out = np.array([f(hand * (d / 0.5), K, t) for d, t in zip(depths, TS)])
    np.testing.assert_allclose(_pixels(out[:, 0]), np.tile(_pixels(hand[0]), (60, 1)),
                               atol=1e-9)
    assert np.std(np.diff(out[:, 0, 2])) < 0.3 * np.std(np.diff(depths))


def test_root_depth_noise_does_not_move_the_keypoints_at_all() -> None:
    # Scaling the whole hand about the camera centre leaves every pixel where it was: the
    # keypoints, filtered in the image, do not move; the projection of the 3D filter's output
    # does (its pose keeps the metric size while its root depth is smoothed).
    rng = np.random.default_rng(3)
    f = HandFilter()
    hand = _hand(0.5)
    out = [f.smooth(hand * (d / 0.5), K, t) for d, t in zip(0.5 + rng.normal(0, 0.02, 60), TS)]
    for _, uv in out:
        np.testing.assert_allclose(uv, _pixels(hand), atol=1e-9)
    assert max(np.abs(_pixels(j) - _pixels(hand)).max() for j, _ in out) > 0.5


def test_root_depth_noise_does_not_stretch_the_pose() -> None:
    # A hand held still whose solved root depth jitters (the whole pose slid along the rays,
    # as the lift does): the smoothed pose's in-plane offsets stay nearly still, where
    # filtering the raw offsets passed a scaled copy of the depth noise on.
    rng = np.random.default_rng(8)
    hand = _hand(0.5)
    depths = 0.5 + rng.normal(0, 0.05, 60)
    f = HandFilter()
    out = np.array([f(hand * (d / 0.5), K, t) for d, t in zip(depths, TS)])
    plane = out[:, :, :2] - out[:, :1, :2]
    raw = np.array([(hand * (d / 0.5))[:, :2] - (hand * (d / 0.5))[:1, :2] for d in depths])
    moved = np.abs(np.diff(plane[20:], axis=0)).mean()
    assert moved < 0.2 * np.abs(np.diff(raw[20:], axis=0)).mean()


def test_a_joint_behind_the_camera_keeps_its_offset_without_keypoints() -> None:
    # Without keypoints the filter projects the joints; a joint behind the camera plane has no
    # ray to slide along when the root depth changes, so its in-plane offset is kept as lifted.
    rng = np.random.default_rng(9)
    hand = _hand(0.15)
    hand[8] = hand[0] + [0.03, -0.05, -0.2]
    f = HandFilter()
    for t, d in zip(TS[:30], rng.normal(0, 0.003, 30)):
        j = hand + [0.0, 0.0, d]
        out = f(j, K, t)
    np.testing.assert_allclose(out[8, :2] - out[0, :2], hand[8, :2] - hand[0, :2], atol=0.01)


def test_the_wrist_lag_is_the_same_in_hand_sizes_near_and_far() -> None:
    # The same metric motion at twice the distance is half as fast in pixels on a hand half
    # as large: measured in hand sizes per second, it is filtered alike.
    lags = []
    for depth in (0.4, 0.8):
        f = HandFilter(HandSmoothing())
        hand = _hand(depth, flat=True)
        side = np.ptp(_pixels(hand), axis=0).max()
        moves = [hand + [0.3 * min(t, 1.0), 0.0, 0.0] for t in TS]  # 0.3 m/s for 1 s
        out = [f(j, K, t) for j, t in zip(moves, TS)]
        lags.append((_pixels(moves[30][0])[0] - _pixels(out[30][0])[0]) / side)
    assert lags[0] > 0.01 and lags[0] == pytest.approx(lags[1], rel=1e-6)


def test_lag_of_a_fast_hand_is_small() -> None:
    f = HandFilter()
    hand = _hand()
    moves = [hand + [0.5 * t, 0.0, 0.0] for t in TS]  # 0.5 m/s across the image
    out = np.array([f(j, K, t) for j, t in zip(moves, TS)])
    err_px = np.linalg.norm(_pixels(out[-1]) - _pixels(moves[-1]), axis=-1).max()
    box = np.ptp(_pixels(moves[-1]), axis=0).max()
    assert err_px < 0.2 * box  # within PCK@0.2 of the hand box after 2 s of steady motion
    f.reset()
    uv = np.array([f.smooth(j, K, t)[1] for j, t in zip(moves, TS)])
    assert np.linalg.norm(uv[-1] - _pixels(moves[-1]), axis=-1).max() < 0.2 * box


def test_reset_forgets_the_past() -> None:
    f = HandFilter()
    f(_hand(0.5), K, 0.0)
    f.reset()
    np.testing.assert_allclose(f(_hand(0.9), K, 1 / 30), _hand(0.9), atol=1e-12)


@pytest.mark.parametrize("joints, k, match", [
    (np.zeros((20, 3)), K, "21, 3"),
    (_hand(), np.eye(2), "21, 3"),
    (np.full((21, 3), np.nan), K, "finite"),
])
def test_bad_inputs_are_rejected(joints, k, match) -> None:
    with pytest.raises(ValueError, match=match):
        HandFilter()(joints, k, 0.0)


def test_a_failed_lift_passes_through_and_restarts_the_filter() -> None:
    # Lifting can put joints (even the wrist) behind the camera on a bad frame: no crash, the
    # frame is passed on as it is and the next one starts afresh.
    f = HandFilter()
    f(_hand(0.5), K, 0.0)
    behind = _hand(-0.2)
    np.testing.assert_array_equal(f(behind, K, 1 / 30), behind)
    np.testing.assert_allclose(f(_hand(0.9), K, 2 / 30), _hand(0.9), atol=1e-12)
    tip_behind = _hand(0.5)
    tip_behind[8, 2] = -0.1  # one joint behind the camera, the wrist in front
    assert np.all(np.isfinite(f(tip_behind, K, 3 / 30)))


def test_measured_keypoints_equal_the_projection_of_joints_on_their_rays() -> None:
    # The estimator passes the network's keypoints, which its lifted joints project to: the
    # filter gives the same output as when it projects the joints itself.
    rng = np.random.default_rng(7)
    given, projected = HandFilter(), HandFilter()
    for t in TS[:20]:
        j = _hand() + rng.normal(0, 0.004, (21, 3))
        a, uv_a = given.smooth(j, K, t, _pixels(j))
        b, uv_b = projected.smooth(j, K, t)
        np.testing.assert_allclose(a, b, atol=1e-12)
        np.testing.assert_allclose(uv_a, uv_b, atol=1e-9)


def test_a_joint_lifted_behind_the_camera_keeps_its_measured_keypoint() -> None:
    # A hand close to the lens, its index tip lifted behind the camera plane: the tip's
    # projection is meaningless, the measured keypoint is not, and it is what is reported.
    hand = _hand(0.15)
    keypoints = _pixels(hand)
    lifted = hand.copy()
    lifted[8] = [0.0, 0.0, -0.02]
    f = HandFilter()
    for t in TS[:5]:
        joints, uv = f.smooth(lifted, K, t, keypoints)
        np.testing.assert_allclose(uv, keypoints, atol=1e-9)
    assert np.all(np.isfinite(joints))
    # the wrist itself behind the camera: a failed lift, passed on with the measured keypoints
    behind = _hand(-0.2)
    joints, uv = HandFilter().smooth(behind, K, 0.0, keypoints)
    np.testing.assert_array_equal(joints, behind)
    np.testing.assert_array_equal(uv, keypoints)
    assert uv is not keypoints  # the caller's array is not handed back to be changed


@pytest.mark.parametrize("keypoints", [np.zeros((21, 3)), np.full((21, 2), np.nan)])
def test_bad_keypoints_are_rejected(keypoints) -> None:
    with pytest.raises(ValueError, match="keypoints must be finite"):
        HandFilter().smooth(_hand(), K, 0.0, keypoints)


def test_strength_scales_every_cutoff() -> None:
    d = HandSmoothing()
    assert HandSmoothing.at_strength(0.0) is None
    assert HandSmoothing.at_strength(SMOOTHING_LEVELS["medium"]) == d
    strong = HandSmoothing.at_strength(1.0)
    light = HandSmoothing.at_strength(0.25)
    for name in ("root_image", "root_depth", "pose_plane", "pose_depth", "pose_image"):
        base = getattr(d, name)
        assert getattr(strong, name).min_cutoff == pytest.approx(base.min_cutoff / 4)
        assert getattr(light, name).min_cutoff == pytest.approx(base.min_cutoff * 2)
        assert getattr(strong, name).beta == base.beta
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="strength"):
            HandSmoothing.at_strength(bad)
    with pytest.raises(ValueError, match="factor"):
        d.scaled(0.0)
    with pytest.raises(ValueError, match="OneEuroParams"):
        HandSmoothing(root_depth=1.0)  # type: ignore[arg-type]


def test_stronger_smoothing_lags_more_and_jitters_less() -> None:
    rng = np.random.default_rng(5)
    raw = [_hand() + [0.2 * t, 0, 0] + rng.normal(0, 0.002, (21, 3)) for t in TS]
    jitter, lag = {}, {}
    for level in ("light", "strong"):
        f = HandFilter(HandSmoothing.at_strength(SMOOTHING_LEVELS[level]))
        out = np.array([f(j, K, t) for j, t in zip(raw, TS)])
        jitter[level] = np.std(np.diff(out - out[:, :1], 2, axis=0))
        lag[level] = np.mean(np.array(raw)[20:, 0, 0] - out[20:, 0, 0])
    assert jitter["strong"] < jitter["light"] and lag["strong"] > lag["light"] > 0


def test_pose_parts_match_plain_one_euro_filters() -> None:
    # Reference: the root-relative depths through a per-element One Euro filter, the in-plane
    # offsets through a vector one, the root depth through a scalar one; the keypoints: the
    # wrist pixel and the pixel offsets from it through vector ones.
    rng = np.random.default_rng(6)
    s = HandSmoothing()
    f = HandFilter(s)
    ref_z, ref_xy = OneEuroFilter(s.pose_depth), OneEuroFilter(s.pose_plane, vector_axis=-1)
    ref_root_z = OneEuroFilter(s.root_depth)
    ref_root_uv = OneEuroFilter(s.root_image, vector_axis=-1)
    ref_uv = OneEuroFilter(s.pose_image, vector_axis=-1)
    for t in TS[:20]:
        j = _hand() + rng.normal(0, 0.004, (21, 3))
        out, uv = f.smooth(j, K, t)
        pix = _pixels(j)
        per_side = 1.0 / np.ptp(pix, axis=0).max()  # speeds in hand sizes per second
        np.testing.assert_allclose(uv, ref_root_uv(pix[0], t, speed_scale=per_side)
                                   + ref_uv(pix - pix[:1], t, speed_scale=per_side), atol=1e-9)
        rel = j - j[:1]
        np.testing.assert_allclose(out[:, 2] - out[0, 2], ref_z(rel[:, 2], t), atol=1e-12)
        root_z = ref_root_z(j[:1, 2], t)[0]
        np.testing.assert_allclose(out[0, 2], root_z, atol=1e-12)
        # the in-plane offsets of the joints on their rays with the wrist at the smoothed depth
        rays = j[:, :2] / j[:, 2:]
        at_root_z = rays * (root_z + rel[:, 2:]) - rays[:1] * root_z
        np.testing.assert_allclose(out[:, :2] - out[:1, :2], ref_xy(at_root_z, t), atol=1e-12)

