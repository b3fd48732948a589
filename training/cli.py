"""``handpose-train RECIPE [--preset NAME] [key=value ...]``: run a registered recipe.

Each run writes to ``runs/<recipe>-<YYYYmmdd-HHMMSS>/`` (or ``out=DIR``): the resolved config
(``config.toml``, ``config.json``), the recipe's outputs and ``result.json``. Multi-GPU or
multi-node: start the same command under ``torchrun`` (``torchrun --nproc_per_node 4 -m
handpose.training.cli pretrain ...``); every process resolves the same config and the main
process picks the run folder.

Exit codes: 0 done, 1 the run failed on bad data or files (message names them), 2 bad usage
or config (message names the key or path).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import ConfigError, check_input_paths, to_dict
from .config_files import dumps_toml, list_presets, resolve_config, save_config
from .recipes import RECIPES, get_recipe

__all__ = ["main", "build_parser", "make_run_dir", "DEFAULT_PRESET"]

DEFAULT_PRESET = "cpu"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one sub-command per registered recipe."""
    presets = list_presets()
    parser = argparse.ArgumentParser(
        prog="handpose-train",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train, evaluate and export handpose models with the shared loop.",
        epilog=(
            f"presets: {', '.join(presets)} (default {DEFAULT_PRESET}; "
            "or a TOML file such as a run's config.toml)\n\n"
            "overrides: key=value with dotted keys, e.g. train.lr=0.001 train.steps=100 "
            "out=runs/x\n'handpose-train RECIPE --print-config' lists a recipe's keys."
        ),
    )
    parser.add_argument("--traceback", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="recipe", metavar="RECIPE", title="recipes")
    for e in RECIPES.values():
        p = sub.add_parser(e.name, help=e.summary, description=e.summary)
        p.add_argument(
            "--preset",
            default=DEFAULT_PRESET,
            metavar="NAME|FILE",
            help=f"settings preset: {', '.join(presets)} or a TOML file "
            f"(default {DEFAULT_PRESET})",
        )
        for flag, key in e.flags.items():
            p.add_argument(f"--{flag}", dest=f"flag__{key}", metavar="X", help=f"sets {key}=X")
        for key in e.switches:
            p.add_argument(f"--{key}", dest=f"flag__{key}", action="store_const", const="true",
                           help=f"sets {key}=true")
        p.add_argument(
            "--print-config", action="store_true", help="print the resolved config and exit"
        )
        p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return parser


def make_run_dir(recipe: str, out: str, root: Path = Path("runs")) -> Path:
    """``out`` if given, else a new ``root/<recipe>-<timestamp>`` (suffixed when it exists).

    Under torchrun the main process decides and every process gets the same folder.
    """
    from .distributed import broadcast_object, dist_info

    path: Path | None = None
    if dist_info().is_main:
        if out:
            path = Path(out)
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = root / f"{recipe}-{stamp}"
            k = 1
            while path.exists():
                path = root / f"{recipe}-{stamp}-{k}"
                k += 1
        path.mkdir(parents=True, exist_ok=True)
    return Path(broadcast_object(path))


def _error(msg: str, code: int) -> int:
    print(f"handpose-train: error: {msg}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``handpose-train``; returns the exit code."""
    parser = build_parser()
    # key=value words may come before and after the options (argparse alone stops the
    # positional list at the first option): gather the words it left over
    args, rest = parser.parse_known_args(argv)
    unknown = [w for w in rest if w.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if rest:
        args.overrides = [*getattr(args, "overrides", []), *rest]
    if not args.recipe:
        parser.print_help()
        return 2
    entry = get_recipe(args.recipe)
    try:
        module = entry.load()
        overrides = list(args.overrides)
        if entry.positional and overrides and "=" not in overrides[0]:
            overrides[0] = f"{entry.positional}={overrides[0]}"
        for key in (*entry.flags.values(), *entry.switches):
            value = getattr(args, f"flag__{key}")
            if value is not None:
                overrides.append(f"{key}={value}")
        cfg = resolve_config(module.Config, entry.name, args.preset, overrides)
        if args.print_config:
            print(dumps_toml({entry.name: to_dict(cfg)}), end="")
            return 0
        check_input_paths(cfg)
        if hasattr(module, "check"):
            module.check(cfg)
    except ConfigError as e:
        if args.traceback:
            raise
        return _error(str(e), 2)

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from .distributed import init_distributed, pick_device

        init_distributed(pick_device(getattr(getattr(cfg, "train", None), "device", "auto")))
    from .distributed import dist_info, shutdown_distributed

    is_main = dist_info().is_main
    run_dir = make_run_dir(entry.name, str(getattr(cfg, "out", "") or ""))
    if is_main:
        save_config(cfg, entry.name, run_dir)
    try:
        result: dict[str, Any] = module.run(cfg, run_dir) or {}
    except (ValueError, OSError) as e:  # ConfigError, DataError, missing files: named there
        if args.traceback:
            raise
        return _error(str(e), 2 if isinstance(e, ConfigError) else 1)
    finally:
        shutdown_distributed()
    if is_main:
        summary = {"recipe": entry.name, "run_dir": str(run_dir), **result}
        text = json.dumps(summary, indent=2, default=str)
        (run_dir / "result.json").write_text(text + "\n")
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
