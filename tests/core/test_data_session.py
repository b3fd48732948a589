"""Sessions: write/read round trip, labels, crash leftovers, disk full, bad files, dataset."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from handpose.core.data import session_writer as writer_mod
from handpose.core.data.errors import DataError, SessionWriteError
from handpose.core.data.sample import collate
from handpose.core.data.session import LABELS_FILE, POSES_FILE
from handpose.core.data.session_reader import SessionDataset, SessionReader
from handpose.core.data.session_writer import SessionWriter
from handpose.core.types import Frame, FrameResult, HandPose

W, H = 48, 32
K0 = np.array([[60.0, 0, 23.5], [0, 60.0, 15.5], [0, 0, 1]])


def _frame(i: int, depth: bool = False, K: np.ndarray = K0) -> Frame:
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 10 * i
    rgb[..., 1] = np.arange(W, dtype=np.uint8)[None] * 4
    d = np.full((H, W), 0.5 + 0.01 * i, np.float32) if depth else None
    return Frame(rgb=rgb, K=K, depth=d, timestamp=0.1 * i, index=100 + i)


def _hand(rng: np.random.Generator, side: str = "right", track: int = 0) -> HandPose:
    joints = np.array([0.0, 0.0, 0.5]) + rng.normal(0, 0.02, (21, 3))
    cam = joints @ K0.T
    return HandPose(joints=joints, uv=cam[:, :2] / cam[:, 2:], handedness=side,
                    handedness_score=0.9, confidence=rng.uniform(0, 1, 21), corrected=True,
                    track_id=track)


def write_session(path: Path, rng: np.random.Generator, n: int = 4) -> list[FrameResult | None]:
    results: list[FrameResult | None] = []
    with SessionWriter(path, K=K0, source="camera:0", model_version="m1") as w:
        for i in range(n):
            fr = _frame(i, depth=i % 2 == 0)
            res = None if i == 1 else FrameResult(
                frame=fr, hands=(_hand(rng), _hand(rng, "left", 1)) if i == 2 else (),
                timings_ms={"total": 12.5})
            assert w.append_frame(fr, res) == i
            results.append(res)
    return results


def test_round_trip_frames_poses_depth(tmp_path, rng):
    results = write_session(tmp_path / "s", rng)
    r = SessionReader(tmp_path / "s")
    assert len(r) == 4 and np.allclose(r.K, K0)
    assert r.info.source == "camera:0" and r.info.model_version == "m1"
    assert r.info.app_version.startswith("handpose") and r.info.created.endswith("Z")
    for i in range(4):
        fr = r.frame(i)
        src = _frame(i, depth=i % 2 == 0)
        assert fr.index == i and fr.timestamp == pytest.approx(0.1 * i)
        assert r.records[i].source_index == 100 + i
        assert np.abs(fr.rgb.astype(int) - src.rgb).max() <= 6  # JPEG q95
        if i % 2 == 0:
            np.testing.assert_allclose(fr.depth, src.depth, atol=0.0006)  # mm quantisation
        else:
            assert fr.depth is None
    assert r.poses(1) is None and r.result(1) is None and r.poses(0) == ()
    hands = r.poses(2)
    want = results[2].hands
    assert len(hands) == 2 and [h.handedness for h in hands] == ["right", "left"]
    for got, exp in zip(hands, want):
        np.testing.assert_allclose(got.joints, exp.joints, atol=1e-6)
        np.testing.assert_allclose(got.uv, exp.uv, atol=1e-3)
        np.testing.assert_allclose(got.confidence, exp.confidence, atol=1e-4)
        assert got.track_id == exp.track_id and got.corrected
    assert r.result(2).timings_ms == {"total": 12.5}
    assert [f.index for f in r] == [0, 1, 2, 3]


def test_K_from_first_frame_and_per_frame_K(tmp_path):
    K1 = K0.copy()
    K1[0, 0] = 70
    with SessionWriter(tmp_path / "s", K_calibrated=False) as w:
        w.append_frame(_frame(0))
        w.append_frame(_frame(1, K=K1))
    info = json.loads((tmp_path / "s" / "session.json").read_text())
    assert np.allclose(info["K"], K0) and info["K_calibrated"] is False
    r = SessionReader(tmp_path / "s")
    assert np.allclose(r.records[0].K, K0) and np.allclose(r.records[1].K, K1)
    assert np.allclose(r.frame(1).K, K1)


def test_labels_later_lines_override(tmp_path, rng):
    write_session(tmp_path / "s", rng)
    uv = rng.uniform(0, 40, (21, 2))
    with SessionWriter(tmp_path / "s", append=True) as w:
        w.append_label(0, uv=uv, author="alice", handedness="right")
        w.append_label(2, joints3d=np.full((21, 3), 0.4), hand=1, author="model:m1",
                       method="model")
        w.append_label(0, uv=uv + 1, author="bob", done=True, visible=np.ones(21, bool))
        with pytest.raises(ValueError, match=r"index must be a recorded frame in \[0, 4\)"):
            w.append_label(9, uv=uv)
        with pytest.raises(ValueError, match="Label.uv must be a finite \\(21, 2\\)"):
            w.append_label(0, uv=uv[:3])
    r = SessionReader(tmp_path / "s")
    assert len(r.labels) == 2
    lab = r.labels[(0, 0)]
    assert lab.author == "bob" and lab.done and lab.handedness is None
    np.testing.assert_allclose(lab.uv, uv + 1, atol=1e-3)
    assert [x.hand for x in r.labels_for(2)] == [1] and r.labels_for(2)[0].method == "model"


def test_existing_session_needs_append_and_numbering_continues(tmp_path, rng):
    write_session(tmp_path / "s", rng, n=2)
    with pytest.raises(FileExistsError, match="append=True"):
        SessionWriter(tmp_path / "s")
    with SessionWriter(tmp_path / "s", append=True) as w:
        assert w.append_frame(_frame(5)) == 2
    assert [rec.index for rec in SessionReader(tmp_path / "s").records] == [0, 1, 2]


def test_crash_leftovers_torn_line_orphan_and_temp_files(tmp_path, rng):
    s = tmp_path / "s"
    write_session(s, rng, n=3)
    # a crash while writing frame 3: image renamed, temp depth left, half a JSON line
    (s / "rgb" / "000003.jpg").write_bytes((s / "rgb" / "000000.jpg").read_bytes())
    (s / "depth" / ".000003.png.tmp").write_bytes(b"partial")
    with open(s / POSES_FILE, "ab") as f:
        f.write(b'{"index": 3, "timestamp": 0.3, "rgb": "rgb/000')
    with pytest.warns(RuntimeWarning, match=r"poses\.jsonl, line 4: skipping a torn last line"):
        r = SessionReader(s)
    assert len(r) == 3  # every complete frame is there
    with SessionWriter(s, append=True) as w:
        assert w.append_frame(_frame(7)) == 3
    assert not (s / "depth" / ".000003.png.tmp").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # repaired: no torn line any more
        r = SessionReader(s)
    assert len(r) == 4 and abs(int(r.frame(3).rgb[0, 0, 0]) - 70) <= 3


def test_disk_full_keeps_the_session_valid(tmp_path, rng, monkeypatch):
    s = tmp_path / "s"
    w = SessionWriter(s, K=K0)
    w.append_frame(_frame(0, depth=True))
    w.append_frame(_frame(1, depth=True))
    real = writer_mod._write_all

    def full_on_jsonl(fd: int, data: bytes) -> None:
        if data.startswith(b'{"index"'):  # the poses line: write half, then the disk is full
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(writer_mod, "_write_all", full_on_jsonl)
    with pytest.raises(SessionWriteError, match=r"disk full while writing frame 2 \(.*"
                       r"poses\.jsonl\); the session is valid up to frame 1") as e:
        w.append_frame(_frame(2, depth=True))
    assert e.value.errno == errno.ENOSPC and e.value.last_frame == 1
    assert e.value.filename.endswith("poses.jsonl")
    assert sorted(p.name for p in (s / "rgb").iterdir()) == ["000000.jpg", "000001.jpg"]
    assert sorted(p.name for p in (s / "depth").iterdir()) == ["000000.png", "000001.png"]
    assert (s / POSES_FILE).read_bytes().endswith(b"}\n")  # no partial line left
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(SessionReader(s)) == 2

    def full_on_image(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer_mod, "_write_all", full_on_image)
    with pytest.raises(SessionWriteError, match=r"disk full .*000002\.jpg"):
        w.append_frame(_frame(2))
    assert sorted(p.name for p in (s / "rgb").iterdir()) == ["000000.jpg", "000001.jpg"]
    monkeypatch.setattr(writer_mod, "_write_all", real)  # space freed: recording goes on
    assert w.append_frame(_frame(2)) == 2
    w.close()
    assert len(SessionReader(s)) == 3


def test_missing_and_corrupt_images_and_bad_lines(tmp_path, rng):
    s = tmp_path / "s"
    write_session(s, rng, n=4)
    (s / "rgb" / "000001.jpg").unlink()
    (s / "rgb" / "000002.jpg").write_bytes(b"\xff\xd8\xff broken")
    with pytest.raises(DataError, match=r"000001\.jpg: image of frame 1 is missing "
                       r"\(poses\.jsonl line 2\)"):
        SessionReader(s)
    with pytest.warns(RuntimeWarning, match="skipping bad samples"):
        r = SessionReader(s, skip_bad=True)
        frames = [f.index for f in r]
    assert [rec.index for rec in r.records] == [0, 2, 3] and frames == [0, 3]
    assert r.skipped.count == 2
    with pytest.raises(DataError, match=r"000002\.jpg: image cannot be decoded"):
        r.frame(1)
    lines = (s / POSES_FILE).read_bytes().split(b"\n")
    lines[1] = b'{"index": 1, "rgb": 5'
    (s / POSES_FILE).write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match=r"poses\.jsonl, line 2: not a JSON object line"):
        SessionReader(s)
    (s / "session.json").write_text('{"format": "other"}')
    with pytest.raises(DataError, match=r"session\.json: bad session\.json \(not a "
                       "handpose-session"):
        SessionReader(s)


def test_session_dataset_labelled_and_all(tmp_path, rng):
    s = tmp_path / "s"
    write_session(s, rng, n=4)
    joints = np.array([0.0, 0.0, 0.5]) + rng.normal(0, 0.02, (21, 3))
    with SessionWriter(s, append=True) as w:
        w.append_label(1, joints3d=joints, handedness="left")
        w.append_label(3, uv=rng.uniform(5, 30, (21, 2)), done=True)
        w.append_label(2, author="x")  # looked at, no hand: not a training label
    ds = SessionDataset(s)
    assert len(ds) == 2
    a = ds[0]
    assert a["handedness"] == 0 and a["has_K"] and "depth" not in a
    cam = joints @ K0.T
    np.testing.assert_allclose(a["uv"].numpy(), cam[:, :2] / cam[:, 2:], atol=1e-3)
    assert "joints3d" not in ds[1] and ds[1]["uv"].shape == (21, 2)
    assert len(SessionDataset(s, done_only=True)) == 1
    every = SessionDataset(s, labelled_only=False, crop_size=16)
    assert len(every) == 4
    batch = collate([every[i] for i in range(4)])
    assert batch["rgb"].shape == (4, 3, 16, 16)
    assert batch["has_uv"].tolist() == [False, True, False, True]
    assert batch["has_depth"].tolist() == [True, False, True, False]


_CRASH_WRITER = """
import sys, numpy as np
from handpose.core.data.session_writer import SessionWriter
from handpose.core.types import Frame
K = np.array([[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]])
w = SessionWriter(sys.argv[1], K=K)
rgb = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
i = 0
while True:
    w.append_frame(Frame(rgb=rgb, K=K, depth=np.full((48, 64), 0.5, np.float32), index=i))
    if i == 3:
        print("ready", flush=True)
    i += 1
"""


def test_killed_writer_leaves_a_readable_session(tmp_path):
    s = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-c", _CRASH_WRITER, str(s)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a torn last line is allowed
        r = SessionReader(s)
    assert len(r) >= 4
    assert [rec.index for rec in r.records] == list(range(len(r)))
    for i in (0, len(r) // 2, len(r) - 1):  # every recorded frame decodes completely
        fr = r.frame(i)
        assert fr.rgb.shape == (48, 64, 3) and fr.depth is not None
    labels = s / LABELS_FILE
    assert labels.exists() and labels.stat().st_size == 0
