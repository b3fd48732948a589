"""`handpose-train recipe default`: the chain of stages, resumable, with its model card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from training_data import write_freihand, write_image_folder, write_masked_freihand

from handpose.core.checkpoint import load_checkpoint
from handpose.core.export import OnnxPoseNet, file_sha256
from handpose.core.inference.backends import load_backend
from handpose.training.cli import main
from handpose.training.recipes.chain import WIDE_MARGIN, WIDE_ZOOM

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_default_chain_end_to_end(tmp_path: Path) -> None:
    synth = write_masked_freihand(tmp_path / "synth")
    test = write_freihand(tmp_path / "test", n=6, size=96, seed=3)
    real = write_image_folder(tmp_path / "real", n=16)
    out = tmp_path / "chain"
    argv = ["recipe", "default", "--preset", "tiny", f"synthetic={synth}",
            f"synthetic_test={test}", f"real={real}", f"real_eval={test}", "input_size=64",
            "stage_preset=tiny", f"out={out}", f"model_out={tmp_path / 'default.pt'}",
            # the stick-figure images hold no real hand for MediaPipe: pseudo-labels from the
            # fine-tuned network instead of the teacher
            'semihand=["pseudo.source=model"]', 'refine=["pseudo.source=model", "train.lr=1e-4"]',
            'widen=["pseudo.source=model"]']
    assert main(argv) == 0
    for stage in ("pretrain", "finetune", "semihand", "refine", "widen"):
        info = json.loads((out / stage / "stage.json").read_text())
        assert info["stage"] == stage and info["wall_s"] >= 0
    # the stages are wired: finetune starts from the PeCLR encoder, semihand from finetune,
    # refine (the SemiHand recipe again, its own overrides) from semihand
    ft = json.loads((out / "finetune" / "config.json").read_text())["config"]
    assert ft["init"] == str(out / "pretrain" / "model.pt") and ft["data"]["upright"]
    sh = json.loads((out / "semihand" / "config.json").read_text())["config"]
    assert sh["init"] == str(out / "finetune" / "model.pt") and sh["unlabelled"]["upright"]
    rf = json.loads((out / "refine" / "config.json").read_text())
    assert rf["recipe"] == "semihand" and rf["config"]["init"] == str(out / "semihand" / "model.pt")
    assert rf["config"]["train"]["lr"] == 1e-4 != sh["train"]["lr"]
    assert rf["config"]["unlabelled"] == sh["unlabelled"]
    # widen: SemiHand from refine on wider crops, zoomed
    wd = json.loads((out / "widen" / "config.json").read_text())
    assert wd["recipe"] == "semihand" and wd["config"]["init"] == str(out / "refine" / "model.pt")
    assert wd["config"]["labelled"]["crop_margin"] == WIDE_MARGIN == \
        wd["config"]["unlabelled"]["crop_margin"] != sh["unlabelled"]["crop_margin"]
    assert tuple(wd["config"]["strong"]["scale_range"]) == WIDE_ZOOM
    assert wd["config"]["val"]["crop_margin"] == sh["val"]["crop_margin"]  # judged as shipped

    model, meta = load_checkpoint(tmp_path / "default.pt")
    assert meta.dtype == "float16" and meta.input_size == 64
    assert meta.training["recipe"] == "recipe/default"
    assert meta.training["right_hands_only"] is False
    assert [s["stage"] for s in meta.training["stages"]] == ["pretrain", "finetune", "semihand",
                                                             "refine", "widen"]
    assert {"real_eval/pa_epe_mm", "synthetic_test/pck_2d@0.2"} <= set(meta.metrics)
    # the confidence was calibrated, and the shipped file rebuilds the calibrated head
    cal = meta.training["confidence_calibration"]
    assert cal["hand_crops"] == 6 and cal["error_scale"] > 0
    assert model.head.error_scale == pytest.approx(cal["error_scale"])
    assert meta.arch["kwargs"]["error_scale"] == cal["error_scale"]
    card = (tmp_path / "default.md").read_text()
    assert "MediaPipe Hands" in card and "| semihand |" in card
    # the command that made it
    assert """'semihand=["pseudo.source=model"]'""" in card and "| refine |" in card
    assert """'stages=["pretrain", "finetune", "semihand", "refine", "widen"]'""" in card
    assert f"error_scale was set {cal['error_scale_before']} -> {cal['error_scale']}" in card
    # the int8 model sits next to the checkpoint, names it, and is what the tracker runs
    int8 = OnnxPoseNet(tmp_path / "default.int8.onnx")
    assert int8.precision == "int8" and int8.source_sha256 == file_sha256(tmp_path / "default.pt")
    assert load_backend(tmp_path / "default.pt").precision == "int8"
    assert "handpose int8" in card and "default.int8.onnx" in card
    q = json.loads((out / "card.json").read_text())["int8"]
    assert 0 <= q["real_eval/pck_2d@0.2"] <= 1 and q["real_eval/frames"] == 6
    mp = json.loads((out / "card.json").read_text())["mediapipe"]
    assert mp["real_eval/frames"] == 6 and 0 <= mp["real_eval/detected"] <= 1
    assert 0 <= mp["real_eval/pck_2d@0.2"] <= mp["real_eval/detected"] + 1e-9

    # a second run finds every stage done and only re-evaluates
    before = (out / "widen" / "model.pt").stat().st_mtime_ns
    assert main(argv) == 0
    assert (out / "widen" / "model.pt").stat().st_mtime_ns == before


def test_bad_chain_configs_fail_before_training(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    synth = write_masked_freihand(tmp_path / "synth", n=4)
    real = write_image_folder(tmp_path / "real", n=4)
    base = ["recipe", "default", "--preset", "tiny", f"synthetic={synth}", f"real={real}",
            "stage_preset=tiny"]
    assert main([*base, 'finetune=["data.nope=1"]', f"out={tmp_path / 'a'}"]) == 2
    assert main([*base, 'stages=["finetune", "pretrain"]', f"out={tmp_path / 'b'}"]) == 2
    assert main([*base, f"real={tmp_path / 'missing'}", f"out={tmp_path / 'c'}"]) == 2
    # a SemiHand stage first, with no network to continue
    assert main([*base, 'stages=["widen"]', f"out={tmp_path / 'd'}"]) == 2
    assert "widen='[\"init=PATH.pt\"]'" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in "abcd")


def test_right_hands_mirrors_left_hands_in_every_labelled_stage() -> None:
    from handpose.training.recipes.chain import STAGES, Config, stage_overrides

    for right in (False, True):
        cfg = Config(synthetic="s", real="r", right_hands=right)
        for stage in STAGES:
            keys = {w.split("=", 1)[0]: w.split("=", 1)[1]
                    for w in stage_overrides(cfg, stage, Path("run"), "")}
            mirrored = {k for k, v in keys.items() if k.endswith(".mirror_left") and v == "true"}
            want = {"pretrain": set(), "finetune": {"data.mirror_left", "val.mirror_left"}}.get(
                stage, {"labelled.mirror_left", "unlabelled.mirror_left", "val.mirror_left"})
            assert mirrored == (want if right else set())


def test_a_right_hands_chain_says_so_and_the_tracker_warns_without_mirroring(tmp_path: Path
                                                                            ) -> None:
    import warnings

    from handpose.core.inference.estimator import HandPoseEstimator

    synth = write_masked_freihand(tmp_path / "synth", n=8)
    real = write_image_folder(tmp_path / "real", n=4)
    model_out = tmp_path / "right.pt"
    assert main(["recipe", "default", "--preset", "tiny", f"synthetic={synth}", f"real={real}",
                 "stage_preset=tiny", "input_size=64", 'stages=["finetune"]', "int8=false",
                 "right_hands=true", f"out={tmp_path / 'run'}", f"model_out={model_out}"]) == 0
    _, meta = load_checkpoint(model_out)
    assert meta.training["right_hands_only"] is True
    assert "reads right hands only" in model_out.with_suffix(".md").read_text()

    class NoHands:
        def detect(self, rgb):
            return []

    for mirror in (True, False):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            HandPoseEstimator(model_out, backend="torch", detector=NoHands(), mirror_left=mirror)
        said = [w for w in caught if "right hands only" in str(w.message)]
        assert len(said) == (0 if mirror else 1)
