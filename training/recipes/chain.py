"""``handpose-train recipe default``: the shipped model, end to end, from the project's methods.

The chain runs the stage recipes in order, each with its own preset section
(``stage_preset``) plus the wiring below and any per-stage ``key=value`` overrides:

1. ``pretrain`` — PeCLR on the real photos (``real``) and the synthetic crops
   (``synthetic``, mixed in as the extra source);
2. ``finetune`` — supervised 2.5D on the synthetic labels, upright crops as the tracker cuts
   them, from the PeCLR encoder;
3. ``semihand`` — SemiHand rounds on the real photos: pseudo-labels from the MediaPipe teacher
   (or the network), biomechanically corrected, confidence-gated, with the labelled synthetic
   crops, from the fine-tuned network;
4. ``refine`` — the SemiHand recipe once more (its preset section, the same wiring), from the
   SemiHand stage's network with its own overrides: a second cosine cycle on the same
   teacher labels, typically at a lower learning rate, when the first one ended still
   improving;
5. ``widen`` — the SemiHand recipe once more, from the refined network, on crops cut wider
   (:data:`WIDE_MARGIN` x the keypoint box) and zoomed by :data:`WIDE_ZOOM`, so the hand spans
   1/1.16 to 1/2.1 of the crop with its real surroundings (the forearm, the background): the
   network learns the hand's size from the image. Trained at one margin only, it predicted a
   hand of nearly the same size in every crop (on real_eval_hgc its keypoint box was 0.95x
   the true one at margin 1.4 and 1.10x at 2.0, 1.23x at 2.4), so a tracking crop that once
   came out too large grew from frame to frame.

Every stage writes its own run folder under the chain's folder and resumes where it stopped
(``train.resume=auto``); a finished stage (its ``model.pt`` exists) is not run again. The last
model is then evaluated on the held-out synthetic set and on ``real_eval`` (labelled real
frames used ONLY for the model card, never for training), next to MediaPipe Hands on the same
real frames, and written as a float16 checkpoint with a model card (:mod:`.model_card`).
Before that, the head's confidence is calibrated (:mod:`.confidence`, ``confidence_crops``
upright crops of the held-out synthetic set, or of ``synthetic`` without one) so the tracker's
``min_confidence`` separates crops with a hand from crops without one.
With ``int8=true`` (default) the checkpoint's int8 ONNX model is written next to it
(``default.int8.onnx``, calibrated on ``int8_calibration`` upright synthetic crops), which the
tracker runs on the CPU, and evaluated by the same protocol for the card.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from handpose.core.checkpoint import load_checkpoint, save_checkpoint
from handpose.core.export import export_checkpoint, quantize_onnx
from handpose.core.inference.backends import int8_path_for

from ..config import ConfigError, input_path, to_dict
from ..config_files import resolve_config, save_config
from . import get_recipe
from .confidence import calibrate_confidence
from .data import LabelledData, labelled_dataset, require_path
from .model_card import evaluate_card, evaluate_onnx, write_model_card

__all__ = ["Config", "STAGES", "WIDE_MARGIN", "WIDE_ZOOM", "check", "run", "stage_overrides"]

#: The stages of the ``default`` chain, in order.
STAGES = ("pretrain", "finetune", "semihand", "refine", "widen")

#: The training recipe each stage runs (and the preset section it starts from).
RECIPE_OF = {"pretrain": "pretrain", "finetune": "finetune", "semihand": "semihand",
             "refine": "semihand", "widen": "semihand"}

#: ``widen``: crop side / keypoint-box side of its labelled and unlabelled crops.
WIDE_MARGIN = 1.8
#: ``widen``: the zoom range of its strong augmentation (hand at 1.8/1.55 to 1.8/0.85 margin).
WIDE_ZOOM = (0.85, 1.55)


@dataclass(frozen=True)
class Config:
    """``handpose-train recipe default``.

    Attributes:
        name: the chain ("default": the shipped model).
        out: run folder ("" = runs/recipe-<time>).
        synthetic: labelled synthetic set with masks (``handpose-data synth --hands both``).
        synthetic_test: a held-out synthetic set (another seed) for the model card.
        real: unlabelled real hand photos (e.g. ``shared/data/real_hands`` with index.csv).
        real_eval: labelled real frames (FreiHAND layout) for the model card only; "" = skip.
        stage_preset: the preset whose stage sections the stages start from.
        stages: which stages to run (a subset of STAGES, in order).
        input_size: crop side of the network (pixels). depth: ResNet depth.
        teacher_cache: folder of the MediaPipe teacher's label cache ("" = in the run).
        pretrain, finetune, semihand, refine, widen: extra ``key=value`` overrides of each
            stage.
        model_out: where to write the final checkpoint ("" = <run>/default.pt); the model
            card is written next to it with the suffix ``.md``.
        dtype: weights of the final checkpoint ("float16" to ship).
        card_limit: at most this many frames of each evaluation set (0 = all).
        int8: also write and evaluate ``<model_out stem>.int8.onnx``.
        int8_calibration: synthetic crops to calibrate the int8 model on.
        confidence_crops: hand crops to calibrate the confidence on (0 = keep the head's
            ``error_scale``); see :func:`.confidence.calibrate_confidence`.
        min_confidence: the tracker's threshold the confidence is calibrated to.
        no_hand_share: the share of the calibration's no-hand crops allowed to reach
            ``min_confidence`` (0.05 until the right-hands model kept only 78 % of the hand
            crops there, and the tracker reported the demo's hand on 236 of 300 frames where
            the previous model reached 266; 0.10 keeps 87 %).
        right_hands: train on right hands only: every labelled and real crop of a left hand
            (the synthetic labels' handedness, the teacher's for the real photos) is shown
            mirrored, as the tracker shows left hands (``HandPoseEstimator(mirror_left=True)``);
            not for PeCLR pre-training (no labels). The confidence and int8 calibration crops
            show left hands mirrored in any case, as the tracker does.
    """

    name: Literal["default"] = "default"
    out: str = ""
    synthetic: str = input_path("", doc="labelled synthetic set (handpose-data synth)")
    synthetic_test: str = input_path("", doc="held-out synthetic set")
    real: str = input_path("", doc="unlabelled real hand photos")
    real_eval: str = input_path("", doc="labelled real frames for the model card only")
    stage_preset: str = "cpu"
    stages: tuple[str, ...] = STAGES
    input_size: int = 128
    depth: int = 18
    teacher_cache: str = ""
    pretrain: tuple[str, ...] = ()
    finetune: tuple[str, ...] = ()
    semihand: tuple[str, ...] = ()
    refine: tuple[str, ...] = ()
    widen: tuple[str, ...] = ()
    model_out: str = ""
    dtype: Literal["float16", "float32"] = "float16"
    card_limit: int = 0
    int8: bool = True
    int8_calibration: int = 256
    confidence_crops: int = 300
    min_confidence: float = 0.3
    no_hand_share: float = 0.10
    right_hands: bool = False

    def __post_init__(self) -> None:
        bad = [s for s in self.stages if s not in STAGES]
        if bad or not self.stages:
            raise ValueError(f"stages must be a non-empty subset of {STAGES}; got {self.stages}")
        if list(self.stages) != [s for s in STAGES if s in self.stages]:
            raise ValueError(f"stages must keep the order {STAGES}; got {self.stages}")
        if self.input_size < 32 or self.depth not in (18, 34, 50, 101, 152):
            raise ValueError("input_size >= 32 and a ResNet depth in 18/34/50/101/152 needed")
        if self.int8_calibration < 1:
            raise ValueError(f"int8_calibration must be >= 1; got {self.int8_calibration}")
        if self.confidence_crops < 0 or not 0 < self.min_confidence < 1 \
                or not 0 <= self.no_hand_share < 1:
            raise ValueError("confidence_crops >= 0, 0 < min_confidence < 1 and 0 <= "
                             f"no_hand_share < 1 needed; got {self.confidence_crops}, "
                             f"{self.min_confidence}, {self.no_hand_share}")


def _training_sections(stage: str) -> tuple[str, ...]:
    """The config sections of a stage's labelled and real training crops (none for PeCLR,
    which has no labels to mirror by)."""
    if stage == "pretrain":
        return ()
    return ("data",) if stage == "finetune" else ("labelled", "unlabelled")


def stage_overrides(cfg: Config, stage: str, run_dir: Path, prev_model: str) -> list[str]:
    """The ``key=value`` overrides of one stage: the wiring (data, sizes, initialisation, output
    folder), then the user's overrides of that stage, which win on the same key."""
    out = [f"out={run_dir / stage}", "train.resume=auto", f"model.depth={cfg.depth}"]
    if stage == "pretrain":
        out += [f"data.root={cfg.real}", f"extra.root={cfg.synthetic}", "extra.format=freihand",
                f"views.size={cfg.input_size}", "method=peclr"]
    elif stage == "finetune":
        out += [f"data.root={cfg.synthetic}", "data.upright=true",
                f"input_size={cfg.input_size}"]
        if cfg.synthetic_test:
            out += [f"val.root={cfg.synthetic_test}", "val.upright=true", "val.limit=500"]
    else:  # semihand, refine, widen
        out += [f"labelled.root={cfg.synthetic}", "labelled.upright=true",
                f"unlabelled.root={cfg.real}", "unlabelled.upright=true",
                f"input_size={cfg.input_size}", "pseudo.source=teacher"]
        if stage == "widen":
            out += [f"labelled.crop_margin={WIDE_MARGIN}", f"unlabelled.crop_margin={WIDE_MARGIN}",
                    f"strong.scale_range=[{WIDE_ZOOM[0]}, {WIDE_ZOOM[1]}]"]
        if cfg.teacher_cache:
            out.append(f"teacher.cache_dir={cfg.teacher_cache}")
        if cfg.synthetic_test:
            out += [f"val.root={cfg.synthetic_test}", "val.upright=true", "val.limit=500"]
    if cfg.right_hands and stage != "pretrain":
        out += [f"{sec}.mirror_left=true" for sec in (*_training_sections(stage), "val")]
    if prev_model:
        out.append(f"init={prev_model}")
    merged = dict(w.split("=", 1) for w in out)
    for w in getattr(cfg, stage):  # the user's overrides win over the wiring
        if "=" not in w:
            raise ConfigError(f"{stage}: override {w!r} is not key=value")
        key, value = w.split("=", 1)
        merged[key.strip()] = value
    return [f"{k}={v}" for k, v in merged.items()]


def check(cfg: Config) -> None:
    """The training data must exist; every stage's config must resolve; a SemiHand stage
    (``semihand``, ``refine``, ``widen``) must start from a network (the stage before it, or
    ``init=`` when it is listed first)."""
    for key in ("synthetic", "real"):
        require_path(getattr(cfg, key), key)
    for key in ("synthetic_test", "real_eval"):
        if getattr(cfg, key):
            require_path(getattr(cfg, key), key)
    for k, stage in enumerate(cfg.stages):  # fail before any training on a bad override
        module = get_recipe(RECIPE_OF[stage]).load()
        prev = "" if k == 0 else "previous-stage/model.pt"
        try:
            resolved = resolve_config(module.Config, RECIPE_OF[stage], cfg.stage_preset,
                                      stage_overrides(cfg, stage, Path("runs/check"), prev))
        except ConfigError as e:
            raise ConfigError(f"stage {stage}: {e}") from e
        if RECIPE_OF[stage] == "semihand" and not resolved.init:
            # SemiHand refines a pose network: without one (listed first, or init emptied) it
            # would silently train from random weights for hours
            raise ConfigError(f"stage {stage} has no network to start from: list the stage "
                              f"before it, or name the network with "
                              f"{stage}='[\"init=PATH.pt\"]'")


def _run_stage(cfg: Config, stage: str, run_dir: Path, prev: str) -> tuple[str, dict[str, Any]]:
    stage_dir = run_dir / stage
    done = stage_dir / "stage.json"
    if done.exists() and (stage_dir / "model.pt").exists():
        info = json.loads(done.read_text())
        print(f"recipe {cfg.name}: {stage} already done ({stage_dir / 'model.pt'})")
        return str(stage_dir / "model.pt"), info
    module = get_recipe(RECIPE_OF[stage]).load()
    scfg = resolve_config(module.Config, RECIPE_OF[stage], cfg.stage_preset,
                          stage_overrides(cfg, stage, run_dir, prev))
    if hasattr(module, "check"):
        module.check(scfg)
    save_config(scfg, RECIPE_OF[stage], stage_dir)
    t0 = time.time()
    result = module.run(scfg, stage_dir) or {}
    info = {"stage": stage, "wall_s": round(time.time() - t0, 1),
            "steps": result.get("steps"), "config": to_dict(scfg)}
    done.write_text(json.dumps(info, indent=1, default=str) + "\n")
    model = result.get("model") or str(stage_dir / "model.pt")
    if not Path(model).exists():
        raise ConfigError(f"stage {stage} finished without a model ({model})")
    return str(model), info


def _tracker_crops(root: str, limit: int, size: int, key: str) -> Any:
    """Labelled crops of ``root`` as the tracker shows them to the network (upright, left
    hands mirrored), for the confidence and int8 calibrations."""
    return labelled_dataset(LabelledData(root=root, upright=True, limit=limit, mirror_left=True),
                            size, key=key)


def run(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Run the stages, evaluate, and write the shipped checkpoint and its model card."""
    prev, stages = "", []
    for stage in cfg.stages:
        prev, info = _run_stage(cfg, stage, run_dir, prev)
        stages.append({k: info[k] for k in ("stage", "wall_s", "steps")})
    model, meta = load_checkpoint(prev)
    last = info["config"]  # the final stage's resolved config: what the network last saw
    sections = _training_sections(info["stage"])
    right_only = bool(sections) and all(bool(last.get(sec, {}).get("mirror_left"))
                                        for sec in sections)
    t_card = time.time()
    arch, calibration = dict(meta.arch), None
    if cfg.confidence_crops:
        crops = _tracker_crops(cfg.synthetic_test or cfg.synthetic, cfg.confidence_crops,
                               meta.input_size,
                               "synthetic_test" if cfg.synthetic_test else "synthetic")
        calibration = calibrate_confidence(model, crops, dict(meta.normalization),
                                           min_confidence=cfg.min_confidence,
                                           negative_quantile=cfg.no_hand_share,
                                           limit=cfg.confidence_crops)
        arch = {"name": arch["name"],
                "kwargs": {**arch["kwargs"], "error_scale": calibration["error_scale"]}}
        print(f"recipe {cfg.name}: confidence error_scale {calibration['error_scale_before']} "
              f"-> {calibration['error_scale']} (hand crops confident: "
              f"{calibration['hand_confident_share']:.2f}, no-hand crops: "
              f"{calibration['no_hand_confident_share']:.2f})")
    card = evaluate_card(model, meta, synthetic_test=cfg.synthetic_test,
                         real_eval=cfg.real_eval, limit=cfg.card_limit)
    out = Path(cfg.model_out) if cfg.model_out else run_dir / "default.pt"
    training = {
        "recipe": f"recipe/{cfg.name}",
        "config": to_dict(cfg),
        "data": {"synthetic": cfg.synthetic, "real": cfg.real},
        "stages": stages,
        "confidence_calibration": calibration,
        # the last stage saw every left hand mirrored: the tracker must mirror them too
        "right_hands_only": right_only,
        # the stages' own wall times (a stage run in several processes counts the last one,
        # which resumed it) plus this evaluation
        "wall_s": round(sum(float(s["wall_s"]) for s in stages) + time.time() - t_card, 1),
    }
    path = save_checkpoint(out, model, arch=arch, input_size=meta.input_size,
                           normalization=dict(meta.normalization), training=training,
                           metrics=card["handpose"], dtype=cfg.dtype)
    if cfg.int8:  # made from the final file: the runtime checks the int8 file names it
        fp32 = export_checkpoint(path, run_dir / "export" / f"{path.stem}.onnx")
        calib = _tracker_crops(cfg.synthetic, cfg.int8_calibration, meta.input_size,
                               "synthetic")
        int8 = quantize_onnx(fp32, int8_path_for(path), calib, checkpoint=path,
                             limit=cfg.int8_calibration)
        card["int8"] = evaluate_onnx(int8, meta, synthetic_test=cfg.synthetic_test,
                                     real_eval=cfg.real_eval, limit=cfg.card_limit)
        card["int8_file"] = int8.name
        card["int8_calibration"] = min(cfg.int8_calibration, len(calib))  # type: ignore[arg-type]
    card_path = write_model_card(path.with_suffix(".md"), path, training, card)
    (run_dir / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    return {"model": str(path), "model_card": str(card_path), "metrics": card,
            "steps": sum(int(s["steps"] or 0) for s in stages)}
