"""The main window: video + overlay, 3D view, live plots, status bar, menus.

The GUI thread only draws: frames are read by the capture thread and processed by the
inference thread (:class:`~handpose.app.engine.Engine`, via the Qt bridge of
:mod:`handpose.app.workers`); sources and models are opened by background jobs, so a slow
camera or model never freezes the window. Every failure is reported in a non-modal message
(kept in :attr:`MainWindow.messages`) and the window keeps running.

Recording, export, calibration, annotation and fine-tuning live in
:class:`~handpose.app.window_tools.ToolsMixin`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QCloseEvent
from PyQt6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QSplitter, QVBoxLayout, QWidget

from .dialogs import confirm_model, message
from .engine import Tick
from .export import PoseLog
from .loaders import ModelLoadError, describe_checkpoint, open_model
from .menus import VIEW_TOGGLES, build_menus
from .recording import Recorder
from .scene_data import build_scene
from .settings import save_from
from .sources import open_source_job
from .state import SMOOTHING_LEVELS, AppState, ModelInfo
from .views.plots import PlotsPanel
from .views.replay_bar import ReplayBar
from .views.scene3d import Scene3DView
from .views.status import StatusBar
from .views.video import VideoView
from .window_tools import ToolsMixin
from .workers import BackgroundJob, EngineBridge

__all__ = ["MainWindow"]

_CHECKPOINT_FILTER = "Checkpoints (*.pt *.onnx);;All files (*)"
#: Seconds between refreshes of the status bar and the plots. They are redrawn in the same
#: event-loop pass as a frame: every separate repaint costs a composition of the whole window
#: (expensive with software OpenGL, see benchmarks/app_latency.py).
AUX_PERIOD_S = 0.5


class MainWindow(ToolsMixin, QMainWindow):
    """The app's main window (module docstring).

    Args:
        state: the app state (default: a fresh one).
        settings: a QSettings store to save to on close (None: nothing is saved).
        max_hands: hand slots of the views.
    """

    frame_shown = pyqtSignal(object)  # the Tick just drawn

    def __init__(self, state: AppState | None = None, settings: Any = None,
                 max_hands: int = 2) -> None:
        super().__init__()
        self.state = state or AppState()
        self.settings = settings
        self.setWindowTitle("handpose")
        self.bridge = EngineBridge(self)
        self.engine = self.bridge.engine
        self.bridge.tick_ready.connect(self._on_tick_ready)
        self.bridge.event.connect(self._on_engine_event)
        self.video = VideoView(max_hands)
        self.scene = Scene3DView(max_hands)
        self.plots = PlotsPanel()
        self.replay = ReplayBar()
        self.replay.set_length(None)
        self.replay.play_clicked.connect(self.toggle_pause)
        self.replay.seek_requested.connect(self.seek)
        left = QWidget()
        lay = QVBoxLayout(left)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.video, 1)
        lay.addWidget(self.replay)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.scene)
        right.addWidget(self.plots)
        right.setSizes([420, 300])
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setSizes([700, 500])
        self.setCentralWidget(self.splitter)
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.pose_log = PoseLog()
        self.messages: list[QMessageBox] = []
        self.jobs: set[BackgroundJob] = set()
        self.recorder: Recorder | None = None
        self.last_recording = ""
        self.last_tick: Tick | None = None
        self.source_error = ""
        self.ticks_shown = 0
        self.child_windows: list[QWidget] = []
        self.closed = False
        self.actions = build_menus(self)
        self._aux_at = 0.0  # when the status bar and plots were last refreshed
        self._status_timer = QTimer(self)  # refreshes them when no frame arrives (paused)
        self._status_timer.timeout.connect(self._idle_refresh)
        self._status_timer.start(500)
        self._apply_options()
        self.resize(1280, 760)

    # -- messages and jobs -----------------------------------------------------------------
    def show_message(self, kind: str, title: str, text: str, details: str = "") -> QMessageBox:
        """A non-modal message (kept in :attr:`messages` until closed)."""
        box = message(self, kind, title, text, details)
        self.messages.append(box)
        box.finished.connect(lambda _r, b=box: self.messages.remove(b)
                             if b in self.messages else None)
        return box

    @property
    def last_message(self) -> QMessageBox | None:
        return self.messages[-1] if self.messages else None

    def track_job(self, job: BackgroundJob) -> BackgroundJob:
        """Start ``job`` (its signals must be connected already) and keep it alive until it
        ends."""
        self.jobs.add(job)
        job.done.connect(lambda _o, j=job: self.jobs.discard(j))
        job.failed.connect(lambda _m, j=job: self.jobs.discard(j))
        return job.start()

    # -- sources -----------------------------------------------------------------------------
    def open_source(self, spec: str, fallback: str | None = None) -> BackgroundJob:
        """Open ``spec`` in the background and switch to it (the old source keeps running
        until then); on failure show why and, if given, open ``fallback`` instead."""
        self.status.showMessage(f"Opening {spec} ...", 3000)
        job = open_source_job(spec, self.state.K_override)
        job.done.connect(self._source_opened)
        job.failed.connect(lambda msg, s=spec, f=fallback: self._source_failed(s, msg, f))
        return self.track_job(job)

    def _source_opened(self, payload: tuple[str, Any, Any]) -> None:
        spec, source, info = payload
        if self.closed:  # opened after the window was closed: release it
            source.close()
            return
        if self.recorder is not None:
            self.stop_recording()
        self.engine.start(source)
        self.state.source = info
        self.state.reset_stats()
        self.source_error = ""
        self.pose_log.clear(spec)
        self.replay.set_length(info.length)
        self.replay.set_paused(False)
        self.last_tick = None
        self._update_banner()
        self.refresh_status()

    def _source_failed(self, spec: str, msg: str, fallback: str | None) -> None:
        self.show_message("error", "Cannot open the source", f"{spec}: {msg}")
        if fallback and fallback != spec:
            self.open_source(fallback)
        elif self.engine.source is None:
            self.source_error = f"{spec}: {msg}"
            self._update_banner()

    def restart_source(self) -> None:
        """Reopen the current source (e.g. after a camera came back, or with a new K)."""
        if self.state.source.spec:
            if self.state.source.live:  # a device opens once: release it first
                self.engine.stop()
            self.open_source(self.state.source.spec)

    def toggle_pause(self) -> None:
        if self.engine.source is None:
            return
        if self.engine.paused:
            src, last = self.engine.source, self.last_tick
            if src.seekable and last is not None and last.length and last.position is not \
                    None and last.position >= last.length and not getattr(src, "loop", False):
                self.engine.seek(0)  # play again from the start after the end
            self.engine.resume()
        else:
            self.engine.pause()
        self.replay.set_paused(self.engine.paused)

    def step_frame(self) -> None:
        if self.engine.source is not None:
            self.engine.pause()
            self.replay.set_paused(True)
            self.engine.step()

    def seek(self, index: int) -> None:
        try:
            self.engine.seek(int(index))
        except (ValueError, RuntimeError) as e:
            self.status.showMessage(f"Cannot seek: {e}", 4000)

    def _on_engine_event(self, kind: str, text: str) -> None:
        if kind == "ended":
            self.replay.set_paused(True)
            self.status.showMessage(f"End of {text}", 4000)
            return
        if kind == "inference_error":
            self.show_message("warning", "The model failed on a frame", text +
                              "\n\nThe video keeps running; frames the model cannot process "
                              "are shown without hands.")
            return
        if self.recorder is not None:
            self.stop_recording()
        self.engine.stop()  # release the device; the window keeps its last frame
        what = "The camera stopped delivering frames" if kind == "lost" else \
            "The source failed"
        self.source_error = f"{what}: {text}"
        self.show_message("error", what, f"{text}\n\nThe app keeps running: choose another "
                          "source (File > Open source) or reopen this one (Capture > "
                          "Restart the source, F5).")
        self._update_banner()

    # -- model -------------------------------------------------------------------------------
    def load_checkpoint(self, path: str | None, quiet: bool = False) -> BackgroundJob:
        """Validate and load a checkpoint in the background (None: the default checkpoint).

        On failure an error dialog names the problem (``quiet``: only the banner does) and
        the current model, if any, stays in use.
        """
        device, threads = self.state.device, self.state.model_threads

        def run(progress: Any, cancelled: Any) -> Any:
            return open_model(path, device, threads=threads)

        job = BackgroundJob(run, name="load-model")
        job.done.connect(lambda payload: self.set_estimator(*payload))
        job.failed.connect(lambda msg, q=quiet: self._model_failed(msg, q))
        self.status.showMessage(f"Loading {path or 'the default checkpoint'} ...", 5000)
        return self.track_job(job)

    def set_estimator(self, estimator: Any, info: ModelInfo) -> None:
        """Use ``estimator`` (anything with ``process(frame)``) from the next frame on."""
        if self.closed:  # loaded after the window was closed
            if hasattr(estimator, "close"):
                estimator.close()
            return
        self.engine.set_model(estimator)
        self.engine.set_options(self.state.pipeline.estimator_options())
        self.state.model = info
        self._update_banner()
        self.refresh_status()

    def _model_failed(self, msg: str, quiet: bool) -> None:
        if not self.state.model.loaded:
            self.state.model = ModelInfo(error=msg)
        if not quiet:
            self.show_message("error", "Cannot load the checkpoint", msg)
        self._update_banner()

    def choose_checkpoint(self) -> None:
        start = self.state.last_dirs.get("checkpoint", "")
        path, _ = QFileDialog.getOpenFileName(self, "Load checkpoint", start, _CHECKPOINT_FILTER)
        if not path:
            return
        self.state.last_dirs["checkpoint"] = str(path)
        try:
            _name, card = describe_checkpoint(path)
        except ModelLoadError as e:
            self.show_message("error", "Cannot load the checkpoint", str(e))
            return
        if confirm_model(self, path, card):
            self.load_checkpoint(path)

    def unload_model(self) -> None:
        self.engine.set_model(None)
        self.state.model = ModelInfo(error="the model was unloaded")
        self._update_banner()

    def _update_banner(self) -> None:
        if self.engine.source is None:
            text = f"No source. {self.source_error}" if self.source_error else ""
        elif self.source_error:
            text = self.source_error
        elif self.state.model.loaded:
            text = ""
            if self.state.model.right_hands_only and not self.state.pipeline.mirror_left:
                text = (f"{self.state.model.name} was trained on right hands only: left hands "
                        "are read badly unless View > Mirror left hands for the network is on.")
        else:
            why = self.state.model.error.split(": ", 1)[0] if self.state.model.error else ""
            if len(why) > 160:
                why = why[:157] + "..."
            text = "No model loaded: hands are not tracked. "
            if self.engine.show_recorded and hasattr(self.engine.source, "reader"):
                text = "No model loaded: showing what the session holds (its recorded poses, " \
                       "else its labels; dashed). "
            text += "File > Load checkpoint... to track." + (f" ({why})" if why else "")
        self.video.set_banner(text)
        self.video.banner.setToolTip(self.state.model.error)

    # -- drawing -----------------------------------------------------------------------------
    def _on_tick_ready(self) -> None:
        tick = self.bridge.take()
        if tick is not None:
            self._draw(tick)

    def _draw(self, tick: Tick) -> None:
        now = time.monotonic()
        r = tick.result
        view = self.state.view
        self.video.show_frame(r.frame.rgb, r.hands, view.overlay, tick.origin)
        self.scene.show_scene(tick.scene, view)
        if tick is not self.last_tick:
            self.state.record_result(now, r, tick.processed, now - tick.captured_at)
            if tick.processed:
                self.pose_log.add(r)
            if tick.length is not None and tick.position is not None:
                shown = min(max(tick.position - 1, 0), tick.length - 1)
                self.replay.set_position(shown, tick.length)
            self.ticks_shown += 1
        self.last_tick = tick
        if now - self._aux_at >= AUX_PERIOD_S:
            self.refresh_status()  # in the same event-loop pass: one repaint of the window
        self.frame_shown.emit(tick)

    def _idle_refresh(self) -> None:
        if time.monotonic() - self._aux_at >= 2 * AUX_PERIOD_S:
            self.refresh_status()

    def refresh_status(self) -> None:
        """Status bar, plots and the recording line (a few times a second)."""
        now = time.monotonic()
        self._aux_at = now
        self.status.set_fields(self.state.status_fields(now))
        if self.state.view.plots:
            self.plots.refresh(self.state.history, now)
        self.refresh_recording()

    # -- options -----------------------------------------------------------------------------
    def _apply_options(self) -> None:
        v, p = self.state.view, self.state.pipeline
        self.engine.spheres, self.engine.cloud = v.spheres, v.point_cloud
        self.engine.show_recorded = p.show_recorded
        self.engine.set_options(p.estimator_options())
        self.plots.setVisible(v.plots)
        self.scene.apply_view(v)
        for name, field, _t, _k in VIEW_TOGGLES:
            self._set_checked(name, getattr(v, field))
        self._set_checked("correct", p.correct)
        self._set_checked("fit_depth", p.fit_depth)
        self._set_checked("show_recorded", p.show_recorded)
        for level, strength in SMOOTHING_LEVELS.items():
            self._set_checked(f"smoothing_{level}", abs(p.smoothing - strength) < 1e-9)

    def _set_checked(self, name: str, on: bool) -> None:
        a = self.actions.get(name)
        if a is not None and a.isChecked() != on:
            a.blockSignals(True)
            a.setChecked(on)
            a.blockSignals(False)

    def set_view_option(self, name: str, on: bool) -> None:
        """Switch a view toggle (a :class:`~handpose.app.state.ViewOptions` field)."""
        self.state.view = replace(self.state.view, **{name: bool(on)})
        self._apply_options()
        last = self.last_tick
        if last is not None:  # redraw now, also while paused
            v = self.state.view
            scene = build_scene(last.result, spheres=v.spheres, cloud=v.point_cloud)
            self._draw(replace(last, scene=scene))

    def set_pipeline_option(self, **options: Any) -> bool:
        """Change pipeline options (:class:`~handpose.app.state.PipelineOptions` fields)."""
        try:
            self.state.pipeline = replace(self.state.pipeline, **options)
        except (ValueError, TypeError) as e:
            self.show_message("error", "Invalid option", str(e))
            return False
        self._apply_options()
        self._update_banner()
        return True

    # -- shutdown ----------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        self.closed = True
        if self.recorder is not None:
            self.stop_recording(wait=True)
        for w in list(self.child_windows):
            w.close()
        self._status_timer.stop()
        self.bridge.close()
        for job in list(self.jobs):
            job.cancel()
        if self.settings is not None:
            save_from(self.settings, self.state, self)
        super().closeEvent(event)
