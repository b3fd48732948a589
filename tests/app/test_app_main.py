"""``handpose-app`` itself: settings persist between runs (QSettings), the command line, and
the screenshot command used for the README."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.gui
WAIT = 60_000


def test_settings_persist_between_runs(gui, qtbot, tmp_path, demo_env):
    from handpose.app.main_window import MainWindow
    from handpose.app.settings import load_into, open_settings
    from handpose.app.state import AppState

    ini = tmp_path / "settings.ini"
    settings = open_settings(ini)
    w = MainWindow(AppState(), settings)
    qtbot.addWidget(w)
    w.actions["view_spheres"].trigger()
    w.actions["smoothing_strong"].trigger()
    w.actions["correct"].trigger()
    w.state.recordings_dir = str(tmp_path / "rec")
    w.close()  # saves
    assert ini.is_file()
    state = AppState()
    assert load_into(open_settings(ini), state) == []
    assert state.view.spheres is False and state.pipeline.smoothing == 0.75
    assert state.pipeline.correct is False and state.recordings_dir == str(tmp_path / "rec")
    w2 = MainWindow(state, None)  # the menus show the restored options
    qtbot.addWidget(w2)
    assert not w2.actions["view_spheres"].isChecked()
    assert w2.actions["smoothing_strong"].isChecked() and not w2.actions["correct"].isChecked()
    w2.close()


def _env(demo: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM_PLUGIN_PATH"}
    env["HANDPOSE_DEMO_DIR"] = str(demo)
    return env


def test_help_and_bad_arguments():
    out = subprocess.run([sys.executable, "-m", "handpose.app", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "--source" in out.stdout and "--screenshot" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "handpose.app", "--screenshot-frames", "0"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and ">= 1" in bad.stderr


def test_screenshot_command_on_the_demo(demo_session, tmp_path):
    """What ``make screenshot`` runs (on the synthetic session; needs this X server)."""
    png = tmp_path / "shot.png"
    out = subprocess.run([sys.executable, "-m", "handpose.app", "--source", "demo",
                          "--checkpoint", str(tmp_path / "none.pt"), "--screenshot", str(png),
                          "--screenshot-frames", "10"], env=_env(demo_session),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    from PyQt6.QtGui import QImage

    img = QImage(str(png))
    assert img.width() >= 800 and img.height() >= 500
