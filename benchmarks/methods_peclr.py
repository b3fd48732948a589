"""No pre-training vs SimCLR vs PeCLR: frozen-encoder probe and label efficiency (METHODS §2).

    .venv/bin/python benchmarks/methods_peclr.py --synthetic DIR --synthetic-test DIR2
        [--real-hands DIR] [--eval DIR] [--budget-minutes 120] [--size 64] [--width 32]
        [--append] [--workdir DIR] [--threads N] [--plan-only]
    .venv/bin/python benchmarks/methods_peclr.py --quick     # every arm on tiny data, ~1 min

Encoders, all ResNet-18 of the same width on ``--size`` px crops:

- none: random initialisation;
- SimCLR / PeCLR: ``pretrain method=simclr|peclr`` on the real photos (``--real-hands``) plus
  ``--pretrain-synthetic`` crops of ``--synthetic`` (``extra.format=freihand``), the same data
  and the same number of updates for both.

Arms per encoder, all with the same number of updates on ``--synthetic`` labels (upright
crops, as the tracker cuts them): (a) frozen encoder + 2-layer MLP probe (``freeze_encoder=true
head_hidden=--probe-hidden``) on 100 % of the labels; (b) full fine-tuning (linear 2.5D head)
on 1 %, 10 % and 100 % (``data.fraction``). Every model is evaluated on upright crops of
``--synthetic-test`` and ``--eval`` (real_eval_hgc: never trained on): 3D EPE, PA-EPE (lifted
with the ground-truth scale and K), 2D EPE (pixels of the original images) and PCK@0.2.

Budget: ``--budget-minutes`` is the whole run's wall time. A few updates of each kind
(pretrain, fine-tune, probe) and one evaluation are timed first; ``--pretrain-share`` of the
training time goes to the two pre-training arms, the rest to the 12 fine-tune/probe arms
(evaluation subtracted). The plan is kept in ``WORKDIR/plan.json``; every arm checkpoints and
resumes (``train.resume=auto``), a finished arm (``done.json``) or evaluation (``eval.json``) is
skipped, so a run killed mid-way continues when started again with the same ``--workdir``.
Each arm's ``config.toml`` is a preset: ``handpose-train finetune --preset ARM/config.toml``
repeats it. ``--append`` adds the tables and the papers' claims to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from handpose.core.checkpoint import load_checkpoint
from handpose.training.config_files import resolve_config, save_config
from handpose.training.loop import train
from handpose.training.recipes import finetune, pretrain
from handpose.training.recipes.data import LabelledData, labelled_dataset
from handpose.training.recipes.eval import evaluate_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
ENCODERS = ("none", "simclr", "peclr")
NAMES = {"none": "none (random init)", "simclr": "SimCLR", "peclr": "PeCLR"}
ARMS = (("probe", 1.0), ("finetune", 0.01), ("finetune", 0.1), ("finetune", 1.0))
PAPER_FROZEN = "Table 1 (FreiHAND, ResNet-50, frozen encoder + MLP): -3.4 % 3D EPE, -12.8 % 2D EPE"
PAPER_LABELS = ("Fig. 6 (FreiHAND + YT3D, ResNet-152): up to -43 % 3D EPE at the smallest "
                "label share")


def arm_name(kind: str, fraction: float) -> str:
    return "frozen + MLP probe" if kind == "probe" else f"fine-tune {fraction:.0%}"


def train_arm(kind: str, preset: str, overrides: list[str], run_dir: Path,
              hooks: tuple[Any, ...] = ()) -> dict[str, Any]:
    """Run a ``pretrain``/``finetune`` arm in ``run_dir`` (resumed; skipped when done)."""
    done = run_dir / "done.json"
    if done.is_file():
        return dict(json.loads(done.read_text()))
    mod: Any = pretrain if kind == "pretrain" else finetune
    cfg = resolve_config(mod.Config, kind, preset, [*overrides, f"out={run_dir}"])
    mod.check(cfg)
    save_config(cfg, kind, run_dir)
    every = cfg.train.checkpoint_every
    clock = run_dir / "elapsed.json"  # wall time up to the last checkpoint (resumed runs add)
    prior = json.loads(clock.read_text()) if clock.is_file() else {"step": 0, "seconds": 0.0}
    t0 = time.perf_counter()

    def tick(step: int, _: dict[str, float]) -> None:
        if every and step % every == 0:
            clock.write_text(json.dumps({"step": step, "seconds": prior["seconds"]
                                         + time.perf_counter() - t0}))

    recipe = mod.PretrainRecipe(cfg) if kind == "pretrain" else mod.FinetuneRecipe(cfg)
    res = train(recipe, cfg.train, run_dir, (*hooks, tick))
    out = {"model": res.outputs["model"], "steps": res.steps, "losses": res.losses,
           "samples": res.steps * cfg.train.batch_size,
           "minutes": (prior["seconds"] + time.perf_counter() - t0) / 60}
    done.write_text(json.dumps(out, indent=1))
    return out


def seconds_per_update(kind: str, preset: str, overrides: list[str], run_dir: Path,
                       n: int = 10) -> float:
    """Mean wall time of updates 4..n-1 of a fresh n-update run (start-up and save left out)."""
    stamps: list[float] = []
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run, never a resumed one
    train_arm(kind, preset, [*overrides, f"train.steps={n}", "train.warmup_steps=1",
                             "train.checkpoint_every=0"], run_dir,
              (lambda step, _: stamps.append(time.perf_counter()),))
    return (stamps[-2] - stamps[3]) / (len(stamps) - 5)


def evaluate(model_path: str, sets: dict[str, tuple[Path, int]], size: int
             ) -> dict[str, dict[str, float]]:
    """The ``eval`` recipe's metrics of a PoseNet on upright crops of every evaluation set."""
    model, _ = load_checkpoint(model_path)
    out = {}
    for name, (root, limit) in sets.items():
        ds = labelled_dataset(LabelledData(root=str(root), limit=limit, upright=True), size)
        metrics, pred = evaluate_model(model, ds, batch_size=64)
        out[name] = {**metrics, "n": float(len(pred.index))}
    return out


def evaluate_arm(res: dict[str, Any], sets: dict[str, tuple[Path, int]], size: int,
                 run_dir: Path) -> dict[str, dict[str, float]]:
    f = run_dir / "eval.json"
    if f.is_file():
        return dict(json.loads(f.read_text()))
    out = evaluate(res["model"], sets, size)
    f.write_text(json.dumps(out, indent=1))
    return out


def make_plan(args: argparse.Namespace, key: dict[str, Any], pre: list[str], ft: list[str],
              probe: list[str], sets: dict[str, tuple[Path, int]], work: Path,
              t_start: float) -> dict[str, Any]:
    """Time each kind of update and one evaluation; fit the update counts to the budget."""
    f = work / "plan.json"
    if f.is_file():
        plan = json.loads(f.read_text())
        if plan["key"] != key:
            sys.exit(f"{f} was planned for other settings ({plan['key']}); use another "
                     "--workdir or delete it")
        return dict(plan)
    tw = work / "timing"
    t_pre = seconds_per_update("pretrain", args.preset, [*pre, "method=peclr"], tw / "pretrain")
    t_ft = seconds_per_update("finetune", args.preset, ft, tw / "finetune")
    t_probe = seconds_per_update("finetune", args.preset, probe, tw / "probe")
    t0 = time.perf_counter()
    evaluate(json.loads((tw / "finetune" / "done.json").read_text())["model"], sets, args.size)
    t_eval = time.perf_counter() - t0
    left = args.budget_minutes * 60 - (time.perf_counter() - t_start)
    train_s = 0.9 * (left - 12 * t_eval)  # 10 %: start-ups, checkpoints, data-loader warm-up
    n_pre = max(20, int(args.pretrain_share * train_s / (2 * t_pre)))
    n_ft = max(20, int((1 - args.pretrain_share) * train_s / (9 * t_ft + 3 * t_probe)))
    plan = {"key": key, "s_per_update": {"pretrain": t_pre, "finetune": t_ft, "probe": t_probe},
            "eval_s": t_eval, "pretrain_steps": n_pre, "finetune_steps": n_ft,
            "load": os.getloadavg()[0]}
    f.write_text(json.dumps(plan, indent=1))
    return plan


def fmt_row(enc: str, r: dict[str, Any], sets: list[str]) -> str:
    cells = [NAMES[enc], arm_name(r["kind"], r["fraction"]), str(r["labels"]), str(r["steps"]),
             str(r["samples"]), f"{r['minutes']:.1f}"]
    for s in sets:
        m = r["eval"][s]
        cells += [f"{m['epe_mm']:.2f}", f"{m['pa_epe_mm']:.2f}", f"{m['epe_2d_px']:.2f}",
                  f"{m['pck_2d@0.2']:.3f}"]
    return "| " + " | ".join(cells) + " |"


def tables(pre: dict[str, dict[str, Any]], rows: dict[str, list[dict[str, Any]]],
           sets: list[str]) -> str:
    out = ["| pre-training | updates | images seen (2 views each) | last loss | positive top-1 "
           "| minutes |",
           "|---|---|---|---|---|---|"]
    for enc, r in pre.items():
        out.append(f"| {NAMES[enc]} | {r['steps']} | {r['samples']} | "
                   f"{r['losses'].get('loss', float('nan')):.3f} | "
                   f"{r['losses'].get('positive_top1', float('nan')):.3f} | {r['minutes']:.1f} |")
    cols = " | ".join(f"{s} 3D EPE mm | {s} PA-EPE mm | {s} 2D EPE px | {s} PCK@0.2"
                      for s in sets)
    out += ["", f"| encoder | head / labels | labelled samples | updates | samples seen | "
            f"minutes | {cols} |", "|---|---|---|---|---|---|" + "---|" * (4 * len(sets))]
    out += [fmt_row(enc, r, sets) for enc in ENCODERS for r in rows[enc]]
    return "\n".join(out)


def claims(rows: dict[str, list[dict[str, Any]]], sets: list[str]) -> str:
    """The papers' two claims, checked on every evaluation set (relative 3D EPE changes)."""
    def m(enc: str, i: int, s: str, key: str = "epe_mm") -> float:
        return float(rows[enc][i]["eval"][s][key])

    out = [f"Claim 1, PeCLR beats SimCLR with a frozen encoder (paper {PAPER_FROZEN}):"]
    for s in sets:
        d3 = 100 * (m("peclr", 0, s) / m("simclr", 0, s) - 1)
        d2 = 100 * (m("peclr", 0, s, "epe_2d_px") / m("simclr", 0, s, "epe_2d_px") - 1)
        ok = "holds" if d3 < 0 and d2 < 0 else "holds for 3D only" if d3 < 0 else (
            "holds for 2D only" if d2 < 0 else "does not hold")
        out.append(f"- {s}: PeCLR vs SimCLR probe {d3:+.1f} % 3D EPE, {d2:+.1f} % 2D EPE: "
                   f"{ok}.")
    out.append("\nClaim 2, pre-training helps most at the smallest label share (paper "
               f"{PAPER_LABELS}):")
    for s in sets:
        for enc in ("simclr", "peclr"):
            gain = {ARMS[i][1]: 100 * (m(enc, i, s) / m("none", i, s) - 1) for i in (1, 2, 3)}
            best = min(gain, key=lambda k: gain[k])
            ok = "holds" if best == ARMS[1][1] and gain[best] < 0 else "does not hold"
            shares = ", ".join(f"{k:.0%}: {v:+.1f} %" for k, v in gain.items())
            out.append(f"- {s}, {NAMES[enc]} vs none, 3D EPE: {shares}: {ok}.")
    out.append("\nOne seed per arm: the run-to-run spread was not measured, so differences of a "
               "few per cent may be noise.")
    return "\n".join(out)


def arm_overrides(args: argparse.Namespace, synthetic: Path, real: Path
                  ) -> tuple[list[str], list[str], list[str]]:
    """``key=value`` overrides of the pre-training, fine-tuning and probe arms."""
    s, common = args.size, ["train.progress=false", "train.image_every=0", "train.eval_every=0"]
    pre = [*common, f"data.root={real}", f"extra.root={synthetic}", "extra.format=freihand",
           f"extra.limit={args.pretrain_synthetic}", f"data.load_size={round(s * 7 / 6)}",
           f"views.size={s}", f"views.max_translation_px={15 * s / 128:.2f}",
           f"model.width={args.width}", f"train.batch_size={args.pretrain_batch}"]
    ft = [*common, f"data.root={synthetic}", "data.upright=true", f"input_size={s}",
          f"aug.max_translation_px={8 * s / 128:.2f}", f"model.width={args.width}",
          f"train.batch_size={args.finetune_batch}"]
    return pre, ft, [*ft, "freeze_encoder=true", f"head_hidden={args.probe_hidden}"]


def section(args: argparse.Namespace, argv: list[str] | None, plan: dict[str, Any], text: str,
            run: dict[str, Any]) -> str:
    """The RESULTS.md section: heading, command, settings, budgets, machine, tables, claims."""
    cmd = "python benchmarks/methods.py peclr " + " ".join(argv or sys.argv[1:])
    t_s = ", ".join(f"{k} {v:.2f}" for k, v in plan["s_per_update"].items())
    lim = run["eval_limit"]
    workers = resolve_config(finetune.Config, "finetune", args.preset).train.num_workers
    return (
        f"\n\n## PeCLR / SimCLR / no pre-training: frozen probe and label efficiency"
        f"{' (--quick smoke run: tiny data, numbers meaningless)' if args.quick else ''}"
        f" ({time.strftime('%Y-%m-%d %H:%M')})\n\n`{cmd}`\n\nResNet-18 of width {args.width}, "
        f"{args.size} px crops and views (preset {args.preset} otherwise). Pre-training: "
        f"{run['real']} + {args.pretrain_synthetic or 'all'} crops of {run['synthetic']}, batch "
        f"{args.pretrain_batch}, {plan['pretrain_steps']} updates per method. Fine-tuning and "
        f"probe ({args.probe_hidden}-wide 2-layer MLP on the frozen encoder, 100 % labels): "
        f"{run['synthetic']} ({run['n_labels']} labelled samples, upright crops), batch "
        f"{args.finetune_batch}, {plan['finetune_steps']} updates per arm. Evaluation on upright "
        f"crops of {run['synth_test']} and {run['eval_root']} (never trained on), ground-truth "
        f"scale and K{f', a seeded subset of {lim} samples each' if lim else ''}. Budget "
        f"{args.budget_minutes:.0f} min: {args.pretrain_share:.0%} of the training time to the "
        f"two pre-trainings; measured s/update {t_s or '-'}, one evaluation "
        f"{plan['eval_s']:.0f} s; this session ran {run['minutes']:.0f} min. Machine: "
        f"{os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s) + {workers} "
        f"data-loader workers, shared (1-min load {run['load0']:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end).\n\n{text}\n")


def quick_data(work: Path) -> tuple[Path, Path, Path]:
    sys.path.insert(0, str(REPO / "tests" / "training"))
    from training_data import write_freihand, write_image_folder  # noqa: PLC0415

    return (write_freihand(work / "synthetic", n=400, size=64),
            write_freihand(work / "synthetic_test", n=16, size=64, seed=5),
            write_image_folder(work / "unlabelled", n=32, size=64))


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", default="", help="labelled synthetic set (FreiHAND layout)")
    ap.add_argument("--synthetic-test", default="", help="held-out synthetic set")
    ap.add_argument("--real-hands", default=str(SHARED / "real_hands"))
    ap.add_argument("--eval", default=str(SHARED / "real_eval_hgc"))
    ap.add_argument("--budget-minutes", type=float, default=120.0)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--size", type=int, default=64, help="crop / view side in pixels")
    ap.add_argument("--width", type=int, default=32, help="ResNet-18 base width (64 = full)")
    ap.add_argument("--pretrain-batch", type=int, default=64)
    ap.add_argument("--finetune-batch", type=int, default=32)
    ap.add_argument("--probe-hidden", type=int, default=512, help="MLP probe width")
    ap.add_argument("--pretrain-synthetic", type=int, default=15000,
                    help="synthetic crops mixed into pre-training (0 = all)")
    ap.add_argument("--pretrain-share", type=float, default=0.35,
                    help="share of the training time for the two pre-training arms")
    ap.add_argument("--eval-limit", type=int, default=0, help="samples per evaluation set")
    ap.add_argument("--quick", action="store_true", help="tiny preset and data: a smoke run")
    ap.add_argument("--plan-only", action="store_true", help="time, print the plan, stop")
    ap.add_argument("--append", action="store_true", help="append the tables to --results")
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"))
    ap.add_argument("--workdir", default="", help="keep the runs here (default: temporary)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of the main process (0 = torch default)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not 0 < args.pretrain_share < 1:
        sys.exit(f"--pretrain-share must be in (0, 1), got {args.pretrain_share}")
    eval_root = Path(args.eval)
    if not (eval_root / "training_xyz.json").is_file():
        sys.exit(f"evaluation set {eval_root} not found (FreiHAND layout expected)")
    load0, t_start = os.getloadavg()[0], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.quick:
            args.preset, args.size, args.width, eval_limit = "tiny", 64, 8, 32
            synthetic, synth_test, real = quick_data(work)
            args.pretrain_batch, args.finetune_batch, args.pretrain_synthetic = 8, 4, 0
        else:
            eval_limit = args.eval_limit
            synthetic, real = Path(args.synthetic), Path(args.real_hands)
            synth_test = Path(args.synthetic_test)
            for p, flag in ((synthetic, "--synthetic"), (synth_test, "--synthetic-test")):
                if not str(p) or not (p / "training_xyz.json").is_file():
                    sys.exit(f"{flag} DIR is needed: a FreiHAND-layout synthetic set (e.g. "
                             "from 'handpose-data synth --n N --out DIR')")
            if not real.is_dir():
                sys.exit(f"unlabelled images {real} not found")
        n_labels = len(labelled_dataset(LabelledData(root=str(synthetic)), args.size))
        if round(0.01 * n_labels) < args.finetune_batch:
            sys.exit(f"1 % of {synthetic} ({round(0.01 * n_labels)} samples) is smaller than a "
                     f"fine-tuning batch ({args.finetune_batch})")
        s = args.size
        pre, ft, probe = arm_overrides(args, synthetic, real)
        sets = {"synthetic test": (synth_test, eval_limit), "real_eval_hgc": (eval_root,
                                                                              eval_limit)}
        key = {k: str(getattr(args, k)) for k in (
            "budget_minutes", "preset", "size", "width", "pretrain_batch", "finetune_batch",
            "probe_hidden", "pretrain_synthetic", "pretrain_share", "quick")}
        key.update(synthetic=str(synthetic), real=str(real))
        plan: dict[str, Any]
        if args.quick:
            plan = {"pretrain_steps": 4, "finetune_steps": 4, "s_per_update": {}, "eval_s": 0}
        else:
            plan = make_plan(args, key, pre, ft, probe, sets, work, t_start)
        n_pre, n_ft = plan["pretrain_steps"], plan["finetune_steps"]
        print(f"plan: {n_pre} updates per pre-training, {n_ft} per fine-tune/probe arm "
              f"(s/update {plan['s_per_update']}, one evaluation {plan['eval_s']:.0f} s)",
              flush=True)
        if args.plan_only:
            return 0
        pre_res: dict[str, dict[str, Any]] = {}
        for enc in ("simclr", "peclr"):
            pre_res[enc] = train_arm("pretrain", args.preset, [
                *pre, f"method={enc}", f"train.steps={n_pre}",
                f"train.warmup_steps={max(1, n_pre // 10)}", "train.resume=auto",
                f"train.checkpoint_every={max(5, n_pre // 10)}"], work / f"pretrain-{enc}")
            print(f"pretrain {enc}: {pre_res[enc]['minutes']:.1f} min", flush=True)
        rows: dict[str, list[dict[str, Any]]] = {}
        for enc in ENCODERS:
            init = [f"init={pre_res[enc]['model']}"] if enc in pre_res else []
            rows[enc] = []
            for kind, frac in ARMS:
                run = work / f"{enc}-{kind}-{round(frac * 100)}"
                res = train_arm("finetune", args.preset, [
                    *(probe if kind == "probe" else ft), *init, f"data.fraction={frac}",
                    f"train.steps={n_ft}", f"train.warmup_steps={max(1, n_ft // 20)}",
                    f"train.checkpoint_every={max(5, n_ft // 5)}", "train.resume=auto"], run)
                ev = evaluate_arm(res, sets, s, run)
                rows[enc].append({**res, "kind": kind, "fraction": frac, "eval": ev,
                                  "labels": max(1, round(frac * n_labels))})
                print(f"{NAMES[enc]}, {arm_name(kind, frac)}: {res['minutes']:.1f} min, "
                      f"real 3D EPE {ev['real_eval_hgc']['epe_mm']:.1f} mm", flush=True)
        text = tables(pre_res, rows, list(sets)) + "\n\n" + claims(rows, list(sets))
        print(text)
        if args.append:
            with open(args.results, "a", encoding="utf-8") as f:
                f.write(section(args, argv, plan, text, {
                    "real": real, "synthetic": synthetic, "synth_test": synth_test,
                    "eval_root": eval_root, "n_labels": n_labels, "eval_limit": eval_limit,
                    "load0": load0, "minutes": (time.perf_counter() - t_start) / 60}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
