"""Fixtures of the app tests: a synthetic demo session, a stand-in estimator, the window.

``import cv2`` sets ``QT_QPA_PLATFORM_PLUGIN_PATH`` to OpenCV's Qt plugins, which break
PyQt6: the variable is removed here, before pytest-qt creates the QApplication. GUI tests
need an X server (``xvfb-run``; ``QT_QPA_PLATFORM=offscreen`` crashes the OpenGL view).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)

from PyQt6.QtCore import QCoreApplication, Qt  # noqa: E402

# as handpose.app.main.make_application: one OpenGL context group for every 3D view (must be
# set before pytest-qt creates the QApplication)
QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts, True)

from app_helpers import StandInEstimator, make_session  # noqa: E402

# Test modules elsewhere import names from ``conftest`` by module name (tests/test_packaging.py:
# ``from conftest import REPO``). pytest imports every conftest.py as the module "conftest",
# and this one is imported after tests/conftest.py, so it must offer the same plain names.
REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("HANDPOSE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def demo_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-frame RGB-D session with the true hand in poses.jsonl (read-only: copy to edit)."""
    return make_session(tmp_path_factory.mktemp("demo") / "session", n=30)


@pytest.fixture
def demo_env(demo_session: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``HANDPOSE_DEMO_DIR`` -> the synthetic session, so ``demo`` opens it."""
    monkeypatch.setenv("HANDPOSE_DEMO_DIR", str(demo_session))
    return demo_session


@pytest.fixture
def stand_in(demo_session: Path) -> StandInEstimator:
    return StandInEstimator(demo_session)


@pytest.fixture
def gui(qapp):  # noqa: ANN001 - pytest-qt's fixture
    """The QApplication with the app's pyqtgraph options (row-major images)."""
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=False, imageAxisOrder="row-major")
    return qapp


@pytest.fixture
def window(gui, qtbot, demo_env, tmp_path):  # noqa: ANN001
    """A main window (no settings store, recordings under tmp_path), closed afterwards."""
    from handpose.app.main_window import MainWindow
    from handpose.app.state import AppState

    state = AppState()
    state.recordings_dir = str(tmp_path / "recordings")
    w = MainWindow(state, settings=None)
    qtbot.addWidget(w)
    w.resize(1000, 640)
    w.show()
    yield w
    w.close()
