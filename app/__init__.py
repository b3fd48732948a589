"""The desktop app ``handpose-app`` (PyQt6 + pyqtgraph)."""
