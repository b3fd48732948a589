"""RGB-D devices without hardware: absent packages/runtimes, and the frame conversion driven by
a fake ``pyrealsense2`` module and a fake Azure Kinect sensor."""

from __future__ import annotations

import sys
import time
import types
from typing import Any

import numpy as np
import pytest

from handpose.core.data.sources import (
    KinectSource,
    RealSenseSource,
    SourceError,
    SourceLost,
    SpecError,
    devices,
    open_source,
)
from handpose.core.geometry.camera import intrinsics_from_fov

W, H = 64, 48


# -- a fake pyrealsense2 -----------------------------------------------------------------------
class _Data:
    def __init__(self, a: np.ndarray) -> None:
        self.a = a

    def get_data(self) -> np.ndarray:
        return self.a

    def __bool__(self) -> bool:
        return True


def fake_realsense(scale: float = 0.00025, frames: int = 3, start_error: str | None = None,
                   incomplete: bool = False) -> types.SimpleNamespace:
    """A module with the pyrealsense2 calls RealSenseSource makes. ``frames`` framesets are
    delivered (the colour buffer is reused between them, as the device does), then
    wait_for_frames times out. Calls are logged in ``rs.log``."""
    log: list[Any] = []
    color_buf = np.zeros((H, W, 3), np.uint8)
    raw = (np.arange(H * W).reshape(H, W) % 4000 + 1000).astype(np.uint16)
    intr = types.SimpleNamespace(fx=410.5, fy=411.0, ppx=31.7, ppy=24.2, width=W, height=H)

    class Config:
        def enable_device(self, serial: str) -> None:
            log.append(("device", serial))

        def enable_stream(self, *args: Any) -> None:
            log.append(("stream", *args))

    class Pipeline:
        def __init__(self) -> None:
            self.sent = 0

        def start(self, config: Config) -> Any:
            if start_error:
                raise RuntimeError(start_error)
            sensor = types.SimpleNamespace(get_depth_scale=lambda: scale)
            device = types.SimpleNamespace(first_depth_sensor=lambda: sensor)
            vsp = types.SimpleNamespace(get_intrinsics=lambda: intr)
            stream = types.SimpleNamespace(as_video_stream_profile=lambda: vsp)
            return types.SimpleNamespace(get_device=lambda: device, get_stream=lambda s: stream)

        def wait_for_frames(self, timeout_ms: int) -> Any:
            if self.sent >= frames:
                time.sleep(timeout_ms / 1000)
                raise RuntimeError(f"Frame didn't arrive within {timeout_ms}")
            self.sent += 1
            time.sleep(0.001)
            color_buf[...] = (10 * self.sent) % 256
            return ("frameset", self.sent)

        def stop(self) -> None:
            log.append("stop")

    class Align:
        def __init__(self, to: str) -> None:
            log.append(("align", to))

        def process(self, frames: Any) -> Any:
            n = frames[1]
            return types.SimpleNamespace(
                get_color_frame=lambda: _Data(color_buf),
                get_depth_frame=lambda: None if incomplete else _Data(raw + n))

    return types.SimpleNamespace(
        pipeline=Pipeline, config=Config, align=Align, log=log, raw=raw, intr=intr,
        stream=types.SimpleNamespace(color="color", depth="depth"),
        format=types.SimpleNamespace(rgb8="rgb8", z16="z16"))


def test_realsense_absent_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)
    with pytest.raises(SourceError, match=r"pip install 'handpose\[realsense\]'.*udev"):
        open_source("realsense")


def test_realsense_frames_depth_in_metres_K_from_device_and_copies(monkeypatch):
    rs = fake_realsense(scale=0.00025)
    monkeypatch.setitem(sys.modules, "pyrealsense2", rs)
    src = open_source(f"realsense:12345@{W}x{H}@15")
    assert isinstance(src, RealSenseSource) and src.live and src.has_K and src.has_depth
    assert ("device", "12345") in rs.log and ("align", "color") in rs.log
    assert ("stream", "color", W, H, "rgb8", 15) in rs.log
    np.testing.assert_array_equal(src.K, [[410.5, 0, 31.7], [0, 411.0, 24.2], [0, 0, 1]])
    a, b = src.read(), src.read()
    assert a is not None and b is not None
    assert a.rgb[0, 0, 0] == 10 and b.rgb[0, 0, 0] == 20  # a was copied before the reuse
    assert a.depth is not None and a.depth.dtype == np.float32
    np.testing.assert_allclose(a.depth, (rs.raw + 1) * 0.00025, rtol=1e-6)
    assert (a.index, b.index) == (0, 1) and b.timestamp > a.timestamp
    np.testing.assert_array_equal(a.K, src.K)
    src.close()
    src.close()
    assert rs.log.count("stop") == 1


def test_realsense_no_device_and_lost_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrealsense2",
                        fake_realsense(start_error="No device connected"))
    with pytest.raises(SourceError, match=r"RealSense: cannot start colour 640x480@30.*No device "
                                          r"connected.*rs-enumerate-devices"):
        RealSenseSource()
    monkeypatch.setitem(sys.modules, "pyrealsense2", fake_realsense(frames=1))
    src = RealSenseSource(W, H, timeout_s=0.3)
    assert src.read() is not None
    t0 = time.perf_counter()
    with pytest.raises(SourceLost, match="RealSense delivered no frame for 0.3 s"):
        src.read()
    assert time.perf_counter() - t0 < 1.5
    monkeypatch.setitem(sys.modules, "pyrealsense2", fake_realsense(frames=10**6, incomplete=True))
    with pytest.raises(SourceLost, match="no complete colour\\+depth pair"):
        RealSenseSource(W, H, timeout_s=0.05).read()


def test_realsense_frame_rejects_wrong_depth():
    K = np.eye(3)
    good = _Data(np.zeros((H, W, 3), np.uint8))
    with pytest.raises(SourceError, match=r"RealSense: depth must be uint16 \(48, 64\)"):
        devices.realsense_frame(good, _Data(np.zeros((H, W), np.float32)), 0.001, K, 0.0, 0)
    with pytest.raises(SourceError, match="RealSense colour: rgb must be an"):
        devices.realsense_frame(_Data(np.zeros((H, W), np.uint8)),
                                _Data(np.zeros((H, W), np.uint16)), 0.001, K, 0.0, 0)


# -- Azure Kinect --------------------------------------------------------------------------------
class FakeKinect:
    """Open3D's AzureKinectSensor API: connect, capture_frame(align) -> RGBD | None,
    disconnect. Delivers ``frames`` captures into ONE reused buffer (as Open3D does), returning
    None every other call (a capture timeout), then None forever."""

    def __init__(self, frames: int = 3, connects: bool = True) -> None:
        self.frames, self.connects = frames, connects
        self.sent = self.calls = 0
        self.disconnected = 0
        self.aligned: list[bool] = []
        self.rgbd = types.SimpleNamespace(color=np.zeros((H, W, 3), np.uint8),
                                          depth=np.zeros((H, W), np.uint16))

    def connect(self, index: int) -> bool:
        self.index = index
        return self.connects

    def capture_frame(self, align: bool) -> Any:
        self.calls += 1
        self.aligned.append(align)
        if self.calls % 2 == 0 or self.sent >= self.frames:
            time.sleep(0.005)
            return None
        self.sent += 1
        self.rgbd.color[...] = self.sent
        self.rgbd.depth[...] = 500 + self.sent  # millimetres
        return self.rgbd

    def disconnect(self) -> None:
        self.disconnected += 1


def test_kinect_runtime_or_open3d_absent_says_what_to_install(monkeypatch):
    monkeypatch.setattr(devices, "k4a_runtime_found", lambda: False)
    with pytest.raises(SourceError, match=r"Azure Kinect Sensor SDK runtime \(libk4a\.so.*"
                                          r"libk4a1\.4.*LD_LIBRARY_PATH"):
        open_source("kinect")
    monkeypatch.setattr(devices, "k4a_runtime_found", lambda: True)
    monkeypatch.setitem(sys.modules, "open3d", None)
    with pytest.raises(SourceError, match="kinect needs the open3d package"):
        KinectSource()


def test_kinect_frames_copied_depth_in_metres_nominal_K(monkeypatch):
    sensor = FakeKinect(frames=3)
    src = KinectSource(1, sensor=sensor)
    assert sensor.index == 1 and src.live and src.has_depth and not src.has_K
    assert src.size == (W, H)
    np.testing.assert_allclose(src.K, intrinsics_from_fov(W, H, 90.0, "horizontal"))
    frames = [src.read() for _ in range(3)]
    assert [int(f.rgb[0, 0, 0]) for f in frames] == [1, 2, 3]  # type: ignore[union-attr]
    np.testing.assert_allclose(frames[1].depth, 0.502, rtol=1e-6)  # type: ignore[union-attr]
    assert all(sensor.aligned)  # depth transformed to the colour camera
    src.close()
    src.close()
    assert sensor.disconnected == 1
    K = np.array([[605.0, 0, 31.5], [0, 605.0, 23.5], [0, 0, 1]])
    with_K = KinectSource(sensor=FakeKinect(), K=K)
    assert with_K.has_K and np.array_equal(with_K.read().K, K)  # type: ignore[union-attr]


def test_kinect_not_connected_no_first_frame_and_lost(monkeypatch):
    with pytest.raises(SourceError, match="Azure Kinect 0 could not be opened"):
        KinectSource(sensor=FakeKinect(connects=False))
    silent = FakeKinect(frames=0)
    with pytest.raises(SourceError, match="opened but delivered no frame in 0.1 s"):
        KinectSource(sensor=silent, timeout_s=0.1)
    assert silent.disconnected == 1
    src = KinectSource(sensor=FakeKinect(frames=1), timeout_s=0.2)
    assert src.read() is not None
    t0 = time.perf_counter()
    with pytest.raises(SourceLost, match="Azure Kinect 0 delivered no frame for 0.2 s"):
        src.read()
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(ValueError, match="at most 15 fps"):
        KinectSource(resolution=3072, fps=30, sensor=FakeKinect())
    with pytest.raises(SpecError, match=r"Azure Kinect colour modes are 1280x720, 1920x1080"):
        open_source("kinect@1280x1080")


def test_kinect_frame_rejects_misaligned_depth():
    rgbd = types.SimpleNamespace(color=np.zeros((H, W, 3), np.uint8),
                                 depth=np.zeros((H // 2, W // 2), np.uint16))
    with pytest.raises(SourceError, match=r"Azure Kinect: depth must be uint16 \(48, 64\) "
                                          r"aligned to colour; got uint16 \(24, 32\)"):
        devices.kinect_frame(rgbd, np.eye(3), 0.0, 0)


def test_k4a_runtime_lookup_uses_ld_library_path(tmp_path, monkeypatch):
    (tmp_path / "libk4a.so").write_bytes(b"not a shared object")
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path))
    import ctypes

    tried: list[str] = []
    real = ctypes.CDLL

    def spy(name: str, *a: Any, **k: Any) -> Any:
        tried.append(name)
        return real(name, *a, **k)

    monkeypatch.setattr(ctypes, "CDLL", spy)
    found = devices.k4a_runtime_found()
    assert tried[0] == "libk4a.so"
    if not found:  # not on the loader path; the invalid file in LD_LIBRARY_PATH is refused
        assert tried == ["libk4a.so", str(tmp_path / "libk4a.so")]
