"""The config of ``handpose-train semihand`` (see :mod:`.semihand` for the method)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import ConfigError, input_path
from ..train_config import TrainConfig
from .data import LabelledData, UnlabelledData
from .finetune import HeatmapSpec
from .models import EncoderSpec
from .semihand_data import StrongAugSpec, WeakAugSpec
from .semihand_labels import PseudoSpec

__all__ = ["Config", "LossSpec", "MaskSpec", "TeacherSpec", "check"]


@dataclass(frozen=True)
class LossSpec:
    """Weights and switches (the paper's values as defaults).

    Attributes:
        lambda_d: depth weight of l (50). uv_grid: l's 2D term in pixels of this grid (64).
        mask: lambda_w, weight of the supervised mask L1 (100).
        consistency: lambda_c, weight of L_cons (0.1).
        view, cross_modal: switch the two consistency terms.
        view_detach: stop the gradient through T(f(x)) *(choose)*.
        confidence: weight of the regression head's confidence term on labelled crops and,
            with the teacher's pseudo-labels, on the confident unlabelled ones.
        circle_sharpness: edge width of the rendered circle mask, mask pixels.
    """

    lambda_d: float = 50.0
    uv_grid: float = 64.0
    mask: float = 100.0
    consistency: float = 0.1
    view: bool = True
    cross_modal: bool = True
    view_detach: bool = True
    confidence: float = 1.0
    circle_sharpness: float = 0.5


@dataclass(frozen=True)
class MaskSpec:
    """The mask head: transposed-convolution channels and x2 upsamplings (3: stride 4)."""

    channels: int = 64
    deconv: int = 3


@dataclass(frozen=True)
class TeacherSpec:
    """MediaPipe Hands as the source of the initial pseudo-labels (``pseudo.source=teacher``).

    Attributes:
        model_complexity, min_detection_confidence, pad_retry, mirrored: of
            :class:`~handpose.core.data.teacher.MediaPipeTeacher`.
        filter: "confidence" (C <= tau with the network, labels updated every round) or
            "score" (MediaPipe's score >= min_score; the teacher's labels are kept).
        min_score: see ``filter``.
        cache_dir: folder of the teacher cache ("" = <run>/teacher).
    """

    model_complexity: int = 1
    min_detection_confidence: float = 0.5
    pad_retry: float = 1 / 3
    mirrored: bool = False
    filter: Literal["confidence", "score"] = "confidence"
    min_score: float = 0.9
    cache_dir: str = ""


@dataclass(frozen=True)
class Config:
    """``handpose-train semihand``.

    Attributes:
        out: run folder. init: the initial network: a handpose checkpoint (``finetune`` /
            ``semihand`` model.pt or run folder: encoder and regression head), or
            pre-trained encoder weights (``pretrain``, PeCLR); "" = random.
        input_size: crop side in pixels.
        labelled: synthetic labelled crops (FreiHAND layout with ``training/mask``).
        unlabelled: real images (``format``: folder, freihand or session); ``load_size`` is
            not used (crops are cut at ``input_size``).
        val: an optional labelled validation set (never ``real_eval_hgc`` for training).
        head: the pose head, "regression" or "heatmap" (as ``finetune``); heatmap: its settings.
    """

    out: str = ""
    init: str = input_path("", doc="initial network or encoder weights")
    input_size: int = 128
    labelled: LabelledData = field(default_factory=LabelledData)
    unlabelled: UnlabelledData = field(default_factory=UnlabelledData)
    val: LabelledData = field(default_factory=LabelledData)
    model: EncoderSpec = field(default_factory=EncoderSpec)
    head: Literal["regression", "heatmap"] = "regression"
    heatmap: HeatmapSpec = field(default_factory=HeatmapSpec)
    mask: MaskSpec = field(default_factory=MaskSpec)
    loss: LossSpec = field(default_factory=LossSpec)
    pseudo: PseudoSpec = field(default_factory=PseudoSpec)
    teacher: TeacherSpec = field(default_factory=TeacherSpec)
    strong: StrongAugSpec = field(default_factory=StrongAugSpec)
    weak: WeakAugSpec = field(default_factory=WeakAugSpec)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            steps=2000, batch_size=32, optimizer="adam", lr=1e-4, warmup_steps=50,
            checkpoint_every=500,
        )
    )

    def __post_init__(self) -> None:
        if self.input_size < 32:
            raise ValueError(f"input_size must be >= 32 pixels, got {self.input_size}")


def check(cfg: Config) -> None:
    """The unlabelled data must be given; model pseudo-labels need an ``init`` network."""
    if not cfg.unlabelled.root:
        raise ConfigError("unlabelled.root is not set: give the unlabelled images "
                          "(unlabelled.root=PATH)")
    p = cfg.pseudo
    if p.enabled and p.source == "model" and not cfg.init:
        raise ConfigError("pseudo.source=model needs init=<a trained model> (pseudo-labels "
                          "from a random network are noise); or use pseudo.source=teacher, "
                          "or pseudo.enabled=false")
    if not cfg.labelled.root and not p.enabled and not (cfg.loss.view or cfg.loss.cross_modal):
        raise ConfigError("nothing to train: no labelled.root, no pseudo-labels and no "
                          "consistency terms")
