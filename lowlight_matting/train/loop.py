"""The one training loop: a pass over the data with darkening on the device, mixed precision, clipping and
non-finite steps skipped; validation on dark (and normal) images.

One training step::

    batch = random_hflip(batch)                         # data.augment = flip: image, alpha, fg, bg together
    x = where(u < p_lowlight, simulate_batch(x), x)     # darken a share of the batch on the device
    with autocast(bf16 | fp16 | off): pred = model(x)
    loss = MattingLoss(pred, alpha, image=x)           # per-sample edge weight from x's brightness
    loss += distill * MattingLoss(pred[~dark], f0(x[~dark]))  # loss.distill: keep the start's normal light
    scaler.scale(loss).backward(); unscale; clip to max-norm 1.0
    if loss and grad norm are finite: optimizer.step()  # else: skip, count, stop after too many in a row

A stage with ``objective: llie`` trains only the LLIE front end on dark images with the non-reference
Zero-DCE losses (:class:`~lowlight_matting.models.llie_losses.ZeroDCELoss`): the pre-training the article
advises before joint fine-tuning, run by the same loop.

What the article's loop got wrong, and what happens here instead:

- ``torch.cuda.amp.GradScaler`` / ``autocast`` are deprecated; ``torch.amp`` is used, with bf16 (no scaler
  needed) on GPUs that have it and fp16 + GradScaler only on older ones.
- clipping ``model.parameters()`` in a staged run includes frozen weights (harmless but wasteful); the
  optimizer and the clipping here see only the trainable ones.
- a NaN loss went straight into ``backward``/``step`` and destroyed the weights; here it is skipped, and
  weights that became non-finite anyway stop the run (:class:`NonFiniteWeightsError`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from lowlight_matting.data import random_hflip
from lowlight_matting.losses import MattingLoss
from lowlight_matting.simulate import simulate_batch
from lowlight_matting.train.config import StageConfig
from lowlight_matting.train.distributed import DistInfo
from lowlight_matting.train.optim import AmpSettings

__all__ = [
    "NonFiniteLossError",
    "NonFiniteWeightsError",
    "StepContext",
    "check_finite_weights",
    "darken_batch",
    "llie_frozen_at",
    "train_one_epoch",
    "validate",
]


class NonFiniteLossError(RuntimeError):
    """Too many training steps in a row had a NaN/inf loss or gradient."""


@dataclass
class StepContext:
    """Everything :func:`train_one_epoch` needs besides the model and the data."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    criterion: MattingLoss
    device: torch.device
    amp: AmpSettings
    grad_clip: float = 1.0
    lowlight: str = "device"
    p_lowlight: float = 0.7
    sim_ranges: dict[str, Any] = field(default_factory=dict)
    channels_last: bool = True
    max_bad_steps: int = 20
    info: DistInfo = field(default_factory=DistInfo)
    llie_loss: Any = None
    llie_weight: float = 0.0
    teacher: nn.Module | None = None  # frozen starting model for the distillation term (loss.distill)
    distill_weight: float = 0.0
    progress: bool = False
    log_every: int = 10
    desc: str = ""
    bad_run: int = 0  # consecutive non-finite steps, carried across epochs
    step: int = 0  # optimizer steps attempted so far (global)
    flip: bool = False  # random joint left-right flip of each batch (data.augment="flip")
    objective: str = "matting"  # or "llie": the LLIE alone on the Zero-DCE losses (net is the LLIE)


def _to_device(
    batch: dict[str, torch.Tensor], device: torch.device, channels_last: bool
) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=True)
            if channels_last and v.ndim == 4 and v.shape[1] == 3:
                v = v.contiguous(memory_format=torch.channels_last)
            out[k] = v
    return out


def darken_batch(
    images: torch.Tensor, generator: torch.Generator | None, p_lowlight: float, ranges: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Darken a random share ``p_lowlight`` of ``images`` with :func:`~lowlight_matting.simulate.simulate_batch`
    on their device; returns (images, boolean mask of the darkened samples). Pass a CPU ``generator``: the
    simulator's parameters are then drawn on the host and moved without waiting; the only host
    synchronisation is the simulator's JPEG step (one copy of the samples that drew it, ``p_jpeg``)."""
    b = images.shape[0]
    if p_lowlight <= 0:
        return images, torch.zeros(b, dtype=torch.bool, device=images.device)
    dark = simulate_batch(images, generator=generator, **ranges)
    if p_lowlight >= 1:
        return dark, torch.ones(b, dtype=torch.bool, device=images.device)
    gdev = generator.device if generator is not None else images.device
    mask = (torch.rand(b, generator=generator, device=gdev) < p_lowlight).to(images.device, non_blocking=True)
    out = torch.where(mask.view(b, 1, 1, 1), dark, images)
    if images.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    return out, mask


def _distill(
    ctx: StepContext, pred: torch.Tensor, x: torch.Tensor, batch, dark: torch.Tensor
) -> torch.Tensor | None:
    """The matting loss of ``pred`` against the frozen starting model's prediction, on the samples that
    were not darkened (``loss.distill``; Li & Hoiem 2016's learning without forgetting); None when off, 0
    when every sample was darkened (so every step and every DDP rank logs the same terms)."""
    if ctx.teacher is None or ctx.distill_weight <= 0:
        return None
    keep = ~dark
    if not bool(keep.any()):  # a host read; the loop reads the loss back every step anyway
        return pred.new_zeros(())
    xk = x[keep]
    with (
        torch.no_grad(),
        torch.autocast(ctx.device.type, dtype=ctx.amp.dtype or torch.float32, enabled=ctx.amp.enabled),
    ):
        target = ctx.teacher(xk)
    fg, bg = (batch[k][keep] if batch.get(k) is not None else None for k in ("fg", "bg"))
    loss, _ = ctx.criterion(pred[keep], target.float(), image=xk, fg=fg, bg=bg)
    return loss


def _forward_loss(net, model, ctx: StepContext, x, batch, dark=None):
    if ctx.objective == "llie":  # net is the (wrapped) LLIE: (enhanced, curve) = net(x)
        with torch.autocast(ctx.device.type, dtype=ctx.amp.dtype or torch.float32, enabled=ctx.amp.enabled):
            enhanced, curve = net(x)
        return ctx.llie_loss(x.float(), enhanced.float(), curve.float())
    aux = ctx.llie_weight > 0 and getattr(model, "llie", None) is not None
    with torch.autocast(ctx.device.type, dtype=ctx.amp.dtype or torch.float32, enabled=ctx.amp.enabled):
        out = net(x, return_aux=True) if aux else net(x)
    pred = out["alpha"] if aux else out
    total, terms = ctx.criterion(
        pred.float(), batch["alpha"], image=x, fg=batch.get("fg"), bg=batch.get("bg")
    )
    if aux:
        l_llie, _ = ctx.llie_loss(x.float(), out["enhanced"].float(), out["curve"].float())
        total = total + ctx.llie_weight * l_llie
        terms = {**terms, "llie": l_llie.detach(), "total": total.detach()}
    l_distill = _distill(ctx, pred.float(), x, batch, dark) if dark is not None else None
    if l_distill is not None:
        total = total + ctx.distill_weight * l_distill
        terms = {**terms, "distill": l_distill.detach(), "total": total.detach()}
    return total, terms


def train_one_epoch(
    net: nn.Module,
    model: nn.Module,
    loader: Iterable,
    ctx: StepContext,
    generator: torch.Generator | None = None,
    max_steps: int | None = None,
    flip_generator: torch.Generator | None = None,
) -> dict[str, float]:
    """One pass over ``loader`` (or its first ``max_steps`` batches); returns the means of the loss terms plus
    ``bad_steps``, ``images``, ``img_per_s``, ``data_wait_s`` and ``time_s``.

    ``generator`` drives the on-device darkening, ``flip_generator`` the batch flips (``ctx.flip``).

    ``net`` is what runs forward (the model, or its DDP / compiled wrapper); ``model`` the bare module.
    A step with a non-finite loss (or, without a GradScaler, a non-finite gradient norm) is skipped: no
    optimizer or scheduler step; ``ctx.max_bad_steps`` of them in a row raise :class:`NonFiniteLossError`.
    The loop reads values back from the device once per step (the finite check) and once every
    ``ctx.log_every`` steps (the progress bar).
    """
    from tqdm.auto import tqdm

    net.train()
    params = [p for g in ctx.optimizer.param_groups for p in g["params"]]
    sums: dict[str, torch.Tensor] = {}
    n_steps = bad = images = 0
    wait = 0.0
    t_start = time.perf_counter()
    bar = tqdm(
        loader,
        desc=ctx.desc,
        leave=False,
        disable=not (ctx.progress and ctx.info.is_main),
        dynamic_ncols=True,
    )
    it = iter(bar)
    attempted = 0
    while max_steps is None or attempted < max_steps:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            break
        attempted += 1
        wait += time.perf_counter() - t0
        batch = _to_device(batch, ctx.device, ctx.channels_last)
        if ctx.flip:
            batch = random_hflip(batch, flip_generator)
        x = batch["image"]
        dark = None
        if ctx.lowlight == "device":
            x, dark = darken_batch(x, generator, ctx.p_lowlight, ctx.sim_ranges)
        ctx.optimizer.zero_grad(set_to_none=True)
        total, terms = _forward_loss(net, model, ctx, x, batch, dark)
        ctx.scaler.scale(total).backward()
        ctx.scaler.unscale_(ctx.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(
            [p for p in params if p.grad is not None], ctx.grad_clip if ctx.grad_clip > 0 else float("inf")
        )
        finite = torch.isfinite(total.detach())
        if not ctx.scaler.is_enabled():  # with a scaler, inf grads are its business (it skips and rescales)
            finite = finite & torch.isfinite(norm)
        if ctx.info.distributed:
            flag = finite.to(torch.float32).reshape(1)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            finite = flag[0] > 0
        ctx.step += 1
        if bool(finite):  # the one host synchronisation per step
            ctx.scaler.step(ctx.optimizer)
            ctx.scaler.update()
            ctx.scheduler.step()
            ctx.bad_run = 0
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v.float()
            n_steps += 1
        else:
            ctx.optimizer.zero_grad(set_to_none=True)
            ctx.scaler.update()
            bad += 1
            ctx.bad_run += 1
            if ctx.bad_run >= ctx.max_bad_steps:
                raise NonFiniteLossError(
                    f"{ctx.bad_run} training steps in a row had a NaN/inf loss or gradient (step {ctx.step}). "
                    "Check the data for NaN/inf values, lower the learning rate, or try amp.mode=off."
                )
        images += x.shape[0] * ctx.info.world_size
        if ctx.progress and ctx.info.is_main and n_steps and n_steps % ctx.log_every == 0:
            dt = time.perf_counter() - t_start
            bar.set_postfix(
                loss=f"{float(sums['total']) / n_steps:.4f}",
                img_s=f"{images / max(dt, 1e-9):.1f}",
                refresh=False,
            )
    bar.close()
    elapsed = time.perf_counter() - t_start
    if ctx.info.distributed:  # means over every rank's steps
        keys = sorted(sums)
        vec = torch.stack([sums[k] for k in keys] + [torch.tensor(float(n_steps), device=ctx.device)])
        dist.all_reduce(vec)
        sums, n_steps = dict(zip(keys, vec[:-1], strict=True)), int(vec[-1].item())
    out = {k: float(v) / max(n_steps, 1) for k, v in sums.items()}
    out.update(
        bad_steps=bad, images=images, img_per_s=images / max(elapsed, 1e-9), data_wait_s=wait, time_s=elapsed
    )
    return out


@torch.no_grad()
def validate(
    model: nn.Module,
    loader: Iterable,
    criterion: MattingLoss,
    device: torch.device,
    amp: AmpSettings | None = None,
    *,
    lowlight: bool = True,
    sim_ranges: dict[str, Any] | None = None,
    seed: int = 0,
    channels_last: bool = True,
    info: DistInfo | None = None,
    prefix: str = "val_",
) -> dict[str, float]:
    """Validation: loss, alpha MSE and mean absolute error (per-pixel means over the set).

    With ``lowlight`` every image is darkened by the on-device simulator from a generator seeded with
    ``seed`` (the same dark images at every epoch). Under DDP each rank evaluates a shard (the loader
    should be built on ``shard_for_rank``) and the sums are all-reduced.
    """
    info = info or DistInfo()
    amp = amp or AmpSettings(None, False)
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(int(seed))  # on the host: see darken_batch
    acc = torch.zeros(4, dtype=torch.float64, device=device)  # loss*B, sq err, abs err, pixels (+ B below)
    count = torch.zeros(1, dtype=torch.float64, device=device)
    for batch in loader:
        batch = _to_device(batch, device, channels_last)
        x = batch["image"]
        if lowlight:
            x, _ = darken_batch(x, gen, 1.0, sim_ranges or {})
        with torch.autocast(device.type, dtype=amp.dtype or torch.float32, enabled=amp.enabled):
            pred = model(x)
        pred = pred.float()
        gt = batch["alpha"]
        total, _ = criterion(pred, gt, image=x, fg=batch.get("fg"), bg=batch.get("bg"))
        b = pred.shape[0]
        err = pred - gt
        acc += torch.stack(
            [
                total.double() * b,
                (err**2).sum().double(),
                err.abs().sum().double(),
                torch.tensor(float(gt.numel()), device=device, dtype=torch.float64),
            ]
        )
        count += b
    if info.distributed:
        vec = torch.cat([acc, count])
        dist.all_reduce(vec)
        acc, count = vec[:4], vec[4:]
    model.train(was_training)
    n = max(float(count[0]), 1.0)
    pixels = max(float(acc[3]), 1.0)
    return {
        f"{prefix}loss": float(acc[0]) / n,
        f"{prefix}mse": float(acc[1]) / pixels,
        f"{prefix}mae": float(acc[2]) / pixels,
    }


def llie_frozen_at(stage: StageConfig, pass_start_step: int, stage_steps: int) -> bool:
    """Whether a pass starting at step ``pass_start_step`` of a ``stage_steps``-step stage runs with the LLIE
    frozen: from the first pass that starts at or after ``freeze_llie_after`` of the stage."""
    if stage.freeze_llie_after is None:
        return False
    return pass_start_step >= math.ceil(stage.freeze_llie_after * stage_steps - 1e-9)


class NonFiniteWeightsError(NonFiniteLossError):
    """The model's weights hold NaN or infinite values: the run cannot continue."""


def check_finite_weights(model: nn.Module, where: str) -> None:
    """Raise :class:`NonFiniteWeightsError` when any parameter or buffer is NaN/inf (one host read)."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
        bad = [
            n
            for n, t in (*model.named_parameters(), *model.named_buffers())
            if t.is_floating_point() and not bool(torch.isfinite(t).all())
        ]
        raise NonFiniteWeightsError(
            f"after {where}: the weights became non-finite (NaN/inf in {', '.join(bad[:3])}"
            f"{' ...' if len(bad) > 3 else ''}); nothing was saved from this pass. Lower the learning rate "
            "or check the data"
        )
