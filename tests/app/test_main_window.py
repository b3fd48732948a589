"""The main window under Xvfb (pytest-qt): starts on the demo, processes frames, draws a 3D
scene, toggles change what is drawn, records a session that replays, survives a corrupt
checkpoint, a lost camera and a full disk, and never blocks on inference."""

from __future__ import annotations

import errno
import time

import numpy as np
import pytest
from app_helpers import LostCamera, StandInEstimator

import handpose.core.data.session_writer as session_writer
from handpose.app.state import ModelInfo
from handpose.core.data.session_reader import SessionReader
from handpose.core.data.sources import SessionSource

pytestmark = pytest.mark.gui
WAIT = 60_000  # ms; generous, the CPU is shared


def _start(window, qtbot, estimator=None):
    window.open_source("demo")
    qtbot.waitUntil(lambda: window.state.source.spec == "demo" and window.last_tick is not None,
                    timeout=WAIT)
    if estimator is not None:
        window.set_estimator(estimator, ModelInfo(checkpoint="stand-in", name="stand-in",
                                                  device="test"))
        qtbot.waitUntil(lambda: window.state.frames_processed >= 3, timeout=WAIT)
    else:
        qtbot.waitUntil(lambda: window.ticks_shown >= 3, timeout=WAIT)


def _lit(img: np.ndarray, background: np.ndarray) -> int:
    """Pixels that differ from the background colour."""
    return int(np.any(np.abs(img[..., :3].astype(int) - background) > 12, axis=-1).sum())


def test_starts_on_the_demo_and_processes_frames(window, qtbot, stand_in):
    _start(window, qtbot, stand_in)
    n = window.state.frames_processed
    qtbot.waitUntil(lambda: window.state.frames_processed >= n + 10, timeout=WAIT)
    assert window.state.source.spec == "demo" and window.state.source.has_depth
    assert window.engine.model.calls > 0  # the estimator really ran
    tick = window.last_tick
    assert tick.origin == "model" and len(tick.result.hands) == 1
    assert window.video.overlay_visible()
    assert window.scene.slots[0].spheres.visible() and window.scene.cloud.visible()
    fields = window.state.status_fields(time.monotonic())
    assert fields["model"] == "stand-in" and float(fields["fps"].split()[0]) > 0
    assert window.video.banner.isHidden()  # no "no model" message with a model


def test_3d_framebuffer_not_blank_and_toggles_change_it(window, qtbot, stand_in):
    _start(window, qtbot, stand_in)
    window.engine.pause()  # a still frame: only the toggles change the picture
    qtbot.waitUntil(lambda: window.bridge.take() is None and window.last_tick is not None,
                    timeout=WAIT)
    bg = np.array([28, 24, 22])  # BGRA order of the (22, 24, 28) background

    def render() -> np.ndarray:
        window.scene.reset_view()
        return np.asarray(window.scene.renderToArray((320, 240)))

    full = render()
    lit_full = _lit(full, bg)
    assert lit_full > 2000  # grid, camera, skeleton, spheres, point cloud
    window.actions["view_spheres"].trigger()
    assert not window.state.view.spheres and not window.scene.slots[0].spheres.visible()
    no_spheres = render()
    assert not np.array_equal(no_spheres, full)
    window.actions["view_cloud"].trigger()
    assert not window.scene.cloud.visible()
    no_cloud = render()
    assert _lit(no_cloud, bg) < _lit(no_spheres, bg)
    window.actions["view_spheres"].trigger()
    window.actions["view_cloud"].trigger()
    assert np.array_equal(render() != 0, full != 0) or _lit(render(), bg) == lit_full
    window.actions["view_overlay"].trigger()
    assert not window.video.overlay_visible()
    window.actions["view_overlay"].trigger()
    assert window.video.overlay_visible()
    window.actions["view_plots"].trigger()
    assert window.plots.isHidden()


def test_pipeline_toggles_reach_the_estimator(window, qtbot, stand_in):
    _start(window, qtbot, stand_in)
    window.actions["correct"].trigger()
    window.actions["smoothing_off"].trigger()
    window.actions["fit_depth"].trigger()
    window.actions["mirror_left"].trigger()
    qtbot.waitUntil(lambda: window.engine.model.options.get("correct") is False and
                    window.engine.model.options.get("smoothing", 1) is None and
                    window.engine.model.options.get("fit_depth") is True and
                    window.engine.model.options.get("mirror_left") is False, timeout=WAIT)


def test_banner_warns_when_a_right_hands_model_is_not_shown_left_hands_mirrored(window, qtbot,
                                                                               stand_in):
    window.open_source("demo")
    qtbot.waitUntil(lambda: window.last_tick is not None, timeout=WAIT)
    window.set_estimator(stand_in, ModelInfo(checkpoint="r.pt", name="r.pt", device="test",
                                             right_hands_only=True))
    assert window.video.banner.text() == ""  # mirrored by default: nothing to say
    window.actions["mirror_left"].trigger()
    assert "right hands only" in window.video.banner.text()
    window.actions["mirror_left"].trigger()
    assert window.video.banner.text() == ""


def test_record_two_seconds_gives_a_valid_session_that_replays(window, qtbot, stand_in,
                                                               tmp_path):
    _start(window, qtbot, stand_in)
    rec = window.start_recording(tmp_path / "rec")
    assert rec is not None and window.actions["record"].isChecked()
    qtbot.waitUntil(lambda: rec.status().elapsed_s >= 2.0, timeout=WAIT)
    assert window.status.recording.isVisible() and "REC" in window.status.recording.text()
    window.actions["record"].trigger()  # stop: drains in the background
    qtbot.waitUntil(lambda: window.recorder is None, timeout=WAIT)
    st = rec.status()
    assert st.error == "" and st.written == st.offered and st.written >= 20
    r = SessionReader(tmp_path / "rec")
    assert len(r) == st.written and r.info.source == "demo"
    assert np.allclose(r.info.K, [[300, 0, 159.5], [0, 300, 119.5], [0, 0, 1]])
    assert any(rec_.processed for rec_ in r.records)  # predictions were recorded
    frames = list(SessionSource(tmp_path / "rec"))
    assert len(frames) == st.written and all(f.depth is not None for f in frames)
    assert window.last_recording == str(tmp_path / "rec")


def test_corrupt_checkpoint_shows_an_error_and_the_app_keeps_running(window, qtbot,
                                                                     tmp_path, stand_in):
    _start(window, qtbot, stand_in)
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"PK\x03\x04 this is no checkpoint" * 10)
    job = window.load_checkpoint(str(bad))
    qtbot.waitUntil(lambda: window.last_message is not None, timeout=WAIT)
    assert job.finished
    box = window.last_message
    assert "Cannot load" in box.windowTitle() and str(bad) in box.text()
    assert window.state.model.name == "stand-in"  # the working model stays
    n = window.ticks_shown
    qtbot.waitUntil(lambda: window.ticks_shown > n + 5, timeout=WAIT)
    box.close()


def test_no_model_is_said_plainly(window, qtbot, tmp_path):
    window.load_checkpoint(str(tmp_path / "missing.pt"), quiet=True)
    _start(window, qtbot)
    qtbot.waitUntil(lambda: "No model" in window.video.banner.text(), timeout=WAIT)
    assert "recorded poses" in window.video.banner.text()  # the demo replays its poses
    assert window.last_tick.origin == "recorded"
    window.actions["show_recorded"].trigger()
    qtbot.waitUntil(lambda: window.last_tick.origin == "none", timeout=WAIT)
    assert "hands are not tracked" in window.video.banner.text()
    assert not window.video.overlay_visible()


def test_lost_camera_shows_a_message_and_the_app_stays_up(window, qtbot):
    from handpose.app.loaders import describe_source

    cam = LostCamera(8)
    window._source_opened(("camera:7", cam, describe_source("camera:7", cam)))
    qtbot.waitUntil(lambda: window.last_message is not None, timeout=WAIT)
    assert "stopped delivering" in window.last_message.text()
    assert "stopped delivering" in window.video.banner.text()
    assert window.engine.source is None and cam.closed  # the device was released
    window.last_message.close()
    _start(window, qtbot)  # and another source works
    assert window.video.banner.text() == "" or "No model" in window.video.banner.text()


def test_disk_full_while_recording_is_reported_and_the_session_valid(window, qtbot, tmp_path,
                                                                     monkeypatch):
    _start(window, qtbot)
    real = session_writer._write_all
    budget = {"bytes": 400_000}

    def filling_disk(fd: int, data: bytes) -> None:
        budget["bytes"] -= len(data)
        if budget["bytes"] < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(session_writer, "_write_all", filling_disk)
    rec = window.start_recording(tmp_path / "full")
    qtbot.waitUntil(lambda: window.recorder is None, timeout=WAIT)
    assert not window.actions["record"].isChecked()
    box = window.last_message
    assert box is not None and "disk full" in box.text() and "valid" in box.text()
    monkeypatch.setattr(session_writer, "_write_all", real)
    n = rec.status().written
    assert n > 0 and len(list(SessionSource(tmp_path / "full"))) == n
    t = window.ticks_shown
    qtbot.waitUntil(lambda: window.ticks_shown > t + 3, timeout=WAIT)  # still running


def test_gui_thread_never_waits_for_inference(window, qtbot, demo_session):
    from handpose.app.latency import EventLoopProbe

    slow = StandInEstimator(demo_session, delay_s=0.4)  # a model far slower than the video
    _start(window, qtbot, slow)
    probe = EventLoopProbe(10)
    probe.start()
    n = window.state.frames_processed
    qtbot.waitUntil(lambda: window.state.frames_processed >= n + 4, timeout=WAIT)
    probe.stop()
    s = probe.summary()
    # each inference takes 400 ms; a GUI thread waiting for it would be late by that much
    assert s["n"] > 50 and s["p95"] < 200.0, s


def test_replay_pause_step_and_seek(window, qtbot):
    _start(window, qtbot)
    window.toggle_pause()
    assert window.engine.paused and window.replay.button.text() == "Play"
    window.seek(12)
    qtbot.waitUntil(lambda: window.last_tick.result.frame.index == 12, timeout=WAIT)
    assert window.replay.slider.value() == 12 and window.replay.label.text() == "13 / 30"
    window.step_frame()
    qtbot.waitUntil(lambda: window.last_tick.result.frame.index == 13, timeout=WAIT)
    window.toggle_pause()
    assert not window.engine.paused


def test_export_poses(window, qtbot, stand_in, tmp_path):
    _start(window, qtbot, stand_in)
    qtbot.waitUntil(lambda: len(window.pose_log) >= 5, timeout=WAIT)
    n = window.export_poses_to(tmp_path / "poses.csv")
    rows = (tmp_path / "poses.csv").read_text().splitlines()
    assert n >= 5 and len(rows) >= 1 + 21 * 5 and rows[0].startswith("index,timestamp")
    assert window.export_poses_to(tmp_path / "poses.txt") == 0  # unknown suffix: an error
    assert "must end in" in window.last_message.text()


def test_hand_size_and_intrinsics_reach_the_pipeline(window, qtbot, stand_in, tmp_path):
    import json

    _start(window, qtbot, stand_in)
    assert window.set_pipeline_option(hand_length_m=0.2)
    qtbot.waitUntil(lambda: window.engine.model.options.get("hand_scale") is not None,
                    timeout=WAIT)
    assert window.engine.model.options["hand_scale"].shape == (20,)
    assert not window.set_pipeline_option(hand_length_m=0.9)  # refused with a message
    assert "hand_length_m" in window.last_message.text()
    K = [[320.0, 0.0, 160.0], [0.0, 310.0, 120.0], [0.0, 0.0, 1.0]]
    (tmp_path / "K.json").write_text(json.dumps({"K": K}))
    assert window.load_intrinsics_file(tmp_path / "K.json")  # reopens the source with it
    qtbot.waitUntil(lambda: window.engine.source is not None and
                    np.allclose(window.engine.source.K, K), timeout=WAIT)
    qtbot.waitUntil(lambda: window.last_tick is not None and
                    np.allclose(window.last_tick.result.frame.K, K), timeout=WAIT)
    window.use_device_intrinsics()
    qtbot.waitUntil(lambda: window.engine.source is not None and
                    np.allclose(window.engine.source.K[0, 0], 300.0), timeout=WAIT)


def test_about_names_versions_and_the_model(window, qtbot, stand_in):
    _start(window, qtbot, stand_in)
    dlg = window.show_about()
    text = dlg.text.toPlainText()
    assert "torch" in text and "PyQt6" in text and "onnxruntime" in text and "test" in text
    dlg.close()


def test_source_dialog_builds_specs(gui, qtbot, tmp_path):
    from handpose.app.sources import SourceDialog
    from handpose.core.data.sources import CameraInfo

    cams = [CameraInfo(0, ((640, 480), (1280, 720)), "V4L2"), CameraInfo(2, ((640, 480),),
                                                                           "V4L2")]
    d = SourceDialog(cams)
    qtbot.addWidget(d)
    assert d.chosen_spec() == "camera:0"
    d.resolution.setCurrentIndex(d.resolution.findData("1280x720"))
    assert d.chosen_spec() == "camera:0@1280x720"
    d.camera.setCurrentIndex(1)
    assert d.chosen_spec() == "camera:2" and d.resolution.count() == 2
    d.paths["video"].setText(str(tmp_path / "clip.mp4"))
    d.radios["video"].setChecked(True)
    assert d.chosen_spec() == f"video:{tmp_path / 'clip.mp4'}"
    d.radios["kinect"].setChecked(True)
    assert d.chosen_spec() == "kinect"
    none = SourceDialog([])
    qtbot.addWidget(none)
    assert none.chosen_spec() == "demo" and not none.radios["camera"].isEnabled()
