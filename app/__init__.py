"""The desktop app ``handpose-app`` (PyQt6 + pyqtgraph; DESIGN.md "The runtime pipeline").

Qt-free parts (importable and testable without a display): :mod:`.state` (AppState),
:mod:`.engine` (capture and inference threads), :mod:`.mailbox`, :mod:`.recording`,
:mod:`.scene_data`, :mod:`.annotate`, :mod:`.labellers`, :mod:`.finetune`, :mod:`.export`,
:mod:`.intrinsics`, :mod:`.loaders`, :mod:`.stats`, :mod:`.colors`. The rest is Qt.
"""

__all__: list[str] = []
