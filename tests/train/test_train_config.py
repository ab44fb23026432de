"""Training configs: YAML round trip, overrides, validation messages, presets, the shipped configs, and the
config <-> presets import cycle (gone)."""

import ast
from pathlib import Path

import pytest
import yaml

from lowlight_matting.train import (
    PRESETS,
    ConfigError,
    StageConfig,
    TrainConfig,
    apply_overrides,
    article_stages,
    load_config,
    preset,
    save_config,
)

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
TRAIN_PKG = REPO / "lowlight_matting" / "train"


# ------------------------------------------------------------------------------------------------ YAML
def test_yaml_round_trip_and_partial_files(tmp_path):
    """A saved config loads back equal; a partial file keeps the defaults of every key it does not name."""
    cfg = preset("fast_lowlight")
    p = save_config(cfg, tmp_path / "c.yaml")
    assert load_config(p) == cfg
    partial = tmp_path / "p.yaml"
    partial.write_text(
        "name: mine\ndata:\n  batch_size: 3\n  lowlight: off\nstages:\n  - {steps: 7, lr: 1e-3}\n"
    )
    c = load_config(partial)
    assert (c.name, c.data.batch_size, c.data.size, c.data.lowlight) == ("mine", 3, 256, "off")
    assert c.stages == [StageConfig(steps=7, lr=1e-3)]


def test_preset_key_in_a_file_starts_from_that_preset(tmp_path):
    """``preset: NAME`` in a YAML file lays the file's keys on that preset; an unknown name is refused."""
    p = tmp_path / "p.yaml"
    p.write_text("preset: fast_base\nname: mine\ndata:\n  size: 40\n")
    assert load_config(p) == preset("fast_base", ["name=mine", "data.size=40"])
    p.write_text("preset: no_such_preset\n")
    with pytest.raises(ConfigError, match="unknown preset 'no_such_preset'"):
        load_config(p)


def test_config_file_errors_name_the_file(tmp_path):
    """A missing file, bad YAML, a non-mapping and an unknown key each raise a ConfigError naming the file."""
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        load_config(bad)
    bad.write_text("data:\n  sise: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key\(s\) data\.sise"):
        load_config(bad)


# -------------------------------------------------------------------------------------------- overrides
def test_overrides():
    """``key.sub=value`` overrides reach nested sections, list items and free mappings, with YAML values."""
    cfg = apply_overrides(
        preset("fast_lowlight"),
        [
            "data.batch_size=2",
            "stages.1.lr=2e-5",
            "stages.0.freeze=[all_but_head]",
            "stages.2.steps=9",
            "model.init_checkpoint=null",
            "amp.mode=bf16",
            "data.simulator.preset=mild",
            "model.kwargs.refine_input=both",
        ],
    )
    assert cfg.data.batch_size == 2 and cfg.stages[1].lr == 2e-5 and cfg.stages[2].steps == 9
    assert cfg.stages[0].freeze == ["all_but_head"] and cfg.model.init_checkpoint is None
    assert cfg.amp.mode == "bf16" and cfg.data.simulator == {"preset": "mild"}
    assert cfg.model.kwargs["refine_input"] == "both" and cfg.model.kwargs["refine_channels"] == 8


def test_preset_returns_a_fresh_copy():
    """Changing a preset's config does not change what the next call returns."""
    a = preset("fast_base")
    a.stages[0].lr = 123.0
    a.model.kwargs["refine_channels"] = 99
    b = preset("fast_base")
    assert b.stages[0].lr == 3e-3 and b.model.kwargs["refine_channels"] == 8


@pytest.mark.parametrize(
    "override, key",
    [
        ("data.batchsize=4", "data.batchsize"),
        ("data.batch_size=0", "data.batch_size"),
        ("data.batch_size=many", "data.batch_size"),
        ("stages.5.lr=1", "stages.5"),
        ("stages.0.lr=-1", "stages.0.lr"),
        ("stages.0.lr=inf", "stages.0.lr"),
        ("stages.0.lr=.inf", "stages.0.lr"),
        ("stages.1.lr=nan", "stages.1.lr"),
        ("loss.edge=-inf", "loss.edge"),
        ("stages.0.steps=0", "stages.0.steps"),
        ("stages.0.warmup_epochs=1", "stages.0.warmup_steps"),  # both warm-ups given
        ("stages.1.objective=denoise", "stages.1.objective"),
        ("stages.0.freeze=[backbone]", "stages.0.freeze"),
        ("stages.3.freeze_llie_after=1.5", "stages.3.freeze_llie_after"),
        ("stages.1.p_lowlight=1.5", "stages.1.p_lowlight"),
        ("amp.mode=fp8", "amp.mode"),
        ("optim.schedule=linear", "optim.schedule"),
        ("data.lowlight=gpu", "data.lowlight"),
        ("data.p_lowlight=2", "data.p_lowlight"),
        ("data.augment=full", "data.augment"),  # per-sample albumentations on in-memory tensors
        ("device=banana", "device"),
        ("name=a/b", "name"),
        ("nokey", "key=value"),
    ],
)
def test_validation_names_the_key(override, key):
    """An invalid value is refused with a ConfigError whose message names the offending key."""
    cfg = preset("fast_lowlight", ["stages.0.warmup_steps=2"]) if "warmup" in override else None
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")):
        apply_overrides(cfg or preset("fast_lowlight"), [override])


def test_non_finite_message_is_one_line_naming_the_key():
    """``stages.0.lr=inf`` is refused by validation with one line naming ``stages.0.lr`` and saying why."""
    with pytest.raises(ConfigError) as e:
        apply_overrides(preset("fast_base"), ["stages.0.lr=inf"])
    assert str(e.value) == "stages.0.lr: must be a finite number (not NaN or infinite)"


def test_cross_field_rules():
    """LLIE objective needs an LLIE; stage p_lowlight needs device darkening; folders need a root."""
    with pytest.raises(ConfigError, match=r"stages\.0\.objective: llie needs a model with an LLIE"):
        preset("fast_base", ["stages.0.objective=llie"])
    with pytest.raises(ConfigError, match=r"stages\.0\.p_lowlight: .*needs data\.lowlight=device"):
        preset("fast_base", ["data.lowlight=off", "stages.0.p_lowlight=0.5"])
    with pytest.raises(ConfigError, match=r"data\.root"):
        TrainConfig.from_dict({"data": {"source": "folder"}})
    with pytest.raises(ConfigError, match=r"data\.in_memory: is for synthetic data only"):
        TrainConfig.from_dict(
            {"data": {"source": "folder", "root": "x", "in_memory": True, "augment": "flip"}}
        )


def test_stage_passes_in_steps_and_epochs():
    """A stage of N steps takes ceil(N / L) passes of an L-batch loader; one in epochs its epochs."""
    cfg = TrainConfig(
        stages=[StageConfig(steps=5), StageConfig(steps=4), StageConfig(epochs=3), StageConfig(steps=1)]
    )
    assert cfg.stage_passes(2) == [3, 2, 3, 1]
    assert cfg.stage_passes(10) == [1, 1, 3, 1]


# ----------------------------------------------------------------------------------------------- presets
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_validates_and_survives_a_dict_round_trip(name):
    """Each registered preset is a valid config that round-trips through a plain dict (as in checkpoints)."""
    cfg = preset(name)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.name == name


def test_article_stages_split_steps_10_20_30():
    """The three fine-tuning stages share a step budget 10 : 20 : 30, with the article's freezes and lrs."""
    stages = article_stages(600)
    assert [(s.name, s.steps, s.lr) for s in stages] == [
        ("head", 100, 1e-4),
        ("partial", 200, 5e-5),
        ("full", 300, 1e-5),
    ]
    held = ["norm_stats"]  # BatchNorm statistics stay the base's (our addition to the article's freezes)
    assert [s.freeze for s in stages] == [["all_but_head", *held], ["encoder.stages[:3]", *held], held]
    assert [s.freeze for s in article_stages(600, norm_stats=False)] == [
        ["all_but_head"],
        ["encoder.stages[:3]"],
        [],
    ]
    assert stages[2].freeze_llie_after is None  # no pre-trained LLIE: nothing to freeze late
    by_epochs = article_stages(None, llie_steps=50)
    assert [(s.name, s.objective, s.steps, s.epochs) for s in by_epochs] == [
        ("llie", "llie", 50, 1),
        ("head", "matting", None, 10),
        ("partial", "matting", None, 20),
        ("full", "matting", None, 30),
    ]
    assert by_epochs[0].freeze == ["all_but_llie"] and by_epochs[0].p_lowlight == 1.0
    assert by_epochs[3].freeze_llie_after == 0.5


@pytest.mark.parametrize("name, size", [("demo_gpu", 384), ("demo_full", 512)])
def test_gpu_presets_estimate_curves_at_their_own_size(name, size):
    """Resized presets keep Zero-DCE++'s curve estimation at about 64 px (384² -> 6, 512² -> 8), not the
    base's 128² factor of 2."""
    cfg = preset(name)
    assert cfg.data.size == size and cfg.model.kwargs["llie_scale_factor"] == size // 64
    if name == "demo_gpu":  # the model it builds (shipped base + front end) runs a 384² batch on a CPU
        import torch

        from lowlight_matting.train.start import build_model_for

        model = build_model_for(cfg).eval()
        assert size % model.stride == 0
        with torch.no_grad():
            assert model(torch.rand(1, 3, size, size)).shape == (1, 1, size, size)


@pytest.mark.parametrize(
    "name, base",
    [("cvunet_lowlight", "cvunet_base"), ("demo_quick", "cvunet_base"), ("fast_lowlight", "fast_base")],
)
def test_lowlight_presets_fine_tune_their_base(name, base):
    """A low-light preset is its base's architecture + Zero-DCE++, on dark data, in the article's stages."""
    cfg, b = preset(name), preset(base)
    assert (cfg.model.encoder, cfg.data.size) == (b.model.encoder, b.data.size)
    # the base's kwargs, plus the Zero-DCE++ downscale: curves estimated at about 64 px
    assert cfg.model.kwargs == {**b.model.kwargs, "llie_scale_factor": max(1, b.data.size // 64)}
    assert cfg.model.llie == "zero_dce_pp" and b.model.llie is None
    assert cfg.data.lowlight == "device" and 0 < cfg.data.p_lowlight < 1 and b.data.lowlight == "off"
    assert [s.name for s in cfg.stages] == ["llie", "head", "partial", "full"]
    assert cfg.loss.dynamic and not b.loss.dynamic
    n1, n2, n3 = (s.steps for s in cfg.stages[1:])
    assert abs(n2 - 2 * n1) <= 1 and abs(n3 - 3 * n1) <= 2  # the article's 10 : 20 : 30


# ------------------------------------------------------------------------------------------ shipped files
@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_validates(path):
    """Each YAML in configs/ loads and validates (what a file names is checked by the tests below)."""
    cfg = load_config(path)
    assert cfg.validate() is cfg
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_cvunet_base_yaml_is_the_preset():
    """configs/cvunet_base.yaml describes exactly preset("cvunet_base")."""
    assert load_config(CONFIGS / "cvunet_base.yaml").to_dict() == preset("cvunet_base").to_dict()


def test_cvunet_lowlight_yaml_is_the_preset():
    """configs/cvunet_lowlight.yaml (being written) describes exactly preset("cvunet_lowlight")."""
    path = CONFIGS / "cvunet_lowlight.yaml"
    if not path.exists():
        pytest.skip("configs/cvunet_lowlight.yaml does not exist yet")
    assert load_config(path).to_dict() == preset("cvunet_lowlight").to_dict()


def test_fast_yaml_loads():
    """configs/fast.yaml loads: test_convnext, at most 64 px, its preset's stages."""
    path = CONFIGS / "fast.yaml"
    cfg = load_config(path)
    assert cfg.model.encoder == "test_convnext" and cfg.data.size <= 64
    named = yaml.safe_load(path.read_text(encoding="utf-8")).get("preset")
    if named is not None:
        assert cfg.stages == preset(named).stages


def _imported_train_modules(path: Path) -> set[str]:
    """Modules of lowlight_matting.train that a source file imports at module level or in functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import presets / from .presets import x
                base = "lowlight_matting.train" + (f".{node.module}" if node.module else "")
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("lowlight_matting.train")}


def test_config_schema_does_not_import_presets():
    """Neither config.py nor config_io.py (nor any train module they import) imports presets: no cycle."""
    todo, seen = ["config", "config_io"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for mod in _imported_train_modules(TRAIN_PKG / f"{name}.py"):
            sub = mod.removeprefix("lowlight_matting.train").lstrip(".").split(".")[0]
            if sub and (TRAIN_PKG / f"{sub}.py").is_file():
                todo.append(sub)
    assert seen >= {"config", "config_io"}
    assert "presets" not in seen, f"the schema imports presets via {sorted(seen)}"
