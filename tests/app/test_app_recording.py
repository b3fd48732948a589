"""The recorder: every frame written (back-pressure, never a silent drop), results attached,
a full disk reported with a valid session, a session cut by kill -9 replays."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import handpose.core.data.session_writer as session_writer
from handpose.app.recording import Recorder, new_session_path
from handpose.core.data.session_reader import SessionReader
from handpose.core.data.session_writer import SessionWriter
from handpose.core.data.sources import SessionSource
from handpose.core.types import Frame, FrameResult, HandPose

K = np.array([[100.0, 0.0, 31.5], [0.0, 100.0, 23.5], [0.0, 0.0, 1.0]])


def _frame(i: int, depth: bool = True) -> Frame:
    rgb = np.full((48, 64, 3), (i * 7) % 256, np.uint8)
    d = np.full((48, 64), 0.5 + 0.01 * i, np.float32) if depth else None
    return Frame(rgb=rgb, K=K, depth=d, timestamp=i / 30.0, index=i)


def _result(frame: Frame) -> FrameResult:
    hand = HandPose(joints=np.full((21, 3), 0.4), uv=np.full((21, 2), float(frame.index)))
    return FrameResult(frame, (hand,), {"total": 3.0})


class SlowWriter(SessionWriter):
    """A session writer on a slow disk: every ``every``-th frame stalls ``stall_s``."""

    def __init__(self, *args, stall_s: float = 0.05, every: int = 1, **kw) -> None:
        super().__init__(*args, **kw)
        self.stall_s, self.every, self.n = stall_s, every, 0

    def append_frame(self, frame, result=None):  # noqa: ANN001, ANN201
        self.n += 1
        if self.n % self.every == 0:
            time.sleep(self.stall_s)
        return super().append_frame(frame, result)


def test_every_frame_is_written_with_back_pressure_and_results(tmp_path):
    path = tmp_path / "s"
    rec = Recorder(path, K=K, source="test", capacity=3, result_wait_s=5.0,
                   writer_factory=lambda p, **kw: SlowWriter(p, stall_s=0.03, **kw),
                   fsync="close")
    for i in range(30):
        f = _frame(i)
        assert rec.put(i, f)
        if i % 3 == 0:
            rec.add_result(i, _result(f))
        else:
            rec.no_result(i)
    st = rec.stop()
    assert st.error == "" and st.offered == st.written == 30 and st.lost == 0
    assert st.blocked_events > 0 and st.blocked_s > 0  # the slow disk pushed back
    r = SessionReader(path)
    assert len(r) == 30
    for i in range(30):
        hands = r.poses(i)
        assert (hands is not None) == (i % 3 == 0)
        if hands is not None:
            assert np.allclose(hands[0].uv, float(i))  # its own result, not another frame's
        assert np.allclose(r.frame(i).depth, 0.5 + 0.01 * i, atol=1e-3)
    assert "queue" in st.text() and "back-pressure" in st.text()


def test_a_frame_without_news_is_written_after_the_wait(tmp_path):
    rec = Recorder(tmp_path / "s", K=K, result_wait_s=0.05, fsync="close")
    rec.put(1, _frame(1))  # no result and no "no result": written bare after 50 ms
    rec.put(2, _frame(2))
    rec.add_result(2, FrameResult(_frame(3)))  # a result of ANOTHER frame: not recorded
    st = rec.stop()
    assert st.written == 2
    r = SessionReader(tmp_path / "s")
    assert r.poses(0) is None and r.poses(1) is None


def test_disk_full_stops_the_recording_and_keeps_the_session_valid(tmp_path, monkeypatch):
    real = session_writer._write_all
    budget = {"bytes": 60_000}

    def filling_disk(fd: int, data: bytes) -> None:
        budget["bytes"] -= len(data)
        if budget["bytes"] < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(session_writer, "_write_all", filling_disk)
    rec = Recorder(tmp_path / "s", K=K, capacity=2, result_wait_s=0.0, fsync="close")
    accepted = 0
    for i in range(200):
        if not rec.put(i, _frame(i)):
            break
        rec.no_result(i)
        accepted += 1
    st = rec.stop()
    assert "disk full" in st.error and not st.running
    assert 0 < st.written < 200 and not rec.put(999, _frame(0))
    monkeypatch.setattr(session_writer, "_write_all", real)
    src = SessionSource(tmp_path / "s")
    frames = list(src)
    assert len(frames) == st.written  # valid up to the last complete frame
    assert f"valid up to frame {st.written - 1}" in st.error


def test_new_session_path_never_reuses(tmp_path):
    a = new_session_path(tmp_path, now=0.0)
    a.mkdir()
    b = new_session_path(tmp_path, now=0.0)
    assert a != b and b.name.startswith(a.name)


_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from handpose.app.recording import Recorder
    from handpose.core.types import Frame
    K = np.array([[300.0, 0, 159.5], [0, 300.0, 119.5], [0, 0, 1]])
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    depth = rng.uniform(0.4, 1.2, (240, 320)).astype(np.float32)
    rec = Recorder(sys.argv[1], K=K, capacity=8, result_wait_s=0.0, fsync="frame")
    i = 0
    while True:
        rec.put(i, Frame(rgb=rgb, K=K, depth=depth, timestamp=i / 30.0, index=i))
        rec.no_result(i)
        i += 1
""")


def test_session_cut_by_kill_9_opens_and_replays(tmp_path):
    path = tmp_path / "killed"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM_PLUGIN_PATH"}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], env=env)
    poses = path / "poses.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if poses.exists() and poses.read_bytes().count(b"\n") >= 15:
                break
            if proc.poll() is not None:
                pytest.fail(f"the writer died with {proc.returncode}")
            time.sleep(0.02)
        else:
            pytest.fail("the writer wrote fewer than 15 frames in 120 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    torn = not poses.read_bytes().endswith(b"\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = SessionSource(path, skip_bad=False)
    assert torn == any("torn last line" in str(w.message) for w in caught)
    n = len(src)
    assert n >= 15
    frames = list(src)  # every listed frame decodes, depth included
    assert len(frames) == n and all(f.depth is not None for f in frames)
    assert [f.index for f in frames] == list(range(n))
    with SessionWriter(path, append=True) as w:  # and recording can continue after a repair
        assert w.num_frames == n
        w.append_frame(_frame(0))
    assert len(SessionReader(path)) == n + 1

