"""RGB-D devices: Intel RealSense (``realsense``) and Azure Kinect (``kinect``).

Both deliver colour with depth ALIGNED to it (same pixels, the colour camera's K), depth in
metres (0 = no reading), timestamps = capture time (``time.monotonic()`` s). A device that
delivers nothing for ``timeout_s`` ends with :class:`~.base.SourceLost`.

* RealSense uses ``pyrealsense2`` (optional extra: ``pip install 'handpose[realsense]'``):
  colour rgb8 + depth z16, ``rs.align`` to colour, depth scale and colour intrinsics from the
  device (``has_K`` True). librealsense's pixel coordinates put (0, 0) at the centre of the
  top-left pixel, as ours do, so its ``fx, fy, ppx, ppy`` are our K. Lens distortion
  coefficients are ignored (near zero on D400 colour streams).
* Azure Kinect uses Open3D's ``AzureKinectSensor`` (MJPG colour, depth transformed to the
  colour camera), which needs Microsoft's k4a runtime (``libk4a.so``, ``libdepthengine.so``).
  Open3D's Python API does not expose the device calibration, so ``K`` is the nominal colour
  intrinsics (90 degrees horizontal field of view, centred) with ``has_K`` False unless ``K``
  is given; pass the calibrated K (e.g. from ``k4arecorder``'s calibration) for metric 3D.
  The runtime is checked BEFORE Open3D touches it: Open3D aborts the whole process when
  ``libk4a.so`` is missing.

Absent packages or runtimes raise :class:`~.base.SourceError` saying what to install.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from typing import Any

import numpy as np

from ...geometry.camera import intrinsics_from_fov
from ...types import Frame
from .base import FrameSource, SourceError, SourceLost, check_K
from .pixels import check_rgb

__all__ = [
    "RealSenseSource",
    "KinectSource",
    "realsense_K",
    "realsense_frame",
    "kinect_frame",
    "kinect_nominal_K",
    "k4a_runtime_found",
    "KINECT_RESOLUTIONS",
    "KINECT_DEPTH_MODES",
    "KINECT_COLOR_HFOV_DEG",
]

_POLL_MS = 200  # one device wait; SourceLost after timeout_s of failed waits

#: Azure Kinect colour modes: image height -> (width, Open3D/k4a name).
KINECT_RESOLUTIONS = {
    720: (1280, "K4A_COLOR_RESOLUTION_720P"), 1080: (1920, "K4A_COLOR_RESOLUTION_1080P"),
    1440: (2560, "K4A_COLOR_RESOLUTION_1440P"), 1536: (2048, "K4A_COLOR_RESOLUTION_1536P"),
    2160: (3840, "K4A_COLOR_RESOLUTION_2160P"), 3072: (4096, "K4A_COLOR_RESOLUTION_3072P"),
}
#: Azure Kinect depth modes (k4a names without the ``K4A_DEPTH_MODE_`` prefix).
KINECT_DEPTH_MODES = ("NFOV_2X2BINNED", "NFOV_UNBINNED", "WFOV_2X2BINNED", "WFOV_UNBINNED")

#: Nominal horizontal field of view of the Azure Kinect colour camera (degrees).
KINECT_COLOR_HFOV_DEG = 90.0


def _depth_m(raw: Any, scale_m: float, shape: tuple[int, ...], what: str) -> np.ndarray:
    d = np.asarray(raw)
    if d.dtype != np.uint16 or d.shape != shape:
        raise SourceError(f"{what}: depth must be uint16 {shape} aligned to colour; got "
                          f"{d.dtype} {d.shape}")
    return d.astype(np.float32) * np.float32(scale_m)


# -- RealSense --------------------------------------------------------------------------------
def _import_realsense() -> Any:
    try:
        import pyrealsense2 as rs  # type: ignore[import-not-found]
    except ImportError:
        raise SourceError(
            "realsense needs the pyrealsense2 package: pip install 'handpose[realsense]' (or "
            "pip install pyrealsense2); on Linux also install librealsense's udev rules so the "
            "camera is usable without root") from None
    return rs


def realsense_K(intrinsics: Any) -> np.ndarray:
    """(3, 3) float64 K from ``rs.intrinsics`` (``fx, fy, ppx, ppy`` in pixels)."""
    return np.array([[intrinsics.fx, 0.0, intrinsics.ppx],
                     [0.0, intrinsics.fy, intrinsics.ppy],
                     [0.0, 0.0, 1.0]], np.float64)


def realsense_frame(color: Any, depth: Any, depth_scale: float, K: np.ndarray,
                    timestamp: float, index: int) -> Frame:
    """A :class:`Frame` from an aligned RealSense frame pair.

    Args:
        color: colour frame whose ``get_data()`` is (H, W, 3) uint8 RGB (format rgb8).
        depth: depth frame aligned to colour whose ``get_data()`` is (H, W) uint16 units.
        depth_scale: metres per depth unit (the depth sensor's ``get_depth_scale()``).
        K: (3, 3) intrinsics. timestamp: seconds. index: frame number.

    Returns:
        Frame with copies of the pixels (the device reuses its buffers) and depth in metres.
    """
    rgb = check_rgb(np.array(color.get_data(), copy=True), "RealSense colour")
    d = _depth_m(depth.get_data(), depth_scale, rgb.shape[:2], "RealSense")
    return Frame(rgb=rgb, K=K, depth=d, timestamp=timestamp, index=index)


class RealSenseSource(FrameSource):
    """An Intel RealSense camera: colour + depth aligned to colour, K from the device.

    Args:
        width, height, fps: colour mode (pixels, frames/s) the camera must support.
        depth_size: depth mode (width, height) before alignment; None = the colour size when
            it is 640x480, 848x480 or 1280x720, else 1280x720.
        serial: the device's serial number, or None (the first camera).
        K: (3, 3) intrinsics overriding the device's, or None.
        timeout_s: longest wait for a frame before :class:`SourceLost`.

    Raises:
        SourceError: pyrealsense2 missing, no camera, or the mode is not supported.
    """

    live = True

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30, *,
                 depth_size: tuple[int, int] | None = None, serial: str | None = None,
                 K: Any = None, timeout_s: float = 2.0) -> None:
        super().__init__()
        if width <= 0 or height <= 0 or fps <= 0:
            raise ValueError(f"width, height and fps must be > 0; got {width}x{height}@{fps}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds; got {timeout_s}")
        K_user = check_K(K)
        rs = _import_realsense()
        name = "RealSense" + (f" {serial}" if serial else "")
        if depth_size is None:
            depth_size = (width, height) if (width, height) in (
                (640, 480), (848, 480), (1280, 720)) else (1280, 720)
        self.timeout_s = float(timeout_s)
        self._poll_ms = max(1, min(_POLL_MS, int(timeout_s * 1000)))
        self._pipeline = rs.pipeline()
        config = rs.config()
        if serial:
            config.enable_device(str(serial))
        config.enable_stream(rs.stream.color, int(width), int(height), rs.format.rgb8, int(fps))
        config.enable_stream(rs.stream.depth, int(depth_size[0]), int(depth_size[1]),
                             rs.format.z16, int(fps))
        try:
            profile = self._pipeline.start(config)
        except RuntimeError as e:
            raise SourceError(f"{name}: cannot start colour {width}x{height}@{fps} + depth "
                              f"{depth_size[0]}x{depth_size[1]} ({e}); is a camera connected "
                              f"(rs-enumerate-devices lists cameras and modes)?") from None
        self._started = True
        try:
            self._scale = float(profile.get_device().first_depth_sensor().get_depth_scale())
            intr = profile.get_stream(rs.stream.color).as_video_stream_profile() \
                .get_intrinsics()
            self._align = rs.align(rs.stream.color)
        except Exception:
            self._close()
            raise
        self._count = 0
        self._setup(name=name, size=(int(intr.width), int(intr.height)), fps=fps,
                    K=K_user if K_user is not None else realsense_K(intr), has_depth=True)

    def _read(self) -> Frame | None:
        deadline = time.monotonic() + self.timeout_s
        while not self._closed:
            try:
                frames = self._pipeline.wait_for_frames(self._poll_ms)
            except RuntimeError as e:
                if self._closed:
                    return None
                if time.monotonic() > deadline:
                    raise SourceLost(f"{self.name} delivered no frame for {self.timeout_s:g} s "
                                     f"(unplugged? {e})") from None
                continue
            t = time.monotonic()
            aligned = self._align.process(frames)
            color, depth = aligned.get_color_frame(), aligned.get_depth_frame()
            if not color or not depth:
                if time.monotonic() > deadline:
                    raise SourceLost(f"{self.name} delivered no complete colour+depth pair for "
                                     f"{self.timeout_s:g} s")
                continue
            frame = realsense_frame(color, depth, self._scale, self.K, t, self._count)
            self._count += 1
            return frame
        return None

    def _close(self) -> None:
        if getattr(self, "_started", False):
            self._started = False
            try:
                self._pipeline.stop()
            except Exception:
                pass


# -- Azure Kinect -----------------------------------------------------------------------------
def k4a_runtime_found() -> bool:
    """True when the k4a runtime library loads the way Open3D looks for it (``libk4a.so`` on
    the loader path or in a ``LD_LIBRARY_PATH`` folder; ``k4a.dll`` on Windows)."""
    if sys.platform == "win32":
        names = ["k4a.dll"] + [os.path.join(os.environ.get("K4A_LIB_DIR", ""), "k4a.dll")]
    else:
        dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
        names = ["libk4a.so"] + [os.path.join(d, "libk4a.so") for d in dirs]
    for n in names:
        try:
            ctypes.CDLL(n)
            return True
        except OSError:
            continue
    return False


def kinect_nominal_K(width: int, height: int) -> np.ndarray:
    """Nominal (uncalibrated) colour intrinsics of an Azure Kinect: 90 deg horizontal FOV."""
    return np.asarray(intrinsics_from_fov(width, height, KINECT_COLOR_HFOV_DEG, "horizontal"),
                      np.float64)


def kinect_frame(rgbd: Any, K: np.ndarray, timestamp: float, index: int) -> Frame:
    """A :class:`Frame` from Open3D's aligned ``RGBDImage`` (colour (H, W, 3) uint8 RGB, depth
    (H, W) uint16 millimetres). Pixels are copied: Open3D reuses one buffer per process."""
    rgb = check_rgb(np.array(rgbd.color, copy=True), "Azure Kinect colour")
    d = _depth_m(rgbd.depth, 0.001, rgb.shape[:2], "Azure Kinect")
    return Frame(rgb=rgb, K=K, depth=d, timestamp=timestamp, index=index)


class KinectSource(FrameSource):
    """An Azure Kinect through Open3D: colour + depth transformed to the colour camera.

    Args:
        index: device index (>= 0).
        resolution: colour image height, a key of :data:`KINECT_RESOLUTIONS` (720 = 1280x720).
        fps: 5, 15 or 30 (3072p and WFOV_UNBINNED allow at most 15).
        depth_mode: one of :data:`KINECT_DEPTH_MODES`.
        K: (3, 3) calibrated colour intrinsics, or None (nominal K, has_K False).
        timeout_s: longest wait for a frame before :class:`SourceLost` (and for the first one).
        sensor: a device object with ``connect(index) -> bool``, ``capture_frame(align) ->
            RGBD image | None`` and ``disconnect()``; None = Open3D's ``AzureKinectSensor``.

    Raises:
        SourceError: open3d or the k4a runtime missing, no device, or no first frame.
    """

    live = True

    def __init__(self, index: int = 0, *, resolution: int = 720, fps: int = 30,
                 depth_mode: str = "NFOV_UNBINNED", K: Any = None, timeout_s: float = 2.0,
                 sensor: Any = None) -> None:
        super().__init__()
        if resolution not in KINECT_RESOLUTIONS:
            raise ValueError(f"resolution must be one of {sorted(KINECT_RESOLUTIONS)} (colour "
                             f"height); got {resolution!r}")
        if fps not in (5, 15, 30):
            raise ValueError(f"fps must be 5, 15 or 30; got {fps!r}")
        if depth_mode not in KINECT_DEPTH_MODES:
            raise ValueError(f"depth_mode must be one of {KINECT_DEPTH_MODES}; got "
                             f"{depth_mode!r}")
        if fps == 30 and (resolution == 3072 or depth_mode == "WFOV_UNBINNED"):
            raise ValueError(f"{resolution}p / {depth_mode} allow at most 15 fps; got 30")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds; got {timeout_s}")
        K_user = check_K(K)
        self.timeout_s = float(timeout_s)
        name = f"Azure Kinect {index}"
        if sensor is None:
            sensor = self._open3d_sensor(resolution, fps, depth_mode)
        self._sensor: Any = sensor
        if not sensor.connect(int(index)):
            self._sensor = None
            raise SourceError(f"{name} could not be opened (not connected, used by another "
                              f"program, or no USB 3 access)")
        self.name = name
        self._count = 0
        rgbd, t = self._capture()
        if rgbd is None:
            self._close()
            raise SourceError(f"{name} opened but delivered no frame in {timeout_s:g} s")
        h, w = np.asarray(rgbd.color).shape[:2]
        self._setup(name=name, size=(w, h), fps=fps,
                    K=K_user if K_user is not None else None, has_depth=True)
        if K_user is None:
            self.K = kinect_nominal_K(w, h)
        self._pending: tuple[Any, float] | None = (rgbd, t)

    @staticmethod
    def _open3d_sensor(resolution: int, fps: int, depth_mode: str) -> Any:
        if not k4a_runtime_found():  # first: cheap, and Open3D aborts the process without it
            raise SourceError(
                "kinect needs the Azure Kinect Sensor SDK runtime (libk4a.so and "
                "libdepthengine.so), which was not found: install Microsoft's k4a packages "
                "(libk4a1.4 and k4a-tools from packages.microsoft.com, plus their udev rules), "
                "or put the folder holding libk4a.so on LD_LIBRARY_PATH")
        try:
            import open3d as o3d
        except ImportError:
            raise SourceError("kinect needs the open3d package (pip install open3d; the "
                              "project pins open3d-cpu)") from None
        config = o3d.io.AzureKinectSensorConfig({
            "color_format": "K4A_IMAGE_FORMAT_COLOR_MJPG",
            "color_resolution": KINECT_RESOLUTIONS[resolution][1],
            "depth_mode": f"K4A_DEPTH_MODE_{depth_mode}",
            "camera_fps": f"K4A_FRAMES_PER_SECOND_{fps}",
            "synchronized_images_only": "true",
        })
        return o3d.io.AzureKinectSensor(config)

    def _capture(self) -> tuple[Any, float]:
        """Poll the device until it delivers or ``timeout_s`` passes ((None, t) then)."""
        deadline = time.monotonic() + self.timeout_s
        while not self._closed:
            rgbd = self._sensor.capture_frame(True)
            t = time.monotonic()
            if rgbd is not None:
                return rgbd, t
            if t > deadline:
                break
            self._stop.wait(0.001)
        return None, time.monotonic()

    def _read(self) -> Frame | None:
        if self._pending is not None:
            rgbd, t = self._pending
            self._pending = None
        else:
            rgbd, t = self._capture()
            if self._closed:
                return None
            if rgbd is None:
                raise SourceLost(f"{self.name} delivered no frame for {self.timeout_s:g} s "
                                 f"(unplugged?)")
        frame = kinect_frame(rgbd, self.K, t, self._count)
        self._count += 1
        return frame

    def _close(self) -> None:
        sensor, self._sensor = getattr(self, "_sensor", None), None
        if sensor is not None:
            try:
                sensor.disconnect()
            except Exception:
                pass
