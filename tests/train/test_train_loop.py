"""The training loop on tiny CPU runs: the joint flip, mixed precision, LLIE stages, the composition term,
non-finite losses and weights, and what a run folder holds."""

import json
import math

import numpy as np
import pytest
import torch
from trainkit import (
    STEPS_PER_PASS,
    BNNet,
    Recorder,
    all_finite,
    differing,
    last,
    state_of,
    tensor_dataset,
    tiny_config,
)

from lowlight_matting.checkpoint import model_from_checkpoint
from lowlight_matting.data import SyntheticMattingDataset, TensorMattingDataset
from lowlight_matting.train import (
    NonFiniteLossError,
    NonFiniteWeightsError,
    StageConfig,
    build_model_for,
    load_history,
    train,
)
from lowlight_matting.train.loop import check_finite_weights, llie_frozen_at


def _model(cfg, seed=0):
    torch.manual_seed(seed)
    return build_model_for(cfg)


# ----------------------------------------------------------------------------------------------- the flip
def _left_half_dataset(n: int = 8, size: int = 16) -> TensorMattingDataset:
    """Every sample: alpha = 1 on the left half, and the image is that matte in grey (image == alpha)."""
    alpha = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    alpha[..., : size // 2] = 255
    return TensorMattingDataset(alpha.repeat(1, 3, 1, 1), alpha)


@pytest.mark.parametrize("augment", ["flip", "none"])
def test_engine_flips_image_and_alpha_together(tmp_path, augment):
    """augment=flip feeds mirrored samples whose alpha is mirrored too (loss stays 0); none: no flips."""
    cfg = tiny_config(
        tmp_path,
        augment,
        [StageConfig(name="s", steps=4, lr=1e-3)],
        **{"data.augment": augment, "loss.ssim": 0, "loss.edge": 0, "data.lowlight": "off"},
    )
    net = Recorder()
    run = train(cfg, model=net, train_dataset=_left_half_dataset(), val_dataset=None)
    seen = torch.cat(net.seen)
    assert len(seen) == 16  # 4 steps x batch 4
    left = seen[..., :8].mean(dim=(1, 2, 3))
    right = seen[..., 8:].mean(dim=(1, 2, 3))
    assert bool(((left == 1) & (right == 0) | (left == 0) & (right == 1)).all())  # whole samples mirrored
    n_flipped = int((right == 1).sum())
    if augment == "flip":
        assert 0 < n_flipped < 16
    else:
        assert n_flipped == 0
    rows = load_history(run)
    assert [r["train_mse"] for r in rows] == [0.0, 0.0]  # alpha was mirrored with its image, every time
    assert net.w.detach().item() == 1.0


def test_stage_p_lowlight_overrides_the_data_share(tmp_path):
    """A stage's p_lowlight replaces data.p_lowlight: 0 feeds only normal images, 1 only dark ones."""
    stages = [
        StageConfig(name="normal", steps=2, lr=1e-3, p_lowlight=0.0),
        StageConfig(name="dark", steps=2, lr=1e-3, p_lowlight=1.0),
    ]
    cfg = tiny_config(
        tmp_path, "p", stages, **{"data.lowlight": "device", "data.p_lowlight": 0.5, "data.augment": "none"}
    )
    net = Recorder()
    train(cfg, model=net, train_dataset=_left_half_dataset(), val_dataset=None)
    assert len(net.seen) == 4
    normal, dark = torch.cat(net.seen[:2]), torch.cat(net.seen[2:])
    assert bool((normal[..., :8] == 1).all() and (normal[..., 8:] == 0).all())
    assert bool((dark[..., :8].mean(dim=(1, 2, 3)) < 0.9).all())


# --------------------------------------------------------------------------------------- mixed precision
def _autocast_dtypes(model):
    """The dtypes of the first decoder convolution's output during training (filled as the run goes)."""
    seen = set()
    conv = next(m for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, o: seen.add(o.dtype) if m.training else None)
    return seen


@pytest.mark.parametrize("mode, dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_mixed_precision_on_cpu(tmp_path, mode, dtype):
    """fp16/bf16 autocast on CPU in that dtype; fp16 saves its GradScaler (scale 2^16); weights trained."""
    cfg = tiny_config(tmp_path, mode, **{"amp.mode": mode, "stages.0.steps": 3})
    model = _model(cfg)
    start = state_of(model)
    dtypes = _autocast_dtypes(model)
    run = train(cfg, model=model)
    assert dtypes == {dtype}
    ck = last(run)
    if mode == "fp16":
        assert ck["scaler"]["scale"] == 2.0**16 and ck["scaler"]["_growth_tracker"] == 3
    else:
        assert ck["scaler"] == {}
    assert all_finite(ck["model"]) and differing(start, ck["model"])
    assert ck["config"]["amp"]["mode"] == mode
    assert [r["bad_steps"] for r in load_history(run)] == [0, 0]


# ------------------------------------------------------------------------------------------------- LLIE
@pytest.mark.parametrize("freeze", [["all_but_llie"], []], ids=["all_but_llie", "nothing_frozen"])
def test_llie_objective_trains_only_the_llie(tmp_path, freeze):
    """An objective-llie stage changes the LLIE and leaves every other weight and buffer bit-identical."""
    stage = StageConfig(name="llie", objective="llie", steps=2, lr=1e-2, freeze=freeze, p_lowlight=1.0)
    cfg = tiny_config(tmp_path, "llie", [stage], base="fast_lowlight")
    model = _model(cfg)
    start = state_of(model)
    run = train(cfg, model=model)
    changed = differing(start, last(run)["model"])
    assert changed and all(k.startswith("llie.") for k in changed), [
        k for k in changed if not k.startswith("llie.")
    ]
    assert any(k.startswith("llie.e_conv7") for k in changed)
    row = load_history(run)[0]
    assert row["train_exposure"] > 0 and "train_mse" not in row  # trained on the Zero-DCE losses


def test_freeze_llie_after_freezes_from_the_pass_at_that_point(tmp_path):
    """freeze_llie_after=0.5 of 6 steps: LLIE trains in passes 1-2, frozen in pass 3; the rest trains."""
    stage = StageConfig(name="full", steps=6, lr=1e-2, freeze_llie_after=0.5)
    cfg = tiny_config(tmp_path, "late", [stage], base="fast_lowlight")
    model = _model(cfg)
    llie = [state_of(model.llie)]
    rest = [state_of(model.head)]

    def snap(row):
        llie.append(state_of(model.llie))
        rest.append(state_of(model.head))

    train(cfg, model=model, on_epoch_end=snap)
    assert len(llie) == 4  # the start and 3 passes
    assert differing(llie[0], llie[1]) and differing(llie[1], llie[2])
    assert not differing(llie[2], llie[3])
    assert differing(rest[2], rest[3])


def test_llie_frozen_at_closed_form():
    """The LLIE is frozen from the first pass starting at or after ceil(fraction x stage steps)."""
    half = StageConfig(freeze_llie_after=0.5)
    assert [llie_frozen_at(half, s, 6) for s in (0, 2, 3, 4)] == [False, False, True, True]
    assert [llie_frozen_at(half, s, 5) for s in (0, 2, 3)] == [False, False, True]  # ceil(2.5) = 3
    assert llie_frozen_at(StageConfig(freeze_llie_after=0.0), 0, 6)
    assert not llie_frozen_at(StageConfig(freeze_llie_after=1.0), 5, 6)
    assert not llie_frozen_at(StageConfig(), 100, 6)


# ---------------------------------------------------------------------------------------------- composition
def test_composition_term_changes_the_training(tmp_path):
    """loss.composition > 0 (fg/bg kept in memory) changes the trained weights and logs the term."""
    runs = {}
    for w in (0.0, 1.0):
        cfg = tiny_config(tmp_path, f"comp{int(w)}", **{"loss.composition": w, "stages.0.steps": 2})
        runs[w] = train(cfg, model=_model(cfg))
    assert differing(last(runs[0.0])["model"], last(runs[1.0])["model"])
    with_term, without = load_history(runs[1.0])[0], load_history(runs[0.0])[0]
    assert with_term["train_composition"] > 0 and "train_composition" not in without


def test_composition_without_fg_bg_is_a_clear_error(tmp_path):
    """A composition-only loss on data without fg/bg stops with a clear ValueError, saving nothing."""
    cfg = tiny_config(
        tmp_path, "nofg", **{"loss.mse": 0, "loss.ssim": 0, "loss.edge": 0, "loss.composition": 1.0}
    )
    with pytest.raises(ValueError, match="needs the foreground and background"):
        train(cfg, train_dataset=tensor_dataset(8, 32), val_dataset=None)
    assert not (tmp_path / "nofg" / "last.pt").exists()


# ---------------------------------------------------------------------------------------------- distillation
def _distill_ctx(teacher, weight=1.0):
    from lowlight_matting.losses import MattingLoss
    from lowlight_matting.train.loop import StepContext
    from lowlight_matting.train.optim import AmpSettings

    crit = MattingLoss(mse=1.0, ssim=0.5, edge=1.5, dynamic=False)
    return StepContext(
        optimizer=None,
        scheduler=None,
        scaler=None,
        criterion=crit,
        device=torch.device("cpu"),
        amp=AmpSettings(None, False),
        teacher=teacher,
        distill_weight=weight,
    )


@torch.no_grad()
def test_distill_term_targets_the_starting_model_on_normal_samples_only():
    """The term is the matting loss against the frozen copy's prediction on the samples not darkened: zero
    while the model is its starting copy, blind to the darkened samples, and off when all are darkened."""
    import copy

    from lowlight_matting.train.loop import _distill

    torch.manual_seed(0)
    model = BNNet().eval()
    ctx = _distill_ctx(copy.deepcopy(model))
    x = torch.rand(4, 3, 16, 16)
    dark = torch.tensor([True, False, True, False])
    assert float(_distill(ctx, model(x), x, {}, dark)) < 1e-6  # perfect prediction: zero loss
    with torch.no_grad():
        model.body[0].weight.add_(0.5)
    got = _distill(ctx, model(x), x, {}, dark)
    keep = ~dark
    want, _ = ctx.criterion(model(x[keep]), ctx.teacher(x[keep]), image=x[keep])
    assert float(got) > 1e-3 and float(got) == pytest.approx(float(want), rel=1e-6)
    x2 = x.clone()
    x2[dark] = torch.rand(2, 3, 16, 16)  # what the darkened samples hold does not matter
    assert float(_distill(ctx, model(x2), x2, {}, dark)) == pytest.approx(float(got), rel=1e-6)
    assert float(_distill(ctx, model(x), x, {}, torch.ones(4, dtype=torch.bool))) == 0.0  # all dark: no term
    assert _distill(_distill_ctx(None), model(x), x, {}, dark) is None  # off


def test_distill_keeps_the_starting_models_normal_light_predictions(tmp_path):
    """A fine-tune with loss.distill ends closer to the starting model's normal-light predictions than the
    same run without it, and logs the term."""
    data = tensor_dataset(8, 32, seed=1)
    x = torch.stack([data[i]["image"] for i in range(8)]).float()
    x = x / 255 if x.max() > 1 else x
    runs, start = {}, None
    for w in (0.0, 20.0):
        cfg = tiny_config(
            tmp_path,
            f"distill{int(w)}",
            [StageConfig(name="s", steps=8, lr=1e-2)],
            **{"loss.distill": w, "data.lowlight": "device", "data.p_lowlight": 0.5, "data.augment": "none"},
        )
        model = _model(cfg)
        if start is None:
            start = model.eval()(x).detach()
        runs[w] = train(cfg, model=model, train_dataset=data, val_dataset=None)
    drift = {}
    for w, run in runs.items():
        with torch.no_grad():
            drift[w] = float((model_from_checkpoint(last(run)).eval()(x) - start).abs().mean())
    assert drift[20.0] < 0.5 * drift[0.0]
    rows = load_history(runs[20.0])
    assert rows[0]["train_distill"] > 0 and "train_distill" not in load_history(runs[0.0])[0]


def test_distill_needs_a_starting_model_and_device_darkening(tmp_path):
    """loss.distill without a model to keep, or without knowing which samples were darkened: ConfigError."""
    from lowlight_matting.train import ConfigError

    with pytest.raises(ConfigError, match="loss.distill: needs data.lowlight=device"):
        tiny_config(tmp_path, "off", **{"loss.distill": 1.0, "data.lowlight": "off"})
    with pytest.raises(ConfigError, match="loss.distill: must be >= 0"):
        tiny_config(tmp_path, "neg", **{"loss.distill": -1.0})
    cfg = tiny_config(tmp_path, "scratch", **{"loss.distill": 1.0, "data.lowlight": "device"})
    with pytest.raises(ConfigError, match="loss.distill: needs model.init_checkpoint"):
        train(cfg, train_dataset=tensor_dataset(8, 32), val_dataset=None)
    assert not (tmp_path / "scratch" / "last.pt").exists()


# ---------------------------------------------------------------------------------------------- non-finite
class NaNAt:
    """Wrap a dataset; the items listed get a NaN alpha (a corrupt label)."""

    def __init__(self, dataset, bad):
        self.dataset, self.bad = dataset, set(bad)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        item = dict(self.dataset[i])
        if i in self.bad:
            item["alpha"] = np.full_like(item["alpha"], np.nan)
        return item


def test_nan_batch_is_skipped_and_counted(tmp_path):
    """A batch with a NaN label is skipped (no optimizer or scheduler step) and counted, once per pass."""
    ds = NaNAt(SyntheticMattingDataset(8, size=32, seed=1), bad={0})
    val = SyntheticMattingDataset(4, size=32, seed=2)
    cfg = tiny_config(tmp_path, "nan", [StageConfig(name="s", epochs=2, lr=1e-3)])
    run = train(cfg, train_dataset=ds, val_dataset=val)
    rows = load_history(run)
    assert [r["bad_steps"] for r in rows] == [1, 1]  # the batch holding item 0, once per pass
    assert all(math.isfinite(r["train_total"]) for r in rows)
    ck = last(run)
    assert all_finite(ck["model"]) and ck["bad_total"] == 2
    assert ck["step"] == 4 and ck["scheduler"]["last_epoch"] == 2  # 4 attempted, 2 taken
    assert int(ck["optimizer"]["state"][0]["step"]) == 2


def test_too_many_nan_steps_stop_the_run(tmp_path):
    """max_bad_steps non-finite steps in a row raise NonFiniteLossError (counted across passes)."""
    ds = NaNAt(SyntheticMattingDataset(8, size=32, seed=1), bad=range(8))
    cfg = tiny_config(
        tmp_path, "allnan", [StageConfig(name="s", epochs=2, lr=1e-3)], **{"optim.max_bad_steps": 3}
    )
    with pytest.raises(NonFiniteLossError, match="3 training steps in a row"):
        train(cfg, train_dataset=ds, val_dataset=None)
    assert (
        load_history(tmp_path / "allnan")[0]["bad_steps"] == 2
    )  # pass 1 ended with 2 in a row, pass 2 hit 3


def test_non_finite_weights_stop_the_run_and_are_never_saved(tmp_path):
    """Weights that become non-finite during a pass (here BatchNorm's running variance overflows after the
    first conv is blown up between passes) raise NonFiniteWeightsError; last.pt keeps the last finite pass."""
    stages = [StageConfig(name="ok", steps=2, lr=1e-3), StageConfig(name="boom", steps=2, lr=1e-3)]
    cfg = tiny_config(tmp_path, "boom", stages, **{"optim.grad_clip": 0})
    net = BNNet()
    saved = []

    def blow_up(row):
        saved.append(state_of(net))
        with torch.no_grad():
            net.body[0].weight.mul_(1e25)  # activations ~1e27: their square overflows float32 in BN

    with pytest.raises(NonFiniteWeightsError, match="after boom pass 1: the weights became non-finite"):
        train(cfg, model=net, train_dataset=tensor_dataset(8, 16), val_dataset=None, on_epoch_end=blow_up)
    assert not all_finite(state_of(net))  # the run really broke the weights ...
    ck = last(tmp_path / "boom")
    assert ck["epoch"] == 1 and all_finite(ck["model"])  # ... and they never reached last.pt
    assert not differing(ck["model"], saved[0])


def test_a_run_whose_predictions_overflow_does_not_end_normally(tmp_path):
    """lr=1e5 without clipping on the tiny ConvNeXt (no BatchNorm): finite weights, overflowing outputs; the
    run stops with a NonFiniteLossError naming the validation, not as a normal run."""
    cfg = tiny_config(tmp_path, "huge", **{"stages.0.lr": 1e5, "optim.grad_clip": 0})
    with pytest.raises(NonFiniteLossError, match="validation gave non-finite|every training step"):
        train(cfg)


def test_check_finite_weights_names_the_tensor():
    """check_finite_weights passes finite weights and names a NaN buffer."""
    net = BNNet()
    check_finite_weights(net, "here")
    net.body[1].running_var[0] = float("nan")
    with pytest.raises(NonFiniteWeightsError, match=r"after here: .*body\.1\.running_var"):
        check_finite_weights(net, "here")


# --------------------------------------------------------------------------------------------- run folder
def test_run_folder_contents_and_checkpoints(tmp_path):
    """A run writes config, metrics, curves, last/best.pt (best = min val MSE); reruns refused."""
    stages = [StageConfig(name="s", steps=2 * STEPS_PER_PASS, lr=1e-3)]
    cfg = tiny_config(
        tmp_path, "r", stages, base="fast_lowlight", **{"logging.plot": "true", "loss.distill": 0}
    )
    run = train(cfg)
    for f in ("config.yaml", "metrics.csv", "curves.png", "last.pt", "best.pt"):
        assert (run / f).is_file(), f
    env = json.loads((run / "environment.json").read_text())  # where it trained, for records made elsewhere
    assert env["device"].startswith("cpu (") and env["processes"] == 1 and env["torch"] == torch.__version__
    rows = load_history(run)
    assert [(r["epoch"], r["stage"], r["stage_name"]) for r in rows] == [(1, 1, "s"), (2, 1, "s")]
    for key in ("train_total", "train_mse", "train_edge", "val_mse", "val_normal_mse", "lr"):
        assert all(math.isfinite(r[key]) for r in rows), key
    assert all(r["val_mse"] != r["val_normal_mse"] for r in rows)  # validated on dark and on normal images
    assert rows[-1]["lr"] == pytest.approx(1e-3 * cfg.optim.min_lr_ratio)
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["metrics"]["val_mse"] == min(r["val_mse"] for r in rows)
    last_ck = torch.load(run / "last.pt", weights_only=True)
    assert {"optimizer", "scheduler", "scaler", "rng", "config", "model_config", "history"} <= set(last_ck)
    assert last_ck["config"] == cfg.to_dict() and len(last_ck["history"]) == 2
    model = model_from_checkpoint(run / "best.pt")
    assert model.config["encoder"] == "test_convnext" and model.config["llie"] == "zero_dce_pp"
    assert model(torch.rand(1, 3, 40, 36)).shape == (1, 1, 40, 36)
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg)
