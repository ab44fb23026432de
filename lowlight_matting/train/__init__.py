"""Staged fine-tuning of CV-UNet for low light: one training loop, its configuration and named presets.

Modules, one job each: :mod:`.config` (the schema), :mod:`.config_io` (YAML and ``--set`` overrides),
:mod:`.presets` (the one registry of named configs, the article's recipe), :mod:`.freeze` (staged freezing),
:mod:`.optim` (AdamW, schedule, precision), :mod:`.data` (datasets and seeded loaders), :mod:`.loop` (the one
training loop and validation), :mod:`.llie` (pre-training an LLIE alone through that loop), :mod:`.start` (model and resume checks), :mod:`.runner` (:func:`train`: run
folder, stages, checkpoints, DDP), :mod:`.history` (``metrics.csv``, curves).

>>> from lowlight_matting.train import preset
>>> [s.name for s in preset("demo_quick").stages]
['llie', 'head', 'partial', 'full']

Command line: ``lowlight-matting train --config configs/cvunet_lowlight.yaml [--resume] [--set k=v]``;
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
)
from lowlight_matting.train.config_io import apply_overrides, save_config
from lowlight_matting.train.data import build_datasets, build_loader
from lowlight_matting.train.freeze import apply_freeze, parameter_counts, trainable_parameters
from lowlight_matting.train.history import load_history, plot_history
from lowlight_matting.train.llie import pretrain_llie
from lowlight_matting.train.loop import (
    NonFiniteLossError,
    NonFiniteWeightsError,
    darken_batch,
    train_one_epoch,
    validate,
)
from lowlight_matting.train.optim import build_criterion, build_optimizer, build_scheduler, resolve_amp
from lowlight_matting.train.presets import PRESETS, article_stages, load_config, lowlight_recipe, preset
from lowlight_matting.train.runner import train
from lowlight_matting.train.start import build_model_for, config_changes, load_init_checkpoint

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
    "NonFiniteWeightsError",
    "OptimConfig",
    "StageConfig",
    "TrainConfig",
    "apply_freeze",
    "apply_overrides",
    "article_stages",
    "build_criterion",
    "build_datasets",
    "build_loader",
    "build_model_for",
    "build_optimizer",
    "build_scheduler",
    "config_changes",
    "darken_batch",
    "load_config",
    "load_history",
    "load_init_checkpoint",
    "lowlight_recipe",
    "parameter_counts",
    "plot_history",
    "preset",
    "pretrain_llie",
    "resolve_amp",
    "save_config",
    "train",
    "train_one_epoch",
    "trainable_parameters",
    "validate",
]
