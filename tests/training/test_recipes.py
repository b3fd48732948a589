"""Recipe internals: augmented targets stay exact, PeCLR/SimCLR plumbing, data helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training_data import write_freihand, write_image_folder

from handpose.core.augment_geometric import transform_points
from handpose.core.checkpoint import save_checkpoint
from handpose.core.data.sample import collate
from handpose.core.geometry.lifting import lift_to_3d
from handpose.core.models import build_model
from handpose.training.config import ConfigError, apply_overrides
from handpose.training.distributed import DistInfo
from handpose.training.recipes import finetune, pretrain
from handpose.training.recipes.data import (
    LabelledData,
    UnlabelledData,
    hand_centres_and_sides,
    labelled_dataset,
    seeded_subset,
    unlabelled_dataset,
)
from handpose.training.recipes.models import load_encoder_weights


def _attach(recipe, model):  # type: ignore[no-untyped-def]
    recipe.device, recipe.dist = torch.device("cpu"), DistInfo()
    recipe.model = recipe.raw_model = model
    return recipe


def test_finetune_augmentation_moves_the_targets_with_the_image(tmp_path: Path) -> None:
    fh = write_freihand(tmp_path / "fh", n=6, size=96)
    cfg = apply_overrides(finetune.Config(), ["input_size=64", "aug.max_angle_deg=40",
                                              "aug.max_translation_px=6"])
    ds = labelled_dataset(LabelledData(root=str(fh)), crop_size=64)
    batch = collate([ds[i] for i in range(6)])
    recipe = finetune.FinetuneRecipe(cfg)
    torch.manual_seed(0)
    aug = recipe.augment(batch)
    # the 2.5D target uv from the updated K equals the crop keypoints moved by the warp
    moved = transform_points(batch["uv"], aug["matrix"])
    torch.testing.assert_close(aug["uv"], moved, atol=2e-3, rtol=0)
    assert (aug["uv"] - batch["uv"]).abs().max() > 1.0  # the warp really moved them
    # lifting the targets with the new K and the true scale gives back the 3D joints
    xyz = lift_to_3d(aug["uv"].double(), aug["z_rel"].double(), aug["K"].double(),
                     aug["scale"].double())
    torch.testing.assert_close(xyz.float(), batch["joints3d"], atol=1e-4, rtol=0)
    torch.testing.assert_close(aug["scale"], batch["scale"], atol=1e-6, rtol=0)
    assert aug["images"].shape == (6, 3, 64, 64) and 0 <= aug["images"].min()


def test_peclr_equals_simclr_without_geometric_augmentation(tmp_path: Path) -> None:
    imgs = write_image_folder(tmp_path / "imgs", n=6)
    still = ["views.max_angle_deg=0", "views.max_translation_px=0", "views.size=64",
             "data.load_size=64", "model.width=8", "projection.hidden=16", "projection.dim=8"]
    ds = unlabelled_dataset(UnlabelledData(root=str(imgs), load_size=64))
    batch = collate([ds[i] for i in range(6)])
    losses = {}
    for method, extra in (("peclr", still), ("simclr", still), ("peclr", still[2:])):
        cfg = apply_overrides(pretrain.Config(), [f"method={method}", *extra])
        recipe = pretrain.PretrainRecipe(cfg)
        torch.manual_seed(0)
        _attach(recipe, recipe.build_model())
        torch.manual_seed(1)
        losses[(method, len(extra))] = recipe.training_step(batch, 0)["loss"].item()
    assert losses[("peclr", 7)] == pytest.approx(losses[("simclr", 7)], abs=1e-6)
    assert losses[("peclr", 5)] != pytest.approx(losses[("peclr", 7)], abs=1e-4)


def test_hand_centres_and_sides_use_the_box_else_the_crop() -> None:
    batch = {
        "rgb": torch.zeros(2, 3, 64, 64),
        "box": torch.tensor([[9.5, 19.5, 20.0, 30.0], [0.0, 0.0, 0.0, 0.0]]),
        "has_box": torch.tensor([True, False]),
    }
    c, s = hand_centres_and_sides(batch, 64, margin=2.0)
    torch.testing.assert_close(c, torch.tensor([[19.5, 34.5], [31.5, 31.5]]))
    torch.testing.assert_close(s, torch.tensor([30.0, 32.0]))


def test_seeded_subset_is_reproducible_sorted_and_sized() -> None:
    ds = list(range(100))
    a = seeded_subset(ds, fraction=0.1, seed=3)  # type: ignore[arg-type]
    b = seeded_subset(ds, fraction=0.1, seed=3)  # type: ignore[arg-type]
    c = seeded_subset(ds, fraction=0.1, seed=4)  # type: ignore[arg-type]
    assert len(a) == 10 and a.indices == b.indices == sorted(a.indices)  # type: ignore[attr-defined]
    assert a.indices != c.indices  # type: ignore[attr-defined]
    assert len(seeded_subset(ds, fraction=0.5, limit=7)) == 7  # type: ignore[arg-type]
    assert seeded_subset(ds) is ds  # type: ignore[arg-type]


def test_encoder_weights_of_another_width_are_refused_by_name(tmp_path: Path) -> None:
    src = build_model("simclr_resnet18", width=8, proj_hidden=16, proj_dim=8)
    path = save_checkpoint(tmp_path / "model.pt", src, input_size=64)
    same = build_model("posenet_resnet18", width=8)
    assert load_encoder_weights(same.encoder, str(tmp_path)) == path
    assert torch.equal(same.encoder.conv1.weight, src.encoder.conv1.weight)
    with pytest.raises(ConfigError, match=r"init: .* does not fit model.depth/model.width: "
                                          r"conv1.weight is \(8, 3, 7, 7\) in the file"):
        load_encoder_weights(build_model("posenet_resnet18", width=16).encoder, str(path))
    with pytest.raises(ConfigError, match="does not exist"):
        load_encoder_weights(same.encoder, str(tmp_path / "none.pt"))
