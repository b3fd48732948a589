"""``handpose-data synth``: render a synthetic dataset in FreiHAND's file layout, resumably.

Layout under ``out`` (read by :class:`~handpose.core.data.freihand.FreiHANDDataset`)::

    training/rgb/%08d.jpg       sample i = hand i // V seen by camera i % V (V = views)
    training/depth/%08d.png     uint16 millimetres, 0 = no reading
    training/mask/%08d.png      0 / 255 hand mask
    training_xyz.json           N x 21 x 3 metres, each sample's camera frame
    training_K.json             N x 3 x 3
    training_scale.json         N reference bone lengths (middle MCP -> PIP), metres
    training_handedness.json    N handedness codes (1 right, 0 left; our extension)
    training_visibility.json    N x 21 joint visibility (renderer's test; our extension)
    training_meta.json          N objects: hand, view, handedness, key poses, fill, ...
    extrinsics.json             N x 4 x 4 world -> camera (views > 1; world = camera 0)
    dataset.json                manifest: format, version, arguments, configs, counts
    chunks/%06d.json            the labels of each finished chunk (resume state)

Determinism: sample i depends only on ``(seed, i)`` (and the arguments): its hand, camera
and appearance come from per-index random streams (:mod:`.seeding`). The number of workers
never changes a byte; the labels do not depend on the chunk size either, the images only by
the renderer's float round-off (which depends on the batch a sample is rasterised in: under
1e-6 m of depth, a grey level here and there), so for byte-identical images keep the chunk
size (``dataset.json`` records it).

Resume: hands are made in chunks of ``chunk_size``. A chunk's images are written first (temp
file + rename), then its label file, atomically; a chunk counts as done only when its label
file parses, matches the arguments and all its images exist. Re-running with the same
arguments redoes only the missing chunks (a crash mid-chunk leaves no label file: the chunk
is redone, its images overwritten), then rewrites the merged JSON files from the chunk
files, so they always match the images. A larger ``n`` extends a dataset.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from ..depth_noise import DepthNoise
from ..errors import DataError
from ..imageio import encode_depth_png, encode_jpeg
from ..jsonio import load_json, write_json_atomic
from .placement import num_placement_uniforms, place
from .renderer import HandRenderer, RenderedHands
from .sampler import HandSampler
from .seeding import PLACEMENT_STREAM, indexed_uniforms
from .synth_config import SynthConfig

__all__ = ["FORMAT", "FORMAT_VERSION", "SynthConfig", "SynthSummary", "write_synth",
           "make_chunk"]

FORMAT: Final = "handpose-synth"
FORMAT_VERSION: Final = 1
_SPLIT = "training"


@dataclass
class SynthSummary:
    """What :func:`write_synth` did."""

    out: Path
    samples: int
    chunks_total: int
    chunks_made: int
    seconds: float
    samples_per_s: float
    counts: dict[str, int] = field(default_factory=dict)


def _rgb_path(out: Path, i: int) -> Path:
    return out / _SPLIT / "rgb" / f"{i:08d}.jpg"


def _side_paths(out: Path, i: int) -> tuple[Path, Path]:
    return out / _SPLIT / "depth" / f"{i:08d}.png", out / _SPLIT / "mask" / f"{i:08d}.png"


def _put(path: Path, data: bytes) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _chunk_path(out: Path, c: int) -> Path:
    return out / "chunks" / f"{c:06d}.json"


def _chunk_range(cfg: SynthConfig, c: int) -> tuple[int, int]:
    return c * cfg.chunk_size, min((c + 1) * cfg.chunk_size, cfg.n)


def _round(a: np.ndarray, decimals: int) -> Any:
    return np.round(np.asarray(a, np.float64), decimals).tolist()


class _Tools:
    """A process's sampler and renderer (the renderer holds an OpenGL context)."""

    def __init__(self, cfg: SynthConfig) -> None:
        self.sampler = HandSampler(cfg.sampler_config())
        self.renderer = HandRenderer(background_dir=cfg.backgrounds)


def make_chunk(cfg: SynthConfig, start: int, stop: int, sampler: HandSampler,
               renderer: HandRenderer) -> tuple[RenderedHands, dict[str, Any]]:
    """Hands ``start <= h < stop``: their renders (all views, sample order) and labels.

    Returns:
        (the rendered batch, the chunk's label document as written to ``chunks/``).
    """
    hands_idx = np.arange(start, stop)
    hands = sampler.sample_indexed(cfg.seed, hands_idx)
    u = indexed_uniforms(cfg.seed, hands_idx, num_placement_uniforms(cfg.views),
                         PLACEMENT_STREAM)
    pl = place(hands.oriented(), hands.hand_scale, u, cfg.size, cfg.size, views=cfg.views,
               config=cfg.placement_config(), model=sampler.model)
    V = cfg.views
    joints = pl.joints.reshape(-1, 21, 3)
    K = pl.K.reshape(-1, 3, 3)
    is_left = np.repeat(hands.is_left, V)
    sample_idx = (hands_idx[:, None] * V + np.arange(V)).reshape(-1)
    noise = DepthNoise() if cfg.depth_noise else None
    if V == 1:
        batch = renderer.render(joints, K, cfg.size, hands.handedness, seed=cfg.seed,
                                indices=sample_idx, sensor_noise=noise)
    else:
        batch = renderer.render_views(pl.joints[:, 0], pl.K, pl.extrinsics, cfg.size,
                                      hands.handedness, seed=cfg.seed, indices=hands_idx,
                                      sensor_noise=noise)
    names = sampler.config.key_poses
    meta = []
    for k in range(len(sample_idx)):
        h = k // V
        meta.append({
            "hand": int(hands_idx[h]), "view": k % V,
            "handedness": "left" if hands.is_left[h] else "right",
            "mode": ("key", "blend", "uniform")[int(hands.mode[h])],
            "key_a": names[hands.key_a[h]] if hands.key_a[h] >= 0 else None,
            "key_b": names[hands.key_b[h]] if hands.key_b[h] >= 0 else None,
            "blend": round(float(hands.blend[h]), 4),
            "hand_scale": round(float(hands.hand_scale[h]), 5),
            "fill": round(float(pl.fill.reshape(-1)[k]), 4),
        })
    ref = np.linalg.norm(joints[:, 10] - joints[:, 9], axis=-1)
    doc = {
        "format": FORMAT, "key": cfg.key(), "hands": [int(start), int(stop)], "views": V,
        "samples": sample_idx.tolist(),
        "xyz": _round(joints, 9), "K": _round(K, 6), "scale": _round(ref, 9),
        "extrinsics": _round(pl.extrinsics.reshape(-1, 4, 4), 12),
        "handedness": [0 if b else 1 for b in is_left.tolist()],
        "visibility": batch.visibility.numpy().tolist(), "meta": meta,
    }
    return batch, doc


def _write_chunk(out: Path, cfg: SynthConfig, c: int, tools: _Tools) -> int:
    start, stop = _chunk_range(cfg, c)
    batch, doc = make_chunk(cfg, start, stop, tools.sampler, tools.renderer)
    rgb = batch.rgb.numpy()
    depth = (batch.depth if batch.sensor_depth is None else batch.sensor_depth).numpy()
    mask = batch.mask.numpy()
    for k, i in enumerate(doc["samples"]):
        _put(_rgb_path(out, i), encode_jpeg(rgb[k], cfg.jpeg_quality))
        dpath, mpath = _side_paths(out, i)
        _put(dpath, encode_depth_png(depth[k]))
        _put(mpath, _encode_mask(mask[k]))
    write_json_atomic(_chunk_path(out, c), doc, indent=None)
    return len(doc["samples"])


def _encode_mask(mask: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.where(mask, 255, 0).astype(np.uint8),
                           [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def _chunk_done(out: Path, cfg: SynthConfig, c: int) -> dict[str, Any] | None:
    """The chunk's label document if the chunk is complete and current, else None."""
    path = _chunk_path(out, c)
    if not path.exists():
        return None
    try:
        doc = load_json(path)
    except DataError:
        return None
    start, stop = _chunk_range(cfg, c)
    if (not isinstance(doc, dict) or doc.get("key") != cfg.key()
            or doc.get("hands") != [start, stop] or doc.get("views") != cfg.views):
        return None
    for i in doc.get("samples", []):
        if not _rgb_path(out, i).exists() or not all(p.exists() for p in _side_paths(out, i)):
            return None
    return doc


_TOOLS: _Tools | None = None  # per worker process


def _worker_init(cfg: SynthConfig) -> None:
    import torch

    global _TOOLS
    torch.set_num_threads(1)
    _TOOLS = _Tools(cfg)


def _worker(args: tuple[str, SynthConfig, int]) -> tuple[int, int]:
    out, cfg, c = args
    assert _TOOLS is not None
    return c, _write_chunk(Path(out), cfg, c, _TOOLS)


def _run(out: Path, cfg: SynthConfig, todo: list[int], workers: int
         ) -> Iterator[tuple[int, int]]:
    if workers <= 1 or len(todo) <= 1:
        tools = _Tools(cfg)
        try:
            for c in todo:
                yield c, _write_chunk(out, cfg, c, tools)
        finally:
            tools.renderer.close()
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers, initializer=_worker_init,
                                      initargs=(cfg,)) as pool:
        yield from pool.imap_unordered(_worker, [(str(out), cfg, c) for c in todo])


def _manifest(cfg: SynthConfig, complete: bool, counts: dict[str, int]) -> dict[str, Any]:
    from handpose import __version__

    return {"format": FORMAT, "format_version": FORMAT_VERSION,
            "generator": f"handpose {__version__}", "n": cfg.n, "chunk_size": cfg.chunk_size,
            "args": cfg.identity(), "complete": complete, "counts": counts}


def _check_existing(out: Path, cfg: SynthConfig) -> None:
    path = out / "dataset.json"
    if not path.exists():
        if (out / _SPLIT).exists() and any((out / _SPLIT).iterdir()):
            raise FileExistsError(f"{out} holds files but no dataset.json: not a synthetic "
                                  "dataset folder; choose an empty or new folder")
        return
    old = load_json(path)
    if not isinstance(old, dict) or old.get("format") != FORMAT:
        raise DataError(path, f"not a {FORMAT} manifest")
    if old.get("args") != cfg.identity():
        diff = sorted(k for k in set(old.get("args", {})) | set(cfg.identity())
                      if old.get("args", {}).get(k) != cfg.identity().get(k))
        raise ValueError(f"{out} was written with other arguments (differing: {diff}); "
                         "re-run with the same arguments to resume, or choose a new folder")


def write_synth(
    out: str | os.PathLike[str],
    cfg: SynthConfig,
    *,
    workers: int = 1,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> SynthSummary:
    """Write (or resume, or extend) a synthetic dataset; see the module docstring.

    Args:
        out: the dataset folder (created).
        cfg: the arguments.
        workers: processes rendering chunks in parallel (1 = in this process).
        progress: show a tqdm bar.
        on_chunk: called with each finished chunk's index (in completion order).

    Returns:
        a :class:`SynthSummary` (throughput counts only the chunks made by this call).

    Raises:
        ValueError: the folder holds a dataset written with other arguments.
        FileExistsError: the folder holds something else.
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
    root = Path(out)
    _check_existing(root, cfg)
    for sub in ("rgb", "depth", "mask"):
        (root / _SPLIT / sub).mkdir(parents=True, exist_ok=True)
    (root / "chunks").mkdir(exist_ok=True)
    for d in [root / _SPLIT / s for s in ("rgb", "depth", "mask")] + [root / "chunks"]:
        for tmp in d.glob(".*.tmp"):
            tmp.unlink()
    write_json_atomic(root / "dataset.json", _manifest(cfg, False, {}))
    n_chunks = -(-cfg.n // cfg.chunk_size)
    todo = [c for c in range(n_chunks) if _chunk_done(root, cfg, c) is None]
    t0 = time.perf_counter()
    made = 0
    from tqdm import tqdm

    total = cfg.n * cfg.views
    with tqdm(total=total, initial=total - sum(
            (_chunk_range(cfg, c)[1] - _chunk_range(cfg, c)[0]) * cfg.views for c in todo),
            unit="img", disable=not progress, desc=f"synth {root.name}") as bar:
        for c, k in _run(root, cfg, todo, workers):
            made += k
            bar.update(k)
            if on_chunk is not None:
                on_chunk(c)
    seconds = time.perf_counter() - t0
    counts = _finalise(root, cfg, n_chunks)
    return SynthSummary(out=root, samples=total, chunks_total=n_chunks, chunks_made=len(todo),
                        seconds=seconds, samples_per_s=made / seconds if seconds > 0 else 0.0,
                        counts=counts)


def _finalise(root: Path, cfg: SynthConfig, n_chunks: int) -> dict[str, int]:
    """Merge the chunk files into the FreiHAND label files; drop images beyond N."""
    keys = ("xyz", "K", "scale", "extrinsics", "handedness", "visibility", "meta")
    merged: dict[str, list[Any]] = {k: [] for k in keys}
    for c in range(n_chunks):
        doc = _chunk_done(root, cfg, c)
        if doc is None:
            raise DataError(_chunk_path(root, c), "chunk is missing or incomplete after "
                            "writing (was the folder modified meanwhile?)")
        for k in keys:
            merged[k].extend(doc[k])
    n = cfg.n * cfg.views
    for k in ("xyz", "K", "scale", "handedness", "visibility", "meta"):
        write_json_atomic(root / f"{_SPLIT}_{k}.json", merged[k], indent=None)
    ext = root / "extrinsics.json"
    if cfg.views > 1:
        write_json_atomic(ext, merged["extrinsics"], indent=None)
    elif ext.exists():
        ext.unlink()
    for c in range(n_chunks, n_chunks + 10**9):  # chunks of a larger earlier n
        p = _chunk_path(root, c)
        if not p.exists():
            break
        p.unlink()
    for sub, ext_ in (("rgb", "jpg"), ("depth", "png"), ("mask", "png")):
        for p in (root / _SPLIT / sub).glob(f"*.{ext_}"):
            if p.stem.isdigit() and int(p.stem) >= n:
                p.unlink()
    left = int(sum(1 for h in merged["handedness"] if h == 0))
    counts = {"hands": cfg.n, "views": cfg.views, "samples": n, "left": left,
              "right": n - left}
    write_json_atomic(root / "dataset.json", _manifest(cfg, True, counts))
    return counts
