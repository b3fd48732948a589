"""Source spec strings (the ``SOURCE`` of ``handpose-track``, ``--source`` of the app).

Grammar (case-sensitive keywords; ``W``, ``H``, ``N`` integers, ``FPS`` a number)::

    demo                          the demo recording (real-time, looping by default)
    camera | camera:N             webcam N (default 0)
    camera:N@WxH | camera:N@WxH@FPS   ... asking for a resolution (and a frame rate)
    video:PATH | PATH-to-a-file   a video file; an image file (.jpg, .png, ...) is one frame
    folder:DIR                    image folder (recursive, sorted)
    rgbd:DIR                      RGB-D folder with frames.json (shared/data/real_rgbd format)
    session:DIR                   a recorded session folder
    DIR                           guessed: session.json -> session, frames.json -> rgbd,
                                  else an image folder
    realsense | realsense:SERIAL  Intel RealSense (optionally @WxH[@FPS], default 640x480@30)
    kinect | kinect:N             Azure Kinect N (optionally @WxH[@FPS], default 1280x720@30)

Only these prefixes are keywords, so Windows paths (``C:\\clip.mp4``) and ordinary file names
are paths. A path that does not exist is an error naming it (a keyword typo such as
``camra:0`` lands there too, and the message lists the grammar).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..folder import IMAGE_EXTENSIONS
from ..session import INFO_FILE
from .base import FrameSource, SpecError
from .camera import CameraSource
from .devices import KINECT_RESOLUTIONS, KinectSource, RealSenseSource
from .files import FolderSource, VideoSource
from .replay import SessionSource, open_demo
from .rgbd import RGBDSource

__all__ = ["SourceSpec", "parse_spec", "open_source", "SPEC_HELP"]

SPEC_HELP = ("a source is one of: demo, camera[:N][@WxH[@FPS]], a video or image file, "
             "folder:DIR, rgbd:DIR, session:DIR, a folder, realsense[:SERIAL][@WxH[@FPS]], "
             "kinect[:N][@WxH[@FPS]]")

_DEVICE = re.compile(r"^(camera|realsense|kinect)(?::([^@]+))?"
                     r"(?:@(\d+)x(\d+)(?:@(\d+(?:\.\d+)?))?)?$")
_PATH_KINDS = ("video", "folder", "rgbd", "session")


@dataclass(frozen=True)
class SourceSpec:
    """A parsed spec.

    Attributes:
        kind: "demo", "camera", "video", "folder", "rgbd", "session", "realsense", "kinect".
        text: the spec as given.
        path: the file or folder of file kinds, else None.
        index: camera / Kinect index (0 by default).
        serial: RealSense serial number, or None.
        width, height: requested resolution in pixels, or None.
        fps: requested frame rate, or None.
    """

    kind: str
    text: str
    path: Path | None = None
    index: int = 0
    serial: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None


def _guess_dir(p: Path) -> str:
    if (p / INFO_FILE).is_file():
        return "session"
    if (p / "frames.json").is_file():
        return "rgbd"
    return "folder"


def parse_spec(spec: str | os.PathLike[str]) -> SourceSpec:
    """Parse a spec (module docstring) without opening anything.

    Raises:
        SpecError: a malformed device spec, an empty path, or a bare path that does not exist.
    """
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise SpecError(f"spec must be a string or a path; got {type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise SpecError(f"empty source spec; {SPEC_HELP}")
    if text == "demo":
        return SourceSpec("demo", text)
    head = text.split(":", 1)[0].split("@", 1)[0]
    if head in ("camera", "realsense", "kinect"):
        m = _DEVICE.match(text)
        if m is None:
            raise SpecError(f"cannot parse {text!r}; {SPEC_HELP}")
        kind, arg, w, h, fps = m.groups()
        index, serial = 0, None
        if kind == "realsense":
            serial = arg
        elif arg is not None:
            if not arg.isdigit():
                raise SpecError(f"{text!r}: the {kind} index must be an integer >= 0; got "
                                f"{arg!r}")
            index = int(arg)
        width, height = (None, None) if w is None else (int(w), int(h))
        if width == 0 or height == 0:
            raise SpecError(f"{text!r}: width and height must be > 0")
        rate = None if fps is None else float(fps)
        if rate is not None and rate <= 0:
            raise SpecError(f"{text!r}: the frame rate must be > 0")
        return SourceSpec(kind, text, index=index, serial=serial, width=width, height=height,
                          fps=rate)
    if head in _PATH_KINDS and ":" in text:
        rest = text.split(":", 1)[1]
        if not rest:
            raise SpecError(f"{text!r}: a path is missing after '{head}:'")
        return SourceSpec(head, text, path=Path(rest).expanduser())
    p = Path(text).expanduser()
    if p.is_dir():
        return SourceSpec(_guess_dir(p), text, path=p)
    if p.is_file():
        kind = "folder" if p.suffix.lower() in IMAGE_EXTENSIONS else "video"
        return SourceSpec(kind, text, path=p)
    raise SpecError(f"{text!r}: no such file or folder; {SPEC_HELP}")


def open_source(spec: str | os.PathLike[str] | SourceSpec, *, realtime: bool | None = None,
                loop: bool | None = None, K: Any = None, fps: float | None = None,
                timeout_s: float = 2.0) -> FrameSource:
    """Open the frame source a spec names.

    Args:
        spec: a spec string (module docstring), a path, or a parsed :class:`SourceSpec`.
        realtime: pace replays at their recorded rate; None = True for ``demo``, False for
            other replays (as fast as they decode). Ignored by live sources.
        loop: replay from the start again at the end; None = True for ``demo``, else False.
        K: (3, 3) intrinsics in pixels overriding the source's, or None.
        fps: nominal rate of folders/RGB-D folders (timestamps, pacing) or the override of a
            video's, or None. For cameras the requested rate is in the spec (``@FPS``).
        timeout_s: live sources: longest wait for a frame before ``SourceLost``.

    Returns:
        an open :class:`FrameSource` (close it, or use it as a context manager).

    Raises:
        SpecError: the spec does not parse; SourceError: the source cannot be opened (the
            message names the file/device, or the package to install).
    """
    s = spec if isinstance(spec, SourceSpec) else parse_spec(spec)
    demo = s.kind == "demo"
    rt = demo if realtime is None else bool(realtime)
    lp = demo if loop is None else bool(loop)
    if demo:
        return open_demo(realtime=rt, loop=lp, K=K)
    if s.kind == "camera":
        return CameraSource(s.index, width=s.width, height=s.height, fps=s.fps, K=K,
                            timeout_s=timeout_s)
    if s.kind == "realsense":
        return RealSenseSource(s.width or 640, s.height or 480, int(s.fps or 30),
                               serial=s.serial, K=K, timeout_s=timeout_s)
    if s.kind == "kinect":
        if s.height is not None and KINECT_RESOLUTIONS.get(s.height, (0,))[0] != s.width:
            modes = ", ".join(f"{w}x{h}" for h, (w, _) in sorted(KINECT_RESOLUTIONS.items()))
            raise SpecError(f"{s.text!r}: the Azure Kinect colour modes are {modes}")
        return KinectSource(s.index, resolution=s.height or 720, fps=int(s.fps or 30), K=K,
                            timeout_s=timeout_s)
    assert s.path is not None
    if s.kind == "video":
        return VideoSource(s.path, K=K, fps=fps, realtime=rt, loop=lp)
    if s.kind == "folder":
        return FolderSource(s.path, K=K, fps=fps, realtime=rt, loop=lp)
    if s.kind == "rgbd":
        return RGBDSource(s.path, K=K, fps=fps, realtime=rt, loop=lp)
    if s.kind == "session":
        return SessionSource(s.path, K=K, realtime=rt, loop=lp)
    raise SpecError(f"unknown source kind {s.kind!r}; {SPEC_HELP}")

