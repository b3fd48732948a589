"""``handpose-app``: the desktop app's entry point.

::

    handpose-app [--source SPEC] [--checkpoint PATH] [--device auto|cpu|cuda[:N]]
                 [--settings FILE.ini] [--reset-settings]
                 [--screenshot FILE.png [--screenshot-frames N]]

Without ``--source`` the app starts on the first camera, or on the demo recording when there
is none (or the camera fails to open). Without ``--checkpoint`` it loads the checkpoint of
the last run, else the default ``assets/models/default.pt``; when there is no model it still
shows the video and says so (File > Load checkpoint...). ``--screenshot`` starts with fresh
settings, waits for N frames on screen (N processed by the model when one is loaded), saves
the window as a PNG and exits (0 when frames were shown, 1 otherwise): the README's
screenshot is made with ``handpose-app --source demo --screenshot docs/screenshot.png``
(``make screenshot``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "build_parser", "make_application"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="handpose-app",
                                description="Real-time 3D hand pose estimation: the desktop app.")
    p.add_argument("--source", default=None, metavar="SPEC",
                   help="demo, camera:0[@WxH], a video, folder:DIR, rgbd:DIR, session:DIR, "
                   "realsense, kinect (default: the first camera, else the demo)")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="model checkpoint (.pt or .onnx; default: the last one used, else "
                   "assets/models/default.pt)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda[:N] (default: auto)")
    p.add_argument("--settings", default=None, metavar="FILE",
                   help="keep the settings in this INI file instead of the user's store")
    p.add_argument("--reset-settings", action="store_true", help="start from the defaults")
    p.add_argument("--screenshot", default=None, metavar="PNG",
                   help="save a screenshot of the main window once frames are shown, then exit")
    p.add_argument("--screenshot-frames", type=int, default=60, metavar="N",
                   help="frames to show before the screenshot (default 60)")
    return p


def make_application() -> object:
    """The QApplication (created once), with the environment fixed for PyQt6 + OpenGL.

    ``import cv2`` points ``QT_QPA_PLATFORM_PLUGIN_PATH`` at OpenCV's own Qt plugins, which
    break PyQt6's platform plugin: the variable is removed before Qt starts. OpenGL contexts
    are shared (``AA_ShareOpenGLContexts``).
    """
    os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    import pyqtgraph as pg
    from PyQt6.QtCore import QCoreApplication, Qt
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        # pyqtgraph compiles its shaders once per process: every OpenGL view (the main
        # window's, a second window's) must share one context group
        QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts, True)
        app = QApplication([sys.argv[0] if sys.argv else "handpose-app"])
    app.setApplicationName("handpose-app")
    app.setOrganizationName("handpose")
    pg.setConfigOptions(antialias=False, imageAxisOrder="row-major")
    return app


def _screenshot(window: object, app: object, path: str, frames: int) -> None:
    from PyQt6.QtCore import QTimer

    state = {"done": False}

    def save() -> None:
        if state["done"]:
            return
        state["done"] = True
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        ok = window.screenshot().save(path)  # type: ignore[attr-defined]
        shown = window.ticks_shown  # type: ignore[attr-defined]
        print(f"screenshot {'saved to ' + path if ok else 'NOT saved'} after {shown} frames")
        # close the window first: its closeEvent stops the capture and inference threads;
        # exiting with them running aborted the process now and then ("terminate called
        # without an active exception", status 134) after the screenshot was saved
        window.close()  # type: ignore[attr-defined]
        app.exit(0 if ok and shown > 0 else 1)  # type: ignore[attr-defined]

    def on_frame(_tick: object) -> None:
        w: Any = window
        if w.jobs:  # a model or source still loading
            return
        # with a model: N frames it processed; without: N frames shown
        shown = w.state.frames_processed if w.state.model.loaded else w.ticks_shown
        if shown >= frames:
            QTimer.singleShot(300, save)

    window.frame_shown.connect(on_frame)  # type: ignore[attr-defined]
    QTimer.singleShot(120_000, save)  # give up waiting after two minutes


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.screenshot_frames < 1:
        print("handpose-app: error: --screenshot-frames must be >= 1", file=sys.stderr)
        return 2
    app = make_application()
    from .main_window import MainWindow
    from .settings import load_into, open_settings, restore_window
    from .state import AppState, choose_startup_spec

    state = AppState()
    settings = None
    if args.screenshot is None:
        settings = open_settings(args.settings)
        if args.reset_settings:
            settings.clear()
        for problem in load_into(settings, state):
            print(f"handpose-app: ignoring a bad setting: {problem}", file=sys.stderr)
    if args.device:
        state.device = args.device
    window = MainWindow(state, settings)
    if settings is not None:
        restore_window(settings, window)
    window.show()
    spec, fallback = args.source, None
    if spec is None:
        from handpose.core.data.sources import list_cameras

        spec = choose_startup_spec(None, [c.index for c in list_cameras(max_index=4)])
        fallback = "demo"
    window.open_source(spec, fallback)
    ckpt = args.checkpoint or state.saved_checkpoint or None
    window.load_checkpoint(ckpt, quiet=args.checkpoint is None)
    if args.screenshot:
        _screenshot(window, app, args.screenshot, args.screenshot_frames)
    return int(app.exec())  # type: ignore[attr-defined]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
