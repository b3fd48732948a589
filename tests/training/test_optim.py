"""LARS against a hand computation, parameter groups, the warm-up + cosine schedule."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from handpose.training.optim import LARS, WarmupCosine, build_optimizer, param_groups
from handpose.training.train_config import TrainConfig, plan_batches, scaled_lr


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def _grads(model: nn.Module) -> None:
    model.zero_grad()
    torch.manual_seed(1)
    model(torch.randn(5, 3)).pow(2).sum().backward()


def test_lars_sgd_step_matches_hand_computation() -> None:
    model = _net()
    lr, wd, eta = 0.1, 0.01, 0.02
    opt = LARS(torch.optim.SGD(param_groups(model, wd), lr=lr, momentum=0.0), eta=eta)
    _grads(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    for n, p in model.named_parameters():
        w, g = before[n], grads[n]
        if w.ndim >= 2:  # weights: trust ratio and decay, by hand with python floats
            wn, gn = math.sqrt(float((w**2).sum())), math.sqrt(float((g**2).sum()))
            ratio = eta * wn / (gn + wd * wn + 1e-8)
            expected = w - lr * ratio * (g + wd * w)
        else:  # biases and BatchNorm: plain SGD, no decay, no adaptation
            expected = w - lr * g
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=1e-7, msg=n)


def test_lars_ratio_is_one_for_zero_weights_and_clip_limits_it() -> None:
    w = nn.Parameter(torch.zeros(2, 2))
    w.grad = torch.ones(2, 2)
    opt = LARS(torch.optim.SGD([{"params": [w], "weight_decay": 0.0}], lr=0.5), eta=1.0)
    (ratio,) = opt.adapt_gradients()
    assert ratio.item() == 1.0
    v = nn.Parameter(torch.full((2, 2), 10.0))
    v.grad = torch.full((2, 2), 0.1)
    opt = LARS(torch.optim.SGD([v], lr=0.5), eta=1.0, clip=True)
    (ratio,) = opt.adapt_gradients()  # unclipped ratio 100 / 0.5 -> clipped to 1
    assert ratio.item() == 1.0


def test_lars_does_not_apply_the_base_weight_decay_twice_and_restores_it() -> None:
    model = _net()
    opt = LARS(torch.optim.Adam(param_groups(model, 0.1), lr=1e-3))
    _grads(model)
    opt.step()
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]


def test_lars_state_dict_round_trip_continues_identically() -> None:
    a, b = _net(), _net()
    oa = LARS(torch.optim.Adam(param_groups(a, 1e-3), lr=1e-2), eta=0.01)
    _grads(a)
    oa.step()
    b.load_state_dict(a.state_dict())
    ob = LARS(torch.optim.Adam(param_groups(b, 1e-3), lr=1e-2), eta=0.5)
    ob.load_state_dict(copy.deepcopy(oa.state_dict()))  # as if read from a file
    assert ob.eta == 0.01 and ob.param_groups is ob.optimizer.param_groups
    for m, o in ((a, oa), (b, ob)):
        _grads(m)
        o.step()
    for (n, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb), n


def test_lars_works_with_grad_scaler_unscaling() -> None:
    model = _net()
    opt = LARS(torch.optim.SGD(param_groups(model, 0.0), lr=0.1), eta=1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    ref = _net()
    ref_opt = LARS(torch.optim.SGD(param_groups(ref, 0.0), lr=0.1), eta=1e-3)
    torch.manual_seed(1)
    x = torch.randn(5, 3)
    scaler.scale(model(x).pow(2).sum()).backward()
    scaler.step(opt)
    ref(x).pow(2).sum().backward()
    ref_opt.step()
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_param_groups_split_weights_from_biases_and_norms() -> None:
    model = _net()
    model[0].bias.requires_grad_(False)
    decay, no_decay = param_groups(model, 0.5)
    assert decay["weight_decay"] == 0.5 and decay["lars"]
    assert no_decay["weight_decay"] == 0.0 and not no_decay["lars"]
    assert {id(p) for p in decay["params"]} == {id(model[0].weight), id(model[2].weight)}
    assert {id(p) for p in no_decay["params"]} == {
        id(model[1].weight), id(model[1].bias), id(model[2].bias)
    }
    with pytest.raises(ValueError, match="no trainable parameters"):
        param_groups(nn.Linear(2, 2).requires_grad_(False), 0.0)


def test_build_optimizer_follows_the_config() -> None:
    groups = param_groups(_net(), 1e-6)
    opt = build_optimizer(groups, TrainConfig(steps=1, lars=True, optimizer="adam"), 0.3)
    assert isinstance(opt, LARS) and isinstance(opt.optimizer, torch.optim.Adam)
    assert all(g["lr"] == 0.3 for g in opt.param_groups)
    sgd = build_optimizer(param_groups(_net(), 0.0), TrainConfig(steps=1, optimizer="sgd"), 0.1)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.9


def test_warmup_cosine_values_at_key_steps() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.0)
    s = WarmupCosine(opt, total_steps=110, warmup_steps=10, min_ratio=0.1)
    assert s.set_step(0) == [pytest.approx(0.2)]  # first warm-up update: peak / W
    assert s.set_step(4) == [pytest.approx(1.0)]
    assert s.set_step(9) == [pytest.approx(2.0)]  # last warm-up update reaches the peak
    assert s.set_step(10) == [pytest.approx(2.0)]  # cosine starts at the peak
    assert s.set_step(60) == [pytest.approx(2.0 * (0.1 + 0.9 * 0.5))]  # half-way
    three_quarters = 2.0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(0.75 * math.pi)))
    assert s.set_step(85) == [pytest.approx(three_quarters)]
    assert s.set_step(110) == [pytest.approx(0.2)]  # the end: min_ratio * peak
    assert s.set_step(500) == [pytest.approx(0.2)]
    const = WarmupCosine(opt, 10, 2, kind="constant")
    assert [const.factor(t) for t in (0, 1, 2, 9)] == [0.5, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosine(opt, 5, 6)


def test_lr_scaling_and_batch_plan() -> None:
    paper = TrainConfig(epochs=100, batch_size=2048, micro_batch_size=128, lr=1e-4,
                        lr_scaling="sqrt", warmup_epochs=10)
    assert scaled_lr(paper) == pytest.approx(4.5255e-3, rel=1e-4)  # PeCLR's 4.5e-3
    plan = plan_batches(paper, dataset_len=32_560 * 2, world_size=2)
    assert (plan.micro, plan.accum, plan.steps_per_epoch) == (128, 8, 31)
    assert (plan.total_steps, plan.warmup_steps) == (3100, 310)
    assert scaled_lr(TrainConfig(steps=1, lr=0.3, batch_size=512, lr_scaling="linear")) == 0.6
    with pytest.raises(ValueError, match="multiple of"):
        plan_batches(TrainConfig(steps=1, batch_size=10, micro_batch_size=4), 100, 1)
    with pytest.raises(ValueError, match="exactly one of train.steps and train.epochs"):
        TrainConfig(steps=5, epochs=1.0)
