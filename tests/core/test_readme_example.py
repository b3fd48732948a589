"""The README's Python example runs as written, with the shipped default model, on the demo."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_python_example_tracks_the_demo_hand() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "the README has one Python example"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], "README.md", "exec"), {})  # noqa: S102 - our own README
    lines = out.getvalue().splitlines()
    # one line per hand and frame: "<track id> <left|right> (21, 3)"; the demo hand is out of
    # view for about a second of its ten
    assert len(lines) > 200
    assert all(re.fullmatch(r"\d+ (left|right) \(21, 3\)", x) for x in lines), lines[:3]
