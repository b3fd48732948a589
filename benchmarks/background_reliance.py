"""How much a pose network leans on the backdrop: its keypoints against MediaPipe's on real
photos, as they are and with everything outside the hand swapped for another scene.

The photos are ``shared/data/real_hands`` (crops the teacher labelled with score >= 0.9, read
through the teacher cache the training used, cut upright at margin 1.4 as the model card cuts
them). The hand region comes from the teacher's keypoints
(:func:`handpose.core.augment_background.hand_region_mask`, with the forearm); the new
backdrop is a square crop of one of the set's scene photos (real rooms, people; not the
procedural backgrounds the ``strong.background_prob`` augmentation trains on). The figure is
PCK@0.2 of the teacher's keypoint box, per source, for each model given; the teacher is the
peer (it scores 1 by definition on the originals). These are training photos of the shipped
model: the original column says how well it fits them, the swapped one how much of that fit
needs the old backdrop.

Usage::

    python benchmarks/background_reliance.py [--models A.pt B.pt] [--n 1500]
        [--teacher-cache DIR] [--append]
"""

from __future__ import annotations

import argparse
import collections
import csv
import datetime
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real_hands"
TEACHER_CACHE = Path("/work/cache/teacher")  # where this machine's default recipe keeps it
TEACHER = "mediapipe-hands-0.10.21-c1-d0.5-p0.333"


def scenes(rows: list[dict[str, str]], size: int, rng: np.random.Generator, n: int = 200
           ) -> list[np.ndarray]:
    """``n`` (size, size, 3) uint8 RGB square crops of the set's scene photos."""
    paths = [r["path"] for r in rows if r["framing"] == "scene"]
    out = []
    for p in rng.choice(paths, min(n, len(paths)), replace=False):
        im = cv2.cvtColor(cv2.imread(str(REAL / p)), cv2.COLOR_BGR2RGB)
        h, w = im.shape[:2]
        s = min(h, w)
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        out.append(cv2.resize(im[y:y + s, x:x + s], (size, size), interpolation=cv2.INTER_AREA))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=[str(REPO / "assets/models/default.pt")])
    ap.add_argument("--n", type=int, default=1500, help="photos (random, seed 0)")
    ap.add_argument("--teacher-cache", type=Path, default=TEACHER_CACHE,
                    help="the recipe's teacher.cache_dir")
    ap.add_argument("--append", action="store_true", help="append the results to RESULTS.md")
    args = ap.parse_args(argv)
    from torch.utils.data import DataLoader

    from handpose.core.augment_background import hand_region_mask
    from handpose.core.checkpoint import load_checkpoint
    from handpose.core.data.sample import collate
    from handpose.core.data.teacher import label_dataset, teacher_cache_path
    from handpose.core.models.normalization import normalize_images
    from handpose.training.recipes.data import UnlabelledData, unlabelled_reader
    from handpose.training.recipes.semihand_data import UnlabelledCrops

    torch.set_num_threads(2)
    base, ident = unlabelled_reader(UnlabelledData(root=str(REAL), format="folder"), None)
    key = {**ident, "teacher": TEACHER}
    path = teacher_cache_path(args.teacher_cache, key)
    if not path.is_file():
        print(f"no teacher cache at {path}: run the default recipe first", file=sys.stderr)
        return 1
    labels = label_dataset(base, None, path, key, False)  # type: ignore[arg-type]
    rows = list(csv.DictReader(open(REAL / "index.csv", encoding="utf-8")))
    rng = np.random.default_rng(0)
    pool = np.flatnonzero(labels.found & (labels.score >= 0.9))
    ids = np.sort(rng.choice(pool, size=min(args.n, len(pool)), replace=False))
    nets = [load_checkpoint(m) for m in args.models]
    size = nets[0].meta.input_size
    backs = scenes(rows, size, rng)
    crops = UnlabelledCrops(base, ids, size, 1.4, labels, upright=True)
    # per model, per source: [original, swapped] PCK of each photo
    res: list[dict[str, list[list[float]]]] = [collections.defaultdict(lambda: [[], []])
                                               for _ in nets]
    k = 0
    with torch.no_grad():
        for b in DataLoader(crops, batch_size=64, collate_fn=collate, num_workers=1):
            t = b["teacher_uv"].numpy()
            swapped = b["rgb"].clone()
            for i in range(len(t)):
                m = torch.from_numpy(hand_region_mask(t[i], size, size))
                back = torch.from_numpy(backs[k % len(backs)]).permute(2, 0, 1).float()
                swapped[i] = (m * swapped[i].float() + (1 - m) * back + 0.5).to(torch.uint8)
                k += 1
            ref = (t.max(1) - t.min(1)).max(-1)
            for net, r in zip(nets, res):
                model, meta = net.model.float().eval(), net.meta
                for col, imgs in enumerate((b["rgb"], swapped)):
                    uv = model(normalize_images(imgs, dict(meta.normalization)))["uv"]
                    ok = np.linalg.norm(uv.float().numpy() - t, axis=-1) <= 0.2 * ref[:, None]
                    for i, o in zip(b["index"].numpy(), ok.mean(1)):
                        r[rows[int(i)]["source"]][col].append(float(o))
                        r["all"][col].append(float(o))
    names = [Path(m).parent.name + "/" + Path(m).name for m in args.models]
    lines = ["| source | photos | " + " | ".join(f"{n} original | {n} swapped" for n in names)
             + " |", "|---|---|" + "---|---|" * len(names)]
    for src in sorted(res[0], key=lambda s: (s != "all", s)):
        cells = " | ".join(f"{np.mean(r[src][0]):.3f} | {np.mean(r[src][1]):.3f}" for r in res)
        lines.append(f"| {src} | {len(res[0][src][0])} | {cells} |")
    print("\n".join(lines))
    if args.append:
        when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        with open(REPO / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as f:
            f.write(f"\n## Backdrop reliance on real photos ({when})\n\n"
                    f"`python benchmarks/background_reliance.py --models {' '.join(args.models)}"
                    f" --n {args.n}`: PCK@0.2 against MediaPipe's keypoints on {len(ids)} "
                    "teacher-labelled real_hands crops (upright, margin 1.4), as they are and "
                    "with the backdrop outside the keypoints' hand region swapped for a real "
                    "scene crop.\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
