"""The main window's tools: source dialogs, recording, pose export, calibration,
annotation, fine-tuning, screenshots.

A mixin of :class:`~handpose.app.main_window.MainWindow` (it uses the window's ``engine``,
``state``, ``status``, ``show_message`` ...). Recording stops without blocking the GUI: the
recorder drains its queue in its own thread and :meth:`ToolsMixin.refresh_recording` (run by
the status timer) finishes it; a recording that fails (a full disk) is reported there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt6.QtCore import QPoint, QRect
from PyQt6.QtGui import QImage, QPainter
from PyQt6.QtWidgets import QFileDialog

from handpose.core.data.errors import SessionWriteError

from .dialogs import AboutDialog, HandSizeDialog, about_text, format_K
from .export import export_poses
from .intrinsics import INTRINSICS_FILTER, IntrinsicsError, load_intrinsics
from .recording import Recorder, RecordingStatus, new_session_path
from .sources import VIDEO_FILTER, SourceDialog, spec_for_path
from .workers import BackgroundJob

__all__ = ["ToolsMixin", "DEFAULT_RECORDINGS_DIR", "CALIBRATION_FRAMES"]

#: Where sessions are recorded unless the user chose a folder.
DEFAULT_RECORDINGS_DIR = Path.home() / "handpose-sessions"
#: Frames collected to measure the user's hand proportions.
CALIBRATION_FRAMES = 20


class ToolsMixin:
    """Recording, export, calibration, annotation and fine-tuning (module docstring)."""

    state: Any
    engine: Any
    status: Any
    recorder: Recorder | None
    last_recording: str
    actions: dict[str, Any]
    child_windows: list[Any]

    # -- sources ---------------------------------------------------------------------------
    def choose_source(self) -> None:
        from handpose.core.data.sources import list_cameras

        dlg = SourceDialog(list_cameras(), self.state.last_dirs.get("source", ""), self)
        if dlg.exec() and dlg.spec:
            self.open_source(dlg.spec)

    def choose_path(self, kind: str) -> None:
        start = self.state.last_dirs.get(kind, "")
        if kind == "video":
            path, _ = QFileDialog.getOpenFileName(self, "Open video", start, VIDEO_FILTER)
        else:
            path = QFileDialog.getExistingDirectory(self, f"Open {kind} folder", start)
        if path:
            self.state.last_dirs[kind] = path
            self.open_source(spec_for_path(kind, path))

    # -- recording -------------------------------------------------------------------------
    def set_recording(self, on: bool) -> None:
        if on:
            self.start_recording()
        else:
            self.stop_recording()

    def start_recording(self, path: str | Path | None = None) -> Recorder | None:
        """Record every captured frame (and its result) to a new session folder."""
        src = self.engine.source
        if src is None:
            self.show_message("error", "Cannot record", "There is no source to record.")
            self._set_checked("record", False)
            return None
        folder = Path(self.state.recordings_dir or DEFAULT_RECORDINGS_DIR)
        target = Path(path) if path is not None else new_session_path(folder)
        info = self.state.source
        try:
            rec = Recorder(target, K=src.K, K_calibrated=bool(info.has_K), source=info.spec,
                           model_version=self.state.model.checkpoint or "",
                           extra={"recorded_by": "handpose-app", "model": self.state.model.name})
        except (OSError, ValueError) as e:
            why = e.strerror if isinstance(e, SessionWriteError) and e.strerror else str(e)
            self.show_message("error", "Cannot record", f"Cannot create the session {target}: "
                              f"{why}")
            self._set_checked("record", False)
            return None
        self.recorder = rec
        self.engine.attach_recorder(rec)
        self._set_checked("record", True)
        self.status.showMessage(f"Recording to {target}", 4000)
        return rec

    def stop_recording(self, wait: bool = False) -> RecordingStatus | None:
        """Stop recording; the queued frames are still written (``wait``: block until then)."""
        rec = self.recorder
        if rec is None:
            return None
        rec.request_stop()
        self._set_checked("record", False)
        if wait:
            rec.stop()
            return self._finish_recording()
        self.refresh_recording()
        return rec.status()

    def _finish_recording(self) -> RecordingStatus | None:
        rec = self.recorder
        if rec is None:
            return None
        st = rec.stop()
        self.engine.attach_recorder(None)
        self.recorder = None
        self.last_recording = st.path
        self._set_checked("record", False)
        self.status.set_recording("")
        if st.error:
            self.show_message(
                "error", "Recording stopped",
                f"{st.error}\n\n{st.written} frames were recorded to {st.path}; the session is "
                f"valid up to its last complete frame and can be replayed or annotated.")
        else:
            self.status.showMessage(f"Recorded {st.written} frames to {st.path}", 8000)
        return st

    def refresh_recording(self) -> None:
        """Show the recording line; finish a recording that stopped or failed."""
        rec = self.recorder
        if rec is None:
            return
        st = rec.status()
        if rec.finished:
            self._finish_recording()
            return
        text = st.text() if st.running else f"finishing the recording ({st.queued} queued)"
        self.status.set_recording(text, problem=st.blocked_events > 0)

    def choose_recording_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Recording folder",
                                                self.state.recordings_dir or str(Path.home()))
        if path:
            self.state.recordings_dir = path

    # -- export ----------------------------------------------------------------------------
    def choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export poses", self.state.last_dirs.get("export", "poses.csv"),
            "CSV (*.csv);;JSON (*.json);;JSON lines (*.jsonl)")
        if path:
            self.state.last_dirs["export"] = path
            self.export_poses_to(path)

    def export_poses_to(self, path: str | Path) -> int:
        """Write the poses tracked so far; returns the frame count (0 on failure)."""
        try:
            n = export_poses(path, self.pose_log)
        except (ValueError, OSError) as e:
            self.show_message("error", "Cannot export poses", str(e))
            return 0
        self.status.showMessage(f"Exported the poses of {n} frames to {path}", 6000)
        return n

    # -- calibration -----------------------------------------------------------------------
    def choose_hand_size(self) -> None:
        dlg = HandSizeDialog(self.state.pipeline.hand_length_m, self.state.model.loaded, self)
        if not dlg.exec():
            return
        if self.set_pipeline_option(hand_length_m=dlg.result_length, hand_bones=None) and \
                dlg.measure_requested:
            self.measure_hand(dlg.result_length)

    def measure_hand(self, hand_length_m: float | None, frames: int = CALIBRATION_FRAMES
                     ) -> None:
        """Collect the next ``frames`` frames, then measure the user's bone lengths with
        :func:`~handpose.core.inference.calibration.calibrate_hand_size` (own estimator)."""
        ckpt, device = self.state.model.checkpoint, self.state.device
        collected: list[Any] = []

        def collect(tick: Any) -> None:
            collected.append(tick.result.frame)
            if len(collected) < frames:
                return
            self.frame_shown.disconnect(collect)

            def run(progress: Any, cancelled: Any) -> Any:
                from handpose.core.inference.calibration import calibrate_hand_size

                from .loaders import open_model

                est, _info = open_model(ckpt, device)
                with est:
                    return calibrate_hand_size(collected, est, hand_length_m)

            job = BackgroundJob(run, name="calibrate")
            job.done.connect(lambda bones: self.set_pipeline_option(
                hand_bones=tuple(float(b) for b in bones)) and self.status.showMessage(
                "Hand size calibrated", 5000))
            job.failed.connect(lambda msg: self.show_message("error", "Hand calibration", msg))
            self.track_job(job)

        self.frame_shown.connect(collect)
        self.status.showMessage("Hold a flat open hand facing the camera ...", 5000)

    def choose_intrinsics(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Camera intrinsics",
                                              self.state.last_dirs.get("intrinsics", ""),
                                              INTRINSICS_FILTER)
        if path:
            self.state.last_dirs["intrinsics"] = str(Path(path).parent)
            self.load_intrinsics_file(path)

    def load_intrinsics_file(self, path: str | Path) -> bool:
        """Use the camera matrix of ``path`` for the current source (reopened with it)."""
        size = self.state.source.size if self.state.source.size != (0, 0) else None
        try:
            K = load_intrinsics(path, size)
        except IntrinsicsError as e:
            self.show_message("error", "Cannot use these intrinsics", str(e))
            return False
        self.state.K_override, self.state.K_file = K, str(path)
        self.restart_source()
        return True

    def use_device_intrinsics(self) -> None:
        """Drop the intrinsics override: the source's own K (device, file, or default)."""
        self.state.K_override, self.state.K_file = None, ""
        self.restart_source()

    def show_intrinsics(self) -> None:
        src = self.engine.source
        if src is None:
            self.show_message("info", "Camera intrinsics", "No source is open.")
            return
        origin = "from a file: " + self.state.K_file if self.state.K_override is not None else \
            "from the source (device or recording)" if src.has_K else \
            "a default guess (no calibration): load a calibration for metric accuracy"
        self.show_message("info", "Camera intrinsics",
                          f"{src.name}, {src.size[0]} x {src.size[1]} px\nK ({origin}):\n"
                          f"{format_K(src.K)}")

    # -- annotation, fine-tuning, about -----------------------------------------------------
    def open_annotation(self, path: str | Path | None = None) -> Any:
        from .annotate_window import AnnotationWindow

        win = AnnotationWindow(self.state, checkpoint=self.state.model.checkpoint)
        self.child_windows.append(win)
        win.destroyed.connect(lambda _=None, w=win: self.child_windows.remove(w)
                              if w in self.child_windows else None)
        win.show()
        if path is not None:
            win.open_session(str(path))
        else:
            win.choose_session()
        return win

    def annotate_last_recording(self) -> Any:
        if not self.last_recording:
            self.show_message("info", "Annotate", "Nothing was recorded in this run yet.")
            return None
        return self.open_annotation(self.last_recording)

    def open_finetune(self) -> Any:
        from .finetune_dialog import FinetuneDialog

        dlg = FinetuneDialog(self.state, checkpoint=self.state.model.checkpoint, parent=self)
        dlg.model_ready.connect(self._offer_finetuned)
        self.child_windows.append(dlg)
        dlg.show()
        return dlg

    def _offer_finetuned(self, path: str) -> None:
        self.load_checkpoint(path)

    def show_about(self) -> Any:
        dlg = AboutDialog(about_text(self.state.model.card, self.state.model.device), self)
        dlg.show()
        return dlg

    # -- window ------------------------------------------------------------------------------
    def screenshot(self) -> QImage:
        """The window as on screen, the 3D view (a native child window) pasted in."""
        img = self.grab().toImage()
        view = self.scene.container
        if view.isVisible():
            pos = view.mapTo(self, QPoint(0, 0))
            gl_img = self.scene.grab_image()
            dpr = img.devicePixelRatio() or 1.0
            painter = QPainter(img)
            painter.drawImage(QRect(pos, view.size()), gl_img,
                              QRect(0, 0, int(view.width() * dpr), int(view.height() * dpr)))
            painter.end()
        return img

    def toggle_fullscreen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()
