"""Shared test fixtures: seeded RNGs, the shipped hand model, the shared real data (optional)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
#: Real data of the development machines (../shared/data). CI on a clean clone may not have it:
#: tests that need it skip with a reason naming the folder.
SHARED_DATA = Path(os.environ.get("HANDPOSE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """torch on one intra-op thread for the test (restored after): tiny networks run faster on
    one thread of a shared machine, and float reductions match those of a one-thread
    subprocess. Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def hand_model():
    from handpose.core.handmodel import load_hand_model

    return load_hand_model()


def _shared(sub: str) -> Path:
    p = SHARED_DATA / sub
    if not p.exists():
        pytest.skip(f"shared data folder {p} is not present on this machine")
    return p


@pytest.fixture(scope="session")
def hgc_dir() -> Path:
    """``real_eval_hgc``: 400 real frames with 3D labels (FreiHAND layout). Never train on it."""
    return _shared("real_eval_hgc")


@pytest.fixture(scope="session")
def rgbd_dir() -> Path:
    """``real_rgbd``: 25 real RGB-D frames with K and 3D joints."""
    return _shared("real_rgbd")


@pytest.fixture(scope="session")
def real_hands_dir() -> Path:
    """``real_hands``: 15k unlabelled real hand photos with ``index.csv``."""
    return _shared("real_hands")
