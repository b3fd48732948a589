"""The main window's views: the video with its overlay, the 3D scene, the live plots, the
status bar, and the joint editor of the annotation tool."""

__all__: list[str] = []
