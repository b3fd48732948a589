"""AppState, options, statistics and the mailbox: plain Python, no Qt."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from handpose.app.mailbox import Mailbox, MailboxClosed
from handpose.app.state import (
    AppState,
    PipelineOptions,
    SourceInfo,
    ViewOptions,
    choose_startup_spec,
)
from handpose.app.stats import History, RateMeter
from handpose.core.inference.hand_filter import HandSmoothing
from handpose.core.types import Frame, FrameResult, HandPose

QT_FREE = ("handpose.app.state", "handpose.app.engine", "handpose.app.recording",
           "handpose.app.scene_data", "handpose.app.annotate", "handpose.app.labellers",
           "handpose.app.finetune", "handpose.app.export", "handpose.app.intrinsics",
           "handpose.app.loaders", "handpose.app.depth_assist", "handpose.app.mailbox",
           "handpose.app.session_merge", "handpose.app.stats", "handpose.app.colors")


def test_qt_free_modules_import_without_qt():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in QT_FREE) +
            "bad = [m for m in sys.modules if m.startswith(('PyQt6', 'pyqtgraph'))]\n"
            "assert not bad, bad\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_pipeline_options_to_estimator_keywords():
    opts = PipelineOptions(correct=False, smoothing=0.0, fit_depth=True, hand_length_m=0.2,
                           mirror_left=False)
    kw = opts.estimator_options()
    assert kw["correct"] is False and kw["smoothing"] is None and kw["fit_depth"] is True
    assert kw["mirror_left"] is False and PipelineOptions().estimator_options()["mirror_left"]
    assert PipelineOptions().estimator_options()["smoothing"] == HandSmoothing()  # medium
    from handpose.core.inference.calibration import HAND_LENGTH_BONES

    assert kw["hand_scale"].shape == (20,)
    assert kw["hand_scale"][list(HAND_LENGTH_BONES)].sum() == pytest.approx(0.2)
    bones = tuple(np.linspace(0.02, 0.05, 20))
    assert np.allclose(PipelineOptions(hand_length_m=0.2, hand_bones=bones).hand_scale(), bones)
    with pytest.raises(ValueError, match="hand_length_m"):
        PipelineOptions(hand_length_m=0.5)
    with pytest.raises(ValueError, match="max_hands"):
        PipelineOptions(max_hands=3)


def test_startup_source():
    assert choose_startup_spec("video:x.mp4", [0]) == "video:x.mp4"
    assert choose_startup_spec(None, [2, 3]) == "camera:2"
    assert choose_startup_spec(None, []) == "demo"


def test_settings_round_trip_as_strings():
    s = AppState()
    s.view = ViewOptions(spheres=False, grid=False)
    s.pipeline = PipelineOptions(correct=False, smoothing=0.75, hand_length_m=0.19,
                                 hand_bones=tuple(np.linspace(0.02, 0.05, 20)), mirror_left=False)
    s.recordings_dir, s.K_file, s.device = "/rec", "/k.json", "cpu"
    s.last_dirs["video"] = "/videos"
    # QSettings' INI files give every value back as a string
    as_text = {k: str(v).lower() if isinstance(v, bool) else str(v)
               for k, v in s.to_settings().items()}
    t = AppState()
    assert t.apply_settings(as_text) == []
    assert t.view == s.view
    assert t.pipeline.correct is False and t.pipeline.smoothing == 0.75
    assert t.pipeline.mirror_left is False
    assert t.pipeline.hand_length_m == pytest.approx(0.19)
    assert np.allclose(t.pipeline.hand_bones, s.pipeline.hand_bones, atol=1e-6)
    assert (t.recordings_dir, t.K_file, t.device) == ("/rec", "/k.json", "cpu")
    assert t.last_dirs["video"] == "/videos"


def test_bad_settings_keep_defaults_and_are_reported():
    t = AppState()
    problems = t.apply_settings({"view/spheres": "maybe", "pipeline/smoothing": "7",
                                 "pipeline/max_hands": "x", "model/device": "tpu"})
    assert len(problems) == 4
    assert t.view.spheres is True and t.pipeline.smoothing == 0.5 and t.device == "auto"


def _result(conf: float, n_hands: int = 1) -> FrameResult:
    frame = Frame(rgb=np.zeros((8, 8, 3), np.uint8), K=np.eye(3))
    hand = HandPose(joints=np.ones((21, 3)), uv=np.zeros((21, 2)),
                    confidence=np.full(21, conf, np.float32))
    return FrameResult(frame, (hand,) * n_hands, {"network": 5.0, "total": 9.0, "other": 1.0})


def test_record_result_rates_and_history():
    s = AppState(history=50)
    for k in range(31):  # 30 frames/s for one second, the model on every other frame
        s.record_result(10.0 + k / 30, _result(0.7), processed=k % 2 == 0, latency_s=0.02)
    shown, model = s.fps(10.0 + 30 / 30)
    assert shown == pytest.approx(30.0, rel=1e-6)
    assert model == pytest.approx(15.0, rel=1e-6)
    net = s.history.series("network")
    assert np.isfinite(net).sum() == 16 and np.nanmax(net) == 5.0  # only processed frames
    assert np.allclose(s.history.series("latency"), 20.0)
    assert np.allclose(s.history.series("confidence_0"), 0.7)
    assert np.isnan(s.history.series("confidence_1")).all()
    f = s.status_fields(11.0)
    assert f["fps"].startswith("30.0 fps") and f["model"] == "no model"
    s.source = SourceInfo(spec="session:/x", name="/x", has_depth=True)
    assert "RGB-D" in s.status_fields(11.0)["source"]
    assert "poses/labels" in s.status_fields(11.0)["model"]


def test_rate_meter_window():
    m = RateMeter(1.0)
    for k in range(11):
        m.add(k * 0.1)
    assert m.rate() == pytest.approx(10.0)
    assert m.rate(now=5.0) == 0.0  # everything left the window
    with pytest.raises(ValueError):
        RateMeter(0)


def test_history_ring_keeps_order_and_gaps():
    h = History(("a", "b"), capacity=4)
    for k in range(6):
        h.append(float(k), {"a": k} if k % 2 else {"a": k, "b": -k})
    assert len(h) == 4
    assert h.times().tolist() == [2.0, 3.0, 4.0, 5.0]
    assert h.series("a").tolist() == [2.0, 3.0, 4.0, 5.0]
    b = h.series("b")
    assert b[0] == -2.0 and np.isnan(b[1]) and b[2] == -4.0 and np.isnan(b[3])
    assert h.last("a") == 5.0
    with pytest.raises(ValueError, match="unknown"):
        h.append(6.0, {"c": 1.0})


def test_mailbox_latest_wins_and_reports_the_replaced():
    box: Mailbox[int] = Mailbox()
    assert box.put(1) is None
    assert box.put(2) == 1 and box.replaced == 1
    assert box.get(timeout=0) == 2
    assert box.get(timeout=0.01) is None
    got = []
    t = threading.Thread(target=lambda: got.append(box.get(timeout=5)))
    t.start()
    time.sleep(0.01)
    box.put(3)
    t.join(5)
    assert got == [3]
    box.put(4)
    box.close()
    assert box.get() == 4  # drains, then
    with pytest.raises(MailboxClosed):
        box.get()
    with pytest.raises(MailboxClosed):
        box.put(5)
