"""A stage's optimisation: the lr schedule in closed form, AdamW's decay groups, precision choice."""

import math

import pytest
import torch
from torch import nn

from lowlight_matting.train import (
    ConfigError,
    OptimConfig,
    apply_freeze,
    build_optimizer,
    build_scheduler,
    resolve_amp,
)


def _lrs(
    optim: OptimConfig, total: int, warmup: int, spe: int = 1, steps: int | None = None, lr: float = 2.0
):
    """The learning rate before each step 0 .. ``steps`` (default ``total``) of a one-parameter AdamW."""
    p = nn.Parameter(torch.zeros(2, 2))
    opt = torch.optim.AdamW([p], lr=lr)
    sched = build_scheduler(opt, optim, total, warmup, spe)
    out = []
    for _ in range((total if steps is None else steps) + 1):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_cosine_with_linear_warmup_closed_form():
    """Warm-up (s+1)/(w+1), then cosine r + (1-r)(1+cos(pi t))/2, ending at r x lr after the last step."""
    lr, r, w, total = 2.0, 0.05, 3, 13
    got = _lrs(OptimConfig(schedule="cosine", min_lr_ratio=r), total, w, lr=lr)
    expected = [lr * (s + 1) / (w + 1) for s in range(w)]
    expected += [
        lr * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * (s - w) / (total - w))))
        for s in range(w, total + 1)
    ]
    assert got == pytest.approx(expected, rel=1e-12)
    assert got[:4] == pytest.approx([0.5, 1.0, 1.5, 2.0])  # warm-up, then the full lr at step w
    assert got[8] == pytest.approx(lr * (r + (1 - r) / 2))  # half-way through the decay
    assert got[total] == pytest.approx(lr * r)  # the end point


def test_cosine_without_warmup_starts_at_full_lr():
    """With no warm-up the first step uses the stage's lr and the schedule ends at min_lr_ratio x lr."""
    got = _lrs(OptimConfig(schedule="cosine", min_lr_ratio=0.0), 4, 0, lr=1.0)
    assert got == pytest.approx(
        [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0.0]
    )


def test_warmup_longer_than_the_stage_is_capped():
    """A warm-up as long as the stage is cut to total - 1 steps: the last step runs at the full lr."""
    got = _lrs(OptimConfig(schedule="constant"), 3, 10, lr=3.0)
    assert got == pytest.approx([1.0, 2.0, 3.0, 3.0])


def test_step_schedule_decays_by_gamma_every_step_epochs():
    """The step schedule multiplies by gamma every step_epochs passes of steps_per_epoch steps."""
    optim = OptimConfig(schedule="step", gamma=0.1, step_epochs=2)
    got = _lrs(optim, total=20, warmup=2, spe=3, steps=19, lr=1.0)
    # passes of 3 steps; the lr drops at steps 6, 12, 18 (every 2 passes); steps 0-1 are the warm-up
    expected = [1 / 3, 2 / 3] + [0.1 ** ((s // 3) // 2) for s in range(2, 20)]
    assert got == pytest.approx(expected, rel=1e-12)
    assert (got[5], got[6], got[12], got[18]) == pytest.approx((1.0, 0.1, 0.01, 0.001))


def test_constant_schedule_after_warmup():
    """The constant schedule holds the stage's lr once the warm-up is over."""
    assert _lrs(OptimConfig(schedule="constant"), 6, 2, lr=3.0) == pytest.approx([1.0, 2.0] + [3.0] * 5)


def test_every_param_group_follows_the_schedule():
    """The decayed and the non-decayed group get the same multiplier at every step."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    opt = build_optimizer(model, 0.5, OptimConfig())
    sched = build_scheduler(opt, OptimConfig(min_lr_ratio=0.1), 5, 1, 1)
    for _ in range(5):
        lrs = {g["lr"] for g in opt.param_groups}
        assert len(lrs) == 1
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


def test_adamw_decays_only_matrices_and_kernels():
    """AdamW puts weight decay on >1-D weights only: biases and normalisation weights are not decayed."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    opt = build_optimizer(model, 1e-3, OptimConfig(weight_decay=0.3, betas=[0.8, 0.9]))
    by_decay = {g["weight_decay"]: {id(p) for p in g["params"]} for g in opt.param_groups}
    assert by_decay == {
        0.3: {id(model[0].weight), id(model[3].weight)},
        0.0: {id(model[0].bias), id(model[1].weight), id(model[1].bias), id(model[3].bias)},
    }
    assert opt.defaults["betas"] == (0.8, 0.9) and opt.defaults["lr"] == 1e-3


def test_optimizer_holds_only_trainable_parameters_and_refuses_none():
    """Frozen parameters stay out of the optimizer; a stage that freezes everything is a ConfigError."""
    model = nn.Module()
    model.llie = None
    model.encoder, model.decoder, model.head = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 1, 1)
    apply_freeze(model, ["all_but_head"])
    opt = build_optimizer(model, 1e-3, OptimConfig())
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in model.head.parameters()}
    apply_freeze(model, ["encoder", "decoder", "head"])
    with pytest.raises(ConfigError, match="nothing to train"):
        build_optimizer(model, 1e-3, OptimConfig())


@pytest.mark.parametrize(
    "mode, dtype, scaler",
    [
        ("off", None, False),
        ("auto", None, False),
        ("bf16", torch.bfloat16, False),
        ("fp16", torch.float16, True),
    ],
)
def test_resolve_amp_on_cpu(mode, dtype, scaler):
    """On a CPU: auto means full precision, bf16 needs no scaler, fp16 comes with a GradScaler."""
    amp = resolve_amp(mode, torch.device("cpu"))
    assert (amp.dtype, amp.scaler, amp.enabled, amp.name) == (
        dtype,
        scaler,
        dtype is not None,
        mode.replace("auto", "off"),
    )
