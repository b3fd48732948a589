"""Synthetic hands: pose and shape sampler, renderer, dataset writer, the demo recording."""

from .placement import PlacementConfig, place
from .renderer import HandRenderer, RenderedHands
from .sampler import HandSampler, HandSamples, SamplerConfig
from .synth_config import SynthConfig
from .trajectory import sample_trajectory
from .writer import write_synth

__all__ = [
    "HandRenderer",
    "RenderedHands",
    "HandSampler",
    "HandSamples",
    "SamplerConfig",
    "PlacementConfig",
    "place",
    "sample_trajectory",
    "SynthConfig",
    "write_synth",
]
