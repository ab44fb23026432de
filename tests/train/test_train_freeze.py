"""Freezing: only unfrozen parameters change, frozen BatchNorm statistics stay put, the optimizer holds only
trainable parameters."""

import pytest
import torch
from torch import nn

from lowlight_matting.losses import MattingLoss
from lowlight_matting.models import build_model
from lowlight_matting.train import (
    OptimConfig,
    apply_freeze,
    build_optimizer,
    parameter_counts,
    trainable_parameters,
)
from lowlight_matting.train.freeze import frozen_modules, parse_spec


@pytest.fixture(scope="module")
def bn_model():
    torch.manual_seed(0)
    return build_model(encoder="mobilenetv2_100")  # has BatchNorm in every encoder stage


def _snapshot(model):
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    buffers = {k: v.detach().clone() for k, v in model.named_buffers() if "running" in k}
    return params, buffers


def test_parse_spec():
    """Freeze specs parse to (part, index or slice); anything else is a ValueError."""
    assert parse_spec("encoder") == ("encoder", None)
    assert parse_spec("encoder.stages[:3]") == ("encoder", slice(None, 3))
    assert parse_spec("encoder.stages[1:2]") == ("encoder", slice(1, 2))
    assert parse_spec("encoder.stages[2]") == ("encoder", 2)
    for bad in ("backbone", "decoder.stages[:1]", "encoder.stages[]", "encoder.stage[:2]"):
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_stage1_updates_only_unfrozen_and_frozen_bn_stats_stay_fixed(bn_model):
    """After a freeze only unfrozen weights train; frozen BatchNorm statistics hold through train()."""
    model = bn_model
    counts = apply_freeze(model, ["encoder.stages[:3]", "decoder"])
    assert counts["trainable"] > 0 and counts["frozen"] > 0
    opt = build_optimizer(model, 1e-2, OptimConfig())
    held = {id(p) for g in opt.param_groups for p in g["params"]}
    assert held == {id(p) for p in trainable_parameters(model)}
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == counts["trainable"]

    frozen_parts = [*model.encoder.stages[:3], model.decoder]
    frozen_ids = {id(t) for part in frozen_parts for t in (*part.parameters(), *part.buffers())}
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    before_p, before_b = _snapshot(model)
    model.train()  # the training loop (or DDP) calls this: frozen BN must not go back to training mode
    assert frozen_modules(model) and all(not m.training for m in frozen_modules(model))
    crit = MattingLoss(dynamic=False)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        x = torch.rand(2, 3, 32, 32, generator=g) * 3  # statistics far from the BN's: stats would move
        alpha = torch.rand(2, 1, 32, 32, generator=g)
        loss, _ = crit(model(x), alpha)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after_p, after_b = _snapshot(model)

    def frozen(name):
        return id(tensors[name]) in frozen_ids

    changed = {k for k in before_p if not torch.equal(before_p[k], after_p[k])}
    assert changed, "nothing trained"
    assert not any(frozen(k) for k in changed), sorted(k for k in changed if frozen(k))[:5]
    assert all(not p.requires_grad for k, p in model.named_parameters() if frozen(k))
    trainable_names = {k for k, p in model.named_parameters() if p.requires_grad}
    assert changed <= trainable_names
    # BatchNorm running stats: fixed in frozen stages, updated in trainable ones
    frozen_bn = [k for k in before_b if frozen(k)]
    live_bn = [k for k in before_b if not frozen(k)]
    assert frozen_bn and live_bn
    assert all(torch.equal(before_b[k], after_b[k]) for k in frozen_bn)
    assert any(not torch.equal(before_b[k], after_b[k]) for k in live_bn)


def test_refreezing_undoes_the_previous_stage(bn_model):
    """A new freeze first undoes the previous one: every parameter and norm layer trains again."""
    model = bn_model
    apply_freeze(model, ["encoder"])
    n_bn = len(frozen_modules(model))
    assert n_bn > 0
    apply_freeze(model, [])
    assert frozen_modules(model) == []
    assert all(p.requires_grad for p in model.parameters())
    model.train()
    assert all(m.training for m in model.modules())
    counts = parameter_counts(model)
    assert counts["total"]["frozen"] == 0 and counts["encoder"]["trainable"] > 0


def test_all_but_head_and_missing_llie():
    """all_but_head leaves only the head trainable; a missing LLIE is no error; bad parts are named."""
    model = build_model(encoder="test_convnext")
    counts = apply_freeze(model, ["all_but_head", "llie"])  # llie is None: nothing to do there
    assert counts["trainable"] == sum(p.numel() for p in model.head.parameters())
    with pytest.raises(ValueError, match="stages"):
        apply_freeze(model, ["encoder.stages[9]"])
    m = nn.Module()
    with pytest.raises(ValueError, match="no 'decoder'"):
        apply_freeze(m, ["decoder"])


def test_all_but_llie_leaves_only_the_llie_trainable():
    """all_but_llie freezes encoder, decoder and head; on a model without an LLIE it is an error."""
    model = build_model(encoder="test_convnext", llie="zero_dce_pp")
    counts = apply_freeze(model, ["all_but_llie"])
    assert counts["trainable"] == sum(p.numel() for p in model.llie.parameters())
    assert {id(p) for p in trainable_parameters(model)} == {id(p) for p in model.llie.parameters()}
    assert parse_spec("all_but_llie") == ("all_but_llie", None)
    with pytest.raises(ValueError, match="no LLIE to keep trainable"):
        apply_freeze(build_model(encoder="test_convnext"), ["all_but_llie"])


def test_llie_spec_freezes_only_the_llie():
    """'llie' freezes exactly the LLIE's parameters; adding it to a stage's specs keeps the others' freeze."""
    model = build_model(encoder="test_convnext", llie="zero_dce_pp")
    n_llie = sum(p.numel() for p in model.llie.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert apply_freeze(model, ["llie"]) == {"frozen": n_llie, "trainable": total - n_llie}
    head = sum(p.numel() for p in model.head.parameters())
    assert apply_freeze(model, ["all_but_head", "llie"]) == {"frozen": total - head, "trainable": head}


def test_norm_stats_holds_every_running_statistic_while_all_weights_train(bn_model):
    """'norm_stats' keeps every BatchNorm's running mean/var fixed through train() and optimizer steps, while
    all parameters (BatchNorm's affine weights included) stay trainable and change."""
    model = bn_model
    counts = apply_freeze(model, ["norm_stats"])
    assert counts["frozen"] == 0
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert n_bn > 0 and len(frozen_modules(model)) == n_bn
    opt = build_optimizer(model, 1e-2, OptimConfig())
    before_p, before_b = _snapshot(model)
    model.train()
    crit = MattingLoss(dynamic=False)
    g = torch.Generator().manual_seed(1)
    for _ in range(2):
        x = torch.rand(2, 3, 32, 32, generator=g) * 3
        loss, _ = crit(model(x), torch.rand(2, 1, 32, 32, generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after_p, after_b = _snapshot(model)
    assert before_b and all(torch.equal(before_b[k], after_b[k]) for k in before_b)
    bn_weights = [k for k in before_p if ".bn" in k]  # timm names: encoder.body.blocks.0.0.bn1.weight
    assert bn_weights and any(not torch.equal(before_p[k], after_p[k]) for k in bn_weights)
    # combined with a part freeze: that part's weights stop, every statistic is still held
    counts = apply_freeze(model, ["encoder.stages[:3]", "norm_stats"])
    assert counts["frozen"] == sum(p.numel() for s in model.encoder.stages[:3] for p in s.parameters())
    assert len(frozen_modules(model)) == n_bn
    apply_freeze(model, [])
    model.train()
    assert all(m.training for m in model.modules())
