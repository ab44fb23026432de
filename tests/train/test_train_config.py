"""Training configs: YAML round trip, overrides, validation messages, the shipped configs, the CLI."""

from pathlib import Path

import pytest

from lowlight_matting.cli import main
from lowlight_matting.train import (
    PRESETS,
    ConfigError,
    StageConfig,
    TrainConfig,
    apply_overrides,
    load_config,
    preset,
    save_config,
)

REPO = Path(__file__).resolve().parents[2]


def test_yaml_round_trip_and_partial_files(tmp_path):
    cfg = preset("lowlight_finetune")
    p = save_config(cfg, tmp_path / "c.yaml")
    assert load_config(p) == cfg
    partial = tmp_path / "p.yaml"
    partial.write_text(
        "name: mine\ndata:\n  batch_size: 3\n  lowlight: off\nstages:\n  - {epochs: 2, lr: 1e-3}\n"
    )
    c = load_config(partial)
    assert (c.name, c.data.batch_size, c.data.size, c.data.lowlight) == ("mine", 3, 256, "off")
    assert c.stages == [StageConfig(epochs=2, lr=1e-3)]


def test_overrides():
    cfg = apply_overrides(
        preset("lowlight_finetune"),
        [
            "data.batch_size=4",
            "stages.1.lr=2e-5",
            "stages.0.freeze=[all_but_head]",
            "model.init_checkpoint=null",
            "amp.mode=bf16",
            "data.simulator.preset=mild",
            "model.kwargs.refine_input=both",
        ],
    )
    assert cfg.data.batch_size == 4 and cfg.stages[1].lr == 2e-5
    assert cfg.stages[0].freeze == ["all_but_head"] and cfg.model.init_checkpoint is None
    assert cfg.amp.mode == "bf16" and cfg.data.simulator == {"preset": "mild"}
    assert cfg.model.kwargs == {"refine_input": "both"}


@pytest.mark.parametrize(
    "override, key",
    [
        ("data.batchsize=4", "data.batchsize"),
        ("data.batch_size=0", "data.batch_size"),
        ("data.batch_size=many", "data.batch_size"),
        ("stages.5.lr=1", "stages.5"),
        ("stages.0.lr=-1", "stages.0.lr"),
        ("stages.0.freeze=[backbone]", "stages.0.freeze"),
        ("stages.2.freeze_llie_after=1.5", "stages.2.freeze_llie_after"),
        ("amp.mode=fp8", "amp.mode"),
        ("optim.schedule=linear", "optim.schedule"),
        ("data.lowlight=gpu", "data.lowlight"),
        ("data.p_lowlight=2", "data.p_lowlight"),
        ("nokey", "key=value"),
    ],
)
def test_validation_names_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")):
        apply_overrides(preset("lowlight_finetune"), [override])


def test_folder_source_needs_root():
    with pytest.raises(ConfigError, match="data.root"):
        TrainConfig.from_dict({"data": {"source": "folder"}})


def test_shipped_configs_load_and_match_presets():
    assert load_config(REPO / "configs" / "baseline.yaml").to_dict() == preset("baseline").to_dict()
    assert (
        load_config(REPO / "configs" / "lowlight_finetune.yaml").to_dict()
        == preset("lowlight_finetune").to_dict()
    )
    fast = load_config(REPO / "configs" / "fast.yaml")
    assert fast.model.encoder == "test_convnext" and fast.data.size <= 64
    assert [s.lr for s in fast.stages] == [1e-4, 5e-5, 1e-5]
    for name in PRESETS:
        preset(name).validate()


def test_article_schedule():
    stages = preset("lowlight_finetune").stages
    assert [(s.lr, s.epochs) for s in stages] == [(1e-4, 10), (5e-5, 20), (1e-5, 30)]
    assert stages[1].freeze == ["encoder.stages[:3]"] and stages[2].freeze == []
    assert stages[2].freeze_llie_after == 0.5


def test_cli_print_config_and_errors(capsys, tmp_path):
    assert main(["train", "--preset", "fast_baseline", "--set", "data.batch_size=2", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "batch_size: 2" in out and "test_convnext" in out
    assert main(["train", "--config", str(REPO / "configs" / "fast.yaml"), "--set", "data.size=big"]) == 2
    assert "data.size" in capsys.readouterr().err
    assert main(["train", "--preset", "fast_baseline", "--out", str(tmp_path), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_cli_trains_a_tiny_run(tmp_path, capsys):
    args = ["train", "--preset", "fast_baseline", "--out", str(tmp_path), "--name", "cli"]
    args += [
        "--set",
        "data.size=32",
        "--set",
        "data.length=4",
        "--set",
        "data.val_length=2",
        "--set",
        "logging.plot=false",
    ]
    assert main(args) == 0
    assert (tmp_path / "cli" / "best.pt").is_file()
    assert "run folder" in capsys.readouterr().out
