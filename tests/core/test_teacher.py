"""The external teacher: landmark conversion, the resumable JSONL cache, MediaPipe on real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import Dataset

from handpose.core.data.errors import DataError
from handpose.core.data.freihand import FreiHANDDataset
from handpose.core.data.sample import make_sample
from handpose.core.data.teacher import (
    TeacherPose,
    label_dataset,
    landmarks_to_25d,
    teacher_cache_path,
)
from handpose.core.geometry.lifting import to_25d

K = np.array([[120.0, 0, 47.5], [0, 120.0, 47.5], [0, 0, 1]])


class Images(Dataset):
    """n tiny images whose brightness encodes the index; ``bad`` indices raise DataError."""

    def __init__(self, n: int, bad: tuple[int, ...] = ()) -> None:
        self.n, self.bad = n, bad

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if i in self.bad:
            raise DataError(f"img{i}.jpg", "does not decode")
        rgb = np.full((96, 96, 3), 10 * i, np.uint8)
        return make_sample(rgb, index=i, source="t", K=K, path=f"img{i}.jpg")


class FakeTeacher:
    """A feasible rest-pose hand shifted by the image brightness; no hand in odd images."""

    name = "fake-1"

    def __init__(self, hand_model) -> None:
        self.calls = 0
        joints = hand_model.rest_pose @ np.diag([1.0, -1.0, -1.0]) + np.array([0, 0.05, 0.5])
        self.uv, self.z, _ = to_25d(joints, K)

    def __call__(self, rgb: np.ndarray) -> TeacherPose | None:
        self.calls += 1
        i = int(rgb[0, 0, 0]) // 10
        if i % 2:
            return None
        return TeacherPose(self.uv + i, self.z, 0.95, "right")


def test_landmarks_to_25d() -> None:
    lm = np.random.default_rng(0).uniform(0, 1, (21, 3))
    world = np.random.default_rng(1).normal(0, 0.03, (21, 3))
    uv, z = landmarks_to_25d(lm, world, 200, 100)
    np.testing.assert_allclose(uv, lm[:, :2] * [200, 100] - 0.5)
    s = np.linalg.norm(world[10] - world[9])
    np.testing.assert_allclose(z, (world[:, 2] - world[0, 2]) / s)
    assert z[0] == 0.0
    with pytest.raises(ValueError, match=r"\(21, 3\) metres"):
        landmarks_to_25d(lm, world[:20], 200, 100)
    w0 = world.copy()
    w0[10] = w0[9]
    with pytest.raises(ValueError, match="reference bone"):
        landmarks_to_25d(lm, w0, 200, 100)


def test_cache_labels_once_and_resumes_after_a_torn_line(tmp_path: Path, hand_model) -> None:
    data = Images(6, bad=(5,))
    teacher = FakeTeacher(hand_model)
    key = {"root": "x", "n": 6, "teacher": teacher.name}
    path = teacher_cache_path(tmp_path / "cache", key)
    assert path.name.startswith("teacher-") and path == teacher_cache_path(tmp_path / "cache",
                                                                           dict(key))
    assert path != teacher_cache_path(tmp_path / "cache", {**key, "teacher": "other"})
    labels = label_dataset(data, teacher, path, key, progress=False)
    assert teacher.calls == 5  # the unreadable image is never given to the teacher
    assert labels.found.tolist() == [True, False, True, False, True, False]
    np.testing.assert_allclose(labels.uv[2], teacher.uv + 2, atol=1e-3)
    np.testing.assert_allclose(labels.z_rel[4], teacher.z, atol=1e-4)
    assert np.isnan(labels.uv[1]).all() and labels.handedness.tolist()[:2] == [1, -1]
    # the feasible teacher pose survives the correction unchanged
    assert (labels.violations_before[labels.found] == 0).all()
    np.testing.assert_allclose(labels.uv_corrected[0], labels.uv[0], atol=2e-3)
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["key"] == key and len(lines) == 7
    assert "does not decode" in json.loads(lines[-1])["reason"]

    # a second run reads everything from the file
    again = label_dataset(data, teacher, path, key, progress=False)
    assert teacher.calls == 5
    np.testing.assert_array_equal(again.uv_corrected, labels.uv_corrected)

    # crash while writing: keep 3 records and half a line; the rest is relabelled
    path.write_text("\n".join(lines[:4]) + "\n" + lines[4][:20])
    resumed = label_dataset(data, teacher, path, key, progress=False)
    assert teacher.calls == 5 + 2  # images 3 and 4 (5 is unreadable)
    np.testing.assert_array_equal(resumed.found, labels.found)
    np.testing.assert_allclose(resumed.uv[4], labels.uv[4])
    assert len(path.read_text().splitlines()) == 7


def test_label_only_some_images(tmp_path: Path, hand_model) -> None:
    teacher = FakeTeacher(hand_model)
    path = tmp_path / "c.jsonl"
    part = label_dataset(Images(6), teacher, path, {"n": 6}, progress=False, indices=[4, 0, 4])
    assert teacher.calls == 2 and part.found.tolist() == [True, False, False, False, True, False]
    full = label_dataset(Images(6), teacher, path, {"n": 6}, progress=False)
    assert teacher.calls == 6 and full.found.tolist() == [True, False, True, False, True, False]
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 6\)"):
        label_dataset(Images(6), teacher, path, {"n": 6}, progress=False, indices=[6])


def test_cache_of_other_images_is_refused(tmp_path: Path, hand_model) -> None:
    teacher = FakeTeacher(hand_model)
    path = tmp_path / "c.jsonl"
    label_dataset(Images(2), teacher, path, {"n": 2}, progress=False)
    with pytest.raises(DataError, match="other images or another teacher"):
        label_dataset(Images(3), teacher, path, {"n": 3}, progress=False)
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(DataError, match="line 4"):
        label_dataset(Images(2), teacher, path, {"n": 2}, progress=False)


def test_mediapipe_on_real_frames(hgc_dir: Path, tmp_path: Path) -> None:
    from handpose.core.biomech import is_left_hand
    from handpose.core.data.teacher import MediaPipeTeacher

    ds = FreiHANDDataset(hgc_dir, load_depth=False, load_mask=False)
    idx = [0, 150, 300]
    teacher = MediaPipeTeacher()
    try:
        assert teacher.name.startswith("mediapipe-hands-0.10")
        for i in idx:
            s = ds[i]
            pose = teacher(s["rgb"].permute(1, 2, 0).numpy())
            assert pose is not None
            uv_gt, z_gt, _ = to_25d(s["joints3d"].double(), s["K"].double())
            err = np.linalg.norm(pose.uv - uv_gt.numpy(), axis=1).mean()
            assert err < 15.0, f"frame {i}: mean 2D error {err:.1f} px on 256 px"
            assert np.corrcoef(pose.z_rel, z_gt.numpy())[0, 1] > 0.3
            left = bool(is_left_hand(s["joints3d"].double().numpy()))
            assert pose.handedness == ("left" if left else "right")
        assert teacher(np.zeros((64, 64, 3), np.uint8)) is None
        with pytest.raises(ValueError, match="uint8"):
            teacher(np.zeros((64, 64, 3), np.float32))
    finally:
        teacher.close()


def test_mediapipe_pad_retry_on_tight_crops(real_hands_dir: Path) -> None:
    import cv2

    from handpose.core.data.teacher import MediaPipeTeacher

    crops = sorted((real_hands_dir / "oxford_hand_crops").glob("*.jpg"))[:12]
    imgs = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in crops]
    plain, padded = MediaPipeTeacher(pad_retry=0.0), MediaPipeTeacher()
    try:
        n_plain = sum(plain(im) is not None for im in imgs)
        got = [padded(im) for im in imgs]
        # on these 12 crops MediaPipe alone finds 6 hands, with the border 8
        assert sum(g is not None for g in got) > n_plain
        for g, im in zip(got, imgs):
            if g is not None:  # landmarks in the original image's pixels, near the image
                assert np.all(g.uv > -0.5 * im.shape[0]) and np.all(g.uv < 1.5 * im.shape[0])
    finally:
        plain.close()
        padded.close()
