"""``lowlight-matting train``: printing a config, training, usage errors in one line (exit 2), runs that fail
on non-finite numbers (exit 1), and --resume's checks."""

from pathlib import Path

import pytest
import yaml
from trainkit import TINY, all_finite, last

from lowlight_matting.cli import main
from lowlight_matting.train import load_history

REPO = Path(__file__).resolve().parents[2]


def _sets(*overrides):
    return [a for o in overrides for a in ("--set", o)]


def _tiny(tmp_path, name, *extra, preset="fast_base"):
    return ["train", "--preset", preset, "--out", str(tmp_path), "--name", name, *_sets(*TINY, *extra)]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_print_config(capsys):
    """--print-config prints the resolved config (preset + --set) as YAML and trains nothing."""
    assert (
        main(
            [
                "train",
                "--preset",
                "fast_base",
                "--set",
                "data.batch_size=2",
                "--amp",
                "bf16",
                "--print-config",
            ]
        )
        == 0
    )
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["data"]["batch_size"] == 2 and cfg["amp"]["mode"] == "bf16"
    assert cfg["model"]["encoder"] == "test_convnext" and cfg["name"] == "fast_base"


def test_config_file_and_set_compose(capsys):
    """--config reads a shipped YAML and --set/--name/--out land on top of it."""
    args = ["train", "--config", str(REPO / "configs" / "fast.yaml"), "--name", "n", "--out", "/o"]
    assert main([*args, "--set", "stages.1.steps=20", "--print-config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert (cfg["name"], cfg["out_dir"], cfg["stages"][1]["steps"]) == ("n", "/o", 20)


def test_cli_trains_a_tiny_run(tmp_path, capsys):
    """A tiny run from the command line exits 0, prints its folder and leaves the checkpoints there."""
    assert main(_tiny(tmp_path, "cli", "stages.0.steps=2")) == 0
    assert f"run folder: {tmp_path / 'cli'}" in capsys.readouterr().out
    assert (tmp_path / "cli" / "best.pt").is_file() and len(load_history(tmp_path / "cli")) == 1


def test_only_rank_0_prints_the_run_folder(tmp_path, capsys, monkeypatch):
    """Under torchrun every process runs the command; the run folder is printed once, by rank 0."""
    import lowlight_matting.train as T

    monkeypatch.setattr(T, "train", lambda cfg: tmp_path / cfg.name)
    for rank, printed in (("1", False), ("0", True)):
        monkeypatch.setenv("RANK", rank)
        assert main(_tiny(tmp_path, f"rank{rank}")) == 0
        assert ("run folder:" in capsys.readouterr().out) == printed, rank


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--data", "/nonexistent"], "--data /nonexistent: not a folder"),
        (["--set", "model.encoder=not_a_model"], "unknown timm model 'not_a_model'"),
        (["--device", "banana"], "device: "),
        (["--set", "stages.0.lr=inf"], "stages.0.lr: must be a finite number"),
        (["--set", "data.size=big"], "data.size"),
        (["--set", "data.sise=32"], "unknown key data.sise"),
        (["--set", "stages.0.freeze=[backbone]"], "stages.0.freeze"),
        (["--resume"], "nothing to resume"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path, capsys, args, needle):
    """Bad input exits 2 with one stderr line naming the problem, and writes no run."""
    assert main([*_tiny(tmp_path, "bad"), *args]) == 2
    line = _one_line_error(capsys)
    assert line.startswith("lowlight-matting train: error: ") and needle in line, line
    assert not (tmp_path / "bad").exists()


def test_unknown_preset_and_missing_config_exit_2(tmp_path, capsys):
    """An unknown preset lists the known ones; a missing config file is named; both exit 2 in one line."""
    assert main(["train", "--preset", "fast_basis"]) == 2
    line = _one_line_error(capsys)
    assert "unknown preset 'fast_basis'" in line and "fast_base" in line
    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: config file not found" in _one_line_error(capsys)


def test_a_second_run_into_the_same_folder_exits_2(tmp_path, capsys):
    """Training into a folder that already holds a run is refused (exit 2) and points to --resume."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "last.pt").write_bytes(b"not a checkpoint")
    assert main(_tiny(tmp_path, "r")) == 2
    assert "already holds a run" in _one_line_error(capsys)


def test_non_finite_weights_exit_1_in_one_line(tmp_path, capsys):
    """A model driven to non-finite numbers (MobileNetV2, lr 1e6, no clipping) exits 1 in one line and the
    pass that broke it is not saved."""
    args = _tiny(
        tmp_path, "boom", "model.encoder=mobilenetv2_100", "stages.0.steps=3", "stages.0.warmup_steps=0"
    )
    args += _sets("stages.0.lr=1e6", "optim.grad_clip=0")
    assert main(args) == 1
    line = _one_line_error(capsys)
    assert line.startswith("lowlight-matting train: error: after base pass") and "non-finite" in line, line
    last = tmp_path / "boom" / "last.pt"
    if last.exists():  # an earlier, still finite pass may have been saved; never the broken one
        import torch

        state = torch.load(last, weights_only=True)["model"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_overflowing_learning_rate_is_not_an_internal_error(tmp_path, capsys):
    """A finite but absurd lr (1e38, which overflows AdamW's float32 update) is refused by the config."""
    assert main(_tiny(tmp_path, "huge", "stages.0.lr=1e38", "stages.0.steps=1")) == 2
    assert "stages.0.lr: must be in (0, 1e6]" in _one_line_error(capsys)


def test_resume_from_the_command_line(tmp_path, capsys):
    """--resume with a changed seed exits 2 naming it; with only the logging changed it continues the run."""
    assert main(_tiny(tmp_path, "r", "stop_after_epochs=1")) == 0
    config = str(tmp_path / "r" / "config.yaml")
    capsys.readouterr()
    assert main(["train", "--config", config, "--resume", "--set", "seed=9"]) == 2
    line = _one_line_error(capsys)
    assert "differs from the run's in seed;" in line and "--allow-config-change" in line
    assert (
        main(
            [
                "train",
                "--config",
                config,
                "--resume",
                "--set",
                "stop_after_epochs=null",
                "--set",
                "logging.log_every=2",
            ]
        )
        == 0
    )
    ck = last(tmp_path / "r")
    assert ck["epoch"] == 2 and all_finite(ck["model"])
    assert main(["train", "--config", config, "--resume", "--allow-config-change", "--set", "seed=9"]) == 0
    assert (tmp_path / "r" / "config.resume-2.yaml").is_file()
