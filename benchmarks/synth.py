"""Synthetic hand renderer: throughput and realism (MediaPipe Hands as the judge).

1. Throughput: labelled RGB + depth samples per second at ``--size`` (default 128x128) in
   batches of ``--batch``, end to end: the project's pose sampler
   (:class:`~handpose.core.data.synthetic.sampler.HandSampler`), camera placement
   (:func:`~handpose.core.data.synthetic.placement.place`, hand filling 40-80 % of the image)
   and :class:`~handpose.core.data.synthetic.renderer.HandRenderer` (RGB, depth, mask, 2D
   joints, visibility). Wall time and process CPU time (all threads, llvmpipe's included).
2. Realism: MediaPipe Hands 0.10.21 (``static_image_mode=True, max_num_hands=1,
   model_complexity=1``) on ``--judge`` renders at 224x224 with random poses, views, skin
   tones, lights, backgrounds and both hands: detection rate overall, per skin-tone bin (Monk
   1-3, 4-6, 7-10) and per handedness; on detected renders, the mean distance in pixels
   between MediaPipe's 21 landmarks and our 2D labels (all joints and per joint group).

Usage: ``python benchmarks/synth.py [--judge 300] [--sheet /tmp/synth_sheet.png] [--append]``.
``--append`` adds a section to ``benchmarks/RESULTS.md`` with the date, the command and the
machine load. MediaPipe is only the judge here; the renderer never imports it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from handpose.core.data.synthetic.placement import num_placement_uniforms, place
from handpose.core.data.synthetic.renderer import HandRenderer, RenderedHands
from handpose.core.data.synthetic.sampler import HandSampler

REPO = Path(__file__).resolve().parents[1]
GROUPS = {"wrist": [0], "thumb": [1, 2, 3, 4], "fingers MCP": [5, 9, 13, 17],
          "fingers PIP/DIP": [6, 7, 10, 11, 14, 15, 18, 19], "tips": [4, 8, 12, 16, 20]}
TONE_BINS = (("Monk 1-3", 1, 3), ("Monk 4-6", 4, 6), ("Monk 7-10", 7, 10))


def make_batch(sampler: HandSampler, renderer: HandRenderer, n: int, size: int, seed: int,
               start: int) -> RenderedHands:
    """``n`` labelled samples (indices start..start+n-1) at ``size`` x ``size``."""
    idx = np.arange(start, start + n)
    hands = sampler.sample_indexed(seed, idx)
    u = np.random.default_rng([seed, 1, start]).random((n, num_placement_uniforms(1)))
    pl = place(hands.oriented(), hands.hand_scale, u, size, size)
    return renderer.render(pl.joints[:, 0], pl.K[:, 0], size, hands.handedness, seed=seed,
                           indices=idx)


def throughput(renderer: HandRenderer, sampler: HandSampler, size: int, batch: int,
               batches: int, seed: int) -> dict[str, float]:
    make_batch(sampler, renderer, batch, size, seed, 10**6)  # warm-up (shader compile, caches)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for b in range(batches):
        make_batch(sampler, renderer, batch, size, seed, b * batch)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    n = batch * batches
    return {"samples": n, "per_s": n / wall, "ms_wall": 1e3 * wall / n, "ms_cpu": 1e3 * cpu / n}


def judge(renderer: HandRenderer, sampler: HandSampler, n: int, size: int, seed: int,
          sheet: str | None) -> dict[str, object]:
    import mediapipe as mp

    hands_mp = mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=1,
                                        model_complexity=1)
    found, tone, left, err, thumbs = [], [], [], [], []
    shown: list[np.ndarray] = []
    for start in range(0, n, 50):
        out = make_batch(sampler, renderer, min(50, n - start), size, seed + 1, start)
        for i in range(len(out)):
            img = out.rgb[i].numpy()
            res = hands_mp.process(img)
            ok = bool(res.multi_hand_landmarks)
            found.append(ok)
            tone.append(int(round(float(out.appearance.skin_tone[i]) * 9)) + 1)
            left.append(out.handedness[i] == "left")
            if ok:
                lm = res.multi_hand_landmarks[0].landmark
                mp_uv = np.array([[p.x * size, p.y * size] for p in lm])
                err.append(np.linalg.norm(mp_uv - out.uv[i].numpy(), axis=1))
            if sheet and len(shown) < 48:
                shown.append(_tile(img, out.uv[i].numpy(), out.visibility[i].numpy(), ok))
            thumbs.append(ok)
    hands_mp.close()
    f, t, lf = np.array(found), np.array(tone), np.array(left)
    e = np.array(err) if err else np.zeros((0, 21))
    if sheet and shown:
        import cv2

        rows = [np.hstack(shown[k:k + 8]) for k in range(0, len(shown) - len(shown) % 8, 8)]
        cv2.imwrite(sheet, np.vstack(rows)[..., ::-1])
    result: dict[str, object] = {"n": len(f), "rate": f.mean()}
    result["tones"] = {name: (f[(t >= lo) & (t <= hi)].mean(), int(((t >= lo) & (t <= hi)).sum()))
                       for name, lo, hi in TONE_BINS}
    result["hands"] = {"left": (f[lf].mean(), int(lf.sum())),
                       "right": (f[~lf].mean(), int((~lf).sum()))}
    result["err_all"] = float(e.mean()) if len(e) else float("nan")
    result["err_median"] = float(np.median(e)) if len(e) else float("nan")
    result["err_groups"] = {g: float(e[:, j].mean()) if len(e) else float("nan")
                            for g, j in GROUPS.items()}
    return result


def _tile(img: np.ndarray, uv: np.ndarray, vis: np.ndarray, ok: bool) -> np.ndarray:
    import cv2

    t = img.copy()
    for k, (u, v) in enumerate(uv):
        cv2.circle(t, (int(round(u)), int(round(v))), 1, (0, 255, 0) if vis[k] else (255, 0, 0),
                   -1)
    cv2.rectangle(t, (0, 0), (t.shape[1] - 1, t.shape[0] - 1), (0, 200, 0) if ok else (230, 0, 0),
                  2)
    return t


def report(args: argparse.Namespace, tp: dict[str, float], jr: dict[str, object] | None,
           load: tuple[float, float]) -> str:
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    cmd = "python benchmarks/synth.py " + " ".join(sys.argv[1:])
    lines = [f"## Synthetic hand renderer (HandRenderer) ({now})", "",
             f"`{cmd}`. Machine: {os.cpu_count()} cores, torch threads "
             f"{torch.get_num_threads()}, Mesa llvmpipe through EGL, shared with other engineers "
             f"(1-min load average {load[0]:.1f} at the start, {load[1]:.1f} at the end).", "",
             "| throughput | image | batch | samples | samples/s (wall) | ms/sample wall | "
             "ms/sample CPU |", "|---|---|---|---|---|---|---|",
             f"| sampler + placement + render (RGB, depth, mask, uv, visibility) | "
             f"{args.size}x{args.size} | {args.batch} | {tp['samples']} | {tp['per_s']:.0f} | "
             f"{tp['ms_wall']:.1f} | {tp['ms_cpu']:.1f} |"]
    if jr is not None:
        tones = jr["tones"]
        hands = jr["hands"]
        groups = jr["err_groups"]
        assert isinstance(tones, dict) and isinstance(hands, dict) and isinstance(groups, dict)
        lines += ["", f"MediaPipe Hands 0.10.21 (model_complexity=1, static images) on "
                  f"{jr['n']} renders at 224x224 (hand filling 40-80 % of the image):", "",
                  "| detected | " + " | ".join(f"{k} (n)" for k in tones) + " | left (n) | "
                  "right (n) |", "|---" * (3 + len(tones)) + "|",
                  f"| {100 * float(jr['rate']):.1f} % | " + " | ".join(
                      f"{100 * v[0]:.1f} % ({v[1]})" for v in tones.values())
                  + f" | {100 * hands['left'][0]:.1f} % ({hands['left'][1]}) | "
                  f"{100 * hands['right'][0]:.1f} % ({hands['right'][1]}) |", "",
                  "MediaPipe landmarks vs our 2D labels on detected renders, px (224x224): "
                  f"mean {jr['err_all']:.2f}, median {jr['err_median']:.2f}; per group: "
                  + ", ".join(f"{g} {v:.2f}" for g, v in groups.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=128, help="throughput image size")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=8, help="throughput batches")
    ap.add_argument("--judge", type=int, default=300, help="renders shown to MediaPipe (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--sheet", default="/tmp/synth_sheet.png", help="contact sheet PNG ('' off)")
    ap.add_argument("--append", action="store_true", help="append the results to RESULTS.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    sampler = HandSampler()
    with HandRenderer() as renderer:
        tp = throughput(renderer, sampler, args.size, args.batch, args.batches, args.seed)
        print(f"throughput {args.size}x{args.size}: {tp['per_s']:.0f} samples/s "
              f"({tp['ms_wall']:.1f} ms wall, {tp['ms_cpu']:.1f} ms CPU per sample)")
        jr = None
        if args.judge > 0:
            jr = judge(renderer, sampler, args.judge, 224, args.seed, args.sheet or None)
            print(f"MediaPipe detection {100 * float(jr['rate']):.1f} % of {jr['n']}; tones "
                  f"{jr['tones']}; hands {jr['hands']}; landmark error mean "
                  f"{jr['err_all']:.2f} px, groups {jr['err_groups']}")
            if args.sheet:
                print(f"contact sheet: {args.sheet}")
    text = report(args, tp, jr, (load0, os.getloadavg()[0]))
    print(text)
    if args.append:
        with open(REPO / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
