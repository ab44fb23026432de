"""The training engine on tiny CPU runs: exact resume, NaN steps skipped, run-folder outputs, safe checkpoints."""

import math
import os

import numpy as np
import pytest
import torch

from lowlight_matting.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from lowlight_matting.data import SyntheticMattingDataset
from lowlight_matting.train import (
    NonFiniteLossError,
    StageConfig,
    TrainConfig,
    apply_overrides,
    load_history,
    make_fast,
    preset,
    train,
)


def tiny_config(tmp_path, name="run", stages=None, **extra) -> TrainConfig:
    cfg = make_fast(preset("fast_finetune"))
    overrides = [
        f"out_dir={tmp_path}",
        f"name={name}",
        "data.size=32",
        "data.length=8",
        "data.val_length=4",
        "data.batch_size=4",
        "logging.plot=false",
        "seed=3",
    ] + [f"{k}={v}" for k, v in extra.items()]
    cfg = apply_overrides(cfg, overrides)
    if stages is not None:
        cfg.stages = stages
    return cfg.validate()


STAGES = [
    StageConfig(name="head", epochs=1, lr=1e-3, freeze=["encoder", "decoder"]),
    StageConfig(name="all", epochs=2, lr=5e-4, freeze=[], freeze_llie_after=0.5, warmup_epochs=0.5),
]


def _weights(run_dir):
    return load_checkpoint(run_dir / "last.pt")["model"]


@pytest.mark.slow  # three short training runs
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    full = train(tiny_config(tmp_path, "full", STAGES))
    cut = tiny_config(tmp_path, "cut", STAGES, stop_after_epochs=2)  # stops inside stage 2
    train(cut)
    ck = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert (ck["epoch"], ck["stage"], ck["stage_epoch"]) == (2, 1, 1)
    resumed = train(apply_overrides(cut, ["checkpoint.resume=true", "stop_after_epochs=null"]))
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, f"resumed run differs in {diff[:5]}"
    ha, hb = load_history(full), load_history(resumed)
    assert [r["train_total"] for r in ha] == [r["train_total"] for r in hb]
    assert [r["epoch"] for r in hb] == [1, 2, 3]
    # the LLIE was frozen from the second epoch of stage 2 on: its weights match the end of epoch 2
    llie_cut = {k: v for k, v in ck["model"].items() if k.startswith("llie.")}
    assert llie_cut and all(torch.equal(llie_cut[k], b[k]) for k in llie_cut)
    # and the same seed gives the same loss curve (determinism on CPU)
    assert ha[0]["train_total"] == load_history(tmp_path / "cut")[0]["train_total"]


def test_run_folder_contents_and_safe_checkpoints(tmp_path):
    run = train(
        tiny_config(tmp_path, "r", [StageConfig(name="s", epochs=2, lr=1e-3)], **{"logging.plot": "true"})
    )
    for f in ("config.yaml", "metrics.csv", "curves.png", "last.pt", "best.pt"):
        assert (run / f).is_file(), f
    rows = load_history(run)
    assert len(rows) == 2
    for key in ("train_total", "train_mse", "train_edge", "val_mse", "val_normal_mse", "img_per_s", "lr"):
        assert key in rows[0] and math.isfinite(rows[0][key]), key
    best = load_checkpoint(run / "best.pt")
    assert best["metrics"]["val_mse"] == min(r["val_mse"] for r in rows)
    last = load_checkpoint(run / "last.pt")
    assert {"optimizer", "scheduler", "scaler", "rng", "config", "model_config"} <= set(last)
    # plain containers only: torch.load with weights_only=True accepts it
    torch.load(run / "last.pt", weights_only=True)
    model = model_from_checkpoint(run / "best.pt")
    assert model.config["encoder"] == "test_convnext"
    y = model(torch.rand(1, 3, 40, 36))
    assert y.shape == (1, 1, 40, 36)
    # a second run into the same folder is refused instead of overwriting it
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config(tmp_path, "r", [StageConfig(name="s", epochs=1, lr=1e-3)]))


def test_checkpoint_with_pickled_callable_is_refused(tmp_path):
    evil = tmp_path / "evil" / "last.pt"
    evil.parent.mkdir()
    torch.save({"format": "lowlight-matting/1", "model": {}, "model_config": {}, "hook": os.system}, evil)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(evil)
    with pytest.raises(CheckpointError):
        train(tiny_config(tmp_path, "evil", **{"checkpoint.resume": "true"}))  # --resume on that file
    cfg = tiny_config(tmp_path, "init", **{"model.init_checkpoint": str(evil)})
    with pytest.raises(CheckpointError):
        train(cfg)


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
    ds = NaNAt(SyntheticMattingDataset(8, size=32, seed=1), bad={0})
    val = SyntheticMattingDataset(4, size=32, seed=2)
    cfg = tiny_config(tmp_path, "nan", [StageConfig(name="s", epochs=2, lr=1e-3)], **{"data.lowlight": "off"})
    run = train(cfg, train_dataset=ds, val_dataset=val)
    rows = load_history(run)
    assert [r["bad_steps"] for r in rows] == [1, 1]  # the batch holding item 0, once per epoch
    assert all(math.isfinite(r["train_total"]) for r in rows)
    w = _weights(run)
    assert all(torch.isfinite(v).all() for v in w.values() if v.is_floating_point())


def test_too_many_nan_steps_stop_the_run(tmp_path):
    ds = NaNAt(SyntheticMattingDataset(8, size=32, seed=1), bad=range(8))
    cfg = tiny_config(
        tmp_path, "allnan", [StageConfig(name="s", epochs=2, lr=1e-3)], **{"optim.max_bad_steps": 2}
    )
    with pytest.raises(NonFiniteLossError, match="2 training steps in a row"):
        train(cfg, train_dataset=ds, val_dataset=None)
