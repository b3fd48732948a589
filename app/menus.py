"""The main window's menus, actions and keyboard shortcuts.

``build_menus(window)`` creates every action once, wires it to a window method and returns
them by name (tests trigger them by name). Shortcuts:

=================  =============================  =====================================
File               Capture                        View
=================  =============================  =====================================
Ctrl+O source      Space play / pause             1-6 overlay, skeleton, spheres,
Ctrl+L checkpoint  .  step one frame                  point cloud, grid, plots
Ctrl+E export      F5 restart the source          C correction, F depth fitting
Ctrl+Q quit        Ctrl+R record                  Home reset the 3D view, F11 full screen
=================  =============================  =====================================

Calibrate: Ctrl+K hand size. Annotate: Ctrl+Shift+A annotation tool, Ctrl+Shift+F fine-tune.
Help: F1 about.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtGui import QAction, QActionGroup, QKeySequence

from .state import SMOOTHING_LEVELS

__all__ = ["build_menus", "VIEW_TOGGLES"]

#: View toggles: (action name, ViewOptions field, label, shortcut).
VIEW_TOGGLES = (
    ("view_overlay", "overlay", "2D &overlay", "1"),
    ("view_skeleton", "skeleton", "3D &skeleton", "2"),
    ("view_spheres", "spheres", "3D s&pheres", "3"),
    ("view_cloud", "point_cloud", "3D point &cloud", "4"),
    ("view_grid", "grid", "3D &grid", "5"),
    ("view_plots", "plots", "Live p&lots", "6"),
)


def build_menus(w: Any) -> dict[str, QAction]:
    """Create the menus of main window ``w`` (see the module docstring)."""
    actions: dict[str, QAction] = {}
    bar = w.menuBar()

    def act(menu: Any, name: str, text: str, slot: Callable[..., Any],
            shortcut: str | QKeySequence.StandardKey | None = None,
            checkable: bool = False, checked: bool = False) -> QAction:
        a = QAction(text, w)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if checkable:
            a.setCheckable(True)
            a.setChecked(checked)
            a.toggled.connect(slot)
        else:
            a.triggered.connect(lambda _=False: slot())
        menu.addAction(a)
        actions[name] = a
        return a

    m = bar.addMenu("&File")
    act(m, "open_source", "&Open source...", w.choose_source, "Ctrl+O")
    act(m, "open_video", "Open &video...", lambda: w.choose_path("video"))
    act(m, "open_folder", "Open image &folder...", lambda: w.choose_path("folder"))
    act(m, "open_rgbd", "Open &RGB-D folder...", lambda: w.choose_path("rgbd"))
    act(m, "open_session", "Open recorded &session...", lambda: w.choose_path("session"))
    act(m, "open_demo", "&Demo", lambda: w.open_source("demo"))
    m.addSeparator()
    act(m, "load_checkpoint", "&Load checkpoint...", w.choose_checkpoint, "Ctrl+L")
    act(m, "unload_model", "&Unload model", w.unload_model)
    act(m, "export_poses", "&Export poses (CSV/JSON)...", w.choose_export, "Ctrl+E")
    m.addSeparator()
    act(m, "quit", "&Quit", w.close, QKeySequence.StandardKey.Quit)

    m = bar.addMenu("&Capture")
    act(m, "play_pause", "&Start / stop (play / pause)", w.toggle_pause, "Space")
    act(m, "step", "&Step one frame", w.step_frame, ".")
    act(m, "restart", "&Restart the source", w.restart_source, "F5")
    m.addSeparator()
    act(m, "record", "&Record", w.set_recording, "Ctrl+R", checkable=True)
    act(m, "recording_folder", "Recording &folder...", w.choose_recording_folder)

    m = bar.addMenu("&View")
    for name, field, text, key in VIEW_TOGGLES:
        act(m, name, text, lambda on, f=field: w.set_view_option(f, on), key,
            checkable=True, checked=getattr(w.state.view, field))
    m.addSeparator()
    p = w.state.pipeline
    act(m, "correct", "Biomechanical &correction", lambda on: w.set_pipeline_option(
        correct=on), "C", checkable=True, checked=p.correct)
    sm = m.addMenu("S&moothing")
    group = QActionGroup(w)
    for level, strength in SMOOTHING_LEVELS.items():
        a = act(sm, f"smoothing_{level}", level.capitalize(),
                lambda on, s=strength: on and w.set_pipeline_option(smoothing=s),
                checkable=True, checked=abs(p.smoothing - strength) < 1e-9)
        group.addAction(a)
    act(m, "fit_depth", "Test-time depth &fitting (RGB-D)", lambda on: w.set_pipeline_option(
        fit_depth=on), "F", checkable=True, checked=p.fit_depth)
    act(m, "mirror_left", "&Mirror left hands for the network", lambda on:
        w.set_pipeline_option(mirror_left=on), checkable=True, checked=p.mirror_left)
    act(m, "show_recorded", "Show a replay's recorded poses or labels (no model)",
        lambda on: w.set_pipeline_option(show_recorded=on), checkable=True,
        checked=p.show_recorded)
    m.addSeparator()
    act(m, "reset_view", "&Reset 3D view", w.scene.reset_view, "Home")
    act(m, "fullscreen", "F&ull screen", w.toggle_fullscreen, "F11")

    m = bar.addMenu("C&alibrate")
    act(m, "hand_size", "&Hand size...", w.choose_hand_size, "Ctrl+K")
    act(m, "intrinsics_file", "Camera intrinsics from a &file...", w.choose_intrinsics)
    act(m, "intrinsics_device", "Camera intrinsics from the &device", w.use_device_intrinsics)
    act(m, "intrinsics_show", "&Show camera intrinsics...", w.show_intrinsics)

    m = bar.addMenu("A&nnotate")
    act(m, "annotate", "&Annotation tool...", w.open_annotation, "Ctrl+Shift+A")
    act(m, "annotate_last", "Annotate the &last recording", w.annotate_last_recording)
    act(m, "finetune", "&Fine-tune on sessions...", w.open_finetune, "Ctrl+Shift+F")

    m = bar.addMenu("&Help")
    act(m, "about", "&About", w.show_about, "F1")
    return actions
