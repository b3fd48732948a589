"""Cross-modal VAE variants (METHODS §7): pose from RGB alone, and the hand point cloud.

    .venv/bin/python benchmarks/methods_crossvae.py --synthetic DIR [--synthetic-test DIR]
        [--eval DIR] [--budget-minutes 120] [--preset cpu] [--init W] [--append]
        [--workdir DIR] [--threads N]
    .venv/bin/python benchmarks/methods_crossvae.py --quick      # a few-minute smoke run

Rows (the dissertation's Table 5.1), each trained on ``--synthetic`` (RGB + depth) for the same
wall-time share of ``--budget-minutes`` (update counts from timing a few updates of each):

1. ``r2p``: RGB -> pose (+ the 2D heatmaps the 2.5D output needs) (S1);
2. ``r2cp``: RGB -> point cloud + pose (S2);
3. ``poe``: RGB and point-cloud encoders, ELBO(RGB) + ELBO(cloud) + ELBO(product of experts)
   (S4).

All are evaluated from RGB alone on ``--eval`` (``real_eval_hgc``, never trained on) and on
``--synthetic-test`` (held out, when given): 3D EPE after lifting the 2.5D output with the
ground-truth scale and K, the root-relative EPE with the true wrist and scale (the paper's
protocol), PA-EPE, 2D EPE, and (sets with depth) the Chamfer distance of the reconstructed
cloud to the hand's depth points in mm. The paper (RHD): 16.61 (S1) -> 15.91 (R -> C+P) ->
13.14 mm (S4). ``--append`` adds the table to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from method_bench import REPO, append_results, command, common_arguments, start, work_folder

from handpose.core.checkpoint import load_checkpoint
from handpose.core.models.crossvae import CrossModalVAE
from handpose.training.config_files import resolve_config
from handpose.training.recipes import get_recipe
from handpose.training.recipes.crossvae_eval import evaluate_crossvae
from handpose.training.recipes.data import LabelledData
from handpose.training.recipes.multimodal_data import multimodal_dataset

PAPER = ("Yang et al. (dissertation Table 5.1, RHD, root and scale known): 16.61 mm (R->P), "
         "15.91 (R->C+P), 13.14 mm (RC->CHP, product of experts)")
VARIANTS = {"r2p": "RGB -> pose (S1)", "r2cp": "RGB -> cloud + pose (S2)",
            "poe": "RGB + cloud, product of experts (S4)"}


def run_crossvae(preset: str, overrides: list[str], run_dir: Path) -> dict[str, Any]:
    module = get_recipe("crossvae").load()
    cfg = resolve_config(module.Config, "crossvae", preset, overrides)
    module.check(cfg)
    t0 = time.perf_counter()
    out = module.run(cfg, run_dir)
    out["minutes"] = (time.perf_counter() - t0) / 60
    return out


def seconds_per_update(preset: str, overrides: list[str], work: Path, name: str) -> float:
    run = work / f"timing-{name}"
    run_crossvae(preset, [*overrides, "train.steps=6", "train.log_every=1",
                          "train.eval_every=0", f"out={run}"], run)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    rates = sorted(x["opt/samples_per_s"] for x in lines if "opt/samples_per_s" in x)[2:]
    batch = resolve_config(get_recipe("crossvae").load().Config, "crossvae", preset,
                           overrides).train.batch_size
    return batch / rates[len(rates) // 2]


def evaluate(model_path: Path, root: Path, size: int, limit: int) -> dict[str, float]:
    model, _ = load_checkpoint(model_path)
    assert isinstance(model, CrossModalVAE)
    ds = multimodal_dataset(LabelledData(root=str(root), limit=limit), size, 0,
                            key="evaluation set", need_depth=False)
    return evaluate_crossvae(model, ds, batch_size=32)


def table(rows: list[dict[str, Any]], sets: list[str]) -> str:
    cols = " | ".join(f"{s} EPE mm | {s} root-rel. EPE mm | {s} PA-EPE mm | {s} 2D EPE px | "
                      f"{s} Chamfer mm" for s in sets)
    out = [f"| variant | updates | minutes | {cols} |",
           "|---|---|---|" + "---|" * (5 * len(sets))]
    for r in rows:
        cells = []
        for s in sets:
            m = r["eval"][s]
            ch = f"{m['chamfer_mm']:.2f}" if "chamfer_mm" in m else "-"
            cells.append(f"{m['epe_mm']:.2f} | {m['epe_rr_mm']:.2f} | {m['pa_epe_mm']:.2f} | "
                         f"{m['epe_2d_px']:.2f} | {ch}")
        out.append(f"| {r['name']} | {r['steps']} | {r['minutes']:.1f} | {' | '.join(cells)} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(ap)
    ap.add_argument("--synthetic", default="", help="synthetic RGB + depth training set")
    ap.add_argument("--synthetic-test", default="", help="held-out synthetic set (optional)")
    ap.add_argument("--init", default="", help="RGB encoder weights (PeCLR / ImageNet)")
    args = ap.parse_args()
    st = start(args)
    eval_root = st.eval_root
    with work_folder(args.workdir) as work:
        preset, eval_limit = args.preset, 0
        synth_test: Path | None
        if args.quick:
            sys.path.insert(0, str(REPO / "tests" / "training"))
            from rgbd_data import write_freihand_rgbd  # noqa: PLC0415

            synthetic = write_freihand_rgbd(work / "synthetic", n=32, size=96)
            synth_test = write_freihand_rgbd(work / "synthetic_test", n=16, size=96, seed=5)
            preset, eval_limit = "tiny", 48
        else:
            synthetic = Path(args.synthetic)
            synth_test = Path(args.synthetic_test) if args.synthetic_test else None
            if not args.synthetic or not (synthetic / "training" / "depth").is_dir():
                sys.exit("--synthetic DIR is needed: a FreiHAND-layout synthetic set with "
                         "training/depth/ (e.g. 'handpose-data synth')")
        size = resolve_config(get_recipe("crossvae").load().Config, "crossvae",
                              preset).input_size
        common = [f"data.root={synthetic}", "train.progress=false", "train.image_every=0",
                  "train.checkpoint_every=0", *([f"init={args.init}"] if args.init else [])]
        steps = dict.fromkeys(VARIANTS, 8)
        if not args.quick:
            secs = {v: seconds_per_update(preset, [*common, f"variant={v}"], work, v)
                    for v in VARIANTS}
            share = (args.budget_minutes * 60 - st.elapsed_s()) * 0.9 / 3
            steps = {v: max(10, int(share / s)) for v, s in secs.items()}
            print(f"s/update {secs} -> updates {steps}", flush=True)
        rows: list[dict[str, Any]] = []
        for v, name in VARIANTS.items():
            res = run_crossvae(preset, [*common, f"variant={v}", f"train.steps={steps[v]}",
                                        f"out={work / v}"], work / v)
            rows.append({"name": name, "steps": steps[v], **res})
            print(f"{name}: {res['minutes']:.1f} min", flush=True)
        sets = {"real_eval_hgc": eval_root}
        if synth_test is not None:
            sets["synthetic test"] = synth_test
        for r in rows:
            r["eval"] = {k: evaluate(Path(r["model"]), root, size, eval_limit)
                         for k, root in sets.items()}
        text = table(rows, list(sets))
        print(text)
        if args.append:
            append_results(
                "Cross-modal VAE variants",
                f"`{command('methods_crossvae.py')}`: preset {preset} ({size} px crops), "
                f"synthetic {synthetic}, evaluated from RGB alone on {eval_root} (never trained "
                f"on){' and ' + str(synth_test) if synth_test else ''}. {st.machine()} "
                f"Reference: {PAPER}.\n\n{text}")


if __name__ == "__main__":
    main()
