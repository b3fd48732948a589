"""Headless OpenGL rasterisation of skinned template hands (moderngl on EGL; Mesa llvmpipe on
machines without a GPU).

A batch is one instanced draw into an atlas of tiles (4x multisampled colour, a float label
target and a depth buffer), then one resolve pass and one read-back of each target. The
shaders are in :mod:`.shaders`; the per-sample parameter rows are assembled by the renderer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .mesh import TemplateMesh
from .shaders import (
    FRAGMENT,
    NUM_PARAM_SLOTS,
    RESOLVE_FRAGMENT,
    RESOLVE_VERTEX,
    VERTEX,
)

__all__ = ["create_egl_context", "MeshRasterizer", "palm_crease_arcs"]

_NEAR, _FAR = 0.01, 100.0
_GL_CLIP_DISTANCE0 = 0x3000


def create_egl_context() -> Any:
    """A standalone OpenGL 3.3+ context on EGL (no display needed).

    Raises:
        RuntimeError: moderngl is missing or EGL/OpenGL cannot be initialised, with what to
            install (``libegl1`` and Mesa's ``libgl1-mesa-dri`` on Debian/Ubuntu).
    """
    try:
        import moderngl
    except ImportError as e:  # pragma: no cover - moderngl is a dependency
        raise RuntimeError("the synthetic renderer needs the 'moderngl' package") from e
    try:
        create: Any = moderngl.create_standalone_context
        ctx = create(backend="egl", require=330)
    except Exception as e:
        raise RuntimeError(
            "cannot create a headless OpenGL context through EGL "
            f"({type(e).__name__}: {e}). The synthetic renderer needs libEGL (Debian/Ubuntu "
            "package libegl1) and Mesa's OpenGL drivers (libgl1-mesa-dri; llvmpipe renders on "
            "the CPU); 'make setup' installs both."
        ) from e
    return ctx


def palm_crease_arcs(rest_joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Three palm creases (distal transverse, proximal transverse, thenar) as circle arcs in
    the rest hand's xy plane, millimetres: (3, 4) centre x, y, radius, mid angle and (3, 4)
    half span, line width, darkening, 0. Each arc passes through three points placed relative
    to the rest joints."""
    j = np.asarray(rest_joints, np.float64)[:, :2] * 1000.0
    wrist, cmc, idx, mid, ring, pinky = j[0], j[1], j[5], j[9], j[13], j[17]
    arcs = [
        (pinky + 0.45 * (wrist - pinky) + [-3.0, 0.0], 0.5 * (ring + mid) - [0, 17.0],
         0.5 * (mid + idx) - [0, 10.0]),
        (idx + 0.42 * (wrist - idx) + [2.0, 0.0], 0.5 * (mid + wrist) + [0, 4.0],
         ring + 0.55 * (wrist - ring)),
        (idx + 0.42 * (wrist - idx) + [1.0, 2.0], 0.55 * cmc + 0.45 * idx - [12.0, 22.0],
         wrist + [8.0, 10.0]),
    ]
    centre = np.zeros((3, 4))
    span = np.zeros((3, 4))
    for k, (a, b, c) in enumerate(arcs):
        # circumcentre of a, b, c
        d = 2.0 * (a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1]))
        ux = ((a @ a) * (b[1] - c[1]) + (b @ b) * (c[1] - a[1]) + (c @ c) * (a[1] - b[1])) / d
        uy = ((a @ a) * (c[0] - b[0]) + (b @ b) * (a[0] - c[0]) + (c @ c) * (b[0] - a[0])) / d
        o = np.array([ux, uy])
        ang = [math.atan2(*(p - o)[::-1]) for p in (a, b, c)]
        mid_ang = ang[1]
        half = max(abs((x - mid_ang + math.pi) % (2 * math.pi) - math.pi) for x in (ang[0],
                                                                                    ang[2]))
        centre[k] = [o[0], o[1], np.linalg.norm(a - o), mid_ang]
        span[k] = [half, 0.55, (0.35, 0.3, 0.35)[k], 0.0]
    return centre.astype(np.float32), span.astype(np.float32)


class MeshRasterizer:
    """Renders batches of skinned template hands (see the module docstring).

    Args:
        mesh: the template (static vertex data is uploaded once).
        samples: multisampling of the colour target (1, 2 or 4).
        max_batch: largest batch of one draw (bigger batches are split).

    Raises:
        RuntimeError: no EGL/OpenGL (see :func:`create_egl_context`).
    """

    def __init__(self, mesh: TemplateMesh, samples: int = 4, max_batch: int = 64):
        import moderngl

        if samples not in (1, 2, 4):
            raise ValueError(f"samples must be 1, 2 or 4; got {samples!r}")
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be an integer >= 1; got {max_batch!r}")
        self.mesh = mesh
        self.samples = samples
        self.max_batch = max_batch
        self.ctx = create_egl_context()
        ctx = self.ctx
        self._max_size = int(ctx.info["GL_MAX_TEXTURE_SIZE"])
        self.prog = ctx.program(vertex_shader=VERTEX, fragment_shader=FRAGMENT)
        self.resolve = ctx.program(vertex_shader=RESOLVE_VERTEX, fragment_shader=RESOLVE_FRAGMENT)
        w = mesh.skin_weights
        top = np.argsort(-w, 1)[:, :4]
        tw = np.take_along_axis(w, top, 1)
        static = np.concatenate([
            mesh.vertices, mesh.normals, top.astype(np.float32), tw, mesh.region,
            mesh.radial[:, 0], mesh.radial[:, 1], mesh.radial[:, 2], mesh.shading,
            mesh.part[:, None].astype(np.float32),
        ], 1).astype(np.float32)
        self._vbo = ctx.buffer(np.ascontiguousarray(static).tobytes())
        self._ibo = ctx.buffer(np.ascontiguousarray(mesh.faces, np.int32).tobytes())
        self.vao = ctx.vertex_array(
            self.prog,
            [(self._vbo, "3f 3f 4f 4f 3f 3f 3f 3f 4f 4f 2f 1f", "in_rest", "in_nrm",
              "in_bones", "in_weights", "in_region", "in_rad_f", "in_rad_p", "in_rad_a",
              "in_shade_a", "in_shade_b", "in_shade_c", "in_part")],
            index_buffer=self._ibo, index_element_size=4,
        )
        self.quad = ctx.vertex_array(self.resolve, [])
        self.params = ctx.texture((NUM_PARAM_SLOTS, max_batch), 4, dtype="f4")
        self.params.filter = (moderngl.NEAREST, moderngl.NEAREST)
        centre, span = palm_crease_arcs(mesh.rest_joints)
        self.prog["u_crease"].write(centre.tobytes())
        self.prog["u_crease_span"].write(span.tobytes())
        self.prog["u_params"].value = 0
        a = (_FAR + _NEAR) / (_FAR - _NEAR)
        self.prog["u_depth"].value = (a, -2.0 * _FAR * _NEAR / (_FAR - _NEAR))
        self.resolve["u_color"].value = 1
        self.resolve["u_label"].value = 2
        self.resolve["u_samples"].value = samples
        self._targets: dict[tuple[int, int], tuple[Any, ...]] = {}

    def _atlas(self, n: int, width: int, height: int) -> tuple[int, int]:
        cols = max(1, min(n, math.ceil(math.sqrt(n * height / width))))
        cols = min(cols, self._max_size // width)
        rows = math.ceil(n / cols)
        return cols, rows

    def _target(self, aw: int, ah: int) -> tuple[Any, ...]:
        key = (aw, ah)
        if key not in self._targets:
            if len(self._targets) >= 4:  # keep a few sizes; release the oldest
                self._release_target(self._targets.pop(next(iter(self._targets))))
            ctx, s = self.ctx, self.samples
            col = ctx.texture((aw, ah), 4)
            lab = ctx.texture((aw, ah), 2, dtype="f4")
            if s > 1:
                col_ms = ctx.texture((aw, ah), 4, samples=s)
                lab_ms = ctx.texture((aw, ah), 2, dtype="f4", samples=s)
                dep_ms = ctx.depth_renderbuffer((aw, ah), samples=s)
                fbo_ms = ctx.framebuffer([col_ms, lab_ms], dep_ms)
                fbo = ctx.framebuffer([col, lab])
            else:
                dep_ms = ctx.depth_renderbuffer((aw, ah))
                fbo = ctx.framebuffer([col, lab], dep_ms)
                fbo_ms = col_ms = lab_ms = fbo
            self._targets[key] = (fbo_ms, col_ms, lab_ms, dep_ms, fbo, col, lab)
        return self._targets[key]

    def _release_target(self, objs: tuple[Any, ...]) -> None:
        for obj in dict.fromkeys(objs):  # unique (single-sample targets alias some)
            obj.release()

    def render(self, params: np.ndarray, width: int, height: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """Rasterise a batch.

        Args:
            params: (B, NUM_PARAM_SLOTS, 4) float32 parameter rows (:mod:`.shaders`); the
                tile offsets (slots 64, 65, w) are filled here.
            width, height: tile (output image) size in pixels.

        Returns:
            rgba (B, H, W, 4) uint8, colour premultiplied by coverage (alpha; 0 or 255 without
            multisampling); label
            (B, H, W, 2) float32: camera z in metres (0 = background) and part id + 1.
        """
        import moderngl

        n = len(params)
        if n > self.max_batch:
            outs = [self.render(params[s:s + self.max_batch], width, height)
                    for s in range(0, n, self.max_batch)]
            return (np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs]))
        if width > self._max_size or height > self._max_size:
            raise ValueError(f"image size {width}x{height} exceeds the OpenGL limit "
                             f"{self._max_size}")
        cols, rows = self._atlas(n, width, height)
        aw, ah = cols * width, rows * height
        fbo_ms, col_ms, lab_ms, _, fbo, col, lab = self._target(aw, ah)
        # right hands first, then the mirrored (left) ones: their triangles wind the other way
        order = np.argsort(params[:, 63, 3] < 0, kind="stable")
        n_right = int((params[:, 63, 3] >= 0).sum())
        p = np.array(params[order], np.float32, copy=True)
        idx = np.arange(n)
        p[:, 64, 3] = (idx % cols) * width
        p[:, 65, 3] = (idx // cols) * height
        self.params.write(np.ascontiguousarray(p).tobytes(), viewport=(0, 0, NUM_PARAM_SLOTS, n))
        ctx = self.ctx
        draw_fbo = fbo_ms if self.samples > 1 else fbo
        draw_fbo.use()
        ctx.viewport = (0, 0, aw, ah)
        draw_fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        ctx.disable(moderngl.BLEND)
        for i in range(4):
            ctx.enable_direct(_GL_CLIP_DISTANCE0 + i)
        self.params.use(0)
        self.prog["u_tile"].value = (float(width), float(height))
        self.prog["u_atlas"].value = (float(aw), float(ah))
        # the image rows run down (v) while window y runs up: seen from the camera, outward
        # faces of a right hand wind clockwise, so GL's "front" (counter-clockwise) faces are
        # the ones turned away
        for first, count, cull in ((0, n_right, "front"), (n_right, n - n_right, "back")):
            if count:
                ctx.cull_face = cull
                self.prog["u_first"].value = first
                self.vao.render(moderngl.TRIANGLES, instances=count)
        for i in range(4):
            ctx.disable_direct(_GL_CLIP_DISTANCE0 + i)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        if self.samples > 1:
            fbo.use()
            ctx.viewport = (0, 0, aw, ah)
            col_ms.use(1)
            lab_ms.use(2)
            self.quad.render(moderngl.TRIANGLES, vertices=3)
        rgba = np.frombuffer(col.read(), np.uint8).reshape(rows, height, cols, width, 4)
        label = np.frombuffer(lab.read(), np.float32).reshape(rows, height, cols, width, 2)
        rgba = rgba.transpose(0, 2, 1, 3, 4).reshape(rows * cols, height, width, 4)[:n]
        label = label.transpose(0, 2, 1, 3, 4).reshape(rows * cols, height, width, 2)[:n]
        out_rgba = np.empty_like(rgba)
        out_label = np.empty_like(label)
        out_rgba[order] = rgba
        out_label[order] = label
        return out_rgba, out_label

    def release(self) -> None:
        """Free the OpenGL objects and the context."""
        for objs in self._targets.values():
            self._release_target(objs)
        self._targets.clear()
        for obj in (self.vao, self.quad, self._vbo, self._ibo, self.params, self.prog,
                    self.resolve):
            obj.release()
        self.ctx.release()
