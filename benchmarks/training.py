"""Training throughput of the recipes: updates per second and the time a preset would take.

    .venv/bin/python benchmarks/training.py [--preset cpu] [--steps 6] [--amp off bf16]
        [--real-hands DIR] [--threads N]

For each recipe (pretrain PeCLR, finetune) and AMP setting it runs ``--steps`` updates of the
preset's model, batch and input size through the shared loop (data read from disk: real
photos for pre-training when ``--real-hands`` exists, a generated FreiHAND-layout set for
fine-tuning), reads the loop's own ``opt/samples_per_s`` from ``metrics.jsonl`` (the first two
updates are warm-up and dropped) and prints samples/s, seconds per update and the estimated
wall time of the preset's ``train.steps``, and the share of each update spent outside the model:
waiting for batches (``opt/data_wait_share`` of the loop: reading, decoding, collating) plus,
for PeCLR, the two views' augmentation on the training device (``train/aug_ms``). Goal for the
PeCLR step: under 10 %. ``--append`` adds the table to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from handpose.training.config_files import resolve_config
from handpose.training.recipes import get_recipe

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "training"))
from training_data import write_freihand, write_image_folder  # noqa: E402


def measure(recipe: str, preset: str, overrides: list[str], run_dir: Path) -> dict[str, float]:
    module = get_recipe(recipe).load()
    cfg = resolve_config(module.Config, recipe, preset, overrides)
    module.run(cfg, run_dir)
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [x for x in lines if "opt/samples_per_s" in x][2:]
    rate = statistics.median(x["opt/samples_per_s"] for x in rows)
    data = statistics.median(x.get("opt/data_wait_share", 0.0) for x in rows)
    aug_ms = statistics.median(x.get("train/aug_ms", 0.0) for x in rows)
    full = resolve_config(module.Config, recipe, preset)
    step_s = cfg.train.batch_size / rate
    return {
        "data_share": data,
        "aug_share": aug_ms / 1000.0 / step_s,
        "batch": cfg.train.batch_size,
        "samples_per_s": rate,
        "s_per_update": cfg.train.batch_size / rate,
        "preset_steps": full.train.steps,
        "preset_minutes": full.train.steps * cfg.train.batch_size / rate / 60,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--amp", nargs="+", default=["off", "bf16"])
    ap.add_argument("--real-hands", default=str(REPO.parent / "shared/data/real_hands"))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--append", action="store_true", help="append the table to RESULTS.md")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    table = ["| recipe | amp | batch | samples/s | s/update | data wait | augmentation | "
             "outside the model | preset steps | preset min |", "|---" * 10 + "|"]
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        unlabelled = Path(args.real_hands)
        if not unlabelled.is_dir():
            unlabelled = write_image_folder(t / "imgs", n=256, size=160)
        labelled = write_freihand(t / "fh", n=256, size=224)
        common = [f"train.steps={args.steps}", "train.log_every=1", "train.checkpoint_every=0",
                  "train.image_every=0", "train.eval_every=0", "train.progress=false",
                  "train.warmup_steps=1"]
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"preset {args.preset}, unlabelled data {unlabelled}")
        print(f"{'recipe':<10} {'amp':<5} {'batch':>5} {'samples/s':>10} {'s/update':>9} "
              f"{'data %':>7} {'aug %':>6} {'outside %':>9} {'preset steps':>12} "
              f"{'preset min':>10}")
        for amp in args.amp:
            for recipe, data in (("pretrain", unlabelled), ("finetune", labelled)):
                extra = [f"data.root={data}", f"train.amp={amp}"]
                if recipe == "pretrain":
                    extra.append("data.limit=2048")
                r = measure(recipe, args.preset, common + extra, t / f"{recipe}-{amp}")
                out = r["data_share"] + r["aug_share"]
                print(f"{recipe:<10} {amp:<5} {r['batch']:>5} {r['samples_per_s']:>10.1f} "
                      f"{r['s_per_update']:>9.2f} {100 * r['data_share']:>7.1f} "
                      f"{100 * r['aug_share']:>6.1f} {100 * out:>9.1f} "
                      f"{r['preset_steps']:>12} {r['preset_minutes']:>10.0f}", flush=True)
                table.append(f"| {recipe} | {amp} | {r['batch']} | {r['samples_per_s']:.1f} | "
                             f"{r['s_per_update']:.2f} | {100 * r['data_share']:.1f} % | "
                             f"{100 * r['aug_share']:.1f} % | {100 * out:.1f} % | "
                             f"{r['preset_steps']} | {r['preset_minutes']:.0f} |")
    if args.append:
        cmd = " ".join(sys.argv[1:])
        text = "\n".join([
            f"## Training throughput ({datetime.datetime.now():%Y-%m-%d %H:%M})", "",
            f"`python benchmarks/training.py {cmd}`: {args.steps} updates per row (first two "
            f"dropped), torch {torch.__version__}, {torch.get_num_threads()} threads, preset "
            f"{args.preset}. Machine: {os.cpu_count()} cores shared with other engineers "
            f"(1-min load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the "
            "end). Outside the model = waiting for batches + the PeCLR views' augmentation; "
            "the rest of each update is the network's forward, backward and optimizer step.",
            "", *table, ""])
        with (REPO / "benchmarks" / "RESULTS.md").open("a", encoding="utf-8") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
