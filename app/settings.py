"""Settings that persist between runs (QSettings), mapped onto the Qt-free AppState.

The values are :meth:`AppState.to_settings` (view toggles, pipeline options, the checkpoint,
the device, the intrinsics file, the recording folder, the file dialogs' last folders) plus
the window geometry and dock layout. ``open_settings(path)`` uses an INI file (tests, or
``handpose-app --settings FILE``); without a path the platform's default store of
organisation "handpose", application "handpose-app".
"""

from __future__ import annotations

import os

from PyQt6.QtCore import QByteArray, QSettings
from PyQt6.QtWidgets import QMainWindow

from .state import AppState

__all__ = ["open_settings", "load_into", "restore_window", "save_from", "ORGANISATION",
           "APPLICATION"]

ORGANISATION = "handpose"
APPLICATION = "handpose-app"


def open_settings(path: str | os.PathLike[str] | None = None) -> QSettings:
    """The settings store: an INI file at ``path``, or the platform default."""
    if path is not None:
        return QSettings(os.fspath(path), QSettings.Format.IniFormat)
    return QSettings(ORGANISATION, APPLICATION)


def load_into(settings: QSettings, state: AppState) -> list[str]:
    """Restore ``state`` from ``settings``.

    Returns:
        messages about values that were rejected (the defaults are kept for them).
    """
    values = {k: settings.value(k) for k in settings.allKeys()
              if not k.startswith("window/")}
    return state.apply_settings(values)


def restore_window(settings: QSettings, window: QMainWindow) -> None:
    """Restore the window geometry and dock layout saved by :func:`save_from`."""
    geo = settings.value("window/geometry")
    if isinstance(geo, QByteArray) and not geo.isEmpty():
        window.restoreGeometry(geo)
    st = settings.value("window/state")
    if isinstance(st, QByteArray) and not st.isEmpty():
        window.restoreState(st)


def save_from(settings: QSettings, state: AppState, window: QMainWindow | None = None) -> None:
    """Write ``state`` (and the window geometry) to ``settings`` and flush."""
    for k, v in state.to_settings().items():
        settings.setValue(k, v)
    if window is not None:
        settings.setValue("window/geometry", window.saveGeometry())
        settings.setValue("window/state", window.saveState())
    settings.sync()
