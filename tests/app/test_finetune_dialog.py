"""Fine-tune on sessions: the dialog runs the real ``handpose-train`` in a subprocess (tiny
preset), follows its progress and offers the new model; a failing run is reported."""

from __future__ import annotations

import pytest
from app_helpers import make_session, tiny_checkpoint

from handpose.app.finetune import FinetunePlan
from handpose.app.loaders import describe_checkpoint
from handpose.app.state import AppState

pytestmark = [pytest.mark.gui, pytest.mark.slow]
WAIT = 300_000  # a training subprocess on a shared CPU


@pytest.fixture
def dialog(gui, qtbot):
    from handpose.app.finetune_dialog import FinetuneDialog

    def make(checkpoint=None):
        d = FinetuneDialog(AppState(), checkpoint=checkpoint)
        qtbot.addWidget(d)
        d.show()
        return d

    return make


def test_finetune_run_offers_the_new_model(dialog, qtbot, tmp_path):
    session = make_session(tmp_path / "labelled", n=24, labels=True)  # 8 labels: one batch
    ckpt = tiny_checkpoint(tmp_path / "current.pt")
    d = dialog(str(ckpt))
    assert d.set_session(str(session))
    assert d.recipe.currentData() == "finetune" and "8 with 3D joints" in d.summary.text()
    plan = FinetunePlan("finetune", str(session), str(tmp_path / "run"), preset="tiny",
                        steps=4, checkpoint=str(ckpt))
    assert d.start(plan)
    qtbot.waitUntil(lambda: d.process is None, timeout=WAIT)
    assert d.offer_box is not None, d.log.toPlainText()[-2000:]
    assert d.progress.value() == d.progress.maximum()
    with qtbot.waitSignal(d.model_ready, timeout=10_000) as got:
        d.accept_offer()
    path = got.args[0]
    assert path == str(tmp_path / "run" / "model.pt")
    name, card = describe_checkpoint(path)  # a valid checkpoint, the encoder's shape kept
    assert "posenet_resnet18" in name and "width=8" in card
    assert "steps" in card or "Training" in card
    assert any("train.steps=4" in line for line in d.log.toPlainText().splitlines())


def test_two_sessions_are_merged_and_trained_on(dialog, qtbot, tmp_path):
    a = make_session(tmp_path / "a", n=12, labels=True)  # 4 labels each: 8 = one batch
    b = make_session(tmp_path / "b", n=12, labels=True)
    d = dialog()
    assert d.set_session(f"{a}; {b}")
    assert "2 sessions" in d.summary.text() and "8 with 3D joints" in d.summary.text()
    d.preset.setCurrentText("tiny")
    d.steps.setValue(2)
    plan = d.plan()
    assert plan.merge_from == (str(a), str(b)) and plan.session.endswith("data")
    assert d.start()
    qtbot.waitUntil(lambda: d.process is None, timeout=WAIT)
    assert d.model_path is not None, d.log.toPlainText()[-2000:]
    assert "merging 2 sessions" in d.log.toPlainText()


def test_failed_run_is_reported(dialog, qtbot, tmp_path, demo_session):
    d = dialog()
    plan = FinetunePlan("finetune", str(demo_session), str(tmp_path / "run"), preset="tiny",
                        steps=2)  # the demo session has no 3D labels: the recipe refuses
    assert d.start(plan)
    qtbot.waitUntil(lambda: d.process is None, timeout=WAIT)
    assert d.model_path is None and d.offer_box is None
    assert "exit code" in d.log.toPlainText() and d.start_button.isEnabled()
