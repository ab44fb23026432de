"""Named training configurations: the article's recipe as data.

- ``baseline``: train the matting model under normal light (no darkening, no dynamic weight), from scratch or
  from a local pretrained encoder file (``model.pretrained``).
- ``lowlight_finetune``: start from a baseline checkpoint (``model.init_checkpoint``), add the LLIE
  (Zero-DCE++) in front, darken 70 % of each batch on the device, dynamic composite loss, and the article's
  three stages:

  =====  ====================================  ======  ======  =========================================
  stage  frozen                                lr      epochs  aim
  =====  ====================================  ======  ======  =========================================
  1      encoder + decoder (head and LLIE      1e-4    10      adapt the output to dark inputs
         train)
  2      first 3 encoder stages                5e-5    20      adapt mid-level features
  3      nothing; the LLIE is frozen after     1e-5    30      end-to-end refinement
         half of the stage
  =====  ====================================  ======  ======  =========================================

  The article's table says stage 1 freezes "everything but the head"; its LLIE is a new module, though,
  which would then never learn before stage 3 -- so here the LLIE trains from stage 1 and is frozen "late in
  training", as the article itself advises. ``stages.0.freeze=[all_but_head]`` gives the literal reading.
- ``fast_baseline`` / ``fast_finetune``: the same two recipes shrunk (tiny ``test_convnext`` encoder, 64 px,
  16 samples, one epoch per stage) for FAST mode, tests and a first run on a CPU.

Example:
    >>> cfg = preset("lowlight_finetune")
    >>> [(s.name, s.lr, s.epochs, s.freeze) for s in cfg.stages][1]
    ('partial', 5e-05, 20, ['encoder.stages[:3]'])
"""

from __future__ import annotations

from collections.abc import Callable

from lowlight_matting.train.config import (
    AmpConfig,
    DataConfig,
    LoggingConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    StageConfig,
    TrainConfig,
    apply_overrides,
)

__all__ = ["PRESETS", "article_stages", "make_fast", "preset"]


def article_stages(llie: bool = True) -> list[StageConfig]:
    """The article's three fine-tuning stages (see the module docstring)."""
    return [
        StageConfig(name="head", epochs=10, lr=1e-4, freeze=["encoder", "decoder"]),
        StageConfig(name="partial", epochs=20, lr=5e-5, freeze=["encoder.stages[:3]"]),
        StageConfig(name="full", epochs=30, lr=1e-5, freeze=[], freeze_llie_after=0.5 if llie else None),
    ]


def _baseline() -> TrainConfig:
    return TrainConfig(
        name="baseline",
        model=ModelConfig(encoder="mobilenetv2_100"),
        data=DataConfig(
            size=512,
            batch_size=16,
            num_workers=8,
            lowlight="off",
            p_lowlight=0.0,
            length=10000,
            val_length=200,
        ),
        loss=LossConfig(mse=1.0, ssim=0.5, edge=1.5, dynamic=False),
        stages=[StageConfig(name="baseline", epochs=60, lr=1e-3, warmup_epochs=1.0)],
        optim=OptimConfig(schedule="cosine", grad_clip=1.0),
        amp=AmpConfig(mode="auto"),
    ).validate()


def _lowlight_finetune() -> TrainConfig:
    return TrainConfig(
        name="lowlight_finetune",
        model=ModelConfig(
            encoder="mobilenetv2_100", llie="zero_dce_pp", init_checkpoint="runs/baseline/best.pt"
        ),
        data=DataConfig(
            size=512,
            batch_size=16,
            num_workers=8,
            lowlight="device",
            p_lowlight=0.7,
            length=10000,
            val_length=200,
        ),
        loss=LossConfig(mse=1.0, ssim=0.5, edge=1.5, dark_edge=3.0, threshold=0.3, dynamic=True),
        stages=article_stages(llie=True),
        optim=OptimConfig(schedule="cosine", grad_clip=1.0),
        amp=AmpConfig(mode="auto"),
    ).validate()


def make_fast(cfg: TrainConfig, epochs_per_stage: int = 1) -> TrainConfig:
    """Shrink a config for FAST mode: ``test_convnext`` encoder (no pretrained file), 64 px, 16 training and
    8 validation samples, batch 4, ``epochs_per_stage`` epochs per stage, no workers, no progress bars."""
    data = cfg.to_dict()
    data["model"].update(encoder="test_convnext", pretrained=None)
    data["data"].update(size=64, length=16, val_length=8, batch_size=4, num_workers=0, source="synthetic")
    for s in data["stages"]:
        s["epochs"] = min(s["epochs"], epochs_per_stage)
        s["warmup_epochs"] = 0.0
    data["logging"] = LoggingConfig(progress=False, tensorboard=False).__dict__
    return TrainConfig.from_dict(data)


def _fast_baseline() -> TrainConfig:
    cfg = make_fast(_baseline())
    cfg.name = "fast_baseline"
    cfg.stages[0].lr = 3e-3
    return cfg


def _fast_finetune() -> TrainConfig:
    cfg = make_fast(_lowlight_finetune())
    cfg.name = "fast_finetune"
    cfg.model.init_checkpoint = None  # point it at a fast_baseline run's best.pt to chain them
    return cfg


PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "baseline": _baseline,
    "lowlight_finetune": _lowlight_finetune,
    "fast_baseline": _fast_baseline,
    "fast_finetune": _fast_finetune,
}


def preset(name: str, overrides: list[str] | None = None) -> TrainConfig:
    """A fresh copy of a named configuration, with optional ``key=value`` overrides."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return apply_overrides(PRESETS[name](), overrides)
