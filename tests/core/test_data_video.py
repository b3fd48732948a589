"""Video files as datasets: length, random and sequential access, workers, bad files."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from torch.utils.data import DataLoader

from handpose.core.data.errors import DataError
from handpose.core.data.sample import collate
from handpose.core.data.video import VideoDataset

N, W, H = 24, 64, 48


def _level(i: int) -> int:
    return 8 + 10 * i  # frame i is a flat grey of this level


def write_video(path: Path, fourcc: str = "MJPG", n: int = N) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (W, H))
    assert vw.isOpened(), f"no {fourcc} encoder in this OpenCV build"
    for i in range(n):
        vw.write(np.full((H, W, 3), _level(i), np.uint8))
    vw.release()
    return path


def _frame_no(s: dict) -> int:
    return int(round((float(s["rgb"].float().mean()) - 8) / 10))


@pytest.mark.parametrize("name,fourcc", [("v.avi", "MJPG"), ("v.mp4", "mp4v")])
def test_random_and_sequential_access(tmp_path, name, fourcc):
    ds = VideoDataset(write_video(tmp_path / name, fourcc))
    assert len(ds) == N and ds.fps == pytest.approx(10.0)
    order = [0, 1, 2, 17, 5, 6, 23, 3, 12, 13]
    assert [_frame_no(ds[i]) for i in order] == order
    s = ds[7]
    assert s["rgb"].shape == (3, H, W) and s["timestamp"] == pytest.approx(0.7)
    assert s["path"].endswith(f"{name}#7") and not s["has_K"]
    assert _frame_no(ds[-1]) == N - 1
    with pytest.raises(IndexError):
        ds[N]


def test_dataloader_workers_and_crops(tmp_path):
    ds = VideoDataset(write_video(tmp_path / "v.avi"), crop_size=32,
                      K=np.array([[50.0, 0, 31.5], [0, 50, 23.5], [0, 0, 1]]))
    pickle.loads(pickle.dumps(ds))  # workers receive a copy without the open capture
    loader = DataLoader(ds, batch_size=8, num_workers=2, collate_fn=collate)
    batches = list(loader)
    assert sum(len(b["index"]) for b in batches) == N
    b = batches[1]
    assert b["rgb"].shape == (8, 3, 32, 32) and b["has_K"].all()
    assert b["index"].tolist() == list(range(8, 16))
    # the crop is the centre square: K's principal point moves to the crop centre
    assert float(b["K"][0, 0, 2]) == pytest.approx(15.5, abs=1e-3)


def test_bad_videos_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match=r"nope\.mp4: video file not found"):
        VideoDataset(tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(DataError, match=r"junk\.mp4: cannot open the video"):
        VideoDataset(junk)


def test_truncated_video_frame_errors_name_file_and_frame(tmp_path):
    path = write_video(tmp_path / "cut.avi")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    ds = VideoDataset(path)
    assert len(ds) == N  # the container header still says N
    with pytest.raises(DataError, match=rf"cut\.avi: cannot decode frame 20 of {N}"):
        ds[20]
    assert _frame_no(ds[1]) == 1  # the decoder reopens after a failure
    skipping = VideoDataset(path, skip_bad=True)
    with pytest.warns(RuntimeWarning, match="skipping bad samples"):
        s = skipping[20]
    assert _frame_no(s) == 0 and skipping.skipped.count >= 1  # wrapped to the first good one
