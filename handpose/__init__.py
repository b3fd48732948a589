"""handpose: real-time 3D hand pose estimation.

The distribution maps three folders to import names (DESIGN.md): ``core/`` ->
:mod:`handpose.core` (primitives, never Qt), ``training/`` -> :mod:`handpose.training`
(recipes and the training CLI), ``app/`` -> :mod:`handpose.app` (the desktop app), and
``assets/`` -> :mod:`handpose.assets` (data the product ships).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("handpose")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
