"""An external teacher for pseudo-labels: MediaPipe Hands landmarks on unlabelled images.

SemiHand (METHODS §4) initialises its pseudo-labels from a pre-trained model; on a user's own
recordings a strong off-the-shelf hand tracker is the practical bootstrap. The teacher gives,
per image, a 2.5D pose in the contract's units:

- ``uv`` (21, 2) pixels of the image (pixel centres at integers): MediaPipe's normalised
  landmark ``(x, y)`` in [0, 1] of the image width/height becomes ``(x W - 0.5, y H - 0.5)``;
- ``z_rel`` (21,) from MediaPipe's WORLD landmarks ``Jw`` (metres, origin at the hand's
  approximate geometric centre, rotated back from the hand region into the image axes only:
  x right, y down, z away from the camera; MediaPipe's ``WorldLandmarkProjectionCalculator``
  applies the region's rotation and no translation or scale):
  ``z_rel_k = (Jw_k,z - Jw_0,z) / |Jw_10 - Jw_9|`` (root = wrist, reference bone 9 -> 10).
  Checked on real_eval_hgc: z_rel correlates with the labels (r = 0.84, mean error 0.58
  reference bones; with the sign flipped the error is 1.79);
- ``handedness``: the legacy solution (``mediapipe.solutions.hands``, whose models ship in the
  wheel) labels hands as if the image were mirrored (selfie view), so for ordinary camera
  images its "Left" is the subject's right hand; :class:`MediaPipeTeacher` swaps the label
  unless ``mirrored=True`` (on real_eval_hgc the swapped label matched all 40 frames tried);
- ``score``: MediaPipe's handedness score (the legacy API exposes no presence score).

Tight hand crops (e.g. 60-px crops where the hand touches the border) defeat MediaPipe's palm
detector; when it finds nothing the image is tried again inside a black border of
``pad_retry`` x its longer side (on 12 samples of each real_hands source this raised the
detections on the Oxford crops from 3 to 7, on the Massey crops from 8 to 11).

:func:`label_dataset` runs a teacher once over a dataset of full images and caches every
result as one JSON line (``index``, ``path``, ``found``, ``uv``, ``z_rel``, ``score``,
``handedness``, and the label after :func:`~handpose.core.losses.consistency.correct_pose_25d`
with the image's ``K``: ``uv_corrected``, ``z_corrected``, ``violations_before``,
``violations_after``). The cache is resumable: lines are flushed as they are written, a torn
last line (a crash) is dropped, and a second run labels only the missing images.
:func:`teacher_cache_path` names the file by a hash of what determines its content (the image
folder, format, index file, number of images, the teacher's name and version).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from ..losses.consistency import correct_pose_25d
from ..skeleton import NUM_JOINTS, REFERENCE_BONE
from .errors import DataError

__all__ = [
    "TeacherPose",
    "Teacher",
    "MediaPipeTeacher",
    "landmarks_to_25d",
    "TeacherLabels",
    "teacher_cache_path",
    "label_dataset",
]

_HEADER = "handpose-teacher-cache"


@dataclass(frozen=True)
class TeacherPose:
    """One hand found by a teacher in an image.

    Attributes:
        uv: (21, 2) float64 pixels of the image. z_rel: (21,) unitless.
        score: in [0, 1]. handedness: "right" or "left" (the subject's hand).
    """

    uv: np.ndarray
    z_rel: np.ndarray
    score: float
    handedness: str


class Teacher(Protocol):
    """A callable labeller: (H, W, 3) uint8 RGB -> :class:`TeacherPose` or None (no hand).

    ``name`` identifies the teacher and its version (it keys the cache).
    """

    name: str

    def __call__(self, rgb: np.ndarray) -> TeacherPose | None: ...


def landmarks_to_25d(landmarks: np.ndarray, world: np.ndarray, width: int, height: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe landmarks -> (uv (21, 2) pixels, z_rel (21,)) (module docstring).

    Args:
        landmarks: (21, 2 or 3) normalised image coordinates (x, y[, z]).
        world: (21, 3) world landmarks, metres.
        width, height: image size in pixels.
    Raises:
        ValueError: wrong shapes, non-finite values, a zero-length reference bone.
    """
    lm = np.asarray(landmarks, np.float64)
    w = np.asarray(world, np.float64)
    if lm.ndim != 2 or lm.shape[0] != NUM_JOINTS or lm.shape[1] not in (2, 3):
        raise ValueError(f"landmarks must have shape (21, 2|3); got {lm.shape}")
    if w.shape != (NUM_JOINTS, 3):
        raise ValueError(f"world must have shape (21, 3) metres; got {w.shape}")
    if not (np.isfinite(lm).all() and np.isfinite(w).all()) or width < 1 or height < 1:
        raise ValueError("landmarks and world must be finite and the image size positive")
    uv = lm[:, :2] * np.array([width, height], np.float64) - 0.5
    s = float(np.linalg.norm(w[REFERENCE_BONE[1]] - w[REFERENCE_BONE[0]]))
    if not s > 0:
        raise ValueError("world landmarks: the reference bone (9 -> 10) has zero length")
    return uv, (w[:, 2] - w[0, 2]) / s


class MediaPipeTeacher:
    """MediaPipe Hands (legacy solution, models from the wheel, nothing downloaded).

    Args:
        model_complexity: 0 (lite) or 1 (full).
        min_detection_confidence: of MediaPipe's palm detector.
        pad_retry: retry inside a black border of this fraction of the longer side when
            nothing is found (0 = no retry).
        mirrored: True for selfie-view (mirrored) images: keep MediaPipe's handedness label.
    Raises:
        RuntimeError: mediapipe is not installed.
    """

    def __init__(self, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 pad_retry: float = 1 / 3, mirrored: bool = False) -> None:
        if model_complexity not in (0, 1):
            raise ValueError(f"model_complexity must be 0 or 1; got {model_complexity}")
        if not 0 < min_detection_confidence < 1 or pad_retry < 0:
            raise ValueError("min_detection_confidence must be in (0, 1) and pad_retry >= 0")
        try:
            import mediapipe as mp
        except ImportError as e:  # pragma: no cover - mediapipe is a dependency
            raise RuntimeError(f"the MediaPipe teacher needs mediapipe ({e})") from e
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=True, max_num_hands=1, model_complexity=model_complexity,
            min_detection_confidence=min_detection_confidence)
        self.pad_retry = float(pad_retry)
        self.mirrored = bool(mirrored)
        self.name = (f"mediapipe-hands-{mp.__version__}-c{model_complexity}"
                     f"-d{min_detection_confidence:g}-p{pad_retry:.3g}"
                     f"{'-mirrored' if mirrored else ''}")

    def _run(self, rgb: np.ndarray) -> TeacherPose | None:
        res = self._hands.process(rgb)
        if not res.multi_hand_landmarks or not res.multi_hand_world_landmarks:
            return None
        lm = np.array([[p.x, p.y] for p in res.multi_hand_landmarks[0].landmark])
        wl = np.array([[p.x, p.y, p.z] for p in res.multi_hand_world_landmarks[0].landmark])
        h, w = rgb.shape[:2]
        uv, z = landmarks_to_25d(lm, wl, w, h)
        cls = res.multi_handedness[0].classification[0]
        label = cls.label.lower()
        if not self.mirrored:
            label = "right" if label == "left" else "left"
        return TeacherPose(uv, z, float(cls.score), label)

    def __call__(self, rgb: np.ndarray) -> TeacherPose | None:
        """Label one image (H, W, 3) uint8 RGB; None when no hand is found."""
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or \
                rgb.shape[2] != 3:
            raise ValueError(f"rgb must be a (H, W, 3) uint8 array; got "
                             f"{getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}")
        rgb = np.ascontiguousarray(rgb)
        found = self._run(rgb)
        if found is not None or self.pad_retry <= 0:
            return found
        p = max(1, round(self.pad_retry * max(rgb.shape[:2])))
        padded = np.pad(rgb, ((p, p), (p, p), (0, 0)))
        found = self._run(padded)
        if found is None:
            return None
        return TeacherPose(found.uv - p, found.z_rel, found.score, found.handedness)

    def close(self) -> None:
        """Release MediaPipe's graph."""
        self._hands.close()


@dataclass(frozen=True)
class TeacherLabels:
    """Teacher results for the N images of a dataset (NaN where no hand was found).

    Attributes:
        found: (N,) bool. score: (N,) float32. handedness: (N,) int64 (1 right, 0 left,
            -1 none).
        uv, uv_corrected: (N, 21, 2) float32 image pixels. z_rel, z_corrected: (N, 21).
        violations_before, violations_after: (N,) int64 (-1 where not found).
        path: the cache file.
    """

    found: np.ndarray
    score: np.ndarray
    handedness: np.ndarray
    uv: np.ndarray
    z_rel: np.ndarray
    uv_corrected: np.ndarray
    z_corrected: np.ndarray
    violations_before: np.ndarray
    violations_after: np.ndarray
    path: Path


def teacher_cache_path(cache_dir: str | os.PathLike[str], key: Mapping[str, Any]) -> Path:
    """``cache_dir / teacher-<12 hex digits>.jsonl``, the digits a SHA-1 of ``key``.

    Args:
        key: plain data identifying the labels, e.g. ``{"root": absolute folder, "format",
            "index_csv", "n": number of images, "teacher": teacher.name}``.
    """
    text = json.dumps(dict(key), sort_keys=True, default=str)
    return Path(cache_dir) / f"teacher-{hashlib.sha1(text.encode()).hexdigest()[:12]}.jsonl"


def _read_cache(path: Path, key: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """Records by index; drops (truncates) a torn last line; checks the header's key."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):  # a crash while appending: drop the partial line
        with open(path, "r+b") as f:
            f.truncate(end)
        data = data[:end]
    records: dict[int, dict[str, Any]] = {}
    for n, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(path, f"not JSON ({e.msg}); delete the file to relabel",
                            line=n) from None
        if n == 1:
            if obj.get("kind") != _HEADER or obj.get("key") != json.loads(
                    json.dumps(dict(key), default=str)):
                raise DataError(path, "the cache belongs to other images or another teacher; "
                                "delete it to relabel", line=1)
            continue
        records[int(obj["index"])] = obj
    return records


def _record(index: int, sample: dict[str, Any], pose: TeacherPose | None) -> dict[str, Any]:
    rec: dict[str, Any] = {"index": index, "path": str(sample.get("path", "")),
                           "found": pose is not None}
    if pose is None:
        rec["reason"] = "no hand found"
        return rec
    code = {"right": 1, "left": 0}[pose.handedness] if pose.score >= 0.9 else -1
    uv = torch.as_tensor(pose.uv, dtype=torch.float64)[None]
    z = torch.as_tensor(pose.z_rel, dtype=torch.float64)[None]
    c = correct_pose_25d(uv, z, sample["K"].double(), torch.tensor([code]))
    rnd = 3  # decimals kept in the file (milli-pixels)
    rec.update(uv=np.round(pose.uv, rnd).tolist(), z_rel=np.round(pose.z_rel, 4).tolist(),
               score=round(pose.score, 4), handedness=pose.handedness,
               uv_corrected=np.round(c.uv[0].numpy(), rnd).tolist(),
               z_corrected=np.round(c.z_rel[0].numpy(), 4).tolist(),
               violations_before=int(c.violations_before[0]),
               violations_after=int(c.violations_after[0]))
    return rec


def label_dataset(
    dataset: Dataset[dict[str, Any]],
    teacher: Teacher,
    cache_path: str | os.PathLike[str],
    key: Mapping[str, Any],
    progress: bool = True,
    indices: Sequence[int] | None = None,
) -> TeacherLabels:
    """Run ``teacher`` on the images of ``dataset`` once, through the resumable cache.

    Args:
        dataset: contract samples of FULL images (``crop_size=None``): ``rgb`` (3, H, W)
            uint8, ``K`` (3, 3) of the image, ``path``. An index whose sample cannot be read
            (``DataError``), or that a ``skip_bad`` reader replaced by another image, is
            recorded as not found with the reason.
        teacher: a :class:`Teacher`.
        cache_path: the JSONL file (see :func:`teacher_cache_path`); its folder is created.
        key: written in the header and checked when the file is read again.
        progress: a tqdm bar over the images still to label.
        indices: label only these images (None: all); the others count as not found.
    Returns:
        :class:`TeacherLabels` for all ``len(dataset)`` images.
    Raises:
        DataError: the cache holds other images' labels or a corrupt line.
    """
    path = Path(cache_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(dataset)  # type: ignore[arg-type]
    records = _read_cache(path, key)
    wanted = range(n) if indices is None else sorted({int(i) for i in indices})
    if any(not 0 <= i < n for i in wanted):
        raise ValueError(f"indices must lie in [0, {n}); got {min(wanted)}..{max(wanted)}")
    todo = [i for i in wanted if i not in records]
    if todo:
        from tqdm.auto import tqdm

        with open(path, "a", encoding="utf-8") as f:
            if f.tell() == 0:
                f.write(json.dumps({"kind": _HEADER, "key": dict(key)}, default=str) + "\n")
                f.flush()
            for i in tqdm(todo, desc=f"teacher {teacher.name}", disable=not progress):
                try:
                    sample = dataset[i]
                except DataError as e:
                    rec = {"index": i, "path": e.path, "found": False, "reason": str(e)}
                else:
                    if int(sample["index"]) != i:
                        rec = {"index": i, "path": "", "found": False,
                               "reason": f"unreadable (the reader gave image {sample['index']})"}
                    else:
                        rgb = sample["rgb"].permute(1, 2, 0).numpy()
                        rec = _record(i, sample, teacher(np.ascontiguousarray(rgb)))
                records[i] = rec
                f.write(json.dumps(rec) + "\n")
                f.flush()
    return _labels(records, n, path)


def _labels(records: Mapping[int, Mapping[str, Any]], n: int, path: Path) -> TeacherLabels:
    found = np.zeros(n, bool)
    score = np.zeros(n, np.float32)
    hand = np.full(n, -1, np.int64)
    arrays = {k: np.full((n, NUM_JOINTS, 2), math.nan, np.float32) for k in ("uv", "uv_corrected")}
    arrays |= {k: np.full((n, NUM_JOINTS), math.nan, np.float32) for k in ("z_rel", "z_corrected")}
    vb = np.full(n, -1, np.int64)
    va = np.full(n, -1, np.int64)
    for i in range(n):
        r = records.get(i, {})
        if not r.get("found"):
            continue
        found[i] = True
        score[i] = r["score"]
        hand[i] = {"right": 1, "left": 0}[r["handedness"]]
        for k in arrays:
            arrays[k][i] = np.asarray(r[k], np.float32)
        vb[i], va[i] = r["violations_before"], r["violations_after"]
    return TeacherLabels(found, score, hand, arrays["uv"], arrays["z_rel"],
                         arrays["uv_corrected"], arrays["z_corrected"], vb, va, path)
