"""The papers' tables: ``python benchmarks/methods.py METHOD [options]``.

One script per method does the work (its own ``--help`` lists the options); this front door
names them as the issues do (``benchmarks/methods.py peclr``, ``... semihand``, ...)::

    python benchmarks/methods.py peclr --budget-minutes 120 --append
    python benchmarks/methods.py semihand --synthetic DIR --budget-minutes 120 --append
    python benchmarks/methods.py fitting --budget-minutes 120 --append
    python benchmarks/methods.py dual --synthetic DIR --synthetic-test DIR2 --append
    python benchmarks/methods.py crossvae --synthetic DIR --synthetic-test DIR2 --append
    python benchmarks/methods.py disentangled --budget-minutes 60 --append

Each writes its table to ``benchmarks/RESULTS.md`` with ``--append``.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

METHODS = ("peclr", "semihand", "fitting", "dual", "crossvae", "disentangled")


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in METHODS:
        print(__doc__)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"unknown method {argv[0]!r}; choose one of {', '.join(METHODS)}")
            return 2
        return 0
    script = Path(__file__).with_name(f"methods_{argv[0]}.py")
    sys.argv = [str(script), *argv[1:]]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as e:  # the method script's own exit code
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
