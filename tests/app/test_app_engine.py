"""The capture and inference threads without Qt: latest frame wins, model swaps between
frames, recorded poses in replays, events, recording every captured frame."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import numpy as np
import pytest
from app_helpers import LostCamera, StandInEstimator

from handpose.app.engine import Engine, Tick
from handpose.app.recording import Recorder
from handpose.core.data.session_reader import SessionReader
from handpose.core.data.sources import ArraySource, SessionSource
from handpose.core.types import Frame

TIMEOUT = 60.0  # generous: the CPU is shared


class Collector:
    def __init__(self) -> None:
        self.ticks: queue.Queue[Tick] = queue.Queue()
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.threads: set[str] = set()

    def tick(self, t: Tick) -> None:
        self.threads.add(threading.current_thread().name)
        self.ticks.put(t)

    def event(self, kind: str, msg: str) -> None:
        self.events.put((kind, msg))

    def next_tick(self, pred: Any = lambda t: True) -> Tick:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            t = self.ticks.get(timeout=TIMEOUT)
            if pred(t):
                return t
        raise AssertionError("no matching tick")

    def next_event(self, kind: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            k, msg = self.events.get(timeout=TIMEOUT)
            if k == kind:
                return msg
        raise AssertionError(f"no {kind} event")


@pytest.fixture
def engine():
    c = Collector()
    e = Engine(c.tick, c.event)
    e.collector = c  # type: ignore[attr-defined]
    yield e
    e.close()


def test_slow_model_gets_the_latest_frames(engine, demo_session):
    c = engine.collector
    est = StandInEstimator(demo_session, delay_s=0.1)
    engine.set_model(est)
    src = SessionSource(demo_session, realtime=True, loop=True)
    engine.start(src)
    seqs = [c.next_tick(lambda t: t.processed).seq for _ in range(6)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    assert engine.captured > engine.processed  # frames were replaced, not queued
    assert engine._mailbox.replaced > 0
    t = c.next_tick(lambda t: t.processed)
    assert t.origin == "model" and t.result.hands  # the stand-in returns the true hand
    assert len(t.scene.hands) == 1 and t.scene.cloud.shape[0] > 0  # RGB-D: a point cloud
    assert c.threads == {"inference"}
    assert t.length == 30 and 0 <= t.position <= 30


def test_no_model_shows_recorded_poses_of_a_replay(engine, demo_session):
    c = engine.collector
    engine.start(SessionSource(demo_session, realtime=True, loop=True))
    t = c.next_tick()
    reader = SessionReader(demo_session)
    assert t.origin == "recorded" and not t.processed
    want = reader.poses(reader.position(t.result.frame.index))
    assert np.allclose(t.result.hands[0].joints, want[0].joints)
    engine.show_recorded = False
    t = c.next_tick(lambda t: t.origin == "none")
    assert t.result.hands == ()


def test_no_model_and_no_recorded_poses_shows_the_labels(engine, tmp_path):
    from app_helpers import hand_at, make_session

    session = make_session(tmp_path / "raw", n=9, labels=True, results=False)
    c = engine.collector
    engine.start(SessionSource(session, realtime=True, loop=True))
    t = c.next_tick(lambda t: t.result.frame.index == 3)
    assert t.origin == "labels" and len(t.result.hands) == 1
    assert np.allclose(t.result.hands[0].joints, hand_at(3 / 30.0), atol=1e-6)
    assert np.allclose(t.result.hands[0].confidence, 1.0)  # no visibility: all visible
    t = c.next_tick(lambda t: t.result.frame.index == 4)  # an unlabelled frame: no hand
    assert t.origin == "labels" and t.result.hands == ()


def test_model_and_options_change_between_frames(engine, demo_session):
    c = engine.collector
    first = StandInEstimator(demo_session)
    engine.set_model(first)
    engine.set_options({"correct": False})
    engine.start(SessionSource(demo_session, realtime=True, loop=True))
    c.next_tick(lambda t: t.processed)
    assert engine.model.options == {"correct": False}  # applied through with_options
    assert first.resets == 0 and engine.model is not first
    second = StandInEstimator(demo_session)
    engine.set_model(second)
    c.next_tick(lambda t: t.processed and engine.model is not None and
                engine.model.session == second.session and first.closed)
    assert first.closed and not second.closed  # the replaced model was closed by the worker
    engine.set_model(None)
    c.next_tick(lambda t: t.origin == "recorded")


class _Failing:
    def process(self, frame: Frame) -> Any:
        raise RuntimeError("the network exploded")


def test_inference_error_is_reported_once_and_frames_keep_coming(engine, demo_session):
    c = engine.collector
    engine.set_model(_Failing())
    engine.start(SessionSource(demo_session, realtime=True, loop=True))
    assert "exploded" in c.next_event("inference_error")
    c.next_tick(lambda t: t.origin == "error")
    for _ in range(3):
        assert c.next_tick().origin == "error"
    assert all(k != "inference_error" for k, _ in list(c.events.queue))


def test_lost_camera_is_an_event_not_a_crash(engine):
    c = engine.collector
    engine.start(LostCamera(5))
    assert "stopped delivering" in c.next_event("lost")
    assert engine.captured == 5


def test_replay_end_pauses_and_seek_shows_the_frame(engine, demo_session):
    c = engine.collector
    engine.start(SessionSource(demo_session, realtime=False, loop=False))
    c.next_event("ended")
    assert engine.paused
    engine.seek(7)
    t = c.next_tick(lambda t: t.result.frame.index == 7)
    assert t.position == 8


def test_recording_through_the_engine_keeps_every_frame(engine, demo_session, tmp_path):
    c = engine.collector
    frames = [np.full((48, 64, 3), k, np.uint8) for k in range(40)]
    engine.set_model(StandInEstimator(demo_session, delay_s=0.03))
    rec = Recorder(tmp_path / "rec", fsync="close", result_wait_s=5.0)
    engine.attach_recorder(rec)
    engine.start(ArraySource(frames, fps=60.0, realtime=True))
    c.next_event("ended")
    st = rec.stop()
    engine.attach_recorder(None)
    assert st.written == engine.captured == 40 and st.lost == 0
    r = SessionReader(tmp_path / "rec")
    processed = sum(rec_.processed for rec_ in r.records)
    assert 0 < processed <= engine.processed < 40  # slow model: some frames not processed
    assert [int(r.frame(i).rgb[0, 0, 0]) for i in (0, 17, 39)] == [0, 17, 39]
