"""The synthetic hand renderer (OpenGL through EGL): label consistency, an independent
ray-cast reference, multi-view rigs, determinism, mirror symmetry and input checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import open3d as o3d
import pytest
import torch

from handpose.core.data.depth_noise import DepthNoise
from handpose.core.data.synthetic import raster
from handpose.core.data.synthetic.appearance import default_shape, sample_appearance
from handpose.core.data.synthetic.placement import num_placement_uniforms, place
from handpose.core.data.synthetic.renderer import HandRenderer
from handpose.core.data.synthetic.sampler import HandSampler
from handpose.core.data.synthetic.skinning import pose_vertices

SIZE = 96
TIPS = [4, 8, 12, 16, 20]


@pytest.fixture(scope="module")
def renderer():
    with HandRenderer() as r:
        yield r


@pytest.fixture(scope="module")
def scene():
    """12 sampled hands placed to fill 40-80 % of a SIZE x SIZE image, rendered once."""
    hands = HandSampler().sample(12, 5)
    u = np.random.default_rng(6).random((12, num_placement_uniforms(1)))
    pl = place(hands.oriented(), hands.hand_scale, u, SIZE, SIZE)
    return hands, pl


@pytest.fixture(scope="module")
def rendered(renderer, scene):
    hands, pl = scene
    return renderer.render(pl.joints[:, 0], pl.K[:, 0], SIZE, hands.handedness, seed=3,
                           sensor_noise=DepthNoise())


def test_outputs_have_the_documented_shapes_and_types(rendered):
    b = 12
    assert rendered.rgb.shape == (b, SIZE, SIZE, 3) and rendered.rgb.dtype == torch.uint8
    assert rendered.depth.shape == (b, SIZE, SIZE) and rendered.depth.dtype == torch.float32
    assert rendered.mask.dtype == torch.bool and rendered.parts.dtype == torch.uint8
    assert rendered.uv.shape == (b, 21, 2) and rendered.visibility.shape == (b, 21)
    assert torch.equal(rendered.mask, rendered.depth > 0)
    assert torch.equal(rendered.mask, rendered.parts > 0)
    frac = rendered.mask.float().mean((1, 2))
    assert bool((frac > 0.05).all()) and bool((frac < 0.9).all())


def test_uv_is_the_projection_of_the_3d_joints(rendered):
    j = rendered.joints.double().numpy()
    k = rendered.K.double().numpy()
    p = np.einsum("bij,bkj->bki", k, j)
    uv = p[..., :2] / p[..., 2:]
    assert np.abs(uv - rendered.uv.numpy()).max() < 0.5


def renderer_extent() -> float:
    from handpose.core.data.synthetic.mesh import load_template_mesh

    return float(load_template_mesh().joint_extent.max())


def test_visible_joints_lie_on_the_mask_at_the_right_depth(rendered):
    vis = rendered.visibility
    assert float(vis.float().mean()) > 0.5  # most joints of these views are seen
    b = torch.arange(len(vis))[:, None].expand(-1, 21)
    px = torch.round(rendered.uv).long()
    inside = (px >= 0).all(-1) & (px[..., 0] < SIZE) & (px[..., 1] < SIZE)
    assert bool(inside[vis].all())
    u, v = px[..., 0].clamp(0, SIZE - 1), px[..., 1].clamp(0, SIZE - 1)
    # tips lie on the silhouette: allow one pixel there
    dil = torch.nn.functional.max_pool2d(rendered.mask[:, None].float(), 3, 1, 1)[:, 0] > 0
    on = torch.where(torch.isin(torch.arange(21), torch.tensor(TIPS))[None], dil[b, v, u],
                     rendered.mask[b, v, u])
    assert bool(on[vis].all())
    d = rendered.depth[b, v, u]
    z = rendered.joints[..., 2]
    inner = ~torch.isin(torch.arange(21), torch.tensor(TIPS))[None].expand_as(vis)
    gap = (z - d)[vis & inner & rendered.mask[b, v, u]]
    tol = rendered.joint_tolerance[vis & inner & rendered.mask[b, v, u]]
    assert bool((gap <= tol).all()) and bool((gap >= -0.01).all())
    # the tolerance is the joint's flesh depth along the ray: bounded by the template's
    # ellipsoid axes, thickened (sampled shape factors and hand sizes stay within 1.5)
    ext = renderer_extent()
    assert float(rendered.joint_tolerance.min()) > 0.004
    assert float(rendered.joint_tolerance.max()) < 1.5 * ext + 0.0015


def test_open_hand_facing_the_camera_shows_every_joint(renderer, hand_model):
    flip = np.array([1.0, -1.0, -1.0])  # fingers up, palm towards the camera (right hand)
    j = hand_model.rest_pose * flip
    j = j - 0.5 * (j.max(0) + j.min(0)) + np.array([0.0, 0.0, 0.8])
    K = np.array([[300.0, 0, 47.5], [0, 300.0, 47.5], [0, 0, 1]])
    out = renderer.render(j[None], K, SIZE, "right", shape=default_shape(1))
    assert bool(out.mask[0, 2:-2, 2:-2].any()) and int(out.visibility.sum()) == 21
    # seen from the back (rotated 180 degrees about the vertical axis), nothing hides either
    turn = np.array([-1.0, 1.0, -1.0])
    jb = (j - [0, 0, 0.8]) * turn + [0, 0, 0.8]
    back = renderer.render(jb[None], K, SIZE, "right", shape=default_shape(1))
    assert int(back.visibility.sum()) == 21


def _raycast_depth(vertices: np.ndarray, faces: np.ndarray, K: np.ndarray, w: int, h: int):
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor.from_numpy(np.ascontiguousarray(vertices, np.float32)),
                        o3d.core.Tensor.from_numpy(np.ascontiguousarray(faces, np.uint32)))
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    d = np.linalg.solve(K, np.stack([u.ravel(), v.ravel(), np.ones(u.size)]))  # z = 1
    rays = np.concatenate([np.zeros((u.size, 3)), d.T], 1).astype(np.float32)
    t = scene.cast_rays(o3d.core.Tensor.from_numpy(rays))["t_hit"].numpy().reshape(h, w)
    return np.where(np.isfinite(t), t, 0.0)


def test_depth_agrees_with_an_independent_ray_cast_of_the_posed_mesh(renderer, rendered, scene):
    hands, pl = scene
    mesh = renderer.mesh_for(SIZE, SIZE)
    s = rendered.shape
    v, _ = pose_vertices(mesh, torch.as_tensor(pl.joints[:4, 0]),
                         torch.as_tensor(np.asarray(hands.is_left[:4])),
                         torch.as_tensor(s.thickness[:4]), torch.as_tensor(s.wrist_bend[:4]),
                         torch.as_tensor(s.forearm_scale[:4]))
    for i in range(4):
        ref = _raycast_depth(v[i].numpy(), mesh.faces, pl.K[i, 0], SIZE, SIZE)
        gl = rendered.depth[i].numpy()
        assert ((ref > 0) == (gl > 0)).mean() > 0.995
        both = (ref > 0) & (gl > 0)
        assert np.mean(np.abs(ref - gl)[both] < 5e-4) > 0.995


def test_multi_view_labels_agree_through_the_extrinsics(renderer, scene):
    hands, _ = scene
    n, views = 3, 3
    u = np.random.default_rng(9).random((n, num_placement_uniforms(views)))
    pl = place(hands.oriented()[:n], hands.hand_scale[:n], u, SIZE, SIZE, views=views)
    world = pl.joints[:, 0]  # the rig's world frame is camera 0
    out = renderer.render_views(world, pl.K, pl.extrinsics, SIZE, hands.handedness[:n], seed=1)
    assert len(out) == n * views
    e = out.extrinsics.double().reshape(n, views, 4, 4)
    cam = torch.einsum("bvij,bkj->bvki", e[..., :3, :3], torch.as_tensor(world)) + e[
        ..., None, :3, 3]
    assert torch.allclose(out.joints.double().reshape(n, views, 21, 3), cam, atol=1e-6)
    assert np.allclose(out.joints.double().reshape(n, views, 21, 3).numpy(), pl.joints,
                       atol=1e-6)
    # one hand, one shape and one appearance per rig
    assert np.allclose(out.shape.thickness.reshape(n, views, 3), out.shape.thickness[::views,
                                                                                       None])
    tone = out.appearance.skin_tone.reshape(n, views)
    assert np.all(tone == tone[:, :1])


def test_same_seed_same_images_and_samples_do_not_depend_on_the_batch(renderer, scene):
    hands, pl = scene
    args = (pl.joints[:4, 0], pl.K[:4, 0], SIZE, hands.handedness[:4])
    a = renderer.render(*args, seed=11)
    b = renderer.render(*args, seed=11)
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.depth, b.depth)
    c = renderer.render(*args, seed=12)
    assert not torch.equal(a.rgb, c.rgb)
    single = renderer.render(pl.joints[2:3, 0], pl.K[2:3, 0], SIZE, hands.handedness[2:3],
                             seed=11, indices=[2])
    # the tile's place in the atlas moves the float rounding of the rasteriser, no more
    assert torch.equal(single.mask[0], a.mask[2])
    assert torch.allclose(single.depth[0], a.depth[2], atol=1e-6)
    diff = (single.rgb[0].int() - a.rgb[2].int()).abs()
    assert int(diff.max()) <= 2 and float(diff.float().mean()) < 0.01


def test_left_hand_is_the_mirror_image_of_the_right_hand(renderer, scene):
    hands, pl = scene
    j = pl.joints[:2, 0].copy()
    K = pl.K[:2, 0].copy()
    K[:, 0, 1] = 0.0
    mj = j * np.array([-1.0, 1.0, 1.0])
    mK = K.copy()
    mK[:, 0, 2] = SIZE - 1 - K[:, 0, 2]
    app = sample_appearance([np.random.default_rng(i) for i in range(2)])
    shape = default_shape(2)
    right = renderer.render(j, K, SIZE, "right", shape=shape, appearance=app)
    left = renderer.render(mj, mK, SIZE, "left", shape=shape, appearance=app)
    flipped = torch.flip(right.depth, dims=[2])
    agree = torch.isclose(left.depth, flipped, atol=1e-4)
    assert float(agree.float().mean()) > 0.995
    assert torch.allclose(left.uv[..., 0], SIZE - 1 - right.uv[..., 0], atol=1e-3)
    assert torch.equal(left.visibility, right.visibility)


def test_sensor_depth_has_holes_noise_and_millimetre_steps(rendered):
    s = rendered.sensor_depth
    assert s is not None and s.shape == rendered.depth.shape
    assert bool((s[~rendered.mask] == 0).all())  # no reading off the hand
    mm = s[s > 0] * 1000.0
    assert torch.allclose(mm, torch.round(mm), atol=1e-3)
    assert float((s[rendered.mask] == 0).float().mean()) > 0.005  # some holes
    assert float((s[rendered.mask] != rendered.depth[rendered.mask]).float().mean()) > 0.3


@pytest.mark.parametrize("kwargs, name", [
    ({"joints": np.zeros((2, 20, 3))}, "joints"),
    ({"joints": np.full((2, 21, 3), np.nan)}, "joints"),
    ({"joints": -np.ones((2, 21, 3))}, "joints"),
    ({"K": np.diag([0.0, 300.0, 1.0])}, "K"),
    ({"K": np.ones((3, 3, 3))}, "K"),
    ({"image_size": (0, 64)}, "image_size"),
    ({"handedness": ["left"]}, "handedness"),
    ({"handedness": "both"}, "handedness"),
    ({"seed": -1}, "seed"),
])
def test_bad_input_raises_value_error_naming_the_argument(renderer, hand_model, kwargs, name):
    j = np.stack([hand_model.rest_pose + [0, 0, 0.4]] * 2)
    args = {"joints": j, "K": np.array([[300.0, 0, 32], [0, 300.0, 32], [0, 0, 1]]),
            "image_size": 64, "handedness": "right", "seed": 0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        renderer.render(args.pop("joints"), args.pop("K"), args.pop("image_size"),
                        args.pop("handedness"), **args)


def test_bad_parameters_and_rigs_raise(renderer, hand_model):
    j = np.stack([hand_model.rest_pose + [0, 0, 0.4]] * 2)
    K = np.array([[300.0, 0, 32], [0, 300.0, 32], [0, 0, 1]])
    app = sample_appearance([np.random.default_rng(0)])
    with pytest.raises(ValueError, match="appearance"):
        renderer.render(j, K, 64, "right", appearance=app)
    e = np.tile(np.eye(4), (2, 2, 1, 1))
    e[0, 1, 0, 0] = 2.0  # not a rotation
    with pytest.raises(ValueError, match="extrinsics"):
        renderer.render_views(j, np.tile(K, (2, 2, 1, 1)), e, 64, "right")


def test_missing_egl_raises_a_runtime_error_saying_what_to_install(monkeypatch):
    import moderngl

    def fail(*a, **k):
        raise Exception("libEGL.so.1: cannot open shared object file")

    monkeypatch.setattr(moderngl, "create_standalone_context", fail)
    with pytest.raises(RuntimeError, match="libegl1"):
        raster.create_egl_context()


def test_appearance_controls_change_the_image(renderer, scene):
    hands, pl = scene
    app = sample_appearance([np.random.default_rng(4)])
    args = (pl.joints[:1, 0], pl.K[:1, 0], SIZE, hands.handedness[:1])
    light = renderer.render(*args, appearance=dataclasses.replace(
        app, skin_tone=np.array([0.0]), skin_rgb=np.array([[0.8, 0.6, 0.5]]),
        palm_rgb=np.array([[0.8, 0.6, 0.5]])))
    dark = renderer.render(*args, appearance=dataclasses.replace(
        app, skin_tone=np.array([1.0]), skin_rgb=np.array([[0.03, 0.02, 0.015]]),
        palm_rgb=np.array([[0.05, 0.03, 0.02]])))
    m = light.mask[0]
    assert torch.equal(m, dark.mask[0])
    assert float(light.rgb[0][m].float().mean()) > float(dark.rgb[0][m].float().mean()) + 60
    # the background is the same: only hand pixels (and their anti-aliased rim) changed
    far = ~torch.nn.functional.max_pool2d(m[None, None].float(), 5, 1, 2)[0, 0].bool()
    assert torch.equal(light.rgb[0][far], dark.rgb[0][far])
