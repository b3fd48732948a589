"""Dual-modality network vs the RGB-only baseline of the same size and budget (METHODS §5).

    .venv/bin/python benchmarks/methods_dual.py --synthetic DIR [--synthetic-test DIR]
        [--real-hands DIR] [--eval DIR] [--budget-minutes 120] [--preset cpu] [--init W]
        [--append] [--workdir DIR] [--threads N]
    .venv/bin/python benchmarks/methods_dual.py --quick      # a few-minute smoke run

Rows (the dissertation's Table 7.2a, same network for all):

1. RGB-only baseline: ``dual rgb_only=true``, the RGB branch supervised on ``--synthetic``
   (pose, mask, depth) for a time budget T;
2. + depth branches and L_c: ``dual`` pre-training (all three branches, multi-modal
   contrastive loss, stop-gradient) for 0.7 T;
3. + L_l + L_f: row 2 fine-tuned on unlabelled ``--real-hands`` (pseudo-labels weak -> strong,
   self-distillation, synthetic L_s) for 0.3 T, so rows 1 and 3 cost the same wall time.

T is half of ``--budget-minutes`` (minus timing runs); update counts come from timing a few
updates of each configuration. Every model is evaluated with its RGB branch alone on
``--eval`` (``real_eval_hgc``, never trained on) and on ``--synthetic-test`` (a held-out
synthetic set, when given): EPE / PA-EPE / AUC after lifting with the ground-truth scale and K,
the root-relative EPE (true wrist and scale), 2D EPE and PCK. The paper (STB): 19.66 mm
(baseline) -> 16.37 (+ L_c) -> 11.99 mm (full). ``--append`` adds the table to
``benchmarks/RESULTS.md``. The synthetic set needs depth maps (``training/depth/``) and masks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from method_bench import REPO, SHARED, append_results, command, common_arguments, start, work_folder

from handpose.core.checkpoint import load_checkpoint
from handpose.training.config_files import resolve_config
from handpose.training.recipes import get_recipe
from handpose.training.recipes.crossvae_eval import root_relative_epe_mm
from handpose.training.recipes.data import LabelledData, labelled_dataset
from handpose.training.recipes.eval import evaluate_model

PAPER = ("Yang (dissertation Table 7.2a, STB): 19.66 mm (baseline) -> 16.37 (+ L_c) -> 12.59 "
         "(+ L_l) -> 11.99 mm (+ L_f)")


def run_dual(preset: str, overrides: list[str], run_dir: Path) -> dict[str, Any]:
    module = get_recipe("dual").load()
    cfg = resolve_config(module.Config, "dual", preset, overrides)
    module.check(cfg)
    t0 = time.perf_counter()
    out = module.run(cfg, run_dir)
    out["minutes"] = (time.perf_counter() - t0) / 60
    return out


def seconds_per_update(preset: str, overrides: list[str], work: Path, name: str) -> float:
    """Median wall time of updates 3..6 of a short run (the loop's ``opt/samples_per_s``)."""
    run = work / f"timing-{name}"
    run_dual(preset, [*overrides, "train.steps=6", "train.log_every=1", "train.eval_every=0",
                      f"out={run}"], run)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    rates = sorted(x["opt/samples_per_s"] for x in lines if "opt/samples_per_s" in x)[2:]
    batch = resolve_config(get_recipe("dual").load().Config, "dual", preset,
                           overrides).train.batch_size
    return batch / rates[len(rates) // 2]


def evaluate(model_path: Path, root: Path, size: int, limit: int) -> dict[str, float]:
    """The ``eval`` recipe's metrics plus the root-relative EPE, RGB branch alone."""
    model, _ = load_checkpoint(model_path)
    ds = labelled_dataset(LabelledData(root=str(root), limit=limit), size)
    metrics, pred = evaluate_model(model, ds, batch_size=32)
    metrics["epe_rr_mm"] = root_relative_epe_mm(pred.xyz, pred.xyz_gt)
    return metrics


def table(rows: list[dict[str, Any]], sets: list[str]) -> str:
    cols = " | ".join(f"{s} EPE mm | {s} root-rel. EPE mm | {s} PA-EPE mm | {s} 2D EPE px"
                      for s in sets)
    out = [f"| model | updates | minutes | {cols} |",
           "|---|---|---|" + "---|" * (4 * len(sets))]
    for r in rows:
        cells = []
        for s in sets:
            m = r["eval"][s]
            cells.append(f"{m['epe_mm']:.2f} | {m['epe_rr_mm']:.2f} | {m['pa_epe_mm']:.2f} | "
                         f"{m['epe_2d_px']:.2f}")
        out.append(f"| {r['name']} | {r['steps']} | {r['minutes']:.1f} | {' | '.join(cells)} |")
    return "\n".join(out)


def quick_data(work: Path) -> tuple[Path, Path, Path]:
    sys.path.insert(0, str(REPO / "tests" / "training"))
    from rgbd_data import write_freihand_rgbd  # noqa: PLC0415
    from training_data import write_image_folder  # noqa: PLC0415

    return (write_freihand_rgbd(work / "synthetic", n=32, size=96),
            write_freihand_rgbd(work / "synthetic_test", n=16, size=96, seed=5),
            write_image_folder(work / "unlabelled", n=32, size=96))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(ap)
    ap.add_argument("--synthetic", default="", help="synthetic RGB + depth + mask training set")
    ap.add_argument("--synthetic-test", default="", help="held-out synthetic set (optional)")
    ap.add_argument("--real-hands", default=str(SHARED / "real_hands"))
    ap.add_argument("--init", default="", help="RGB encoder weights for both arms (PeCLR)")
    ap.add_argument("--unlabelled-limit", type=int, default=2000)
    args = ap.parse_args()
    st = start(args)
    eval_root = st.eval_root
    with work_folder(args.workdir) as work:
        preset, limit, eval_limit = args.preset, args.unlabelled_limit, 0
        if args.quick:
            synthetic, synth_test, unlabelled = quick_data(work)
            preset, limit, eval_limit = "tiny", 0, 48
        else:
            synthetic, unlabelled = Path(args.synthetic), Path(args.real_hands)
            synth_test = Path(args.synthetic_test) if args.synthetic_test else None
            if not args.synthetic or not (synthetic / "training" / "depth").is_dir():
                sys.exit("--synthetic DIR is needed: a FreiHAND-layout synthetic set with "
                         "training/depth/ and training/mask/ (e.g. 'handpose-data synth')")
            if not unlabelled.is_dir():
                sys.exit(f"unlabelled images {unlabelled} not found")
        size = resolve_config(get_recipe("dual").load().Config, "dual", preset).input_size
        init = [f"init={args.init}"] if args.init else []
        common = [f"data.root={synthetic}", "train.progress=false", "train.image_every=0",
                  "train.checkpoint_every=0"]
        ft = [f"unlabelled.root={unlabelled}", f"unlabelled.limit={limit}", "stage=finetune"]
        base, pre = ["rgb_only=true", *init], list(init)
        if args.quick:
            n_base = n_pre = 8
            n_ft = 4
        else:
            t_b = seconds_per_update(preset, [*common, *base], work, "baseline")
            t_p = seconds_per_update(preset, [*common, *pre], work, "pretrain")
            t_f = seconds_per_update(preset, [*common, *ft, f"init={work / 'timing-pretrain'}"],
                                     work, "finetune")
            half = (args.budget_minutes * 60 - st.elapsed_s()) * 0.45
            n_base = max(10, int(half / t_b))
            n_pre, n_ft = max(10, int(0.7 * half / t_p)), max(5, int(0.3 * half / t_f))
            print(f"s/update: baseline {t_b:.2f}, pretrain {t_p:.2f}, finetune {t_f:.2f} -> "
                  f"{n_base} / {n_pre} + {n_ft} updates", flush=True)
        rows: list[dict[str, Any]] = []
        runs = [("RGB-only baseline", [*common, *base], n_base, "baseline"),
                ("+ depth branches, L_c (pre-training)", [*common, *pre], n_pre, "pretrain"),
                ("+ L_l + L_f (fine-tuned on real_hands)",
                 [*common, *ft, f"init={work / 'pretrain'}"], n_ft, "finetune")]
        for name, over, steps, folder in runs:
            res = run_dual(preset, [*over, f"train.steps={steps}", f"out={work / folder}"],
                           work / folder)
            total = res["minutes"] + (rows[-1]["minutes"] if folder == "finetune" else 0.0)
            rows.append({"name": name, "steps": steps, **res, "minutes": total})
            print(f"{name}: {res['minutes']:.1f} min", flush=True)
        sets = {"real_eval_hgc": (eval_root, eval_limit)}
        if synth_test is not None:
            sets["synthetic test"] = (synth_test, eval_limit)
        for r in rows:
            r["eval"] = {k: evaluate(Path(r["model"]), root, size, lim)
                         for k, (root, lim) in sets.items()}
        text = table(rows, list(sets))
        print(text)
        if args.append:
            append_results(
                "Dual-modality network vs RGB-only baseline",
                f"`{command('methods_dual.py')}`: preset {preset} ({size} px crops), synthetic "
                f"{synthetic}, unlabelled {unlabelled} (limit {limit}), evaluated with the RGB "
                f"branch on {eval_root} (never trained on)"
                f"{' and ' + str(synth_test) if synth_test else ''}. {st.machine()} "
                f"Reference: {PAPER}.\n\n{text}")

if __name__ == "__main__":
    main()
