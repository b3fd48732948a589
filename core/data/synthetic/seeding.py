"""Per-sample random streams: sample i of a synthetic dataset depends only on (seed, i).

Each (seed, stream, index) triple seeds its own ``numpy.random.Generator`` through a
``SeedSequence``, so a sample is the same whatever the batch, chunk or worker that makes it.
Streams keep the sampler, the camera placement and the renderer's appearance independent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import numpy as np

__all__ = [
    "SAMPLER_STREAM",
    "PLACEMENT_STREAM",
    "RENDER_STREAM",
    "TRAJECTORY_STREAM",
    "sample_rng",
    "indexed_uniforms",
]

SAMPLER_STREAM: Final = 0
PLACEMENT_STREAM: Final = 1
RENDER_STREAM: Final = 2
TRAJECTORY_STREAM: Final = 3


def _check_seed(seed: int) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
    return int(seed)


def sample_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The Generator of sample ``index`` in ``stream`` of a dataset seeded with ``seed``
    (all three integers >= 0)."""
    for name, v in (("index", index), ("stream", stream)):
        if not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be an integer >= 0; got {v!r}")
    return np.random.default_rng([_check_seed(seed), int(stream), int(index)])


def indexed_uniforms(seed: int, indices: Iterable[int], dim: int, stream: int) -> np.ndarray:
    """(N, dim) float64 uniforms in [0, 1): row k from ``sample_rng(seed, indices[k], stream)``.

    Raises:
        ValueError: a negative/non-integer seed, index or stream, or ``dim < 1``.
    """
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1; got {dim!r}")
    idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
    if idx.ndim != 1 or (idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0)):
        raise ValueError(f"indices must be a 1D sequence of integers >= 0; got {idx!r:.80}")
    seed = _check_seed(seed)
    out = np.empty((len(idx), int(dim)))
    for k, i in enumerate(idx.tolist()):
        out[k] = np.random.default_rng([seed, int(stream), i]).random(int(dim))
    return out
