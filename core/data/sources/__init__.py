"""Frame sources: everything the runtime pipeline, ``handpose-track`` and the app read from.

``open_source(spec)`` opens a source from a spec string (``demo``, ``camera:0@1280x720``, a
video, ``folder:DIR``, ``rgbd:DIR``, ``session:DIR``, ``realsense``, ``kinect``; see
:mod:`.spec`). Every source is a :class:`FrameSource`: an iterator of
:class:`~handpose.core.types.Frame` and a context manager (contract in :mod:`.base`).
"""

from .arrays import ArraySource
from .base import DEFAULT_FPS, FrameSource, ReplaySource, SourceError, SourceLost, SpecError
from .camera import CameraInfo, CameraSource, list_cameras
from .devices import KinectSource, RealSenseSource, k4a_runtime_found
from .files import FolderSource, VideoSource
from .replay import DEMO_ENV, SessionSource, demo_dir, open_demo
from .rgbd import RGBDSource
from .spec import SPEC_HELP, SourceSpec, open_source, parse_spec

__all__ = [
    "open_source",
    "parse_spec",
    "SourceSpec",
    "SPEC_HELP",
    "FrameSource",
    "ReplaySource",
    "SourceError",
    "SourceLost",
    "SpecError",
    "DEFAULT_FPS",
    "ArraySource",
    "CameraSource",
    "CameraInfo",
    "list_cameras",
    "VideoSource",
    "FolderSource",
    "RGBDSource",
    "SessionSource",
    "open_demo",
    "demo_dir",
    "DEMO_ENV",
    "RealSenseSource",
    "KinectSource",
    "k4a_runtime_found",
]
