"""The model card of a shipped checkpoint: its numbers next to MediaPipe Hands' on the same frames.

:func:`evaluate_card` measures a PoseNet on labelled sets by the evaluation protocol of
:mod:`.eval` (upright hand crops around the ground-truth keypoints, lifting with the crop's K
and the ground-truth reference bone), and MediaPipe Hands (``static_image_mode``, the pinned
version) on the same full frames, its 2.5D output lifted the same way. Frames where MediaPipe
finds no hand count as misses in its 2D PCK (every joint wrong) and are left out of its 3D
errors; the card states how many there were. :func:`write_model_card` writes the Markdown.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from handpose.core.checkpoint import CheckpointMeta
from handpose.core.data.freihand import FreiHANDDataset
from handpose.core.data.teacher import MediaPipeTeacher
from handpose.core.export import OnnxPoseNet
from handpose.core.geometry.lifting import lift_to_3d
from handpose.core.inference.handedness import chirality_margin
from handpose.core.metrics import pck_2d, summarize

from .data import LabelledData, labelled_dataset
from .eval import evaluate_model

__all__ = ["evaluate_card", "evaluate_onnx", "mediapipe_metrics", "write_model_card"]


class _OnnxModule(nn.Module):
    """An exported PoseNet (``.onnx``, e.g. int8) behind the PoseNet call of :func:`predict`."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.session = OnnxPoseNet(path)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.session(x.detach().float().cpu())  # type: ignore[no-any-return]


def evaluate_onnx(onnx_path: Path, meta: CheckpointMeta, *, synthetic_test: str = "",
                  real_eval: str = "", limit: int = 0, mirror_left: bool = True
                  ) -> dict[str, float]:
    """The card's handpose metrics of an exported model (ONNX Runtime, e.g. the int8 file)."""
    return evaluate_card(_OnnxModule(onnx_path), meta, synthetic_test=synthetic_test,
                         real_eval=real_eval, limit=limit, mediapipe=False,
                         mirror_left=mirror_left)["handpose"]


def _flat(prefix: str, metrics: dict[str, Any]) -> dict[str, float]:
    return {f"{prefix}/{k}": float(v) for k, v in metrics.items()}


def mediapipe_metrics(root: str, limit: int = 0) -> dict[str, float]:
    """MediaPipe Hands on the full frames of a labelled FreiHAND-layout set.

    Returns:
        ``detected`` (share of frames with a hand), ``pck_2d@0.2`` over all frames (misses
        count as wrong), and :func:`~handpose.core.metrics.summarize`'s metrics over the
        detected frames (z_rel from MediaPipe's world landmarks, lifted with the frame's K and
        the ground-truth reference bone), ``ms_per_image``.
    """
    ds = FreiHANDDataset(root, load_depth=False, load_mask=False)
    n = len(ds) if not limit else min(limit, len(ds))
    teacher = MediaPipeTeacher()
    pred_uv, pred_z, found, times = [], [], [], []
    try:
        for i in range(n):
            s = ds[i]
            rgb = s["rgb"].permute(1, 2, 0).numpy()
            t0 = time.perf_counter()
            pose = teacher(rgb)
            times.append(time.perf_counter() - t0)
            found.append(pose is not None)
            pred_uv.append(pose.uv if pose is not None else np.full((21, 2), 1e6))
            pred_z.append(pose.z_rel if pose is not None else np.zeros(21))
    finally:
        teacher.close()
    ok = np.array(found)
    uv_gt = ds.uv[:n].astype(np.float64)
    xyz_gt = ds.xyz[:n].astype(np.float64)
    uv = np.array(pred_uv, np.float64)
    out: dict[str, float] = {"detected": float(ok.mean()), "frames": float(n),
                             "ms_per_image": float(np.median(times) * 1000)}
    if ok.any():
        K = torch.as_tensor(ds.K[:n][ok], dtype=torch.float64)
        s = torch.as_tensor(np.linalg.norm(xyz_gt[ok, 10] - xyz_gt[ok, 9], axis=-1))
        xyz = lift_to_3d(torch.as_tensor(uv[ok]), torch.as_tensor(np.array(pred_z)[ok]), K, s)
        out.update(summarize(xyz.numpy(), xyz_gt[ok], uv[ok], uv_gt[ok]))
    out["pck_2d@0.2"] = float(pck_2d(uv, uv_gt, 0.2))  # over all frames: misses are wrong
    return out


def evaluate_card(model: nn.Module, meta: CheckpointMeta, *, synthetic_test: str = "",
                  real_eval: str = "", limit: int = 0, mediapipe: bool = True,
                  mirror_left: bool = True) -> dict[str, Any]:
    """Metrics of ``model`` on the sets given, and MediaPipe's on ``real_eval`` (``mediapipe``).

    ``mirror_left``: left hands are shown mirrored, as the tracker does (see
    :func:`.eval.predict`); the sets' figures without are kept too, as ``<set>_unmirrored``.

    Returns:
        ``{"handpose": {"<set>/<metric>": value}, "mediapipe": {...}}`` with sets
        ``synthetic_test`` and ``real_eval``.
    """
    card: dict[str, Any] = {"handpose": {}, "mediapipe": {}}
    for name, root in (("synthetic_test", synthetic_test), ("real_eval", real_eval)):
        if not root:
            continue
        ds = labelled_dataset(LabelledData(root=root, upright=True, limit=limit),
                              meta.input_size, key=name)
        t0 = time.perf_counter()
        metrics, pred = evaluate_model(model, ds, normalization=dict(meta.normalization),
                                       mirror_left=mirror_left)
        left = float(np.mean(chirality_margin(pred.xyz_gt) < 0))
        card["handpose"].update(_flat(name, {**metrics, "frames": len(pred.index),
                                             "left_share": left}))
        card["handpose"][f"{name}/s_total"] = round(time.perf_counter() - t0, 2)
        if mirror_left and left > 0:
            plain, _ = evaluate_model(model, ds, normalization=dict(meta.normalization))
            card["handpose"].update(_flat(f"{name}_unmirrored", plain))
    if real_eval and mediapipe:
        card["mediapipe"].update(_flat("real_eval", mediapipe_metrics(real_eval, limit)))
    return card


_ROWS = [("pck_2d@0.2", "2D PCK@0.2 of the hand box", "{:.3f}"),
         ("epe_2d_px", "2D EPE (px)", "{:.2f}"),
         ("pa_epe_mm", "3D PA-EPE (mm)", "{:.2f}"),
         ("epe_mm", "3D EPE, true bone length, root depth solved (mm)", "{:.2f}"),
         ("pa_auc", "PA-AUC 0-50 mm", "{:.3f}")]


def _table(card: dict[str, Any], subset: str) -> list[str]:
    ours, mp, q = card["handpose"], card["mediapipe"], card.get("int8", {})
    has_mp = any(k.startswith(subset + "/") for k in mp)
    has_q = any(k.startswith(subset + "/") for k in q)
    head = "| metric | handpose |" + (" handpose int8 |" if has_q else "") + \
        (" MediaPipe Hands |" if has_mp else "")
    lines = [head, "|---|---|" + ("---|" if has_q else "") + ("---|" if has_mp else "")]
    for key, label, fmt in _ROWS:
        k = f"{subset}/{key}"
        if k not in ours:
            continue
        row = f"| {label} | {fmt.format(ours[k])} |"
        if has_q:
            row += f" {fmt.format(q[k])} |" if k in q else " - |"
        if has_mp:
            row += f" {fmt.format(mp[k])} |" if k in mp else " - |"
        lines.append(row)
    if has_mp:
        lines.append("| frames with a hand found | all |" + (" all |" if has_q else "") +
                     f" {mp[subset + '/detected']:.3f} |")
    return lines


def write_model_card(path: Path, checkpoint: Path, training: dict[str, Any],
                     card: dict[str, Any]) -> Path:
    """Write the Markdown model card of ``checkpoint`` to ``path``; returns ``path``."""
    cfg = training["config"]
    lines = [
        f"# Model card: {checkpoint.name}",
        "",
        f"ResNet-{cfg['depth']} PoseNet, {cfg['input_size']} px upright hand crops, 2.5D output "
        "(21 x (u, v, z_rel)) with per-joint confidence; weights stored as "
        f"{cfg['dtype']}. Trained by `handpose-train recipe {cfg['name']}` "
        f"(stage preset `{cfg['stage_preset']}`)."
        + (" It reads right hands only: its last stage saw every left hand mirrored, as the "
           "tracker shows it left hands (keep `mirror_left` on)."
           if training.get("right_hands_only") else ""),
        "",
        "## Data",
        f"- Labelled: synthetic renders `{cfg['synthetic']}` (handpose-data synth, both hands).",
        f"- Unlabelled: real photos `{cfg['real']}` (PeCLR views; SemiHand pseudo-labels).",
        f"- Held out for this card only, never trained on: `{cfg['synthetic_test']}`, "
        f"`{cfg['real_eval'] or '-'}`.",
        "",
        "## Recipe",
        "Wall time of each stage's last process (a resumed stage counts from its resume), the "
        "total with the evaluation for this card.",
        "",
        "| stage | updates | wall time |",
        "|---|---|---|",
    ]
    for s in training["stages"]:
        lines.append(f"| {s['stage']} | {s['steps']} | {s['wall_s'] / 60:.1f} min |")
    lines += [f"| total | | {training['wall_s'] / 60:.1f} min |", ""]
    ran = [s["stage"] for s in training["stages"]]
    overrides = [f"  'stages={json.dumps(ran)}'"]  # explicit: the default set may change
    overrides += [f"  '{stage}={json.dumps(list(cfg[stage]))}'" for stage in ran
                  if cfg.get(stage)]
    lines += ["Command (the stages' own settings: the stage preset plus these overrides):", "",
              "```", f"handpose-train recipe {cfg['name']} --preset {cfg['stage_preset']} "
              f"synthetic={cfg['synthetic']} synthetic_test={cfg['synthetic_test']} "
              f"real={cfg['real']} real_eval={cfg['real_eval']} input_size={cfg['input_size']} "
              f"depth={cfg['depth']}" + (" right_hands=true" if cfg.get("right_hands") else "")
              + (" \\" if overrides else ""),
              *[o + (" \\" if i < len(overrides) - 1 else "") for i, o in enumerate(overrides)],
              "```", ""]
    for subset, title in (("real_eval", "Real frames (real_eval)"),
                          ("synthetic_test", "Synthetic test split")):
        if any(k.startswith(subset + "/") for k in card["handpose"]):
            n = int(card["handpose"][f"{subset}/frames"])
            lines += [f"## {title}: {n} frames", "", *_table(card, subset), ""]
    lines += [
        "Protocol: crops around the ground-truth keypoints, turned upright; 3D lifted with the "
        "frame's K and the true reference bone (the FreiHAND/PeCLR protocol). MediaPipe runs on "
        "the full frames (static mode); its misses count as wrong in its PCK and are left out "
        "of its 3D errors.",
        "",
    ]
    ours = card["handpose"]
    mirrored = [(subset, title) for subset, title in (("real_eval", "real frames"),
                                                      ("synthetic_test", "synthetic test"))
                if f"{subset}_unmirrored/pck_2d@0.2" in ours]
    if mirrored:
        lines += ["Left hands (by the chirality of the true joints) are shown to the network "
                  "mirrored, as the tracker does once a track's handedness vote says left. "
                  "Without that: " + "; ".join(
                      f"{title} ({ours[f'{s}/left_share']:.0%} left hands) PCK@0.2 "
                      f"{ours[f'{s}_unmirrored/pck_2d@0.2']:.3f}, PA-EPE "
                      f"{ours[f'{s}_unmirrored/pa_epe_mm']:.2f} mm" for s, title in mirrored)
                  + ".", ""]
    cal = training.get("confidence_calibration")
    if cal:
        lines += [f"Confidence: the head's error_scale was set {cal['error_scale_before']} -> "
                  f"{cal['error_scale']} so that at most {cal['negative_quantile']:.0%} of "
                  f"{cal['no_hand_crops']} crops without a hand (the held-out crops rolled by "
                  "half a side, noise, flat grey) reach the tracker's min_confidence "
                  f"{cal['min_confidence']}; {cal['hand_confident_share']:.0%} of "
                  f"{cal['hand_crops']} upright hand crops do (median confidence "
                  f"{cal['hand_confidence_median']:.2f}).", ""]
    if card.get("int8_file"):
        lines += [f"int8: `{card['int8_file']}` (ONNX Runtime static quantization, calibrated "
                  f"on {card['int8_calibration']} upright synthetic crops; the tracker runs it "
                  "by default on the CPU). Same protocol through ONNX Runtime.", ""]
    path.write_text("\n".join(lines))
    return path
