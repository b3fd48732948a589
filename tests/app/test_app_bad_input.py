"""Bad input through every File dialog of the app: each unreadable file gives a message
naming it, and the app keeps running. A session with a torn last line replays."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PyQt6.QtWidgets import QFileDialog

pytestmark = pytest.mark.gui
WAIT = 60_000


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    garbage = bytes(range(256)) * 40
    d = {"video": tmp_path / "clip.mp4", "folder": tmp_path / "empty",
         "rgbd": tmp_path / "rgbd", "session": tmp_path / "sess",
         "checkpoint": tmp_path / "model.pt", "intrinsics": tmp_path / "K.json",
         "export": tmp_path / "no" / "such" / "folder" / "poses.csv",
         "recordings": tmp_path / "a-file"}
    d["video"].write_bytes(garbage)
    d["folder"].mkdir()
    d["rgbd"].mkdir()
    (d["rgbd"] / "frames.json").write_text('{"frames": [{"rgb": "missing.jpg"')
    d["session"].mkdir()
    (d["session"] / "session.json").write_text('{"format": "something else"}')
    d["checkpoint"].write_bytes(garbage)
    d["intrinsics"].write_text('{"K": "three by three"}')
    d["recordings"].write_text("a file where a folder should be")
    return d


def _patch_dialogs(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(path))


@pytest.mark.parametrize("action,key,words", [
    ("open_video", "video", "clip.mp4"),
    ("open_folder", "folder", "empty"),
    ("open_rgbd", "rgbd", "frames.json"),
    ("open_session", "session", "sess"),
    ("load_checkpoint", "checkpoint", "model.pt"),
    ("intrinsics_file", "intrinsics", "K.json"),
])
def test_unreadable_files_in_file_dialogs(window, qtbot, monkeypatch, bad_files, action, key,
                                          words):
    window.open_source("demo")
    qtbot.waitUntil(lambda: window.last_tick is not None, timeout=WAIT)
    _patch_dialogs(monkeypatch, bad_files[key])
    window.actions[action].trigger()
    qtbot.waitUntil(lambda: window.last_message is not None, timeout=WAIT)
    box = window.last_message
    assert box.windowTitle().startswith("Cannot") and words in box.text(), box.text()
    assert window.state.source.spec == "demo"  # the demo keeps playing
    n = window.ticks_shown
    qtbot.waitUntil(lambda: window.ticks_shown > n + 2, timeout=WAIT)


def test_export_to_an_unwritable_place(window, qtbot, monkeypatch, bad_files, stand_in):
    from handpose.app.state import ModelInfo

    window.open_source("demo")
    window.set_estimator(stand_in, ModelInfo(checkpoint="x", name="stand-in"))
    qtbot.waitUntil(lambda: len(window.pose_log) > 2, timeout=WAIT)
    _patch_dialogs(monkeypatch, bad_files["export"])
    window.actions["export_poses"].trigger()
    assert window.last_message is not None and "poses.csv" in window.last_message.text()


def test_recording_into_an_unusable_folder(window, qtbot, monkeypatch, bad_files):
    window.open_source("demo")
    qtbot.waitUntil(lambda: window.last_tick is not None, timeout=WAIT)
    _patch_dialogs(monkeypatch, bad_files["recordings"])
    window.actions["recording_folder"].trigger()
    window.actions["record"].trigger()
    assert window.recorder is None and not window.actions["record"].isChecked()
    assert "Cannot create the session" in window.last_message.text()


def test_annotation_tool_rejects_a_bad_session(window, qtbot, monkeypatch, bad_files):
    _patch_dialogs(monkeypatch, bad_files["session"])
    win = window.open_annotation()  # asks for a folder: the bad one
    win.confirm_close = False
    assert win.doc is None and "session.json" in win.messages[-1].text()
    win.close()


def test_session_with_a_torn_last_line_replays(window, qtbot, demo_session, tmp_path):
    s = Path(shutil.copytree(demo_session, tmp_path / "torn"))
    with open(s / "poses.jsonl", "ab") as f:
        f.write(b'{"index": 30, "timestamp": 1.0, "rg')
    window.open_source(f"session:{s}")
    qtbot.waitUntil(lambda: window.state.source.spec.startswith("session:"), timeout=WAIT)
    assert window.state.source.length == 30 and window.last_message is None
    qtbot.waitUntil(lambda: window.last_tick is not None and
                    window.last_tick.origin == "recorded", timeout=WAIT)


def test_finetune_dialog_rejects_a_bad_session(gui, qtbot, monkeypatch, bad_files):
    from handpose.app.finetune_dialog import FinetuneDialog
    from handpose.app.state import AppState

    d = FinetuneDialog(AppState())
    qtbot.addWidget(d)
    _patch_dialogs(monkeypatch, bad_files["session"])
    d._browse()  # the "Add..." button's file dialog
    assert "Not a usable session" in d.summary.text() and "session.json" in d.summary.text()
    assert not d.start()  # nothing runs; the reason is in the log
    assert "cannot start" in d.log.toPlainText()
