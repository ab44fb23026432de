"""Stage lengths in steps, exact resume (epochs and steps), the safe-resume checks, unsafe checkpoints."""

import os
import shutil

import pytest
import torch
from trainkit import STAGES, STEPS_PER_PASS, differing, last, tiny_config

from lowlight_matting.checkpoint import CheckpointError, load_checkpoint
from lowlight_matting.train import (
    ConfigError,
    StageConfig,
    apply_overrides,
    config_changes,
    load_history,
    preset,
    train,
)
from lowlight_matting.train.start import RESUME_FREE_KEYS

# a stage of 5 steps then one of 3, over a loader of L = 2 batches: passes of 2, 2, 1 and 2, 1 steps
STEP_STAGES = [
    StageConfig(name="a", steps=5, lr=1e-3, warmup_steps=2),
    StageConfig(name="b", steps=3, lr=5e-4, freeze=["encoder"]),
]


def _resume(cfg, *extra):
    return apply_overrides(cfg, ["checkpoint.resume=true", "stop_after_epochs=null", *extra])


@pytest.fixture(scope="module")
def step_run(tmp_path_factory):
    """An uninterrupted step-based run (fast_base: in-memory data, joint flips) and its config."""
    out = tmp_path_factory.mktemp("steps")
    cfg = tiny_config(out, "full", STEP_STAGES)
    return cfg, train(cfg)


def test_steps_make_ceil_n_over_l_passes_and_exactly_n_optimizer_steps(step_run):
    """Stages of 5 and 3 steps over L=2 batches: 3 + 2 rows, 8 steps; the last stage took exactly 3 steps."""
    cfg, run = step_run
    rows = load_history(run)
    assert STEPS_PER_PASS == 2
    assert [(r["epoch"], r["stage"]) for r in rows] == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2)]
    ck = last(run)
    assert (ck["epoch"], ck["step"], ck["stage"], ck["stage_epoch"]) == (5, 8, 1, 2)
    assert ck["scheduler"]["last_epoch"] == 3
    assert {int(s["step"]) for s in ck["optimizer"]["state"].values()} == {3}
    r = cfg.optim.min_lr_ratio
    assert rows[2]["lr"] == pytest.approx(1e-3 * r) and rows[4]["lr"] == pytest.approx(5e-4 * r)
    assert rows[3]["lr"] > rows[4]["lr"]  # the second stage restarts its schedule


def test_resumed_step_based_run_equals_uninterrupted(step_run, tmp_path):
    """A step-based run stopped inside a stage and resumed ends bit-equal to the uninterrupted one."""
    full_cfg, full = step_run
    cut = apply_overrides(full_cfg, [f"out_dir={tmp_path}", "name=cut", "stop_after_epochs=2"])
    train(cut)
    ck = last(tmp_path / "cut")
    assert (ck["epoch"], ck["step"], ck["stage"], ck["stage_epoch"]) == (2, 4, 0, 2)
    resumed = train(_resume(cut))
    a, b = last(full), last(resumed)
    assert not differing(a["model"], b["model"])
    assert (b["epoch"], b["step"]) == (5, 8)
    assert [r["train_total"] for r in load_history(full)] == [r["train_total"] for r in load_history(resumed)]


def test_resumed_distilling_run_keeps_the_starting_model_as_its_target(step_run, tmp_path):
    """With loss.distill, a run stopped and resumed ends bit-equal to the uninterrupted one: the target model is
    the starting checkpoint's, not the weights the resume loads."""
    _, start = step_run
    extra = {
        "loss.distill": 4.0,
        "data.lowlight": "device",
        "data.p_lowlight": 0.5,
        "model.init_checkpoint": str(start / "last.pt"),
    }
    full = train(tiny_config(tmp_path, "full", STEP_STAGES, **extra))
    cut = tiny_config(tmp_path, "cut", STEP_STAGES, stop_after_epochs=2, **extra)
    train(cut)
    resumed = train(_resume(cut))
    assert not differing(last(full)["model"], last(resumed)["model"])
    rows = load_history(resumed)
    assert [r["train_distill"] for r in load_history(full)] == [r["train_distill"] for r in rows]
    assert all(r["train_distill"] >= 0 for r in rows) and any(r["train_distill"] > 0 for r in rows)


@pytest.mark.slow  # three short runs
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    """An epoch-based LLIE run cut in stage 2 and resumed is bit-equal to the full run; LLIE frozen late."""
    scratch = {"loss.distill": 0.0}  # from scratch: no starting model to distil from
    full = train(tiny_config(tmp_path, "full", STAGES, base="fast_lowlight", **scratch))
    cut = tiny_config(tmp_path, "cut", STAGES, base="fast_lowlight", stop_after_epochs=2, **scratch)
    train(cut)
    ck = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert (ck["epoch"], ck["stage"], ck["stage_epoch"]) == (2, 1, 1)
    resumed = train(_resume(cut))
    a, b = last(full)["model"], last(resumed)["model"]
    diff = differing(a, b)
    assert not diff, f"resumed run differs in {diff[:5]}"
    ha, hb = load_history(full), load_history(resumed)
    assert [r["train_total"] for r in ha] == [r["train_total"] for r in hb]
    assert [r["epoch"] for r in hb] == [1, 2, 3]
    # the LLIE was frozen from the second pass of stage 2 on: its weights match the end of pass 2
    llie_cut = {k: v for k, v in ck["model"].items() if k.startswith("llie.")}
    assert llie_cut and not differing(llie_cut, {k: b[k] for k in llie_cut})
    assert differing(
        {k: v for k, v in ck["model"].items() if k.startswith("head.")},
        {k: b[k] for k in b if k.startswith("head.")},
    )


# ------------------------------------------------------------------------------------------- safe resume
@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A fast_base run stopped after its first of two passes; tests resume copies of its folder."""
    out = tmp_path_factory.mktemp("stopped")
    cfg = tiny_config(out, "base", stop_after_epochs=1)
    return cfg, train(cfg)


def _copy(stopped, tmp_path, name="copy"):
    cfg, run = stopped
    shutil.copytree(run, tmp_path / name)
    return apply_overrides(cfg, [f"out_dir={tmp_path}", f"name={name}"]), tmp_path / name


def test_resume_refuses_a_changed_run(stopped, tmp_path):
    """--resume with another seed, lr or size is refused in one line naming them, before writing anything."""
    cfg, run = _copy(stopped, tmp_path)
    before = (run / "last.pt").read_bytes()
    with pytest.raises(ConfigError) as e:
        train(_resume(cfg, "seed=4", "stages.0.lr=2e-3", "data.size=48"))
    msg = str(e.value)
    assert "--resume with a config that differs from the run's in data.size, seed, stages" in msg
    assert "--allow-config-change" in msg and "\n" not in msg
    assert (run / "last.pt").read_bytes() == before


@pytest.mark.parametrize(
    "change, key",
    [
        ("stages.0.lr=2e-3", "stages.0.lr"),
        ("seed=4", "seed"),
        ("data.size=48", "data.size"),
        ("model.llie=zero_dce_pp", "model.llie"),
    ],
)
def test_each_run_changing_key_is_refused(stopped, tmp_path, change, key):
    """Each of seed, a stage's lr, data.size and the model alone is enough to refuse --resume."""
    cfg, _ = _copy(stopped, tmp_path)
    with pytest.raises(ConfigError, match=f"differs from the run's in {key.replace('.', '[.]')};"):
        train(_resume(cfg, change))


def test_changed_stage_key_is_named_exactly():
    """A changed stage learning rate is reported as stages.2.lr, not as the whole stages list."""
    old = preset("fast_lowlight").to_dict()
    new = apply_overrides(preset("fast_lowlight"), ["stages.2.lr=1"]).to_dict()
    assert config_changes(old, new) == ["stages.2.lr"]


def test_resume_accepts_a_checkpoint_missing_new_stage_fields():
    """A run saved before a stage field existed resumes when the new field has its default value."""
    new = preset("fast_lowlight").to_dict()
    old = {**new, "stages": [{k: v for k, v in s.items() if k != "warmup_steps"} for s in new["stages"]]}
    assert config_changes(old, new) == []


def test_resume_proceeds_with_changed_logging_and_workers(stopped, tmp_path):
    """Changing only logging or data.num_workers resumes the run (no resume config is written)."""
    cfg, run = _copy(stopped, tmp_path)
    original = (run / "config.yaml").read_bytes()
    train(_resume(cfg, "logging.log_every=3", "logging.plot=true", "data.num_workers=1"))
    assert [r["epoch"] for r in load_history(run)] == [1, 2]
    assert (run / "config.yaml").read_bytes() == original
    assert not list(run.glob("config.resume-*.yaml"))


def test_allow_config_change_proceeds_and_records_the_change(stopped, tmp_path):
    """allow_config_change resumes, writes config.resume-1.yaml and keeps config.yaml's original bytes."""
    cfg, run = _copy(stopped, tmp_path)
    original = (run / "config.yaml").read_bytes()
    train(_resume(cfg, "stages.0.lr=2e-3", "checkpoint.allow_config_change=true"))
    assert (run / "config.yaml").read_bytes() == original
    from lowlight_matting.train import load_config

    assert load_config(run / "config.resume-1.yaml").stages[0].lr == 2e-3
    assert load_config(run / "config.yaml").stages[0].lr == 3e-3
    assert last(run)["epoch"] == 2


def test_resume_without_a_checkpoint_is_refused(tmp_path):
    """--resume in a folder without last.pt raises CheckpointError saying there is nothing to resume."""
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(_resume(tiny_config(tmp_path, "empty")))


def test_config_changes_ignores_only_the_free_keys():
    """config_changes ignores the free keys, reports others, and takes a missing section as its default."""
    old = preset("fast_lowlight").to_dict()
    new = apply_overrides(
        preset("fast_lowlight"),
        [
            "name=x",
            "out_dir=/elsewhere",
            "device=cpu",
            "data.num_workers=3",
            "logging.verbose=false",
            "data.pin_memory=true",
        ],
    ).to_dict()
    assert config_changes(old, new) == []
    new = apply_overrides(
        preset("fast_lowlight"), ["loss.edge=2", "optim.grad_clip=0", "amp.mode=bf16"]
    ).to_dict()
    assert config_changes(old, new) == ["amp.mode", "loss.edge", "optim.grad_clip"]
    older = {k: v for k, v in old.items() if k != "amp"}  # a run from before amp existed ...
    assert config_changes(older, old) == []  # ... resumes with amp's default
    assert config_changes(older, new) == ["amp.mode", "loss.edge", "optim.grad_clip"]
    assert {"logging", "data.num_workers", "checkpoint.resume"} <= set(RESUME_FREE_KEYS)


# ----------------------------------------------------------------------------------------- unsafe files
def test_checkpoint_with_pickled_callable_is_refused(tmp_path):
    """A checkpoint holding a pickled callable is refused by load, by --resume and as init_checkpoint."""
    evil = tmp_path / "evil" / "last.pt"
    evil.parent.mkdir()
    torch.save({"format": "lowlight-matting/1", "model": {}, "model_config": {}, "hook": os.system}, evil)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(evil)
    with pytest.raises(CheckpointError):
        train(tiny_config(tmp_path, "evil", **{"checkpoint.resume": "true"}))
    with pytest.raises(CheckpointError):
        train(tiny_config(tmp_path, "init", **{"model.init_checkpoint": str(evil)}))
    assert not (tmp_path / "init" / "last.pt").exists()
