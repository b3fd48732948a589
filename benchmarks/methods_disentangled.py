"""Disentangled VAE (dissertation ch. 4, issue 8 item 3): pose estimate, reconstruction and
disentanglement on a synthetic test split and on real frames.

    .venv/bin/python benchmarks/methods_disentangled.py [--synthetic DIR --synthetic-test DIR]
        [--eval DIR] [--budget-minutes 60] [--preset cpu] [--baseline] [--append]
        [--workdir DIR] [--threads N] [--n-train 4000] [--n-test 400]
    .venv/bin/python benchmarks/methods_disentangled.py --quick   # a one-minute smoke run

Trains ``handpose-train disentangled`` at ``--preset`` (cpu) on ``--synthetic`` for as many
updates as fit ``--budget-minutes`` (timed from a few updates first), with ``--synthetic-test``
as its validation set, then evaluates the checkpoint on both the synthetic test split and
``--eval`` (``real_eval_hgc``: evaluation only, never trained on):

- pose: EPE, PA-EPE, AUC (0-50 mm) with the ground-truth scale and K, 2D EPE and PCK@0.2, the
  protocol of ``handpose-train eval``;
- images: per-pixel MSE of D_x(E_x(x)) and of D_x([E_y(y), E_u(x)]) and the PSNR of the first;
- disentanglement: the pose re-estimated on images transferred from (pose of i, content of j),
  its 2D distance to the pose of i and to the pose of j. The benchmark asserts (exit code 1)
  that on the synthetic test split the transferred images carry the pose of i
  (``transfer_to_pose_px`` < ``transfer_to_content_px``).

Without ``--synthetic`` the two splits are rendered with ``handpose-data synth`` (seeds 0 and
1, ``--n-train`` / ``--n-test`` hands at 128 px) into the work folder. ``--baseline`` adds a
``finetune`` PoseNet with the same encoder, crop size, batch and wall-clock budget. Grids of the
real frames go to ``<workdir>/grids_real``. ``--append`` adds the table to
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from method_bench import REPO, append_results, command, common_arguments, start, work_folder

from handpose.core.checkpoint import load_checkpoint
from handpose.core.data.sample import collate
from handpose.training.config_files import resolve_config
from handpose.training.recipes import get_recipe
from handpose.training.recipes.data import LabelledData, labelled_dataset
from handpose.training.recipes.disentangled import reconstruction_metrics, write_grids
from handpose.training.recipes.eval import evaluate_model

PAPER = ("Yang & Yao (CVPR 2019) report a mean 3D EPE on RHD and STB very close to the "
         "cross-modal VAE of Spurr et al. 2018 (the numbers are only in their Fig. 4.7)")


def run_recipe(name: str, preset: str, overrides: list[str], run_dir: Path) -> dict[str, Any]:
    module = get_recipe(name).load()
    cfg = resolve_config(module.Config, name, preset, overrides)
    module.check(cfg)
    t0 = time.perf_counter()
    out = module.run(cfg, run_dir)
    out["minutes"] = (time.perf_counter() - t0) / 60
    out["batch"] = cfg.train.batch_size
    return out


def seconds_per_update(name: str, preset: str, common: list[str], work: Path) -> float:
    """Median wall time of updates 3..8 of a short run (the loop's ``opt/samples_per_s``)."""
    run = work / f"timing-{name}"
    out = run_recipe(name, preset, [*common, "train.steps=8", "train.log_every=1",
                                    "train.eval_every=0", "val.root=", f"out={run}"], run)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    rates = sorted(x["opt/samples_per_s"] for x in lines if "opt/samples_per_s" in x)[2:]
    return float(out["batch"]) / rates[len(rates) // 2]


def evaluate(model_path: Path, root: Path, grids_dir: Path | None = None,
             limit: int = 0) -> dict[str, float]:
    """Pose metrics of any PoseNet checkpoint on ``root``; image and transfer metrics too
    when it is a dVAE (and its grids, when ``grids_dir`` is given)."""
    model, meta = load_checkpoint(model_path)
    ds = labelled_dataset(LabelledData(root=str(root), limit=limit), meta.input_size)
    metrics, _ = evaluate_model(model, ds, batch_size=32)
    if meta.arch["name"] == "disentangled_vae":
        metrics.update(reconstruction_metrics(model, ds, batch_size=32))  # type: ignore[arg-type]
        if grids_dir is not None:
            n = len(ds)  # type: ignore[arg-type]
            idx = torch.linspace(0, n - 1, min(n, 8)).round().long().tolist()
            write_grids(model, collate([ds[i] for i in idx]), grids_dir)  # type: ignore[arg-type]
    return metrics


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| model | evaluated on | updates | minutes | EPE mm | PA-EPE mm | AUC | 2D EPE px | "
            "PCK@0.2 | recon MSE | recon PSNR dB | synth MSE | transfer: to pose px | "
            "transfer: to content px |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    out = [head]
    for r in rows:
        m = r["metrics"]

        def f(k: str, fmt: str = ".2f", m: dict[str, float] = m) -> str:
            return format(m[k], fmt) if k in m else "-"

        out.append(f"| {r['name']} | {r['on']} | {r['steps']} | {r['minutes']:.1f} | "
                   f"{f('epe_mm')} | {f('pa_epe_mm')} | {f('auc', '.3f')} | {f('epe_2d_px')} | "
                   f"{f('pck_2d@0.2', '.3f')} | {f('recon_mse', '.4f')} | {f('recon_psnr', '.1f')} "
                   f"| {f('synth_mse', '.4f')} | {f('transfer_to_pose_px')} | "
                   f"{f('transfer_to_content_px')} |")
    return "\n".join(out)


def render_splits(work: Path, n_train: int, n_test: int) -> tuple[Path, Path]:
    """Render train / test splits with ``handpose-data synth`` (seeds 0 / 1)."""
    from handpose.core.data.synthetic.cli import main as synth  # noqa: PLC0415

    out = []
    for name, n, seed in (("synthetic_train", n_train, 0), ("synthetic_test", n_test, 1)):
        root = work / name
        code = synth(["synth", "--n", str(n), "--out", str(root), "--size", "128",
                      "--seed", str(seed), "--quiet"])
        if code:
            sys.exit(f"handpose-data synth failed for {root} (exit code {code})")
        out.append(root)
    return out[0], out[1]


def quick_data(work: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(REPO / "tests" / "training"))
    from test_recipe_disentangled import write_two_factor  # noqa: PLC0415

    return (write_two_factor(work / "synthetic_train", 128, seed=0),
            write_two_factor(work / "synthetic_test", 32, seed=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(ap, budget_minutes=60.0)
    ap.add_argument("--synthetic", default="", help="labelled synthetic training set")
    ap.add_argument("--synthetic-test", default="", help="labelled synthetic test set")
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-test", type=int, default=400)
    ap.add_argument("--baseline", action="store_true", help="add a same-budget finetune row")
    args = ap.parse_args()
    st = start(args)
    eval_root = st.eval_root
    with work_folder(args.workdir) as work:
        preset, eval_limit = args.preset, 0
        if args.quick:
            train_root, test_root = quick_data(work)
            preset, eval_limit = "tiny", 48
        elif args.synthetic:
            train_root, test_root = Path(args.synthetic), Path(args.synthetic_test)
            for p in (train_root, test_root):
                if not (p / "training_xyz.json").is_file():
                    sys.exit(f"{p or '--synthetic-test'}: a FreiHAND-layout labelled set is "
                             "needed (e.g. from 'handpose-data synth')")
        else:
            train_root, test_root = render_splits(work, args.n_train, args.n_test)
        dcfg = resolve_config(get_recipe("disentangled").load().Config, "disentangled", preset)
        common = [f"data.root={train_root}", "train.progress=false", "train.checkpoint_every=0",
                  "train.image_every=0"]
        if args.quick:
            steps = steps_ft = 30
        else:
            t_d = seconds_per_update("disentangled", preset, common, work)
            ft_common = [*common, f"input_size={dcfg.input_size}",
                         f"model.width={dcfg.model.width}", f"model.depth={dcfg.model.depth}",
                         f"train.batch_size={dcfg.train.batch_size}"]
            t_f = seconds_per_update("finetune", preset, ft_common, work) if args.baseline else 0
            left = args.budget_minutes * 60 - st.elapsed_s()
            share = 0.5 if args.baseline else 1.0
            steps = max(20, int(0.9 * share * left / t_d))  # 10 %: evaluation and grids
            steps_ft = max(20, int(0.9 * share * left / t_f)) if args.baseline else 0
            print(f"{t_d:.2f} s/update: {steps} dVAE updates"
                  + (f"; baseline {t_f:.2f} s/update: {steps_ft} updates" if args.baseline
                     else ""), flush=True)
        run = work / "disentangled"
        res = run_recipe("disentangled", preset, [*common, f"val.root={test_root}",
                                                  f"train.steps={steps}", f"out={run}"], run)
        rows: list[dict[str, Any]] = []
        for on, root, grids in (("synthetic test", test_root, None),
                                (eval_root.name, eval_root, work / "grids_real")):
            m = evaluate(Path(res["model"]), root, grids, eval_limit if root == eval_root else 0)
            rows.append({"name": "dVAE", "on": on, "steps": steps, "minutes": res["minutes"],
                         "metrics": m})
        if args.baseline or args.quick:
            run_ft = work / "finetune"
            ft = run_recipe("finetune", preset, [*common, f"input_size={dcfg.input_size}",
                                                 f"model.width={dcfg.model.width}",
                                                 f"model.depth={dcfg.model.depth}",
                                                 f"train.batch_size={dcfg.train.batch_size}",
                                                 f"train.steps={steps_ft}", f"out={run_ft}"],
                            run_ft)
            for on, root in (("synthetic test", test_root), (eval_root.name, eval_root)):
                m = evaluate(Path(ft["model"]), root, None,
                             eval_limit if root == eval_root else 0)
                rows.append({"name": "PoseNet (finetune), same encoder", "on": on,
                             "steps": steps_ft, "minutes": ft["minutes"], "metrics": m})
        text = table(rows)
        print(text)
        syn = rows[0]["metrics"]
        ok = syn["transfer_to_pose_px"] < syn["transfer_to_content_px"]
        verdict = (f"disentanglement check on the synthetic test split: transferred images carry "
                   f"the pose source's pose ({syn['transfer_to_pose_px']:.2f} px) "
                   f"{'rather than' if ok else 'NOT rather than'} the content source's "
                   f"({syn['transfer_to_content_px']:.2f} px): {'PASS' if ok else 'FAIL'}")
        print(verdict)
        if args.append:
            append_results(
                "Disentangled VAE",
                f"`{command('methods_disentangled.py')}`: preset {preset} ({dcfg.input_size} px "
                f"crops, ResNet-{dcfg.model.depth} width {dcfg.model.width}, z = "
                f"{dcfg.model.pose_latent} pose + {dcfg.model.content_latent} content), trained "
                f"on {train_root}, tested on {test_root} and {eval_root} (never trained on). "
                f"Pose metrics use the ground-truth scale and K; MSE on [0, 1] RGB crops. "
                f"{st.machine()} Reference: {PAPER}.\n\n{text}\n\n{verdict}.")
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
