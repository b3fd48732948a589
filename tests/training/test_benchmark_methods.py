"""benchmarks/methods.py semihand | dual | crossvae | disentangled --quick: each table end to
end on tiny models and generated data (the evaluation set generated too), every row filled
with finite numbers, and the RESULTS.md entry refused for a smoke run."""

from __future__ import annotations

import math
import runpy
import sys
from pathlib import Path

import pytest
from training_data import write_freihand

REPO = Path(__file__).resolve().parents[2]

ROWS = {
    "semihand": ["synthetic only (baseline)", "baseline, continued", "+ consistency",
                 "+ pseudo-labels", "full SemiHand"],
    "dual": ["RGB-only baseline", "+ depth branches, L_c (pre-training)",
             "+ L_l + L_f (fine-tuned on real_hands)"],
    "crossvae": ["RGB -> pose (S1)", "RGB -> cloud + pose (S2)",
                 "RGB + cloud, product of experts (S4)"],
    "disentangled": ["dVAE"],
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_bench(method: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    script = REPO / "benchmarks" / f"methods_{method}.py"
    monkeypatch.setattr(sys, "argv", [str(script), *argv])
    monkeypatch.syspath_prepend(str(script.parent))
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as e:
        return 1 if isinstance(e.code, str) else int(e.code or 0)
    return 0


@pytest.mark.parametrize("method", sorted(ROWS))
def test_quick_table(method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     capsys: pytest.CaptureFixture[str]) -> None:
    evalset = write_freihand(tmp_path / "eval", n=8, size=96, seed=9)
    argv = ["--quick", "--workdir", str(tmp_path / "work"), "--eval", str(evalset)]
    assert run_bench(method, argv, monkeypatch) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] in ROWS[method]:
            rows.setdefault(cells[0], cells)
    assert sorted(rows) == sorted(ROWS[method])
    for cells in rows.values():
        numbers = [float(c) for c in cells[1:] if c.replace(".", "", 1).isdigit()]
        assert numbers and all(math.isfinite(x) for x in numbers)


def test_a_smoke_run_is_not_appended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert run_bench("dual", ["--quick", "--append"], monkeypatch) == 1
    assert run_bench("dual", ["--eval", str(tmp_path / "missing")], monkeypatch) == 1
