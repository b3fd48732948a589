"""Qt-free tools of the app: intrinsics files, pose export, the fine-tuning plan/progress,
and loading models."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from app_helpers import K, make_session, tiny_checkpoint

from handpose.app.export import PoseLog, export_poses
from handpose.app.finetune import (
    FinetunePlan,
    choose_recipe,
    model_overrides,
    read_progress,
    result_model,
    summarize_session,
    train_command,
)
from handpose.app.intrinsics import IntrinsicsError, load_intrinsics
from handpose.app.loaders import ModelLoadError, describe_checkpoint, open_model
from handpose.core.types import Frame, FrameResult, HandPose


def test_intrinsics_formats(tmp_path):
    (tmp_path / "k.json").write_text(json.dumps({"K": K.tolist()}))
    (tmp_path / "cm.json").write_text(json.dumps({"camera_matrix": {"data": K.ravel().tolist()}}))
    np.save(tmp_path / "k.npy", K)
    np.savetxt(tmp_path / "k.txt", K)
    import cv2

    fs = cv2.FileStorage(str(tmp_path / "k.yaml"), cv2.FILE_STORAGE_WRITE)
    fs.write("camera_matrix", K)
    fs.release()
    for name in ("k.json", "cm.json", "k.npy", "k.txt", "k.yaml"):
        assert np.allclose(load_intrinsics(tmp_path / name, (320, 240)), K), name


@pytest.mark.parametrize("name,content,match", [
    ("missing.json", None, "no such file"),
    ("bad.json", "{nope", "cannot read"),
    ("nokey.json", '{"fx": 1}', "no 'K'"),
    ("shape.json", '{"K": [1, 2, 3]}', "3 x 3"),
    ("neg.json", '{"K": [[-1, 0, 1], [0, 1, 1], [0, 0, 1]]}', "focal"),
    ("row.json", '{"K": [[1, 0, 1], [0, 1, 1], [0, 1, 1]]}', "last row"),
    ("pp.json", '{"K": [[100, 0, 900], [0, 100, 100], [0, 0, 1]]}', "principal point"),
    ("k.png", "\x89PNG", "unknown file type"),
    ("bad.yaml", "::: not yaml [", "cannot read"),
])
def test_unreadable_intrinsics_are_named(tmp_path, name, content, match):
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(IntrinsicsError, match=match):
        load_intrinsics(tmp_path / name, (320, 240))


def test_export_csv_json_jsonl(tmp_path):
    log = PoseLog(capacity=3)
    frame = Frame(rgb=np.zeros((4, 4, 3), np.uint8), K=np.eye(3), timestamp=1.5, index=7)
    hand = HandPose(joints=np.arange(63.0).reshape(21, 3) / 100, uv=np.ones((21, 2)),
                    track_id=4, handedness="left")
    for k in range(5):
        log.add(FrameResult(frame, (hand,) if k % 2 else (), {"total": 2.0}))
    assert len(log) == 3  # capacity
    assert export_poses(tmp_path / "p.csv", log) == 3
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert len(rows) == 21  # one frame of the three has a hand
    assert rows[5]["joint"] == "5" and float(rows[5]["y_m"]) == pytest.approx(0.16)
    assert rows[0]["handedness"] == "left" and rows[0]["track_id"] == "4"
    export_poses(tmp_path / "p.json", log)
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["format"] == "handpose-poses" and len(doc["frames"]) == 3
    export_poses(tmp_path / "p.jsonl", log)
    lines = (tmp_path / "p.jsonl").read_text().splitlines()
    assert json.loads(lines[1])["hands"][0]["joints_m"][20] == pytest.approx([0.6, 0.61, 0.62])
    with pytest.raises(ValueError, match="must end in"):
        export_poses(tmp_path / "p.txt", log)
    with pytest.raises(ValueError, match="no poses"):
        export_poses(tmp_path / "e.csv", PoseLog())
    with pytest.raises(OSError):
        export_poses(tmp_path / "no" / "such" / "dir.csv", log)
    assert not list(tmp_path.glob(".*tmp*"))  # no partial file left behind


def test_session_summary_and_recipe_choice(demo_session, tmp_path):
    s = summarize_session(demo_session)
    assert (s.frames, s.labels_3d) == (30, 0) and choose_recipe(s) == "semihand"
    lab = make_session(tmp_path / "lab", n=6, labels=True)
    s2 = summarize_session(lab)
    assert (s2.labels_2d, s2.labels_3d, s2.done) == (2, 2, 2) and choose_recipe(s2) == "finetune"


def test_plan_command_and_overrides(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "m.pt")
    assert model_overrides(ckpt) == [f"init={ckpt}", "model.depth=18", "model.width=8",
                                     "input_size=64"]
    plan = FinetunePlan("finetune", "/s", "/runs/x", preset="tiny", steps=5, checkpoint=str(ckpt))
    cmd = train_command(plan, python="/py")
    assert cmd[:6] == ["/py", "-m", "handpose.training.cli", "finetune", "--preset", "tiny"]
    assert "data.root=/s" in cmd and "data.format=session" in cmd and "out=/runs/x" in cmd
    assert "train.steps=5" in cmd and "model.width=8" in cmd
    # the crops as the tracker cuts them: upright, left hands mirrored
    assert {"data.upright=true", "data.mirror_left=true"} <= set(cmd)
    semi = FinetunePlan("semihand", "/s", "/o", labelled_root="/synth")
    assert {"unlabelled.root=/s", "unlabelled.format=session", "labelled.root=/synth",
            "labelled.upright=true", "unlabelled.mirror_left=true"} <= set(semi.overrides())
    with pytest.raises(ValueError, match="labelled"):
        FinetunePlan("semihand", "/s", "/o")
    with pytest.raises(ValueError, match="recipe"):
        FinetunePlan("pretrain", "/s", "/o")


def test_progress_from_the_run_folder(tmp_path):
    run = tmp_path / "run"
    assert read_progress(run) == (0, None)
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"recipe": "finetune",
                                                 "config": {"train": {"steps": 40}}}))
    (run / "metrics.jsonl").write_text('{"step": 5, "loss": 1}\n{"step": 10, "loss": 0.5}\n{"st')
    assert read_progress(run) == (10, 40)
    assert read_progress(tmp_path / "x", "  12%|#  | 12/100 [00:01<00:09]") == (12, 100)
    assert result_model(run) is None
    model = run / "model.pt"
    model.write_bytes(b"x")
    (run / "result.json").write_text(json.dumps({"model": str(model)}))
    assert result_model(run) == model


def test_open_model_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("hello")
    with pytest.raises(ModelLoadError, match="bad.pt"):
        open_model(bad)
    with pytest.raises(ModelLoadError, match="no such file"):
        open_model(tmp_path / "none.pt")
    with pytest.raises(ModelLoadError, match="bad.pt"):
        describe_checkpoint(bad)


def test_open_model_builds_the_real_pipeline(tmp_path):
    """A (random-weight) checkpoint through the real HandPoseEstimator: the app's path."""
    ckpt = tiny_checkpoint(tmp_path / "m.pt")
    est, info = open_model(ckpt, device="cpu", cache_dir=tmp_path / "cache")
    try:
        assert info.checkpoint == str(ckpt) and "posenet_resnet18" in info.card
        assert info.device == "onnxruntime cpu"
        rgb = np.zeros((120, 160, 3), np.uint8)
        result = est.process(Frame(rgb=rgb, K=np.array([[150.0, 0, 80], [0, 150.0, 60],
                                                        [0, 0, 1]])))
        assert result.hands == () and "total" in result.timings_ms  # nothing to find
        twin = est.with_options(correct=False, smoothing=None)
        assert twin.correct is False
        assert info.right_hands_only is False and twin.right_hands_only is False
    finally:
        est.close()


def test_open_model_says_when_the_model_reads_right_hands_only(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "right.pt", training={"right_hands_only": True})
    est, info = open_model(ckpt, device="cpu", cache_dir=tmp_path / "cache")
    try:
        assert info.right_hands_only is True and est.right_hands_only is True
        assert est.with_options(mirror_left=False).right_hands_only is True  # the app's path
    finally:
        est.close()


def test_shipped_session_copy_is_untouched(demo_session, tmp_path):
    """Sanity of the fixture the other tests rely on."""
    copy = Path(shutil.copytree(demo_session, tmp_path / "c"))
    assert (copy / "poses.jsonl").read_bytes() == (demo_session / "poses.jsonl").read_bytes()


def test_merge_sessions_renumbers_links_and_keeps_labels(tmp_path):
    import os

    from handpose.app.finetune import prepare
    from handpose.app.session_merge import merge_sessions
    from handpose.core.data.session_reader import SessionReader

    a = make_session(tmp_path / "a", n=6, labels=True)
    b = make_session(tmp_path / "b", n=4, labels=True, with_depth=False)
    merged = merge_sessions([a, b], tmp_path / "m")
    r = SessionReader(merged)
    ra, rb = SessionReader(a), SessionReader(b)
    assert len(r) == 10 and [x.index for x in r.records] == list(range(10))
    assert np.array_equal(r.frame(7).rgb, rb.frame(1).rgb)
    assert r.frame(7).depth is None and np.allclose(r.frame(2).depth, ra.frame(2).depth)
    assert os.stat(r.records[0].rgb).st_ino == os.stat(ra.records[0].rgb).st_ino  # linked
    assert np.allclose(r.poses(8)[0].joints, rb.poses(2)[0].joints)
    assert sorted(i for i, _ in r.labels) == [0, 3, 6, 9]  # a: 0, 3; b: 0, 3 -> 6, 9
    assert np.allclose(r.labels[(9, 0)].joints3d, rb.labels[(3, 0)].joints3d)
    assert r.info.extra["merged_from"][1] == str(b.resolve())
    with pytest.raises(ValueError, match="not empty"):
        merge_sessions([a, b], merged)
    with pytest.raises(ValueError, match="two or more"):
        merge_sessions([a], tmp_path / "one")
    plan = FinetunePlan("finetune", str(tmp_path / "run" / "data"), str(tmp_path / "run"),
                        merge_from=(str(a), str(b)))
    assert len(SessionReader(prepare(plan))) == 10
    assert summarize_session(plan.session).labels_3d == 4
