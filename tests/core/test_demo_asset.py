"""The shipped demo recording (assets/demo): present, compact, replayable, labels that project
into the frames, an out-of-frame stretch; and the generator is deterministic."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handpose.core.data import SessionReader
from handpose.core.data.sources.replay import demo_dir
from handpose.core.data.synthetic.demo import make_demo
from handpose.core.geometry import project


@pytest.fixture(scope="module")
def demo() -> SessionReader:
    where = demo_dir()
    assert (where / "session.json").is_file(), (
        f"the demo recording is missing at {where}: run `handpose-data demo --force`")
    return SessionReader(where)


def test_demo_is_small_and_documented(demo):
    size = sum(p.stat().st_size for p in demo.path.rglob("*") if p.is_file())
    assert size < 10 * 1024 * 1024
    readme = (demo.path / "README.md").read_text()
    a, b = demo.info.extra["absent_frames"][0]
    assert f"frames {a}-{b}" in readme and "handpose-data demo" in readme


def test_demo_replays_as_a_ten_second_rgbd_session(demo):
    assert len(demo) == 300
    assert demo.info.K_calibrated and demo.info.K is not None
    ts = np.array([r.timestamp for r in demo.records])
    np.testing.assert_allclose(np.diff(ts), 1 / 30, atol=1e-6)
    f = demo.frame(100)
    assert f.rgb.shape == (360, 480, 3) and f.depth is not None and f.depth.shape == (360, 480)
    np.testing.assert_allclose(f.K, demo.info.K)
    assert not any(r.processed for r in demo.records)


def test_labels_project_into_the_frames(demo):
    K = demo.info.K
    labelled = 0
    for i in range(0, 300, 7):
        (label,) = demo.labels_for(i)
        assert label.author == "synthetic" and label.done
        if label.joints3d is None:
            continue
        labelled += 1
        assert label.handedness == "right"
        uv = project(label.joints3d, K)
        assert np.abs(uv - label.uv).max() < 0.5
        vis = label.visible
        px = np.rint(label.uv[vis]).astype(int)
        assert np.all((px >= 0) & (px < [480, 360]))
        depth = demo.frame(i).depth
        d = np.array([depth[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2].max() for x, y in px])
        assert np.all(d > 0)  # a visible joint is on the hand
        assert np.median(np.abs(d - label.joints3d[vis, 2])) < 0.02
    assert labelled > 30


def test_the_hand_leaves_the_frame_and_comes_back(demo):
    a, b = demo.info.extra["absent_frames"][0]
    assert 0 < a < b < 299 and b - a >= 10
    for i in (a, (a + b) // 2, b):
        assert demo.labels_for(i)[0].joints3d is None
    for i in (a - 10, b + 10):
        label = demo.labels_for(i)[0]
        assert label.joints3d is not None and label.visible.any()
    # no hand pixels in the middle of the stretch: the frame is the bare wall (depth empty or
    # only the forearm at the border)
    mid = demo.frame((a + b) // 2)
    assert (mid.depth > 0).mean() < 0.02


def test_generator_is_deterministic_and_writes_the_exit(tmp_path):
    kw = dict(size=(96, 72), seconds=1.0, exit_s=(0.2, 0.8))
    one = make_demo(tmp_path / "a", seed=3, **kw)
    two = make_demo(tmp_path / "b", seed=3, **kw)
    assert one["frames"] == 30 and one["absent"] == two["absent"] and one["absent"]
    for k in (0, 14, 29):
        name = f"rgb/{k:06d}.jpg"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    la = [json.loads(x) for x in (tmp_path / "a/labels.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (tmp_path / "b/labels.jsonl").read_text().splitlines()]
    assert [x["joints3d"] for x in la] == [x["joints3d"] for x in lb]
    with pytest.raises(FileExistsError, match="force"):
        make_demo(tmp_path / "a", seed=3, **kw)
    again = make_demo(tmp_path / "a", seed=4, force=True, **kw)
    assert again["frames"] == 30
    assert (tmp_path / "a" / "rgb/000000.jpg").read_bytes() != (
        tmp_path / "b" / "rgb/000000.jpg").read_bytes()
