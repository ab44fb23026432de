"""Staged fine-tuning of CV-UNet for low light: configuration, freezing, the training engine, presets.

>>> from lowlight_matting.train import preset
>>> [s.lr for s in preset("lowlight_finetune").stages]
[0.0001, 5e-05, 1e-05]

Command line: ``lowlight-matting train --config configs/lowlight_finetune.yaml [--resume] [--set k=v]``;
several GPUs: ``torchrun --nproc_per_node=4 -m lowlight_matting train --config ...``.
"""

from lowlight_matting.train.config import (
    AmpConfig,
    CheckpointConfig,
    ConfigError,
    DataConfig,
    LoggingConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    StageConfig,
    TrainConfig,
    apply_overrides,
    load_config,
    save_config,
)
from lowlight_matting.train.engine import (
    NonFiniteLossError,
    build_criterion,
    build_datasets,
    build_loader,
    build_optimizer,
    build_scheduler,
    evaluate,
    fit_stage,
    load_history,
    load_init_checkpoint,
    plot_history,
    resolve_amp,
    train,
    train_one_epoch,
)
from lowlight_matting.train.freeze import apply_freeze, parameter_counts, trainable_parameters
from lowlight_matting.train.presets import PRESETS, article_stages, make_fast, preset

__all__ = [
    "PRESETS",
    "AmpConfig",
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "LoggingConfig",
    "LossConfig",
    "ModelConfig",
    "NonFiniteLossError",
    "OptimConfig",
    "StageConfig",
    "TrainConfig",
    "apply_freeze",
    "apply_overrides",
    "article_stages",
    "build_criterion",
    "build_datasets",
    "build_loader",
    "build_optimizer",
    "build_scheduler",
    "evaluate",
    "fit_stage",
    "load_config",
    "load_history",
    "load_init_checkpoint",
    "make_fast",
    "parameter_counts",
    "plot_history",
    "preset",
    "resolve_amp",
    "save_config",
    "train",
    "train_one_epoch",
    "trainable_parameters",
]
