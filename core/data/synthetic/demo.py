"""The demo recording: a 10-second synthetic video of a hand moving through natural poses over
a plain wall, written as a session folder (RGB, depth, K, ground-truth labels).

Regenerate it (deterministic for a seed; the images and labels are identical run to run)::

    handpose-data demo --force            # or: python -m handpose.core.data.synthetic.demo

It lands in ``assets/demo/`` (the ``handpose.assets`` package) unless ``--out`` says
otherwise. ``labels.jsonl`` holds the ground truth of every frame (author ``"synthetic"``,
method ``"synthetic"``): 3D joints (camera frame), 2D joints and per-joint visibility from the
renderer; a frame whose hand is entirely out of view has a label with no pose ("looked at,
no hand"). ``poses.jsonl`` has one line per frame, not processed (``hands: null``), like a raw
recording. Between ``exit`` seconds the hand leaves the frame through a side and comes back;
``README.md`` in the folder lists the frames.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from ...geometry.camera import intrinsics_from_fov
from ...types import Frame
from ..session import DEPTH_DIR, INFO_FILE, LABELS_FILE, POSES_FILE, RGB_DIR
from ..session_writer import SessionWriter
from .appearance import sample_appearance, sample_shape
from .renderer import HandRenderer
from .trajectory import sample_trajectory

__all__ = ["DEMO_KEYS", "DEMO_SIZE", "DEMO_FPS", "DEMO_SECONDS", "DEMO_EXIT", "make_demo",
           "wall_background"]

DEMO_SIZE: Final = (480, 360)
DEMO_FPS: Final = 30.0
DEMO_SECONDS: Final = 10.0
DEMO_FOV_DEG: Final = 60.0  # horizontal
#: (t0, t1) seconds: the hand leaves the frame after t0 and is back by t1.
DEMO_EXIT: Final = (5.5, 7.0)
DEMO_KEYS: Final = ("open", "fist", "point", "peace", "ok", "spread", "thumbs_up", "pinch",
                    "claw", "relaxed", "three", "tripod", "open")
_JPEG_QUALITY = 80
_BATCH = 30


def wall_background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A plain-ish wall: a soft vertical light gradient over a muted colour with faint
    large-scale mottling. (H, W, 3) uint8 RGB, deterministic for a seed."""
    rng = np.random.default_rng([seed, 7])
    base = np.array([0.50, 0.56, 0.62]) + rng.uniform(-0.04, 0.04, 3)  # blue-grey
    y = np.linspace(1.08, 0.82, height)[:, None, None]
    x = np.linspace(-1.0, 1.0, width)[None, :, None]
    light = y * (1.0 - 0.06 * x * x)
    coarse = rng.random((5, 7)).astype(np.float32)
    mottle = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    img = base * light * (0.97 + 0.06 * mottle)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _clear(out: Path) -> None:
    """Remove a previous demo's files (only those a demo writes)."""
    for name in (INFO_FILE, POSES_FILE, LABELS_FILE, "README.md"):
        (out / name).unlink(missing_ok=True)
    for sub in (RGB_DIR, DEPTH_DIR):
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)


def _ranges(flags: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) index ranges of the True runs of a bool array."""
    idx = np.flatnonzero(flags)
    if not len(idx):
        return []
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    return [(int(a), int(b)) for a, b in zip(starts, ends)]


def make_demo(
    out: str | Path | None = None,
    *,
    seed: int = 0,
    force: bool = False,
    size: tuple[int, int] = DEMO_SIZE,
    seconds: float = DEMO_SECONDS,
    fps: float = DEMO_FPS,
    exit_s: tuple[float, float] = DEMO_EXIT,
    jpeg_quality: int = _JPEG_QUALITY,
) -> dict[str, Any]:
    """Render and write the demo session.

    Args:
        out: the session folder (default: ``assets/demo`` of the installed package).
        seed: the video's seed. force: replace an existing demo in ``out``.
        size: (width, height) pixels. seconds, fps: duration and rate.
        exit_s: (t0, t1) seconds of the out-of-frame stretch.
        jpeg_quality: 1-100.

    Returns:
        dict: ``path``, ``frames``, ``bytes`` (folder size), ``absent`` (inclusive frame
        ranges without the hand), ``keys`` ((key pose, first frame) schedule).

    Raises:
        FileExistsError: ``out`` holds a session and ``force`` is False.
        ValueError: bad sizes or timing.
    """
    from ..sources.replay import demo_dir

    where = demo_dir(out)
    if (where / INFO_FILE).exists():
        if not force:
            raise FileExistsError(f"{where} already holds a session; pass force=True "
                                  "(--force) to replace the demo")
        _clear(where)
    w, h = (int(s) for s in size)
    n = int(round(seconds * fps))
    if n < 1 or w < 16 or h < 16:
        raise ValueError(f"the demo needs >= 1 frame and >= 16x16 pixels; got {n} frames "
                         f"at {w}x{h}")
    K = intrinsics_from_fov(w, h, DEMO_FOV_DEG)
    from .trajectory import TrajectoryConfig

    traj = sample_trajectory(n, K, w, h, seed, config=TrajectoryConfig(fps=fps),
                             keys=DEMO_KEYS, exits=[exit_s], handedness="right")
    rngs = [np.random.default_rng([seed, 11])]
    appearance = sample_appearance(rngs, tone_range=(0.2, 0.5))
    appearance = replace(appearance, sleeve_pattern=np.zeros(1))  # a plain sleeve, if any
    appearance = appearance.take(np.zeros(_BATCH, int))
    shape = sample_shape(rngs).take(np.zeros(_BATCH, int))
    where.mkdir(parents=True, exist_ok=True)
    absent = _ranges(~traj.present)
    extra = {"generator": "handpose.core.data.synthetic.demo", "seed": seed, "fps": fps,
             "exit_seconds": list(exit_s), "absent_frames": absent,
             "keys": [[k, f] for k, f in traj.keys]}
    with tempfile.TemporaryDirectory() as tmp:
        cv2.imwrite(str(Path(tmp) / "wall.png"), wall_background(2 * w, 2 * h, seed)[..., ::-1])
        renderer = HandRenderer(background_dir=tmp, background_folder_prob=1.0)
        try:
            with SessionWriter(where, K=K, K_calibrated=True, source=f"synthetic demo "
                               f"(handpose-data demo --seed {seed})", extra=extra,
                               jpeg_quality=jpeg_quality, fsync="close") as writer:
                for start in range(0, n, _BATCH):
                    stop = min(start + _BATCH, n)
                    m = stop - start
                    batch = renderer.render(traj.joints[start:stop], K, (w, h), "right",
                                            shape=shape.take(np.arange(m)),
                                            appearance=appearance.take(np.arange(m)),
                                            seed=seed, indices=np.zeros(m, int))
                    for k in range(m):
                        i = start + k
                        writer.append_frame(Frame(rgb=batch.rgb[k].numpy(), K=K,
                                                  depth=batch.depth[k].numpy(),
                                                  timestamp=i / fps, index=i))
                        if traj.present[i]:
                            writer.append_label(
                                i, uv=batch.uv[k].numpy(), joints3d=batch.joints[k].numpy(),
                                visible=batch.visibility[k].numpy(), handedness="right",
                                author="synthetic", method="synthetic", done=True)
                        else:
                            writer.append_label(i, author="synthetic", method="synthetic",
                                                done=True)
        finally:
            renderer.close()
    _write_readme(where, traj, n, fps, (w, h), absent, seed)
    total = sum(p.stat().st_size for p in where.rglob("*") if p.is_file())
    return {"path": where, "frames": n, "bytes": total, "absent": absent,
            "keys": traj.keys}


def _write_readme(where: Path, traj: Any, n: int, fps: float, size: tuple[int, int],
                  absent: list[tuple[int, int]], seed: int) -> None:
    gone = ", ".join(f"{a}-{b} ({a / fps:.2f}-{b / fps:.2f} s)" for a, b in absent) or "none"
    keys = ", ".join(f"{k} @{f}" for k, f in traj.keys)
    text = f"""# Demo recording (synthetic)

A {n / fps:g}-second synthetic video ({n} frames at {fps:g} fps, {size[0]}x{size[1]}) of a
right hand moving through natural poses over a plain wall: a session folder (the format of
`handpose.core.data.session`) that `handpose-app --source demo` replays and tests use.

- `rgb/NNNNNN.jpg` colour, `depth/NNNNNN.png` depth (uint16 millimetres, 0 = background),
  `session.json` the exact camera K (`K_calibrated: true`).
- `labels.jsonl`: ground truth of every frame (author and method `synthetic`): 3D joints in
  the camera frame (metres), their 2D projections (pixels) and per-joint visibility from the
  renderer. Frames without the hand have a label with no pose.
- `poses.jsonl`: one line per frame, not processed (`hands: null`).

**The hand is entirely out of the frame in frames {gone}**: it leaves through a side edge
and re-enters (the tracker's re-detection tests rely on this stretch; the frames just
before and after show it partly cut by the border).

Key poses (name @ first frame of its hold): {keys}.

Regenerate (deterministic: same images and labels for the same seed):

    handpose-data demo --force --seed {seed}
    # or: python -m handpose.core.data.synthetic.demo --force --seed {seed}
"""
    (where / "README.md").write_text(text, encoding="utf-8")


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="write the synthetic demo session")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")
    a = p.parse_args(argv)
    info = make_demo(a.out, seed=a.seed, force=a.force)
    print(f"{info['path']}: {info['frames']} frames, {info['bytes'] / 1e6:.2f} MB, hand out "
          f"of view in frames {info['absent']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
