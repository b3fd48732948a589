"""Self-supervised sphere fitting on depth (Wan et al. 2019, METHODS §6, issue 7): what the
self-supervision buys on depth the network was not trained on.

    .venv/bin/python benchmarks/methods_fitting.py [--budget-minutes 120] [--rgbd DIR]
        [--workdir DIR] [--prior MODEL] [--threads 1] [--append]
    .venv/bin/python benchmarks/methods_fitting.py --quick      # a one-minute smoke run

Data (all depth made by :mod:`handpose.training.recipes.depth_synth` unless real):

* **A** (initialisation): sampled hands of the template's proportions (hand scale 0.85-1.15),
  template sphere radii, the default sensor noise, forearm, one view.
* **B** (domain-shifted): other hand shapes (scale 0.75-0.95, per-bone length spread x2,
  sphere radii x1.1-1.3: thicker fingers and palm) and other sensor noise (3x the axial
  noise, more dropout at edges and in blobs, wobble), seen by a calibrated rig of 3 cameras
  60 degrees apart. ``B-train`` (unlabelled, its labels never reach the loss) and ``B-test``
  (other hands, first camera) are disjoint.
* **real**: the 25 real RGB-D frames of ``--rgbd`` (``shared/data/real_rgbd``), crops
  centred without labels (:func:`~handpose.core.data.depth_crop.hand_centre_from_depth`).

Rows: the initial network (``fit-depth stage=synthetic`` on A) on A-test ("synth (test on
synth)"), on B-test ("synthetic-only init") and on the real frames; then from that init, with
the same number of updates: the control (supervised training on A continued, no fitting),
single-view fitting on B-train (every view fitted on its own: no multi-view term, no
cross-view data terms) and multi-view fitting (median consistency and cross-view terms over
the calibrated rig), all evaluated on B-test. The fits keep the supervised loss on A in the
mix (``sup_weight``; Wan et al.: "while still leveraging supervision from synthesized labeled
data"), so their gap to the control is what the self-supervision adds. Last, single-view
fitting on the real frames themselves (transductive, like Wan et al.'s "train on test"; labels
only for the metric). EPE, PA-EPE and the EPE after ``correct_pose`` in mm; the share of
infeasible predictions. The paper (NYU): 22.65 (synthetic + noise) -> 17.79 (single view)
-> 12.62 mm (multi-view).

Update counts are fitted to ``--budget-minutes`` from short timing runs of each stage.
``--append`` adds the table to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import default_collate

from handpose.core.checkpoint import load_checkpoint
from handpose.training.config_files import resolve_config
from handpose.training.recipes import get_recipe
from handpose.training.recipes.depth_data import DepthData, depth_folder_dataset
from handpose.training.recipes.depth_synth import DepthSynthesizer
from handpose.training.recipes.fit_depth import Config, evaluate_views

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
PAPER = ("Wan et al. (CVPR 2019) on NYU: 22.65 mm (synthetic + noise) -> 17.79 mm (single-view "
         "fitting) -> 12.62 mm (multi-view fitting)")

REAL_UPDATES = 300
SUP_WEIGHT = 1.0  # the fits keep the synthetic supervision of A in the mix (Wan et al. 3.4)
MODEL = ["model.width=32", "model.num_points=21", "input_size=64"]
DATA_A = ["synthetic.hand_scale=[0.85,1.15]", "synthetic.px_per_cell=1.5"]
SHIFT = ["hand_scale=[0.75,0.95]", "length_sigma=0.06", "radius_scale=[1.1,1.3]",
         "px_per_cell=1.5", "views=3"]
NOISE_B = ["sigma=0.002", "sigma_quadratic=0.012", "wobble=0.002", "dropout=0.03",
           "edge_dropout=0.6", "blob_dropout=0.05", "blob_scale=6"]
FIT = ["train.lr=2e-4", "train.warmup_steps=0", f"sup_weight={SUP_WEIGHT}"]
CONTROL = ["stage=synthetic", "train.lr=2e-4", "train.warmup_steps=0"]
SINGLE = ["energy.multiview=0", "energy.cross_view=false"]
MULTI = ["energy.multiview=1.0", "energy.cross_view=true"]


def section(prefix: str, values: list[str]) -> list[str]:
    return [f"{prefix}.{v}" for v in values]


def merged(*groups: list[str]) -> list[str]:
    """``key=value`` overrides of several groups; a later group's value of a key wins."""
    out: dict[str, str] = {}
    for g in groups:
        for item in g:
            key, _, value = item.partition("=")
            out[key.strip()] = value
    return [f"{k}={v}" for k, v in out.items()]


def run_recipe(overrides: list[str], run_dir: Path) -> dict[str, Any]:
    module = get_recipe("fit-depth").load()
    cfg = resolve_config(module.Config, "fit-depth", "cpu", merged(overrides,
                                                                   [f"out={run_dir}"]))
    module.check(cfg)
    t0 = time.perf_counter()
    out = module.run(cfg, run_dir)
    out["minutes"] = (time.perf_counter() - t0) / 60
    return out


def run_prior(steps: int, run_dir: Path) -> Path:
    module = get_recipe("prior").load()
    cfg = resolve_config(module.Config, "prior", "cpu",
                         [f"train.steps={steps}", "train.progress=false", f"out={run_dir}",
                          "train.checkpoint_every=0", f"kl_warmup_steps={min(1000, steps // 4)}"])
    module.run(cfg, run_dir)
    return run_dir / "model.pt"


def seconds_per_update(overrides: list[str], work: Path, name: str) -> float:
    """Median wall time of updates 3.. of a short run (the loop's ``opt/samples_per_s``)."""
    run = work / f"timing-{name}"
    run_recipe(merged(overrides, ["train.steps=6", "train.log_every=1", "train.eval_every=0",
                                  "val_size=8", "val.source=none"]), run)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    rates = sorted(x["opt/samples_per_s"] for x in lines if "opt/samples_per_s" in x)[2:]
    batch = resolve_config(Config, "fit-depth", "cpu", merged(overrides)).train.batch_size
    return batch / rates[len(rates) // 2]


def synthetic_views(overrides: list[str], n: int) -> dict[str, torch.Tensor]:
    """``n`` labelled hands of a synthetic spec given as ``val.*`` overrides."""
    cfg = resolve_config(Config, "fit-depth", "cpu", merged(overrides))
    synth = DepthSynthesizer(cfg.val.synthetic, cfg.val.noise, cfg.cube_side, cfg.input_size)
    chunks = [synth(torch.arange(i, min(i + 64, n))) for i in range(0, n, 64)]
    return {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}


def real_views(root: Path) -> dict[str, torch.Tensor]:
    ds = depth_folder_dataset(DepthData(source="folder", root=str(root), centre="depth"),
                              0.3, 64, "rgbd")
    return default_collate([ds[i] for i in range(len(ds))])


def evaluate(model_path: Path, views: dict[str, torch.Tensor]) -> dict[str, float]:
    model, _ = load_checkpoint(model_path)
    return evaluate_views(model, views, Config().energy)


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| row | test data | updates | EPE mm | PA-EPE mm | EPE corrected mm | infeasible |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["metrics"]
        out.append(f"| {r['name']} | {r['test']} | {r['steps']} | {m['epe_mm']:.2f} | "
                   f"{m['pa_epe_mm']:.2f} | {m['epe_corrected_mm']:.2f} | "
                   f"{100 * m['infeasible_before']:.0f} % |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-minutes", type=float, default=120.0)
    ap.add_argument("--quick", action="store_true", help="a one-minute smoke run")
    ap.add_argument("--rgbd", type=Path, default=SHARED / "real_rgbd")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--prior", type=Path, default=None, help="reuse a prior model.pt")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared, oversubscribed CPU more threads "
                         "spin against each other; 0 = torch's default)")
    ap.add_argument("--append", action="store_true", help="append the table to RESULTS.md")
    args = ap.parse_args()
    if args.quick and args.append:
        sys.exit("--quick runs are smoke tests: they are not appended to RESULTS.md")
    if args.threads:
        torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    t_start = time.perf_counter()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="methods_fitting-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder {work}", flush=True)
    quick = args.quick
    common = [*MODEL, "train.progress=false", "train.checkpoint_every=0", "train.log_every=10",
              "train.device=cpu", "train.batch_size=8" if quick else "train.batch_size=16"]
    n_test = 32 if quick else 300
    n_train = 64 if quick else 3000
    b_train = [*section("data.synthetic", [*SHIFT, "seed=100", f"length={n_train}"]),
               *section("data.noise", NOISE_B), "data.source=synthetic"]
    b_test = [*section("val.synthetic", [*SHIFT, "seed=200", f"length={n_test}"]),
              *section("val.noise", NOISE_B), "val.source=synthetic"]
    a_test = [*section("val.synthetic", ["hand_scale=[0.85,1.15]", "px_per_cell=1.5",
                                         "seed=300", f"length={n_test}"]),
              "val.source=synthetic"]

    # 1. the frozen prior
    prior = args.prior or run_prior(150 if quick else 6000, work / "prior")
    print(f"prior: {prior}", flush=True)
    init_cfg = [*common, *DATA_A, "stage=synthetic", "train.lr=3e-3", "val.source=none",
                "val_size=8"]
    fit_cfg = [*common, *DATA_A, "stage=fit", f"prior={prior}", *FIT, *b_train,
               "val.source=none", "val_size=8"]
    real_cfg = [*common, *DATA_A, "stage=fit", f"prior={prior}", *FIT, "data.source=folder",
                f"data.root={args.rgbd}", "data.centre=depth", *SINGLE, "val.source=none",
                "val_size=8"]
    has_real = (args.rgbd / "frames.json").exists()

    # 2. timing, then the update counts
    if quick:
        s_init, s_fit, s_real = 40, 10, 5
    else:
        t_init = seconds_per_update(init_cfg, work, "init")
        init_tmp = work / "timing-init"
        t_sv = seconds_per_update([*fit_cfg, *SINGLE, f"init={init_tmp}"], work, "single")
        t_mv = seconds_per_update([*fit_cfg, *MULTI, f"init={init_tmp}"], work, "multi")
        t_ctl = seconds_per_update([*init_cfg, *CONTROL, f"init={init_tmp}"], work, "control")
        t_real = seconds_per_update([*real_cfg, f"init={init_tmp}"], work, "real") \
            if has_real else 0.0
        spent = (time.perf_counter() - t_start) / 60
        left = max(args.budget_minutes - spent - 5.0, 5.0) * 60  # 5 min for the evaluations
        # the real frames are few (25): a few hundred passes suffice; the rest goes to the fits
        s_real = min(REAL_UPDATES, int(0.12 * left / t_real)) if has_real else 0
        left -= s_real * t_real
        s_init = int(0.5 * left / t_init)
        s_fit = int(0.5 * left / (t_sv + t_mv + t_ctl))
        print(f"s/update: init {t_init:.2f}, single {t_sv:.2f}, multi {t_mv:.2f}, real "
              f"{t_real:.2f}; updates: init {s_init}, fits {s_fit}, real {s_real}", flush=True)

    # 3. the runs
    init = run_recipe([*init_cfg, f"train.steps={s_init}"], work / "init")
    print(f"init: {init['minutes']:.1f} min", flush=True)
    runs = {"init": Path(init["model"])}
    res = run_recipe(merged(init_cfg, CONTROL, [f"init={runs['init']}", f"train.steps={s_fit}"]),
                     work / "control")
    runs["control"] = Path(res["model"])
    print(f"control (synthetic only, continued): {res['minutes']:.1f} min", flush=True)
    for name, extra in (("single", SINGLE), ("multi", MULTI)):
        res = run_recipe([*fit_cfg, *extra, f"init={runs['init']}", f"train.steps={s_fit}"],
                         work / name)
        runs[name] = Path(res["model"])
        print(f"{name}-view fit: {res['minutes']:.1f} min", flush=True)
    if has_real and s_real:
        res = run_recipe([*real_cfg, f"init={runs['init']}", f"train.steps={s_real}"],
                         work / "real")
        runs["real"] = Path(res["model"])
        print(f"real fit: {res['minutes']:.1f} min", flush=True)

    # 4. evaluation
    a = synthetic_views(a_test, n_test)
    b = synthetic_views(b_test, n_test)
    rows = [
        {"name": "synthetic-only init", "test": "A-test (as trained)", "steps": s_init,
         "metrics": evaluate(runs["init"], a)},
        {"name": "synthetic-only init", "test": "B-test (shifted)", "steps": s_init,
         "metrics": evaluate(runs["init"], b)},
        {"name": "init, continued on A only (control)", "test": "B-test (shifted)",
         "steps": s_fit, "metrics": evaluate(runs["control"], b)},
        {"name": "+ single-view fitting on B-train", "test": "B-test (shifted)",
         "steps": s_fit, "metrics": evaluate(runs["single"], b)},
        {"name": "+ multi-view fitting on B-train", "test": "B-test (shifted)",
         "steps": s_fit, "metrics": evaluate(runs["multi"], b)},
    ]
    if has_real:
        real = real_views(args.rgbd)
        rows.append({"name": "synthetic-only init", "test": f"real RGB-D ({len(real['input'])})",
                     "steps": s_init, "metrics": evaluate(runs["init"], real)})
        if "real" in runs:
            rows.append({"name": "+ single-view fitting on the real frames",
                         "test": f"real RGB-D ({len(real['input'])})", "steps": s_real,
                         "metrics": evaluate(runs["real"], real)})
    text = table(rows)
    minutes = (time.perf_counter() - t_start) / 60
    print(text)
    print(f"total {minutes:.1f} min", flush=True)
    if args.append:
        cmd = "python benchmarks/methods_fitting.py " + " ".join(sys.argv[1:])
        note = (f"\n\n## Sphere fitting on depth, Wan et al. ({time.strftime('%Y-%m-%d %H:%M')})"
                f"\n\n`{cmd}`: depth FCN width 32 on 64x64 crop cubes (0.3 m), batch "
                f"{16 if not quick else 8}; A = initialisation data, B = domain-shifted "
                f"(hand shapes, radii, sensor noise; rig of 3 calibrated cameras), "
                f"B-train {n_train} unlabelled hands, B-test {n_test} other hands (camera 0); "
                f"real = {args.rgbd.name} (centred without labels). Total {minutes:.0f} min. "
                f"Machine: {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
                f"shared (1-min load {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the "
                f"end). Reference: {PAPER}.\n\n{text}\n")
        with open(REPO / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as f:
            f.write(note)


if __name__ == "__main__":
    main()
