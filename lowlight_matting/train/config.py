"""The training configuration's schema: nested dataclasses, their validation, dict <-> dataclass.

A run is fully described by one :class:`TrainConfig`; it is saved next to the checkpoints (``config.yaml``)
and inside every checkpoint (as a plain dict), so a run can be resumed or reproduced from its folder alone.
Files and command-line overrides: :mod:`lowlight_matting.train.config_io`; named configs:
:mod:`lowlight_matting.train.presets`.

Example:
    >>> cfg = TrainConfig(stages=[StageConfig(name="all", epochs=2, lr=1e-3)])
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from lowlight_matting.color import DARK_THRESHOLD
from lowlight_matting.train.freeze import parse_spec

__all__ = [
    "AmpConfig",
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "LoggingConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "StageConfig",
    "TrainConfig",
]


class ConfigError(ValueError):
    """A training configuration is invalid; the message names the key."""


@dataclass
class ModelConfig:
    """What to build: keyword arguments of :func:`lowlight_matting.models.build_model`.

    ``init_checkpoint``: a checkpoint (``best.pt`` of a baseline run) whose weights start this run; its
    ``model_config`` must describe the same architecture, except that the LLIE may be added here (its
    weights then start fresh). ``pretrained``: a local timm weights file for the encoder (never fetched).
    """

    encoder: str = "mobilenetv2_100"
    llie: str | None = None
    pretrained: str | None = None
    init_checkpoint: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Where samples come from and how they are darkened.

    ``source``: ``"synthetic"`` (procedural composites, :class:`~lowlight_matting.data.SyntheticMattingDataset`)
    or ``"folder"`` (:class:`~lowlight_matting.data.FolderMattingDataset` at ``root``; ``val_root`` for
    validation, else ``val_fraction`` of ``root`` is held out).

    ``synthetic``: :class:`~lowlight_matting.data.SyntheticConfig` fields that differ from the course's one
    data definition (empty: the definition itself). ``seed``: the data seed (``null``: the run's ``seed``);
    training samples are drawn with it, validation samples with ``seed + 7919``.
    ``in_memory``: draw the synthetic training and validation samples once and keep them as uint8 tensors
    (:class:`~lowlight_matting.data.TensorMattingDataset`) instead of drawing every item at every epoch.

    ``augment``: ``"full"`` (the albumentations pipeline of :func:`lowlight_matting.augment.build_train_transform`,
    per sample: crops, flips, colour, blur, noise, cut-out; not with ``in_memory``), ``"flip"`` (a random
    left-right mirror of each sample -- image, alpha, fg and bg together -- on the device,
    :func:`~lowlight_matting.data.random_hflip`) or ``"none"``. ``true``/``false`` read as full/none.

    ``lowlight``: ``"device"`` (the batch is darkened by :func:`~lowlight_matting.simulate.simulate_batch`
    on the training device), ``"dataset"`` (CPU, per sample, :class:`~lowlight_matting.data.LowLightPairs`
    in the DataLoader workers) or ``"off"`` (normal light). ``p_lowlight``: the share of samples darkened;
    the rest stay normal so the model does not forget normal light. ``simulator``: ranges or
    ``{"preset": name}`` passed to the simulator.
    """

    source: str = "synthetic"
    root: str | None = None
    val_root: str | None = None
    layout: str = "auto"
    val_fraction: float = 0.1
    length: int = 256
    val_length: int = 32
    size: int = 256
    batch_size: int = 8
    num_workers: int = 0
    seed: int | None = None
    synthetic: dict[str, Any] = field(default_factory=dict)
    in_memory: bool = False
    augment: str = "full"
    lowlight: str = "device"
    p_lowlight: float = 0.7
    simulator: dict[str, Any] = field(default_factory=dict)
    pin_memory: bool = True


@dataclass
class LossConfig:
    """Weights of :class:`lowlight_matting.losses.MattingLoss` (0 switches a term off).

    ``threshold``: the mean linear luminance below which an input counts as dark for the dynamic edge weight
    (default: the package's one definition, :data:`lowlight_matting.color.DARK_THRESHOLD`).

    ``llie``: weight of the Zero-DCE non-reference loss (:class:`~lowlight_matting.models.llie_losses.ZeroDCELoss`)
    on the LLIE's enhanced image, when the model has an LLIE (0: the LLIE learns from the matting loss only).

    ``distill``: weight of a "learning without forgetting" term (Li & Hoiem, *Learning without Forgetting*,
    ECCV 2016): on the samples of each batch the loop did not darken, the same matting loss with the starting
    model's prediction as the target, ``distill * MattingLoss(f(x), f0(x))`` where ``f0`` is a frozen copy of
    the model at the start of the run (``model.init_checkpoint``). It keeps what the base model does in
    normal light while the darkened samples teach the new task. Needs ``model.init_checkpoint`` and
    ``data.lowlight: device`` (the loop must know which samples it darkened). 0: off (the article's recipe).
    """

    mse: float = 1.0
    l1: float = 0.0
    ssim: float = 0.5
    edge: float = 1.5
    composition: float = 0.0
    laplacian: float = 0.0
    dynamic: bool = True
    dark_edge: float = 3.0
    threshold: float = DARK_THRESHOLD
    smooth: bool = False
    llie: float = 0.0
    distill: float = 0.0


@dataclass
class StageConfig:
    """One stage of the schedule.

    ``freeze``: parts kept fixed (see :func:`lowlight_matting.train.freeze.apply_freeze`): ``"llie"``,
    ``"encoder"``, ``"encoder.stages[:3]"``, ``"decoder"``, ``"head"``, or ``"all_but_head"``.
    Length: ``epochs`` passes over the training data, or, when ``steps`` is set, exactly that many optimizer
    steps (cut into passes of the loader's length; the last one shorter). Validation, ``metrics.csv`` rows
    and checkpoints come at the end of every pass.
    ``freeze_llie_after``: fraction of this stage after which the LLIE is frozen too (the article's "freeze
    the enhancement module late in training"): from the first pass that starts at or after that point;
    None keeps it as ``freeze`` says.
    ``warmup_epochs`` / ``warmup_steps``: linear learning-rate warm-up at the start of the stage, in passes
    (fractions allowed) or in steps (give one of them).
    ``objective``: ``"matting"`` (the matting loss) or ``"llie"`` (only the LLIE trains, on the non-reference
    Zero-DCE losses of its enhanced image -- its pre-training; freeze ``all_but_llie``).
    ``p_lowlight``: the share of darkened samples in this stage (null: ``data.p_lowlight``); needs
    ``data.lowlight: device``.
    """

    name: str = "stage"
    epochs: int = 1
    steps: int | None = None
    lr: float = 1e-4
    freeze: list[str] = field(default_factory=list)
    freeze_llie_after: float | None = None
    warmup_epochs: float = 0.0
    warmup_steps: int = 0
    objective: str = "matting"
    p_lowlight: float | None = None


@dataclass
class OptimConfig:
    """AdamW and its learning-rate schedule (per step, restarted at each stage).

    ``schedule``: ``"cosine"`` (to ``min_lr_ratio`` x lr), ``"step"`` (x ``gamma`` every ``step_epochs``)
    or ``"constant"``. ``grad_clip``: max global L2 norm (0 = off). ``max_bad_steps``: this many
    non-finite steps in a row stop the run.
    """

    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: str = "cosine"
    min_lr_ratio: float = 0.01
    step_epochs: int = 10
    gamma: float = 0.1
    grad_clip: float = 1.0
    max_bad_steps: int = 20


@dataclass
class AmpConfig:
    """Mixed precision. ``mode``: ``"auto"`` (bf16 on a GPU that supports it, fp16 + GradScaler on older
    GPUs, off on CPU), ``"bf16"``, ``"fp16"`` or ``"off"``."""

    mode: str = "auto"


@dataclass
class CheckpointConfig:
    """``last.pt`` after every pass; ``best.pt`` when validation ``metric`` improves (``mode`` min/max).
    ``resume``: continue from ``last.pt`` in the run folder; the config must then match the one the run
    started with (see :data:`lowlight_matting.train.runner.RESUME_FREE_KEYS`) unless
    ``allow_config_change``."""

    metric: str = "val_mse"
    mode: str = "min"
    resume: bool = False
    allow_config_change: bool = False


@dataclass
class LoggingConfig:
    """``progress``: tqdm bars; ``verbose``: one printed line per pass (loss, validation MSE, speed) and per
    stage; ``log_every``: steps between progress-bar loss updates (each reads the loss back from the device); ``tensorboard``: write events when tensorboard is installed; ``plot``: redraw
    ``curves.png`` at the end of every stage (and of the run), or after every epoch with ``plot_every_epoch``
    (drawing costs a second or two)."""

    progress: bool = True
    verbose: bool = True
    log_every: int = 10
    tensorboard: bool = True
    plot: bool = True
    plot_every_epoch: bool = False


@dataclass
class TrainConfig:
    """A whole training run.

    ``out_dir``/``name``: the run folder is ``out_dir/name``. ``device``: ``"auto"`` (CUDA when available),
    ``"cpu"``, ``"cuda"``, ``"cuda:1"``. ``stop_after_epochs``: stop (as if interrupted) after this many
    epochs in total -- for tests and for splitting a long run into jobs; ``--resume`` continues it.
    ``deterministic``: deterministic algorithms (CPU runs are then bit-reproducible under ``seed``).
    """

    name: str = "run"
    out_dir: str = "runs"
    seed: int = 0
    device: str = "auto"
    channels_last: bool = True
    compile: bool = False
    deterministic: bool = False
    stop_after_epochs: int | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    stages: list[StageConfig] = field(default_factory=lambda: [StageConfig(name="all", epochs=10, lr=1e-3)])
    optim: OptimConfig = field(default_factory=OptimConfig)
    amp: AmpConfig = field(default_factory=AmpConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    # ------------------------------------------------------------------ conversions
    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON/YAML-able; also safe inside a ``weights_only`` checkpoint)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a (possibly partial) dict; unknown keys raise :class:`ConfigError` naming them."""
        cfg = _from_dict(cls, data or {}, "")
        cfg.validate()
        return cfg

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name

    def stage_passes(self, steps_per_pass: int) -> list[int]:
        """Passes over the training data of each stage, for a loader of ``steps_per_pass`` batches."""
        spe = max(1, int(steps_per_pass))
        return [s.epochs if s.steps is None else -(-s.steps // spe) for s in self.stages]

    # ------------------------------------------------------------------ validation
    def validate(self) -> TrainConfig:
        """Check every value; raise :class:`ConfigError` naming the first bad key. Returns self."""

        def need(ok: bool, key: str, msg: str) -> None:
            if not ok:
                raise ConfigError(f"{key}: {msg}")

        need(
            bool(re.fullmatch(r"[\w.\-]+", self.name or "")),
            "name",
            f"must be a plain folder name, got {self.name!r}",
        )
        bad = _non_finite(self.to_dict())
        need(bad is None, bad or "", "must be a finite number (not NaN or infinite)")
        need(isinstance(self.seed, int), "seed", f"must be an integer, got {self.seed!r}")
        need(
            bool(re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device)),
            "device",
            f"auto|cpu|cuda[:N], got {self.device!r}",
        )
        need(
            self.stop_after_epochs is None or self.stop_after_epochs >= 1,
            "stop_after_epochs",
            f"must be >= 1 or null, got {self.stop_after_epochs}",
        )
        d = self.data
        need(d.source in ("synthetic", "folder"), "data.source", f"synthetic|folder, got {d.source!r}")
        need(d.source != "folder" or bool(d.root), "data.root", "is required when data.source is 'folder'")
        need(d.size >= 16, "data.size", f"must be >= 16 pixels, got {d.size}")
        need(d.batch_size >= 1, "data.batch_size", f"must be >= 1, got {d.batch_size}")
        need(d.length >= 1, "data.length", f"must be >= 1, got {d.length}")
        need(d.val_length >= 0, "data.val_length", f"must be >= 0, got {d.val_length}")
        need(d.num_workers >= 0, "data.num_workers", f"must be >= 0, got {d.num_workers}")
        need(d.augment in ("full", "flip", "none"), "data.augment", f"full|flip|none, got {d.augment!r}")
        need(
            not (d.in_memory and d.augment == "full"),
            "data.augment",
            "full (per-sample albumentations) cannot run on in-memory tensors; use flip or none, "
            "or data.in_memory=false",
        )
        need(not d.in_memory or d.source == "synthetic", "data.in_memory", "is for synthetic data only")
        need(
            d.lowlight in ("device", "dataset", "off"),
            "data.lowlight",
            f"device|dataset|off, got {d.lowlight!r}",
        )
        need(0.0 <= d.p_lowlight <= 1.0, "data.p_lowlight", f"must be in [0, 1], got {d.p_lowlight}")
        need(0.0 <= d.val_fraction < 1.0, "data.val_fraction", f"must be in [0, 1), got {d.val_fraction}")
        lw = self.loss
        for k in ("mse", "l1", "ssim", "edge", "composition", "laplacian", "dark_edge", "llie", "distill"):
            need(getattr(lw, k) >= 0, f"loss.{k}", f"must be >= 0, got {getattr(lw, k)}")
        need(
            lw.distill == 0 or d.lowlight == "device",
            "loss.distill",
            f"needs data.lowlight=device (the loop must know which samples it darkened), got {d.lowlight!r}",
        )
        need(len(self.stages) >= 1, "stages", "needs at least one stage")
        for i, s in enumerate(self.stages):
            key = f"stages.{i}"
            need(s.epochs >= 1, f"{key}.epochs", f"must be >= 1, got {s.epochs}")
            need(s.steps is None or s.steps >= 1, f"{key}.steps", f"must be >= 1 or null, got {s.steps}")
            need(s.warmup_steps >= 0, f"{key}.warmup_steps", f"must be >= 0, got {s.warmup_steps}")
            need(
                not (s.warmup_steps and s.warmup_epochs),
                f"{key}.warmup_steps",
                "give warmup_steps or warmup_epochs, not both",
            )
            need(s.objective in ("matting", "llie"), f"{key}.objective", f"matting|llie, got {s.objective!r}")
            need(
                s.objective != "llie" or bool(self.model.llie),
                f"{key}.objective",
                "llie needs a model with an LLIE (model.llie)",
            )
            need(
                s.p_lowlight is None or (0.0 <= s.p_lowlight <= 1.0 and d.lowlight == "device"),
                f"{key}.p_lowlight",
                f"must be in [0, 1] and needs data.lowlight=device, got {s.p_lowlight}",
            )
            # a larger lr overflows float32 in AdamW's update (1e38 did): refuse it rather than crash mid-run
            need(0 < s.lr <= 1e6, f"{key}.lr", f"must be in (0, 1e6], got {s.lr}")
            need(s.warmup_epochs >= 0, f"{key}.warmup_epochs", f"must be >= 0, got {s.warmup_epochs}")
            need(
                s.freeze_llie_after is None or 0.0 <= s.freeze_llie_after <= 1.0,
                f"{key}.freeze_llie_after",
                f"must be a fraction in [0, 1] or null, got {s.freeze_llie_after}",
            )
            need(
                isinstance(s.freeze, list), f"{key}.freeze", f"must be a list of part names, got {s.freeze!r}"
            )
            for spec in s.freeze:
                try:
                    parse_spec(spec)
                except ValueError as e:
                    raise ConfigError(f"{key}.freeze: {e}") from None
        o = self.optim
        need(
            o.schedule in ("cosine", "step", "constant"),
            "optim.schedule",
            f"cosine|step|constant, got {o.schedule!r}",
        )
        need(o.weight_decay >= 0, "optim.weight_decay", f"must be >= 0, got {o.weight_decay}")
        need(
            len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
            "optim.betas",
            f"two numbers in [0, 1), got {o.betas}",
        )
        need(0 <= o.min_lr_ratio <= 1, "optim.min_lr_ratio", f"must be in [0, 1], got {o.min_lr_ratio}")
        need(o.step_epochs >= 1, "optim.step_epochs", f"must be >= 1, got {o.step_epochs}")
        need(o.grad_clip >= 0, "optim.grad_clip", f"must be >= 0 (0 = off), got {o.grad_clip}")
        need(o.max_bad_steps >= 1, "optim.max_bad_steps", f"must be >= 1, got {o.max_bad_steps}")
        need(
            self.amp.mode in ("auto", "bf16", "fp16", "off"),
            "amp.mode",
            f"auto|bf16|fp16|off, got {self.amp.mode!r}",
        )
        need(
            self.checkpoint.mode in ("min", "max"),
            "checkpoint.mode",
            f"min|max, got {self.checkpoint.mode!r}",
        )
        need(self.logging.log_every >= 1, "logging.log_every", f"must be >= 1, got {self.logging.log_every}")
        return self


def _non_finite(data: Any, prefix: str = "") -> str | None:
    """The dotted key of the first NaN/inf float in a nested dict/list, or None."""
    if isinstance(data, float) and not math.isfinite(data):
        return prefix or "value"
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, (list, tuple)):
        items = enumerate(data)
    else:
        return None
    for k, v in items:
        found = _non_finite(v, f"{prefix}.{k}" if prefix else str(k))
        if found:
            return found
    return None


# ---------------------------------------------------------------------------------------------- dict <-> dc
def _strip_optional(tp: Any) -> tuple[Any, bool]:
    args = get_args(tp)
    if get_origin(tp) in (Union, getattr(__import__("types"), "UnionType", Union)) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else Any), True
    return tp, False


def _coerce(tp: Any, value: Any, key: str) -> Any:
    base, optional = _strip_optional(tp)
    if value is None:
        if optional or base is Any:
            return None
        raise ConfigError(f"{key}: may not be null")
    if dataclasses.is_dataclass(base):
        if isinstance(value, base):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _from_dict(base, value, key + ".")
    origin = get_origin(base)
    if origin is list:
        (item_tp,) = get_args(base) or (Any,)
        if isinstance(value, str):  # "a,b" from the command line
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(item_tp, v, f"{key}.{i}") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if base is int:
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        ):
            try:
                return int(str(value))
            except ValueError:
                raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
        return int(value)
    if base is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if base is str:
        if isinstance(value, bool) and key.endswith("augment"):  # augment: true/false = full/none
            return "full" if value else "none"
        if isinstance(value, bool):  # YAML 1.1 reads a bare off/on/no/yes as a bool
            return "on" if value else "off"
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def _from_dict(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(prefix + u for u in unknown)} (known: {', '.join(sorted(names))})"
        )
    kwargs = {k: _coerce(hints[k], v, prefix + k) for k, v in data.items()}
    return cls(**kwargs)
