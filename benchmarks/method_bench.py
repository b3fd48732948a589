"""What the method benchmarks (``benchmarks/methods_*.py``) share: the common options, the
start-up checks, the work folder and the entry they append to ``benchmarks/RESULTS.md``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "RESULTS.md"


def common_arguments(ap: argparse.ArgumentParser, budget_minutes: float = 120.0) -> None:
    """``--eval --budget-minutes --preset --quick --append --workdir --threads``."""
    ap.add_argument("--eval", default=str(SHARED / "real_eval_hgc"),
                    help="labelled real frames (FreiHAND layout), never trained on")
    ap.add_argument("--budget-minutes", type=float, default=budget_minutes)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--quick", action="store_true", help="tiny models and data: a smoke run")
    ap.add_argument("--append", action="store_true", help="append the table to RESULTS.md")
    ap.add_argument("--workdir", default="", help="keep the runs here (default: temporary)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")


@dataclass(frozen=True)
class Start:
    """The checked evaluation set, the load average and the clock at the start."""

    eval_root: Path
    load0: float
    t_start: float

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.t_start

    def machine(self) -> str:
        """One sentence on the machine and its load, for the RESULTS.md entry."""
        return (f"Machine: {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
                f"shared (1-min load {self.load0:.1f} at the start, "
                f"{os.getloadavg()[0]:.1f} at the end).")


def start(args: argparse.Namespace) -> Start:
    """Apply ``--threads``; refuse ``--quick --append`` and a missing ``--eval`` set."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick and args.append:
        sys.exit("--quick runs are smoke tests: they are not appended to RESULTS.md")
    eval_root = Path(args.eval)
    if not (eval_root / "training_xyz.json").is_file():
        sys.exit(f"evaluation set {eval_root} not found (FreiHAND layout expected)")
    return Start(eval_root, os.getloadavg()[0], time.perf_counter())


@contextmanager
def work_folder(workdir: str) -> Iterator[Path]:
    """``workdir`` (created), or a temporary folder removed at the end."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        yield work


def append_results(title: str, body: str) -> None:
    """Append ``## title (date time)`` and ``body`` to benchmarks/RESULTS.md."""
    with open(RESULTS, "a", encoding="utf-8") as f:
        f.write(f"\n\n## {title} ({time.strftime('%Y-%m-%d %H:%M')})\n\n{body}\n")


def command(script: str) -> str:
    """The command line that ran, for the entry."""
    return f"python benchmarks/{script} " + " ".join(sys.argv[1:])
