"""The registry of recipes the ``handpose-train`` CLI offers (one line per recipe).

A recipe module defines ``Config`` (a frozen config dataclass, see :mod:`..config`),
``run(cfg: Config, run_dir: Path) -> dict`` (the outputs: files written, metrics) and
optionally ``check(cfg)``, which raises :class:`~..config.ConfigError` for a config that
cannot run (e.g. a required path not set) before the run folder is made. Training
recipes build a :class:`~handpose.training.recipe.Recipe` and call
:func:`~handpose.training.loop.train` inside ``run``. Modules are imported only when their
recipe is used, so ``handpose-train --help`` stays fast.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from types import ModuleType

__all__ = ["RecipeEntry", "RECIPES", "register", "get_recipe"]


@dataclass(frozen=True)
class RecipeEntry:
    """A registered recipe.

    Attributes:
        name: the CLI word (``handpose-train NAME``).
        module: import path of the module with ``Config`` and ``run``.
        summary: one line for ``--help``.
        flags: CLI flags that set config keys, e.g. ``{"method": "method"}`` makes
            ``--method X`` mean ``method=X`` (the value is checked against the field's type).
        switches: CLI flags without a value for boolean keys: ``--onnx`` means ``onnx=true``.
        positional: a config key set by a bare first word: with ``"name"``,
            ``handpose-train recipe default`` means ``name=default``.
    """

    name: str
    module: str
    summary: str
    flags: dict[str, str] = field(default_factory=dict)
    switches: tuple[str, ...] = ()
    positional: str = ""

    def load(self) -> ModuleType:
        """Import the module and check it has ``Config`` and ``run``."""
        mod = importlib.import_module(self.module)
        for attr in ("Config", "run"):
            if not hasattr(mod, attr):
                raise TypeError(f"recipe module {self.module} has no {attr!r}")
        return mod


RECIPES: dict[str, RecipeEntry] = {}


def register(
    name: str,
    module: str,
    summary: str,
    flags: dict[str, str] | None = None,
    switches: tuple[str, ...] = (),
    positional: str = "",
) -> None:
    """Add a recipe to the CLI (a name may be registered once)."""
    if name in RECIPES:
        raise ValueError(f"recipe {name!r} is already registered")
    RECIPES[name] = RecipeEntry(name, module, summary, dict(flags or {}), tuple(switches),
                                positional)


def get_recipe(name: str) -> RecipeEntry:
    """The entry of ``name``.

    Raises:
        ValueError: unknown name (lists the recipes, with a suggestion).
    """
    if name not in RECIPES:
        close = difflib.get_close_matches(name, list(RECIPES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown recipe {name!r} (recipes: {', '.join(RECIPES)}){hint}")
    return RECIPES[name]


# --- the recipes (one line each) -------------------------------------------------------------
register("pretrain", "handpose.training.recipes.pretrain",
         "PeCLR / SimCLR contrastive pre-training on unlabelled images", {"method": "method"})
register("finetune", "handpose.training.recipes.finetune",
         "supervised 2.5D fine-tuning (optionally frozen encoder + MLP probe)")
register("eval", "handpose.training.recipes.eval",
         "EPE, PA-EPE, AUC, 2D EPE and PCK of a checkpoint on a labelled set")
register("export", "handpose.training.recipes.export",
         "export a checkpoint to ONNX and check ONNX Runtime against torch", switches=("onnx",))
register("prior", "handpose.training.recipes.prior",
         "the pose prior: a VAE over sampled feasible poses (Wan et al.), frozen in fit-depth")
register("fit-depth", "handpose.training.recipes.fit_depth",
         "depth FCN: synthetic init, then self-supervised sphere-model fitting on depth")
register("semihand", "handpose.training.recipes.semihand",
         "SemiHand: synthetic labels + unlabelled real images (pseudo-labels, consistency)",
         {"source": "pseudo.source"})
register("disentangled", "handpose.training.recipes.disentangled",
         "disentangled VAE (pose / image content): synthesis, pose transfer, pose estimate")
register("dual", "handpose.training.recipes.dual",
         "dual-modality RGB+depth network: synthetic pre-training, pseudo-label fine-tuning",
         {"stage": "stage"})
register("crossvae", "handpose.training.recipes.crossvae",
         "cross-modal VAE (RGB, point clouds; product of experts): pose + hand point cloud",
         {"variant": "variant"})
register("recipe", "handpose.training.recipes.chain",
         "a chain of recipes end to end: 'recipe default' trains the shipped model",
         positional="name")
