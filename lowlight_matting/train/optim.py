"""Optimisation of one stage: AdamW over the trainable parameters, the per-step learning-rate schedule,
mixed-precision settings and the loss built from a config.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from lowlight_matting.losses import MattingLoss
from lowlight_matting.train.config import ConfigError, LossConfig, OptimConfig
from lowlight_matting.train.freeze import trainable_parameters

__all__ = ["AmpSettings", "build_criterion", "build_optimizer", "build_scheduler", "resolve_amp"]


@dataclass
class AmpSettings:
    """The autocast dtype (None: full precision) and whether a GradScaler is needed (fp16 only)."""

    dtype: torch.dtype | None
    scaler: bool

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @property
    def name(self) -> str:
        return {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def resolve_amp(mode: str, device: torch.device) -> AmpSettings:
    """``auto``: bf16 on a CUDA GPU that supports it, fp16 + GradScaler on one that does not, off on CPU.
    ``bf16``/``fp16`` force the dtype (bf16 on CPU uses CPU autocast); ``off`` disables autocast."""
    if mode == "off":
        return AmpSettings(None, False)
    if device.type == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if mode == "auto":
            return AmpSettings(torch.bfloat16, False) if bf16_ok else AmpSettings(torch.float16, True)
        if mode == "bf16" and not bf16_ok:
            warnings.warn(
                "amp.mode=bf16 but this GPU has no bf16 support; using fp16 + GradScaler", stacklevel=2
            )
            return AmpSettings(torch.float16, True)
        return AmpSettings(torch.bfloat16, False) if mode == "bf16" else AmpSettings(torch.float16, True)
    if mode == "auto":
        return AmpSettings(None, False)
    return AmpSettings(torch.bfloat16, False) if mode == "bf16" else AmpSettings(torch.float16, True)


def build_criterion(loss: LossConfig) -> MattingLoss:
    """:class:`~lowlight_matting.losses.MattingLoss` from a :class:`LossConfig`."""
    kw = asdict(loss)
    for loop_term in ("llie", "distill"):  # weighted by the training loop, not terms of MattingLoss
        kw.pop(loop_term, None)
    return MattingLoss(**kw)


def build_optimizer(model: nn.Module, lr: float, optim: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters only; no weight decay on biases and normalisation weights (1-D)."""
    params = trainable_parameters(model)
    if not params:
        raise ConfigError("this stage freezes every parameter: nothing to train")
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    kw: dict[str, Any] = {}
    if any(p.is_cuda for p in params):
        kw["fused"] = True
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(optim.betas), **kw)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    optim: OptimConfig,
    total_steps: int,
    warmup_steps: int,
    steps_per_epoch: int,
) -> torch.optim.lr_scheduler.LambdaLR:
    r"""Per-step multiplier of the stage's lr: linear warm-up over ``warmup_steps``, then

    - cosine: :math:`m = r + (1 - r)\,\tfrac12(1 + \cos \pi t)`, :math:`t` the post-warm-up progress in
      [0, 1] and :math:`r` = ``min_lr_ratio``;
    - step: :math:`m = \gamma^{\lfloor \text{epoch} / \text{step\_epochs} \rfloor}`;
    - constant: 1.
    """
    # Our own LambdaLR rather than timm.scheduler: timm's schedulers are driven by step_update(num_updates) and
    # keep no state of their own, so exact resume would rest on re-deriving the update count; a LambdaLR's
    # state_dict is what last.pt stores, and the formula is the four lines below (tested in closed form).
    total = max(1, int(total_steps))
    warm = max(0, min(int(warmup_steps), total - 1))
    kind, r, gamma, step_epochs = optim.schedule, optim.min_lr_ratio, optim.gamma, optim.step_epochs
    spe = max(1, steps_per_epoch)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        if kind == "constant":
            return 1.0
        if kind == "step":
            return gamma ** ((step // spe) // step_epochs)
        t = min(1.0, (step - warm) / max(1, total - warm))
        return r + (1.0 - r) * 0.5 * (1.0 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
