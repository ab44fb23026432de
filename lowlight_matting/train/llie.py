"""Pre-training a low-light enhancement (LLIE) front end on its own, through the one training loop.

Zero-DCE++ (Li, Guo, Loy, TPAMI 2021) trains without reference images: four non-reference losses
(:class:`~lowlight_matting.models.llie_losses.ZeroDCELoss`) judge the enhanced image by itself. In a training
run this is a stage with ``objective: llie`` (see :mod:`lowlight_matting.train.presets`); :func:`pretrain_llie`
runs the same loop (:func:`~lowlight_matting.train.loop.train_one_epoch`) on a bare module and a stack of
unlabelled images, one optimizer step per call, so chapter 04 can plot every step.

Example:
    >>> import torch
    >>> from lowlight_matting.models import ZeroDCEPP
    >>> net = ZeroDCEPP()
    >>> hist = pretrain_llie(net, torch.rand(8, 3, 32, 32) * 0.2, steps=2, batch_size=4, lr=1e-3)
    >>> len(hist), sorted(hist[0])[:3]
    (2, ['bad_steps', 'color', 'exposure'])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from lowlight_matting.models.llie_losses import ZeroDCELoss
from lowlight_matting.train.config import OptimConfig
from lowlight_matting.train.loop import StepContext, train_one_epoch
from lowlight_matting.train.optim import AmpSettings, build_optimizer, build_scheduler

__all__ = ["pretrain_llie"]


def _as_tensor(images: Any) -> torch.Tensor:
    """uint8/float tensor (N, 3, H, W) or a list of (H, W, 3) arrays of one size -> float (N, 3, H, W) in [0, 1]."""
    if isinstance(images, torch.Tensor):
        x = images if images.ndim == 4 else images.unsqueeze(0)
    else:
        arrs = [np.asarray(a) for a in images]
        if not arrs or any(a.ndim != 3 or a.shape[-1] != 3 for a in arrs):
            raise ValueError("images: expected a (N, 3, H, W) tensor or a list of (H, W, 3) arrays")
        if len({a.shape for a in arrs}) != 1:
            raise ValueError(
                f"images: one size is needed to batch them, got {sorted({a.shape for a in arrs})}"
            )
        x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"images: expected (N, 3, H, W), got {tuple(x.shape)}")
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def pretrain_llie(
    model: nn.Module,
    images: Any,
    steps: int = 200,
    lr: float = 1e-4,
    *,
    batch_size: int = 8,
    weight_decay: float = 1e-4,
    grad_clip: float = 0.1,
    loss: ZeroDCELoss | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Pre-train an LLIE module alone on unlabelled (dark) images with the non-reference losses.

    Args:
        model: a :class:`~lowlight_matting.models.ZeroDCEPP`, an
            :class:`~lowlight_matting.models.IlluminationEstimator`, or a ``CVUNet`` (its ``.llie`` is trained;
            nothing else changes).
        images: float (N, 3, H, W) in [0, 1] or uint8, or a list of (H, W, 3) arrays of one size; shuffled
            into batches of ``batch_size`` from ``seed``, reshuffled after every pass.
        steps, lr, weight_decay, grad_clip: AdamW steps (no decay on biases), constant learning rate,
            gradient-norm clip (the Zero-DCE++ release clips at 0.1 and uses lr 1e-4).
        loss: a :class:`ZeroDCELoss` (default: the released weights).
        device: where to train (default: the module's device).
        callback: called as ``callback(step, record)`` after each step.

    Returns:
        One record per step: the unweighted loss terms and ``total`` (non-finite steps are skipped by the
        loop and recorded as such). The module is left in eval mode.
    """
    llie = getattr(model, "llie", model)
    if llie is None:
        raise ValueError("model has no LLIE module (built with llie=None)")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    x = _as_tensor(images)
    dev = torch.device(device) if device is not None else next(llie.parameters()).device
    llie.to(dev)
    optim = OptimConfig(weight_decay=weight_decay, schedule="constant", grad_clip=grad_clip)
    opt = build_optimizer(llie, lr, optim)
    ctx = StepContext(
        optimizer=opt,
        scheduler=build_scheduler(opt, optim, steps, 0, 1),
        scaler=torch.amp.GradScaler(dev.type, enabled=False),
        criterion=None,
        device=dev,
        amp=AmpSettings(None, False),
        grad_clip=grad_clip,
        lowlight="off",
        channels_last=False,
        objective="llie",
        llie_loss=loss or ZeroDCELoss(),
    )
    gen = torch.Generator().manual_seed(int(seed))
    history: list[dict[str, float]] = []
    order: list[int] = []
    for step in range(steps):
        if len(order) < batch_size:
            order += torch.randperm(len(x), generator=gen).tolist()
        idx, order = order[:batch_size], order[batch_size:]
        record = train_one_epoch(llie, llie, [{"image": x[idx]}], ctx)
        record = {
            k: v for k, v in record.items() if k not in ("images", "img_per_s", "data_wait_s", "time_s")
        }
        history.append(record)
        if callback is not None:
            callback(step, record)
    llie.eval()
    return history
