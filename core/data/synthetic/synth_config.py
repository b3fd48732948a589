"""The arguments of a synthetic dataset (``handpose-data synth``) and what they fix: the
sampler and placement configurations, and the identity a resumed run must match."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .placement import PlacementConfig
from .sampler import SamplerConfig

__all__ = ["SynthConfig"]

_HANDS = ("right", "left", "both")


@dataclass(frozen=True)
class SynthConfig:
    """Arguments of a synthetic dataset (all but ``n`` must match when resuming).

    Attributes:
        n: number of hands (samples = n * views).
        size: square image side, pixels.
        seed: dataset seed (>= 0).
        views: cameras per hand (>= 1; > 1 writes ``extrinsics.json``).
        depth_noise: sensor-like depth (holes, noise, 1 mm steps) instead of clean depth.
        backgrounds: folder of background images, or None for procedural backgrounds.
        hands: "right" (FreiHAND's convention, the default), "left" or "both".
        fill: [lo, hi] of the hand's box side / image side.
        fov_deg: [lo, hi] horizontal field of view of the virtual camera the crop comes from.
        jpeg_quality: 1-100.
        chunk_size: hands per chunk (resume granularity; does not change the output).
    """

    n: int
    size: int = 224
    seed: int = 0
    views: int = 1
    depth_noise: bool = False
    backgrounds: str | None = None
    hands: str = "right"
    fill: tuple[float, float] = (0.4, 0.8)
    fov_deg: tuple[float, float] = (50.0, 80.0)
    jpeg_quality: int = 95
    chunk_size: int = 32

    def __post_init__(self) -> None:
        for name, lo in (("n", 1), ("size", 16), ("views", 1), ("chunk_size", 1), ("seed", 0)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}; got {v!r}")
        if self.hands not in _HANDS:
            raise ValueError(f"hands must be one of {_HANDS}; got {self.hands!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100]; got {self.jpeg_quality}")
        if self.backgrounds is not None and not Path(self.backgrounds).is_dir():
            raise ValueError(f"backgrounds must be a folder of images; {self.backgrounds} is "
                             "not a folder")
        self.placement_config()  # validates fill and fov_deg

    def sampler_config(self) -> SamplerConfig:
        p_left = {"right": 0.0, "left": 1.0, "both": 0.5}[self.hands]
        return SamplerConfig(p_left=p_left)

    def placement_config(self) -> PlacementConfig:
        return PlacementConfig(mode="crop", fill=(float(self.fill[0]), float(self.fill[1])),
                               fov_deg=(float(self.fov_deg[0]), float(self.fov_deg[1])))

    def identity(self) -> dict[str, Any]:
        """Everything that determines a sample (all fields but n, chunk_size), JSON-able."""
        d = asdict(self)
        d.pop("n")
        d.pop("chunk_size")
        d["fill"], d["fov_deg"] = list(self.fill), list(self.fov_deg)
        d["sampler"] = asdict(self.sampler_config())
        d["placement"] = asdict(self.placement_config())
        return json.loads(json.dumps(d))

    def key(self) -> str:
        """Short hash of :meth:`identity` (stored in every chunk file)."""
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
