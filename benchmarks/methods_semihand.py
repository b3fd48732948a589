"""SemiHand ablation on real frames (METHODS §4, issue 7): what each part buys on real images.

    .venv/bin/python benchmarks/methods_semihand.py --synthetic DIR [--real-hands DIR]
        [--eval DIR] [--budget-minutes 120] [--init WEIGHTS] [--teacher] [--append]
        [--workdir DIR] [--threads N] [--preset cpu]
    .venv/bin/python benchmarks/methods_semihand.py --quick      # a few-minute smoke run

Rows (every fine-tuning starts from the baseline and runs the same number of updates):

1. synthetic only (baseline): ``semihand`` with L_sup only (pose + mask) on ``--synthetic``;
2. baseline, continued: the same number of extra updates with L_sup only (the control: gains
   of the rows below beyond it are not just more training);
3. + consistency: view consistency and the 55-circle cross-modal consistency, no
   pseudo-labels;
4. + pseudo-labels: corrected, confidence-gated pseudo-labels from the baseline, no
   consistency;
5. full SemiHand: both; (6. with ``--teacher``: full, initial labels from MediaPipe Hands).

Unlabelled real data: ``--real-hands`` (``unlabelled.limit`` images of it). Evaluation: EPE,
PA-EPE, AUC (0-50 mm) with the ground-truth scale and K, 2D EPE and PCK on ``--eval``
(``real_eval_hgc``: evaluation only, it is never given to training). The paper: 23.83 ->
14.60 mm EPE on STB. Update counts are fitted to ``--budget-minutes`` from a timing of a few
updates of the baseline and the full variant. ``--append`` adds the table to
``benchmarks/RESULTS.md``. The synthetic set must be a FreiHAND-layout folder with masks
(``training/mask/%08d.png``), e.g. from ``handpose-data synth``.
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
from handpose.training.recipes.data import LabelledData, labelled_dataset
from handpose.training.recipes.eval import evaluate_model

PAPER = "Yang et al. (ICCV 2021) on STB: 23.83 mm (baseline) -> 14.60 mm EPE (SemiHand)"

VARIANTS: dict[str, list[str]] = {
    "baseline, continued": ["pseudo.enabled=false", "loss.view=false",
                            "loss.cross_modal=false"],
    "+ consistency": ["pseudo.enabled=false"],
    "+ pseudo-labels": ["loss.view=false", "loss.cross_modal=false"],
    "full SemiHand": [],
}
BASELINE = ["pseudo.enabled=false", "loss.view=false", "loss.cross_modal=false"]


def run_semihand(preset: str, overrides: list[str], run_dir: Path) -> dict[str, Any]:
    module = get_recipe("semihand").load()
    cfg = resolve_config(module.Config, "semihand", preset, overrides)
    module.check(cfg)
    t0 = time.perf_counter()
    out = module.run(cfg, run_dir)
    out["minutes"] = (time.perf_counter() - t0) / 60
    return out


def seconds_per_update(preset: str, common: list[str], extra: list[str], work: Path,
                       name: str) -> float:
    """Median wall time of updates 3..6 of a short run (``opt/samples_per_s`` of the loop)."""
    run = work / f"timing-{name}"
    run_semihand(preset, [*common, *extra, "train.steps=6", "pseudo.rounds=1",
                          "train.log_every=1", "train.eval_every=0", f"out={run}"], run)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    rates = sorted(x["opt/samples_per_s"] for x in lines if "opt/samples_per_s" in x)[2:]
    batch = resolve_config(get_recipe("semihand").load().Config, "semihand", preset,
                           common).train.batch_size
    return batch / rates[len(rates) // 2]


def evaluate(model_path: Path, eval_root: Path, size: int, limit: int) -> dict[str, float]:
    model, _ = load_checkpoint(model_path)
    ds = labelled_dataset(LabelledData(root=str(eval_root), limit=limit), size)
    metrics, _ = evaluate_model(model, ds, batch_size=32)
    return metrics


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| model | updates | EPE mm | PA-EPE mm | AUC | 2D EPE px | PCK@0.2 | confident "
            "(last round) | infeasible before -> after correction (round 0) | minutes |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    out = [head]
    for r in rows:
        m, rd = r["metrics"], r.get("rounds") or []
        conf = f"{rd[-1]['confident_share']:.2f}" if rd else "-"
        inf = (f"{rd[0]['infeasible_before']:.2f} -> {rd[0]['infeasible_after']:.2f}"
               if rd else "-")
        out.append(f"| {r['name']} | {r['steps']} | {m['epe_mm']:.2f} | {m['pa_epe_mm']:.2f} | "
                   f"{m['auc']:.3f} | {m['epe_2d_px']:.2f} | {m['pck_2d@0.2']:.3f} | {conf} | "
                   f"{inf} | {r['minutes']:.1f} |")
    return "\n".join(out)


def quick_data(work: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(REPO / "tests" / "training"))
    from test_recipe_semihand import write_masked_freihand  # noqa: PLC0415
    from training_data import write_image_folder  # noqa: PLC0415

    return write_masked_freihand(work / "synthetic", n=32, size=96), \
        write_image_folder(work / "unlabelled", n=32, size=96)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(ap)
    ap.add_argument("--synthetic", default="", help="labelled synthetic set with masks")
    ap.add_argument("--real-hands", default=str(SHARED / "real_hands"))
    ap.add_argument("--init", default="", help="pre-trained encoder for the baseline (PeCLR)")
    ap.add_argument("--unlabelled-limit", type=int, default=2000)
    ap.add_argument("--teacher", action="store_true", help="add the MediaPipe-teacher row")
    args = ap.parse_args()
    st = start(args)
    eval_root = st.eval_root
    with work_folder(args.workdir) as work:
        preset, limit, eval_limit = args.preset, args.unlabelled_limit, 0
        if args.quick:
            synthetic, unlabelled = quick_data(work)
            preset, limit, eval_limit = "tiny", 0, 48
        else:
            synthetic, unlabelled = Path(args.synthetic), Path(args.real_hands)
            if not args.synthetic or not (synthetic / "training_xyz.json").is_file():
                sys.exit("--synthetic DIR is needed: a FreiHAND-layout synthetic set with "
                         "training/mask/ (e.g. from 'handpose-data synth')")
            if not unlabelled.is_dir():
                sys.exit(f"unlabelled images {unlabelled} not found")
        size = resolve_config(get_recipe("semihand").load().Config, "semihand",
                              preset).input_size
        common = [f"labelled.root={synthetic}", f"unlabelled.root={unlabelled}",
                  f"unlabelled.limit={limit}", "train.progress=false", "train.image_every=0",
                  "train.checkpoint_every=0"]
        if args.quick:
            steps0 = steps1 = 8
        else:  # fit the update counts to the budget: baseline N0, each fine-tuning N0 / 2
            t0 = seconds_per_update(preset, common, BASELINE, work, "baseline")
            t1 = seconds_per_update(preset, common, [f"init={work / 'timing-baseline'}"],
                                    work, "full")
            left = args.budget_minutes * 60 - st.elapsed_s()
            n_ft = len(VARIANTS) - 1 + args.teacher  # the control runs L_sup only (t0)
            per_unit = t0 + 0.5 * t0 + 0.5 * n_ft * t1 * 1.1  # 10 % for the label rounds
            steps0 = max(20, int(0.85 * left / per_unit))  # 15 %: evaluation, teacher
            steps1 = max(10, steps0 // 2)
            print(f"{t0:.2f} s/update (L_sup), {t1:.2f} s/update (full): {steps0} baseline "
                  f"updates, {steps1} per fine-tuning", flush=True)
        rows: list[dict[str, Any]] = []
        base_dir = work / "baseline"
        init = [f"init={args.init}"] if args.init else []
        res = run_semihand(preset, [*common, *BASELINE, *init, f"train.steps={steps0}",
                                    f"out={base_dir}"], base_dir)
        rows.append({"name": "synthetic only (baseline)", "steps": steps0, **res})
        variants = dict(VARIANTS)
        if args.teacher:
            variants["full, MediaPipe-teacher labels"] = ["pseudo.source=teacher",
                                                          f"teacher.cache_dir={work / 'teacher'}"]
        for name, extra in variants.items():
            run = work / name.replace(" ", "_").replace(",", "").replace("+", "plus")
            res = run_semihand(preset, [*common, *extra, f"init={base_dir}",
                                        f"train.steps={steps1}", f"out={run}"], run)
            rows.append({"name": name, "steps": steps1, **res})
            print(f"{name}: done in {res['minutes']:.1f} min", flush=True)
        for r in rows:
            r["metrics"] = evaluate(Path(r["model"]), eval_root, size, eval_limit)
        text = table(rows)
        print(text)
        if args.append:
            append_results(
                "SemiHand ablation on real_eval_hgc",
                f"`{command('methods_semihand.py')}`: preset {preset} ({size} px crops), "
                f"labelled {synthetic}, unlabelled {unlabelled} (limit {limit}), evaluated on "
                f"{eval_root} (never trained on). {st.machine()} Reference: {PAPER}.\n\n{text}")

if __name__ == "__main__":
    main()
