"""``handpose-train prior``: a tiny run through the CLI; the loss falls, the checkpoint loads
as a frozen prior that prefers sampled poses to noisy ones; the data is index-deterministic."""

from __future__ import annotations

import json

import numpy as np
import torch

from handpose.core.checkpoint import load_checkpoint
from handpose.core.data.synthetic.sampler import HandSampler, SamplerConfig
from handpose.core.models.prior import PoseVAE
from handpose.training.cli import main
from handpose.training.recipes.prior import sample_poses


def test_tiny_prior_run(tmp_path):
    out = tmp_path / "prior"
    code = main(["prior", "--preset", "tiny", f"out={out}"])
    assert code == 0
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [x["train/loss"] for x in lines if "train/loss" in x]
    assert len(losses) >= 5 and losses[-1] < 0.5 * losses[0]
    assert (out / "tb").is_dir()
    vae, meta = load_checkpoint(out / "model.pt")
    assert isinstance(vae, PoseVAE) and meta.training["recipe"] == "prior"
    # the trained prior scores sampled poses better than the same poses with 1 cm noise
    sampler = HandSampler(SamplerConfig(p_left=0.0))
    poses = sample_poses(sampler, 99, np.arange(64), 0.1)
    noisy = poses + 0.01 * torch.randn(poses.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert float(vae.prior_loss(poses).mean()) < float(vae.prior_loss(noisy).mean())
    result = json.loads((out / "result.json").read_text())
    assert result["metrics"]["neg_elbo"] < result["metrics"]["neg_elbo_noisy"]


def test_sampled_poses_depend_on_the_index_only():
    sampler = HandSampler(SamplerConfig(p_left=0.0))
    a = sample_poses(sampler, 3, np.array([5, 6, 7]), 0.0)
    b = sample_poses(sampler, 3, np.array([7]), 0.0)
    torch.testing.assert_close(a[2], b[0])
    assert a.shape == (3, 21, 3) and a.dtype == torch.float32
