"""Webcam sources against a fake cv2.VideoCapture: opening, probing, timeouts, lost cameras."""

from __future__ import annotations

import threading
import time
from typing import Any

import cv2
import numpy as np
import pytest

from handpose.core.data.sources import (
    CameraSource,
    SourceError,
    SourceLost,
    list_cameras,
    open_source,
)
from handpose.core.geometry.camera import default_intrinsics

RELEASE = threading.Event()  # frees fake reads that block "forever" at the end of a test


class FakeCapture:
    """cv2.VideoCapture stand-in. ``plan[index]`` = behaviour of camera ``index``:
    ok (endless frames), stop:N (N frames then failed reads), block:N (N frames then a read
    that blocks), gray, u16; absent indices do not open."""

    plan: dict[int, str] = {}
    sizes = ((640, 480), (1280, 720))
    instances: list[FakeCapture] = []

    def __init__(self, index: int, api: int | None = None) -> None:
        self.index, self.api = index, api
        self.mode = self.plan.get(index)
        self.props = {cv2.CAP_PROP_FRAME_WIDTH: 640.0, cv2.CAP_PROP_FRAME_HEIGHT: 480.0,
                      cv2.CAP_PROP_FPS: 30.0}
        self.reads = 0
        self.released = False
        self.instances.append(self)

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.mode is not None and not self.released

    def release(self) -> None:
        self.released = True

    def getBackendName(self) -> str:  # noqa: N802
        return "FAKE"

    def get(self, prop: int) -> float:
        return self.props.get(prop, 0.0)

    def set(self, prop: int, value: float) -> bool:
        """Like V4L2: a width is kept until the height completes a mode the driver has."""
        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            self.pending_w = int(value)
            return True
        if prop == cv2.CAP_PROP_FRAME_HEIGHT:
            size = (getattr(self, "pending_w", int(self.props[prop])), int(value))
            if size not in self.sizes:
                return False
            self.props[cv2.CAP_PROP_FRAME_WIDTH] = float(size[0])
        self.props[prop] = float(value)
        return True

    def read(self) -> tuple[bool, Any]:
        mode = self.mode or ""
        n = int(mode.split(":")[1]) if ":" in mode else -1
        if mode.startswith("stop") and self.reads >= n:
            return False, None
        if mode.startswith("block") and self.reads >= n:
            RELEASE.wait(30)
            return False, None
        self.reads += 1
        time.sleep(0.002)
        w, h = int(self.props[cv2.CAP_PROP_FRAME_WIDTH]), int(self.props[cv2.CAP_PROP_FRAME_HEIGHT])
        if mode == "gray":
            return True, np.full((h, w), 50, np.uint8)
        if mode == "u16":
            return True, np.zeros((h, w, 3), np.uint16)
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = 200  # blue in BGR
        img[0, 0, 1] = self.reads % 256
        return True, img


@pytest.fixture
def fake_cv2(monkeypatch):
    FakeCapture.plan = {}
    FakeCapture.instances = []
    RELEASE.clear()
    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    yield FakeCapture
    RELEASE.set()


def test_camera_opens_converts_to_rgb_and_timestamps_increase(fake_cv2):
    fake_cv2.plan = {0: "ok"}
    with open_source("camera:0") as cam:
        assert isinstance(cam, CameraSource) and cam.live and not cam.seekable
        assert cam.size == (640, 480) and cam.fps == 30.0 and not cam.has_K
        np.testing.assert_allclose(cam.K, default_intrinsics(640, 480))
        frames = [cam.read() for _ in range(5)]
    assert all(f is not None for f in frames)
    assert frames[0].rgb[1, 1].tolist() == [0, 0, 200]  # type: ignore[union-attr]  BGR -> RGB
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]  # type: ignore[union-attr]
    ts = np.array([f.timestamp for f in frames])  # type: ignore[union-attr]
    assert np.all(np.diff(ts) > 0) and abs(ts[-1] - time.monotonic()) < 5
    assert cam.closed and fake_cv2.instances[0].released


def test_camera_resolution_request_and_refusal(fake_cv2):
    fake_cv2.plan = {0: "ok"}
    cam = open_source("camera:0@1280x720@30")
    assert cam.size == (1280, 720) and cam.read().rgb.shape == (720, 1280, 3)  # type: ignore
    cap = fake_cv2.instances[-1]
    assert cap.api == cv2.CAP_V4L2 and cap.props[cv2.CAP_PROP_FOURCC] == \
        cv2.VideoWriter.fourcc(*"MJPG")
    cam.close()
    with pytest.warns(RuntimeWarning, match="asked for 1000x1000, the camera delivers 640x480"):
        cam2 = CameraSource(0, width=1000, height=1000)
    assert cam2.size == (640, 480)
    cam2.close()
    K = np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]])
    cam3 = CameraSource(0, K=K)
    assert cam3.has_K and np.array_equal(cam3.read().K, K)  # type: ignore[union-attr]
    cam3.close()
    with pytest.raises(ValueError, match="width and height must both be given"):
        CameraSource(0, width=640)


def test_missing_camera_fails_fast_listing_the_available_ones(fake_cv2):
    fake_cv2.plan = {0: "ok", 2: "ok"}
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match=r"camera 3 could not be opened; available: \[0, 2\]"):
        open_source("camera:3")
    fake_cv2.plan = {}
    with pytest.raises(SourceError, match="camera 0 could not be opened; available: none"):
        CameraSource(0)
    assert time.perf_counter() - t0 < 1.0


def test_list_cameras_probes_indices_and_resolutions(fake_cv2):
    fake_cv2.plan = {0: "ok", 2: "ok"}
    cams = list_cameras(max_index=4)
    assert [c.index for c in cams] == [0, 2]
    assert cams[0].resolutions == ((640, 480), (1280, 720)) and cams[0].backend == "FAKE"
    assert all(c.released for c in fake_cv2.instances) and len(fake_cv2.instances) == 4


def test_camera_that_stops_delivering_raises_source_lost(fake_cv2):
    fake_cv2.plan = {0: "stop:3"}
    cam = CameraSource(0, max_failures=5)
    got = 0
    t0 = time.perf_counter()
    with pytest.raises(SourceLost, match=r"camera 0 stopped delivering frames \(5 failed reads"):
        while cam.read() is not None:
            got += 1
    assert got == 3 and time.perf_counter() - t0 < 2.0
    with pytest.raises(SourceLost):  # stays failed, immediately
        cam.read()
    cam.close()
    assert fake_cv2.instances[0].released


def test_camera_whose_read_blocks_forever_times_out(fake_cv2):
    fake_cv2.plan = {0: "block:2"}
    cam = CameraSource(0, timeout_s=0.3)
    assert cam.read() is not None and cam.read() is not None
    t0 = time.perf_counter()
    with pytest.raises(SourceLost, match=r"camera 0 delivered no frame for 0.3 s"):
        cam.read()
    assert 0.25 < time.perf_counter() - t0 < 1.5
    t0 = time.perf_counter()
    cam.close()  # does not wait for the stuck thread beyond its timeout
    assert time.perf_counter() - t0 < 1.0


def test_camera_that_opens_but_never_delivers_fails_at_open(fake_cv2):
    fake_cv2.plan = {1: "block:0"}
    t0 = time.perf_counter()
    with pytest.raises(SourceLost, match="camera 1 opened but delivered no frame for 0.2 s"):
        CameraSource(1, open_timeout_s=0.2)
    assert time.perf_counter() - t0 < 1.0


def test_close_from_another_thread_ends_a_blocked_read_cleanly(fake_cv2):
    fake_cv2.plan = {0: "block:1"}
    cam = CameraSource(0, timeout_s=5.0)
    assert cam.read() is not None
    threading.Timer(0.1, cam.close).start()
    t0 = time.perf_counter()
    assert cam.read() is None
    assert time.perf_counter() - t0 < 2.0
    cam.close()  # idempotent


def test_camera_frame_types(fake_cv2):
    fake_cv2.plan = {0: "gray", 1: "u16"}
    cam = CameraSource(0)
    f = cam.read()
    assert f is not None and f.rgb.shape == (480, 640, 3) and f.rgb[0, 0].tolist() == [50] * 3
    cam.close()
    with pytest.raises(SourceError, match=r"camera 1 delivered a uint16 array of shape "
                                          r"\(480, 640, 3\); expected 8-bit"):
        CameraSource(1)


def test_slow_consumer_gets_fresh_frames_not_a_backlog(fake_cv2):
    fake_cv2.plan = {0: "ok"}
    cam = CameraSource(0)
    cam.read()
    time.sleep(0.2)  # the fake delivers a frame every ~2 ms meanwhile
    cam.read()  # at most the queue (2 frames) is old
    cam.read()
    f = cam.read()
    assert f is not None and time.monotonic() - f.timestamp < 0.1
    assert cam.dropped > 10
    cam.close()
