"""The distribution maps every source folder to its import name, and the assets ship."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _declared() -> tuple[set[str], dict[str, str]]:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(cfg["packages"]), cfg["package-dir"]


def test_every_package_folder_is_declared() -> None:
    packages, roots = _declared()
    found = set()
    for name, folder in roots.items():
        base = REPO / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    missing = found - packages
    assert not missing, f"add these packages to [tool.setuptools] packages: {sorted(missing)}"
    assert packages <= found, f"declared but absent: {sorted(packages - found)}"


def test_import_names_resolve_to_the_source_folders() -> None:
    import handpose.assets
    import handpose.core

    assert handpose.core.__file__ is not None
    assert (REPO / "core").samefile(Path(handpose.core.__file__).parent)
    assert (handpose.assets.ASSETS_DIR / "hand_model.json").is_file()
