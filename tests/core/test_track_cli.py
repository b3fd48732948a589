"""``handpose-track``: outputs, summary, and clean failures (bad source, checkpoint, output,
a source that dies mid-run, Ctrl-C)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from handpose.core.checkpoint import save_checkpoint
from handpose.core.data import sources
from handpose.core.data.sources import ArraySource, SourceLost
from handpose.core.inference import track
from handpose.core.models.registry import build_model


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("posenet_resnet18", width=8)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", model, input_size=64)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HANDPOSE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """Three 160x120 frames (a bright blob on a dark background)."""
    d = tmp_path_factory.mktemp("frames")
    for i in range(3):
        img = np.full((120, 160, 3), 30, np.uint8)
        cv2.circle(img, (50 + 20 * i, 60), 25, (180, 140, 120), -1)
        cv2.imwrite(str(d / f"{i:03d}.png"), img)
    return d


def _run(argv, capsys):
    code = track.main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_jsonl_one_line_per_frame_and_summary(tiny_ckpt, image_dir, tmp_path, capsys):
    out = tmp_path / "poses.jsonl"
    code, stdout, err = _run([f"folder:{image_dir}", "--out", out, "--checkpoint", tiny_ckpt],
                             capsys)
    assert code == 0, err
    lines = [json.loads(s) for s in out.read_text().splitlines()]
    assert [r["index"] for r in lines] == [0, 1, 2]
    assert all(set(r) == {"index", "timestamp", "hands", "timings_ms"} for r in lines)
    assert "network" in lines[0]["timings_ms"] and "detect" in lines[0]["timings_ms"]
    assert "frames: 3" in stdout and "frames/s" in stdout and "mean ms per frame" in stdout


def test_csv_rows_and_limit(tiny_ckpt, image_dir, tmp_path, capsys, monkeypatch):
    # a detector stand-in that always reports a hand in the middle, so rows are written
    from handpose.core.inference import detector as det_mod

    class Always:
        def __init__(self, max_hands=2, model_complexity=0):
            pass

        def detect(self, rgb):
            return [det_mod.HandDetection((80.0, 60.0), (60.0, 60.0), 0.0, 0.9)]

        def close(self):
            pass

    monkeypatch.setattr(det_mod, "PalmDetector", Always)
    out = tmp_path / "poses.csv"
    args = [f"folder:{image_dir}", "--out", out, "--checkpoint", tiny_ckpt, "--limit", "2",
            "--max-hands", "1"]
    code, stdout, err = _run(args, capsys)
    assert code == 0, err
    rows = list(csv.reader(out.open()))
    assert rows[0][:6] == ["index", "timestamp", "track_id", "handedness",
                           "handedness_score", "joint"]
    body = rows[1:]
    assert len(body) % 21 == 0 and {r[0] for r in body} <= {"0", "1"}  # --limit 2 frames
    assert "frames: 2" in stdout
    code, _, err = _run(args + ["--csv-layout", "hands"], capsys)
    rows = list(csv.reader(out.open()))
    assert code == 0 and len(rows[0]) == 5 + 21 * 6 and all(len(r) == len(rows[0]) for r in rows)


@pytest.mark.parametrize("source", ["/no/such/video.mp4", "camera:57", "rgbd:/no/such/dir"])
def test_unopenable_source_exits_nonzero_with_one_line(source, tiny_ckpt, tmp_path, capsys):
    code, _, err = _run([source, "--out", tmp_path / "o.jsonl", "--checkpoint", tiny_ckpt],
                        capsys)
    assert code == 1
    assert err.startswith("handpose-track: error: cannot open source") and err.count("\n") == 1
    assert not (tmp_path / "o.jsonl").exists()


def test_bad_checkpoint_and_output(tiny_ckpt, image_dir, tmp_path, capsys):
    src = f"folder:{image_dir}"
    code, _, err = _run([src, "--out", tmp_path / "o.jsonl", "--checkpoint",
                         tmp_path / "missing.pt"], capsys)
    assert code == 1 and "not found" in err
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(tiny_ckpt.read_bytes()[:3000])
    code, _, err = _run([src, "--out", tmp_path / "o.jsonl", "--checkpoint", bad], capsys)
    assert code == 1 and "corrupt.pt" in err and err.count("\n") == 1
    code, _, err = _run([src, "--out", tmp_path / "nodir" / "o.jsonl"], capsys)
    assert code == 1 and "does not exist" in err
    code, _, err = _run([src, "--out", tmp_path / "o.txt"], capsys)
    assert code == 1 and ".jsonl or .csv" in err
    code, _, err = _run([src, "--out", tmp_path], capsys)
    assert code == 1


class _Dying(ArraySource):
    """Delivers ``n`` frames, then fails like an unplugged camera (or is interrupted)."""

    def __init__(self, n, exc):
        super().__init__([np.zeros((120, 160, 3), np.uint8)] * 10)
        self.n, self.exc, self.reads = n, exc, 0

    def read(self):
        self.reads += 1
        if self.reads > self.n:
            raise self.exc
        return super().read()


@pytest.mark.parametrize("exc, code", [(SourceLost("camera 0 stopped delivering"), 3),
                                       (KeyboardInterrupt(), 130)])
def test_source_dying_mid_run_or_ctrl_c_ends_cleanly(exc, code, tiny_ckpt, tmp_path, capsys,
                                                     monkeypatch):
    monkeypatch.setattr(sources, "open_source", lambda spec, **kw: _Dying(2, exc))
    out = tmp_path / "o.jsonl"
    got, stdout, err = _run(["camera:0", "--out", out, "--checkpoint", tiny_ckpt], capsys)
    assert got == code
    assert len(out.read_text().splitlines()) == 2  # what was processed is kept
    assert "frames: 2" in stdout
    assert ("stopped delivering" in err) if code == 3 else ("interrupted" in err)


def test_console_script_runs(tmp_path):
    """The installed entry point: a bad source exits 1 with a one-line message."""
    exe = Path(sys.executable).with_name("handpose-track")
    if not exe.exists():
        pytest.skip(f"{exe} is not installed (pip install -e .)")
    p = subprocess.run([str(exe), "/no/such/file.mp4", "--out", str(tmp_path / "o.jsonl")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert "cannot open source" in p.stderr and "Traceback" not in p.stderr


def test_smoothing_option_takes_levels_and_strengths(capsys):
    from handpose.core.inference.hand_filter import HandSmoothing

    def parse(*extra):
        return track.build_parser().parse_args(["demo", "--out", "x.jsonl", *extra]).smoothing

    assert parse() == HandSmoothing() == parse("--smoothing", "Medium")
    assert parse("--smoothing", "off") is None and parse("--smoothing", "0") is None
    assert parse("--smoothing", "0.75") == HandSmoothing.at_strength(0.75)
    for bad in ("1.5,10,1", "2", "smooth"):
        with pytest.raises(SystemExit):
            parse("--smoothing", bad)
        assert "a strength in [0, 1]" in capsys.readouterr().err


def test_no_mirror_left_reaches_the_estimator(tiny_ckpt, image_dir, tmp_path, capsys,
                                              monkeypatch):
    from handpose.core.inference import estimator

    seen = []

    class Recording(estimator.HandPoseEstimator):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            seen.append(self.mirror_left)

    monkeypatch.setattr(estimator, "HandPoseEstimator", Recording)
    base = [f"folder:{image_dir}", "--out", tmp_path / "p.jsonl", "--checkpoint", tiny_ckpt,
            "--limit", "1"]
    for extra in ([], ["--no-mirror-left"]):
        code, _, err = _run(base + extra, capsys)
        assert code == 0, err
    assert seen == [True, False]
