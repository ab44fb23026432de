"""The training engine: staged fine-tuning with low-light simulation on the device, AMP, clipping, checkpoints,
resume and DistributedDataParallel.

One run = a :class:`~lowlight_matting.train.config.TrainConfig`. Its ``stages`` run in order; each stage
freezes the parts it names (:func:`~lowlight_matting.train.freeze.apply_freeze`), builds a fresh AdamW over
the *trainable* parameters only, with a per-step schedule (linear warm-up, then cosine / step / constant),
and trains for its epochs. After every epoch the model is validated on dark (and, when the run darkens
data, also normal-light) images, a row is added to ``metrics.csv``, ``curves.png`` is redrawn, ``last.pt``
is written and ``best.pt`` when the validation metric improved.

One training step::

    x, alpha = batch                                   # composites from the data module, on the device
    x = where(u < p_lowlight, simulate_batch(x), x)     # darken a share of the batch on the device
    with autocast(bf16 | fp16 | off): pred = model(x)
    loss = MattingLoss(pred, alpha, image=x)           # per-sample edge weight from x's brightness
    scaler.scale(loss).backward(); unscale; clip to max-norm 1.0
    if loss and grad norm are finite: optimizer.step()  # else: skip, count, stop after too many in a row

What the article's loop got wrong, and what happens here instead:

- ``torch.cuda.amp.GradScaler`` / ``autocast`` are deprecated; ``torch.amp`` is used, with bf16 (no scaler
  needed) on GPUs that have it and fp16 + GradScaler only on older ones.
- clipping ``model.parameters()`` in a staged run includes frozen weights (harmless but wasteful); the
  optimizer and the clipping here see only the trainable ones.
- a NaN loss went straight into ``backward``/``step`` and destroyed the weights; here it is skipped.
- a "frozen" encoder kept updating its BatchNorm statistics; :func:`apply_freeze` holds them.

Reproducibility: every epoch reseeds its own streams from ``(seed, epoch, rank)`` -- the sampler's shuffle,
the DataLoader worker seeds (each worker reseeds its dataset chain, see
:func:`lowlight_matting.seeding.worker_init_fn`), the on-device simulator -- and checkpoints hold the global
RNG states, so a run stopped after any epoch and resumed with ``--resume`` ends with the same weights as an
uninterrupted one (bit-exact on CPU).

Distributed: launched with ``torchrun --nproc_per_node=N`` the engine reads ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK``, initialises the process group (nccl on GPU, gloo on CPU), shards data with a
``DistributedSampler``, wraps the model in ``DistributedDataParallel`` (re-wrapped when a stage changes what
is trainable) and lets only rank 0 print, log and write checkpoints. ``data.batch_size`` is per process.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lowlight_matting.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lowlight_matting.losses import MattingLoss
from lowlight_matting.seeding import seed_everything, worker_init_fn
from lowlight_matting.train.config import (
    ConfigError,
    LossConfig,
    OptimConfig,
    StageConfig,
    TrainConfig,
    load_config,
    save_config,
)
from lowlight_matting.train.freeze import apply_freeze, trainable_parameters

__all__ = [
    "AmpSettings",
    "DistInfo",
    "NonFiniteLossError",
    "build_criterion",
    "build_datasets",
    "build_loader",
    "build_optimizer",
    "build_scheduler",
    "evaluate",
    "fit_stage",
    "load_history",
    "plot_history",
    "resolve_amp",
    "train",
    "train_one_epoch",
]


class NonFiniteLossError(RuntimeError):
    """Too many training steps in a row had a NaN/inf loss or gradient."""


# ---------------------------------------------------------------------------------------------- environment
@dataclass
class DistInfo:
    """Where this process stands in a (possibly) distributed run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_pref: str = "auto") -> DistInfo:
    """Initialise ``torch.distributed`` from torchrun's environment (``WORLD_SIZE`` > 1), else a single process.

    Backend: nccl when the run uses CUDA, gloo otherwise.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    created = False
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device_pref != "cpu"
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world)
        created = True
    return DistInfo(
        rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local, initialised_here=created
    )


def resolve_device(pref: str, info: DistInfo | None = None) -> torch.device:
    """``"auto"`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else CPU."""
    info = info or DistInfo()
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    if pref == "cuda":
        pref = f"cuda:{info.local_rank}"
    device = torch.device(pref)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {pref} requested but CUDA is not available")
    return device


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


def _epoch_seed(seed: int, epoch: int, rank: int = 0, salt: int = 0) -> int:
    return int(
        np.random.SeedSequence([int(seed) % 2**63, epoch, rank, salt]).generate_state(1, dtype=np.uint64)[0]
        >> 1
    )


def _reseed_chain(dataset: Any, seed: int) -> None:
    """Call ``reseed(seed)`` down the ``.dataset`` chain (what worker_init_fn does in a worker)."""
    seen: set[int] = set()
    ds = dataset
    while ds is not None and id(ds) not in seen:
        seen.add(id(ds))
        fn = getattr(ds, "reseed", None)
        if callable(fn):
            fn(seed)
        ds = getattr(ds, "dataset", None)


# ------------------------------------------------------------------------------------------------ RNG state
def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU, CUDA) RNG states as tensors and plain lists (``weights_only``-safe)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [int(version), [int(v) for v in internal], gauss],
        "numpy": [
            str(name),
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    if "numpy" in state:
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state(
            (
                name,
                np.asarray(keys, dtype=np.int64).astype(np.uint32),
                int(pos),
                int(has_gauss),
                float(cached),
            )
        )
    if "torch" in state:
        torch.set_rng_state(torch.as_tensor(state["torch"], dtype=torch.uint8).cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([torch.as_tensor(s, dtype=torch.uint8).cpu() for s in cuda])


# --------------------------------------------------------------------------------------------------- data
class _Resized(Dataset):
    """Resize ``image``/``alpha`` (and ``fg``/``bg``) of every item to ``size`` x ``size`` (no augmentation)."""

    def __init__(self, dataset: Any, size: int) -> None:
        self.dataset, self.size = dataset, int(size)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import cv2

        item = dict(self.dataset[i])
        s = self.size
        for k in ("image", "fg", "bg", "normal", "alpha"):
            v = item.get(k)
            if v is not None and v.shape[:2] != (s, s):
                item[k] = cv2.resize(
                    v, (s, s), interpolation=cv2.INTER_AREA if v.shape[0] > s else cv2.INTER_LINEAR
                )
        return item


def _simulator_ranges(sim_cfg: dict[str, Any]) -> dict[str, Any]:
    """``data.simulator`` -> keyword ranges for the simulators (``preset`` expanded, lists made tuples)."""
    from lowlight_matting.simulate import PRESETS

    cfg = dict(sim_cfg or {})
    name = cfg.pop("preset", None)
    if name is not None and name not in PRESETS:
        raise ConfigError(f"data.simulator.preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    ranges = {**(PRESETS[name] if name else {}), **cfg}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in ranges.items()}


def build_datasets(cfg: TrainConfig) -> tuple[Any, Any]:
    """The training and validation datasets a config describes (items as in :mod:`lowlight_matting.data`).

    Training: synthetic (drawn once into memory with ``data.in_memory``) or folder data; with
    ``data.augment="full"`` the augmentation of :func:`lowlight_matting.augment.build_train_transform`
    (photometric low-light part off: darkening is the simulator's job; ``"flip"`` is applied to whole
    batches by the training loop); with ``data.lowlight="dataset"`` wrapped in
    :class:`~lowlight_matting.data.LowLightPairs`. Validation: normal-light items at ``data.size`` (the
    engine darkens them deterministically).
    """
    d = cfg.data
    data_seed = cfg.seed if d.seed is None else d.seed
    if d.source == "synthetic":
        from lowlight_matting.data import SyntheticMattingDataset, TensorMattingDataset

        train_base = SyntheticMattingDataset(d.length, size=d.size, seed=data_seed, **d.synthetic)
        val = (
            SyntheticMattingDataset(d.val_length, size=d.size, seed=data_seed + 7919, **d.synthetic)
            if d.val_length
            else None
        )
        if d.in_memory:
            keys = ("image", "alpha", "fg", "bg") if cfg.loss.composition > 0 else ("image", "alpha")
            kw = {"workers": d.num_workers, "progress": cfg.logging.progress}
            train_base = TensorMattingDataset.from_dataset(train_base, keys, desc="training data", **kw)
            if val is not None:
                val = TensorMattingDataset.from_dataset(val, keys, desc="validation data", **kw)
    else:
        from lowlight_matting.data import FolderMattingDataset

        full = FolderMattingDataset(d.root, layout=d.layout)
        if d.val_root:
            train_base, val = full, FolderMattingDataset(d.val_root, layout=d.layout)
        else:
            n = len(full)
            n_val = min(max(1, round(n * d.val_fraction)), n - 1) if d.val_fraction > 0 and n > 1 else 0
            perm = np.random.default_rng(data_seed).permutation(n).tolist()
            train_base = torch.utils.data.Subset(full, perm[n_val:])
            val = torch.utils.data.Subset(full, perm[:n_val]) if n_val else None
        if d.val_length and val is not None and len(val) > d.val_length:
            val = torch.utils.data.Subset(val, list(range(d.val_length)))
        val = _Resized(val, d.size) if val is not None else None
    if d.augment == "full":
        from lowlight_matting.augment import AugmentedDataset, build_train_transform

        train = AugmentedDataset(
            train_base, build_train_transform(size=d.size, lowlight=False, seed=cfg.seed)
        )
    elif d.in_memory:
        train = train_base
    else:
        train = _Resized(train_base, d.size)
    if d.lowlight == "dataset":
        from lowlight_matting.data import LowLightPairs
        from lowlight_matting.simulate import LowLightSimulator

        sim = LowLightSimulator(seed=cfg.seed, **_simulator_ranges(d.simulator))
        train = LowLightPairs(train, simulator=sim, seed=cfg.seed, p_lowlight=d.p_lowlight)
    return train, val


def _collate():
    from lowlight_matting.data import collate_matting

    return collate_matting


def build_loader(
    dataset: Any,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    info: DistInfo | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
    drop_last: bool | None = None,
) -> DataLoader:
    """A seeded DataLoader: a ``DistributedSampler`` under DDP, else a ``RandomSampler`` on its own generator
    (reseed it per epoch with ``loader.generator.manual_seed``); workers reseeded by ``worker_init_fn``.

    Shuffled loaders drop the last incomplete batch (BatchNorm dislikes a batch of 1, and DDP ranks must
    take the same number of steps).
    """
    info = info or DistInfo()
    gen = torch.Generator().manual_seed(int(seed))
    drop_last = shuffle if drop_last is None else drop_last
    if info.distributed and shuffle:
        sampler = torch.utils.data.DistributedSampler(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed, drop_last=True
        )
    elif shuffle:
        sampler = torch.utils.data.RandomSampler(dataset, generator=gen)
    else:
        sampler = torch.utils.data.SequentialSampler(dataset)
    if shuffle and len(dataset) // (info.world_size if info.distributed else 1) < batch_size and drop_last:
        raise ConfigError(
            f"data: {len(dataset)} training samples give no full batch of {batch_size} per process; "
            "lower data.batch_size or add data"
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=_collate(),
        pin_memory=pin_memory,
        drop_last=drop_last,
        worker_init_fn=worker_init_fn,
        generator=gen,
        persistent_workers=False,
    )


# ----------------------------------------------------------------------------------------- optimisation
def build_criterion(loss: LossConfig) -> MattingLoss:
    """:class:`~lowlight_matting.losses.MattingLoss` from a :class:`LossConfig`."""
    kw = asdict(loss)
    kw.pop("llie", None)
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


# ------------------------------------------------------------------------------------------ epoch loops
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
    progress: bool = False
    log_every: int = 10
    desc: str = ""
    bad_run: int = 0  # consecutive non-finite steps, carried across epochs
    step: int = 0  # optimizer steps attempted so far (global)
    flip: bool = False  # random joint left-right flip of each batch (data.augment="flip")


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
    on their device; returns (images, boolean mask of the darkened samples). No host synchronisation."""
    from lowlight_matting.simulate import simulate_batch

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


def _forward_loss(net, model, ctx: StepContext, x, batch):
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
            from lowlight_matting.data.memory import random_hflip

            batch = random_hflip(batch, flip_generator)
        x = batch["image"]
        if ctx.lowlight == "device":
            x, _ = darken_batch(x, generator, ctx.p_lowlight, ctx.sim_ranges)
        ctx.optimizer.zero_grad(set_to_none=True)
        total, terms = _forward_loss(net, model, ctx, x, batch)
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
def evaluate(
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
    gen = torch.Generator(device=device).manual_seed(int(seed))
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


def shard_for_rank(dataset: Any, info: DistInfo) -> Any:
    """Every ``world_size``-th item starting at ``rank`` (no padding, unlike ``DistributedSampler``)."""
    if not info.distributed or dataset is None:
        return dataset
    return torch.utils.data.Subset(dataset, list(range(info.rank, len(dataset), info.world_size)))


# -------------------------------------------------------------------------------------------- logging
def write_history(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write the per-epoch rows as CSV (columns: the union of keys, in first-seen order)."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    p = Path(path)
    tmp = p.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow(r)
    os.replace(tmp, p)
    return p


def load_history(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of ``metrics.csv`` in a run folder (numbers parsed)."""
    rows = []
    with open(Path(run_dir) / "metrics.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            out: dict[str, Any] = {}
            for k, v in r.items():
                try:
                    out[k] = float(v) if v not in ("", None) else None
                except ValueError:
                    out[k] = v
            rows.append(out)
    return rows


def plot_history(rows: list[dict[str, Any]], path: str | os.PathLike | None = None, ax=None):
    """Loss curves (train/val) and validation MSE per epoch, stage boundaries dashed. Saves a PNG when
    ``path`` is given (without touching pyplot's global state); returns the figure."""
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(10, 3.5))
        axes = fig.subplots(1, 2)
    else:
        axes, fig = ax, ax[0].figure
    ep = [r["epoch"] for r in rows]

    def series(key):
        return [r.get(key) if r.get(key) not in ("", None) else float("nan") for r in rows]

    axes[0].plot(ep, series("train_total"), "o-", label="train loss")
    if any(r.get("val_loss") not in (None, "") for r in rows):
        axes[0].plot(ep, series("val_loss"), "s-", label="val loss (dark)")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    for key, label in (("val_mse", "val MSE (dark)"), ("val_normal_mse", "val MSE (normal)")):
        if any(r.get(key) not in (None, "") for r in rows):
            axes[1].plot(ep, series(key), "o-", label=label)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("alpha MSE")
    axes[1].set_yscale("log")
    if axes[1].lines:
        axes[1].legend()
    prev = None
    for r in rows:
        if prev is not None and r.get("stage") != prev:
            for a in axes:
                a.axvline(r["epoch"] - 0.5, color="grey", ls="--", lw=0.8)
        prev = r.get("stage")
    fig.tight_layout()
    if path is not None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
        fig.savefig(path, dpi=100)
    return fig


def _tensorboard(run_dir: Path, enabled: bool):
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed
        return None
    return SummaryWriter(log_dir=str(run_dir / "tb"))


# --------------------------------------------------------------------------------------------- building
def _build_model(cfg: TrainConfig) -> nn.Module:
    from lowlight_matting.models import build_model

    m = cfg.model
    model = build_model(encoder=m.encoder, llie=m.llie, pretrained=m.pretrained, **m.kwargs)
    if m.init_checkpoint:
        load_init_checkpoint(model, m.init_checkpoint)
    return model


def load_init_checkpoint(model: nn.Module, path: str | os.PathLike) -> dict[str, list[str]]:
    """Start ``model`` from the weights of a checkpoint (e.g. a baseline's ``best.pt``).

    Weights missing from the checkpoint are allowed only in the LLIE (added for fine-tuning; it starts
    fresh); any other mismatch raises :class:`~lowlight_matting.checkpoint.CheckpointError`.
    Returns ``{"missing": [...], "unexpected": [...]}``.
    """
    ckpt = load_checkpoint(path)
    if "model" not in ckpt:
        raise CheckpointError(f"{path}: no 'model' entry")
    state = ckpt["model"]
    own = model.state_dict()
    bad_shape = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if bad_shape:
        raise CheckpointError(f"{path}: weights of another architecture (shape mismatch in {bad_shape[:3]})")
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("llie.")]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"{path}: does not fit the model (missing {missing[:3]}, unexpected {list(result.unexpected_keys)[:3]}); "
            "model.encoder and model.kwargs must match the checkpoint's model_config"
        )
    return {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys)}


def _llie_frozen_at(stage: StageConfig, pass_start_step: int, stage_steps: int) -> bool:
    """Whether a pass starting at step ``pass_start_step`` of a ``stage_steps``-step stage runs with the LLIE
    frozen: from the first pass that starts at or after ``freeze_llie_after`` of the stage."""
    if stage.freeze_llie_after is None:
        return False
    return pass_start_step >= math.ceil(stage.freeze_llie_after * stage_steps - 1e-9)


class NonFiniteWeightsError(NonFiniteLossError):
    """The model's weights hold NaN or infinite values: the run cannot continue."""


def _check_finite_weights(model: nn.Module, where: str) -> None:
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


def _wrap(model: nn.Module, info: DistInfo, device: torch.device, compile_model: bool) -> nn.Module:
    net: nn.Module = model
    if info.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    if compile_model:
        net = torch.compile(net)
    return net


def _better(value: float, best: float | None, mode: str) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best if mode == "min" else value > best


@contextlib.contextmanager
def _determinism(enabled: bool):
    prev = torch.are_deterministic_algorithms_enabled()
    prev_bench = torch.backends.cudnn.benchmark
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        if enabled:
            torch.use_deterministic_algorithms(prev)
            torch.backends.cudnn.benchmark = prev_bench


# ------------------------------------------------------------------------------------------------- train
def train(
    config: TrainConfig | dict[str, Any] | str | os.PathLike,
    *,
    overrides: list[str] | None = None,
    model: nn.Module | None = None,
    train_dataset: Any = None,
    val_dataset: Any = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Run (or, with ``checkpoint.resume``, continue) the training a config describes; returns the run folder.

    Args:
        config: a :class:`TrainConfig`, a dict, or a YAML file path.
        overrides: ``key.sub=value`` strings applied on top.
        model: use this model instead of building one from ``config.model`` (its ``config`` attribute is
            still what checkpoints record).
        train_dataset, val_dataset: use these (items as in :mod:`lowlight_matting.data`, fixed size) instead
            of the ones ``config.data`` describes.
        on_epoch_end: called (rank 0) with each epoch's metrics row.

    The run folder (``out_dir/name``) receives ``config.yaml``, ``metrics.csv``, ``curves.png``, ``last.pt``,
    ``best.pt`` and, when tensorboard is installed, ``tb/``.

    Example (a 2-epoch CPU run on synthetic data)::

        from lowlight_matting.train import preset, train
        cfg = preset("fast")
        run_dir = train(cfg, overrides=["out_dir=/tmp/runs", "name=demo"])
    """
    if isinstance(config, (str, os.PathLike)):
        cfg = load_config(config, overrides)
    elif isinstance(config, dict):
        from lowlight_matting.train.config import apply_overrides

        cfg = apply_overrides(TrainConfig.from_dict(config), overrides)
    else:
        from lowlight_matting.train.config import apply_overrides

        cfg = apply_overrides(config, overrides)
    info = setup_distributed(cfg.device)
    try:
        with _determinism(cfg.deterministic):
            return _Run(cfg, info, model, train_dataset, val_dataset, on_epoch_end).run()
    finally:
        if info.initialised_here and dist.is_initialized():
            dist.destroy_process_group()


class _Run:
    def __init__(
        self, cfg: TrainConfig, info: DistInfo, model, train_dataset, val_dataset, on_epoch_end
    ) -> None:
        self.cfg, self.info = cfg, info
        self.device = resolve_device(cfg.device, info)
        self.amp = resolve_amp(cfg.amp.mode, self.device)
        self.run_dir = cfg.run_dir
        self.on_epoch_end = on_epoch_end
        self.model_arg, self.train_ds, self.val_ds = model, train_dataset, val_dataset

    def log(self, msg: str) -> None:
        if self.info.is_main and self.cfg.logging.verbose:
            print(msg, flush=True)

    def run(self) -> Path:
        cfg, info = self.cfg, self.info
        last_path, best_path = self.run_dir / "last.pt", self.run_dir / "best.pt"
        resume = None
        if cfg.checkpoint.resume:
            if not last_path.is_file():
                raise CheckpointError(f"{last_path}: nothing to resume (no last.pt in the run folder)")
            resume = load_checkpoint(last_path)
        elif last_path.exists():
            raise FileExistsError(
                f"{self.run_dir} already holds a run (last.pt); continue it with --resume "
                "(checkpoint.resume=true) or choose another name/out_dir"
            )
        seed_everything(cfg.seed)
        model = self.model_arg if self.model_arg is not None else _build_model(cfg)
        model_config = dict(getattr(model, "config", {}) or {})
        if resume is not None:
            try:
                model.load_state_dict(resume["model"])
            except RuntimeError as e:
                raise CheckpointError(f"{last_path}: weights do not fit the configured model ({e})") from e
        model.to(self.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        if self.train_ds is None:
            self.train_ds, built_val = build_datasets(cfg)
            self.val_ds = self.val_ds if self.val_ds is not None else built_val
        d = cfg.data
        pin = d.pin_memory and self.device.type == "cuda"
        loader = build_loader(
            self.train_ds,
            d.batch_size,
            shuffle=True,
            seed=cfg.seed,
            info=info,
            num_workers=d.num_workers,
            pin_memory=pin,
        )
        val_loader = None
        if self.val_ds is not None and len(self.val_ds):
            val_loader = build_loader(
                shard_for_rank(self.val_ds, info),
                d.batch_size,
                shuffle=False,
                seed=cfg.seed,
                num_workers=d.num_workers,
                pin_memory=pin,
            )
        criterion = build_criterion(cfg.loss)
        llie_loss = None
        if getattr(cfg.loss, "llie", 0.0) > 0:
            from lowlight_matting.models.llie_losses import ZeroDCELoss

            llie_loss = ZeroDCELoss()
        sim_ranges = _simulator_ranges(d.simulator)

        state = {"epoch": 0, "step": 0, "stage": 0, "stage_epoch": 0, "best": None, "bad_total": 0}
        history: list[dict[str, Any]] = []
        if resume is not None:
            for k in state:
                if k in resume:
                    state[k] = resume[k]
            history = list(resume.get("history", []))
            restore_rng_state(resume.get("rng", {}))
        if info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.run_dir / "config.yaml")
        tb = _tensorboard(self.run_dir, cfg.logging.tensorboard) if info.is_main else None
        self.log(
            f"run {self.run_dir} | device {self.device} | amp {self.amp.name} | world {info.world_size} | "
            f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters"
        )

        try:
            spe = len(loader)
            passes = cfg.stage_passes(spe)
            total_passes = sum(passes)
            for si in range(state["stage"], len(cfg.stages)):
                stage = cfg.stages[si]
                n_pass = passes[si]
                stage_steps = stage.steps if stage.steps is not None else spe * stage.epochs
                first_epoch = state["stage_epoch"] if si == state["stage"] else 0
                if first_epoch >= n_pass:
                    state["stage_epoch"] = 0
                    continue
                counts = apply_freeze(model, stage.freeze)
                optimizer = build_optimizer(model, stage.lr, cfg.optim)
                warmup = stage.warmup_steps or round(stage.warmup_epochs * spe)
                scheduler = build_scheduler(optimizer, cfg.optim, stage_steps, warmup, spe)
                scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp.scaler)
                if resume is not None and si == resume.get("stage") and first_epoch > 0:
                    optimizer.load_state_dict(resume["optimizer"])
                    scheduler.load_state_dict(resume["scheduler"])
                    if resume.get("scaler"):
                        scaler.load_state_dict(resume["scaler"])
                llie_frozen = None
                net = None
                length = f"{stage.steps} steps" if stage.steps is not None else f"{stage.epochs} epochs"
                self.log(
                    f"stage {si + 1}/{len(cfg.stages)} '{stage.name}': lr {stage.lr:g}, {length}, "
                    f"frozen {stage.freeze or 'nothing'} -> {counts['trainable']:,} trainable / {counts['frozen']:,} frozen"
                )
                ctx = StepContext(
                    optimizer=optimizer,
                    scheduler=scheduler,
                    scaler=scaler,
                    criterion=criterion,
                    device=self.device,
                    amp=self.amp,
                    grad_clip=cfg.optim.grad_clip,
                    lowlight=d.lowlight,
                    p_lowlight=d.p_lowlight,
                    sim_ranges=sim_ranges,
                    channels_last=cfg.channels_last,
                    max_bad_steps=cfg.optim.max_bad_steps,
                    info=info,
                    llie_loss=llie_loss,
                    llie_weight=getattr(cfg.loss, "llie", 0.0),
                    progress=cfg.logging.progress,
                    log_every=cfg.logging.log_every,
                    step=state["step"],
                    flip=d.augment == "flip",
                )
                for e in range(first_epoch, n_pass):
                    frozen_now = _llie_frozen_at(stage, e * spe, stage_steps)
                    if frozen_now != llie_frozen:
                        if frozen_now and getattr(model, "llie", None) is not None:
                            apply_freeze(model, [*stage.freeze, "llie"])
                            if llie_frozen is not None:
                                self.log(f"  LLIE frozen from stage epoch {e + 1}")
                        net = _wrap(model, info, self.device, cfg.compile)
                        llie_frozen = frozen_now
                    epoch = state["epoch"]
                    ctx.desc = f"{stage.name} {e + 1}/{n_pass}"
                    # per-epoch streams: shuffle + worker seeds, dataset reseed, on-device simulator
                    ep_seed = _epoch_seed(cfg.seed, epoch, info.rank)
                    loader.generator.manual_seed(ep_seed)
                    if isinstance(loader.sampler, torch.utils.data.DistributedSampler):
                        loader.sampler.set_epoch(epoch)
                    if d.num_workers == 0:
                        _reseed_chain(self.train_ds, _epoch_seed(cfg.seed, epoch, info.rank, 1) % 2**32)
                    sim_gen = torch.Generator(device=self.device).manual_seed(
                        _epoch_seed(cfg.seed, epoch, info.rank, 2)
                    )
                    flip_gen = torch.Generator(device=self.device).manual_seed(
                        _epoch_seed(cfg.seed, epoch, info.rank, 4)
                    )
                    metrics = train_one_epoch(
                        net,
                        model,
                        loader,
                        ctx,
                        sim_gen,
                        max_steps=stage_steps - e * spe,
                        flip_generator=flip_gen,
                    )
                    _check_finite_weights(model, f"{stage.name} pass {e + 1}")
                    state["bad_total"] += metrics["bad_steps"]
                    row: dict[str, Any] = {
                        "epoch": epoch + 1,
                        "stage": si + 1,
                        "stage_name": stage.name,
                        "lr": optimizer.param_groups[0]["lr"],
                        **{
                            f"train_{k}": v
                            for k, v in metrics.items()
                            if k not in ("images", "time_s", "data_wait_s", "img_per_s", "bad_steps")
                        },
                        "bad_steps": metrics["bad_steps"],
                        "img_per_s": metrics["img_per_s"],
                        "data_wait_share": metrics["data_wait_s"] / max(metrics["time_s"], 1e-9),
                    }
                    if val_loader is not None:
                        vseed = _epoch_seed(cfg.seed, 0, 0, 3) + info.rank
                        row.update(
                            evaluate(
                                model,
                                val_loader,
                                criterion,
                                self.device,
                                self.amp,
                                lowlight=d.lowlight != "off",
                                sim_ranges=sim_ranges,
                                seed=vseed,
                                channels_last=cfg.channels_last,
                                info=info,
                            )
                        )
                        if d.lowlight != "off":
                            row.update(
                                evaluate(
                                    model,
                                    val_loader,
                                    criterion,
                                    self.device,
                                    self.amp,
                                    lowlight=False,
                                    channels_last=cfg.channels_last,
                                    info=info,
                                    prefix="val_normal_",
                                )
                            )
                    state["epoch"] = epoch + 1
                    state["step"] = ctx.step
                    state["stage"], state["stage_epoch"] = si, e + 1
                    metric = row.get(cfg.checkpoint.metric, row.get("train_total"))
                    improved = _better(metric, state["best"], cfg.checkpoint.mode)
                    if improved:
                        state["best"] = float(metric)
                    history.append(row)
                    if info.is_main:
                        payload = {
                            "model": model.state_dict(),
                            "model_config": model_config,
                            "epoch": state["epoch"],
                            "step": state["step"],
                            "stage": si,
                            "stage_epoch": e + 1,
                            "best": state["best"],
                            "bad_total": state["bad_total"],
                            "config": cfg.to_dict(),
                            "metrics": {k: v for k, v in row.items() if isinstance(v, (int, float))},
                            "history": history,
                        }
                        if improved:
                            save_checkpoint(best_path, payload)
                        save_checkpoint(
                            last_path,
                            {
                                **payload,
                                "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict(),
                                "scaler": scaler.state_dict(),
                                "rng": capture_rng_state(),
                            },
                        )
                        write_history(history, self.run_dir / "metrics.csv")
                        stopping = (
                            cfg.stop_after_epochs is not None and state["epoch"] >= cfg.stop_after_epochs
                        )
                        if cfg.logging.plot and (e + 1 == n_pass or stopping or cfg.logging.plot_every_epoch):
                            plot_history(history, self.run_dir / "curves.png")
                        if tb is not None:
                            for k, v in row.items():
                                if isinstance(v, (int, float)) and k != "epoch":
                                    tb.add_scalar(k, v, state["epoch"])
                        self.log(
                            f"epoch {epoch + 1}/{total_passes} [{stage.name}] loss {row.get('train_total', float('nan')):.4f}"
                            + (f" | val_mse {row['val_mse']:.5f}" if "val_mse" in row else "")
                            + (f" | skipped {metrics['bad_steps']}" if metrics["bad_steps"] else "")
                            + f" | {metrics['img_per_s']:.1f} img/s"
                            + (" *" if improved else "")
                        )
                        if self.on_epoch_end is not None:
                            self.on_epoch_end(row)
                    if info.distributed:
                        dist.barrier()
                    if cfg.stop_after_epochs is not None and state["epoch"] >= cfg.stop_after_epochs:
                        self.log(
                            f"stopping after {state['epoch']} epochs (stop_after_epochs); continue with --resume"
                        )
                        return self.run_dir
                state["stage_epoch"] = 0
        finally:
            if tb is not None:
                tb.close()
        return self.run_dir


# -------------------------------------------------------------------------------------------- fit_stage
def fit_stage(
    model: nn.Module,
    train_loader: Iterable,
    stage: StageConfig,
    *,
    criterion: MattingLoss | None = None,
    optim: OptimConfig | None = None,
    device: str | torch.device | None = None,
    amp: str = "auto",
    lowlight: str = "device",
    p_lowlight: float = 0.7,
    simulator: dict[str, Any] | None = None,
    val_loader: Iterable | None = None,
    seed: int = 0,
    channels_last: bool = False,
    progress: bool = False,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` for one stage in memory (no run folder, no checkpoints): the building block for
    notebooks and demos. Freezes ``stage.freeze``, builds AdamW + schedule over the trainable parameters and
    runs ``stage.epochs`` epochs of :func:`train_one_epoch` (low-light simulation on the device when
    ``lowlight="device"``), validating on ``val_loader`` (darkened) when given.

    Returns one metrics dict per epoch (``train_total``, ``train_mse``, ..., ``val_mse``, ``img_per_s``,
    ``trainable``, ``frozen``).

    Example::

        loader = build_loader(SyntheticMattingDataset(16, size=64), 4, shuffle=True, seed=0)
        rows = fit_stage(model, loader, StageConfig("head", epochs=1, lr=1e-3, freeze=["all_but_head"]))
    """
    dev = torch.device(device) if device is not None else resolve_device("auto")
    amp_s = resolve_amp(amp, dev)
    optim = optim or OptimConfig()
    criterion = criterion or MattingLoss()
    ranges = _simulator_ranges(simulator or {})
    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    counts = apply_freeze(model, stage.freeze)
    opt = build_optimizer(model, stage.lr, optim)
    spe = len(train_loader)  # type: ignore[arg-type]
    sched = build_scheduler(opt, optim, spe * stage.epochs, round(stage.warmup_epochs * spe), spe)
    ctx = StepContext(
        optimizer=opt,
        scheduler=sched,
        scaler=torch.amp.GradScaler(dev.type, enabled=amp_s.scaler),
        criterion=criterion,
        device=dev,
        amp=amp_s,
        grad_clip=optim.grad_clip,
        lowlight=lowlight,
        p_lowlight=p_lowlight,
        sim_ranges=ranges,
        channels_last=channels_last,
        max_bad_steps=optim.max_bad_steps,
        progress=progress,
        desc=stage.name,
    )
    rows = []
    llie_frozen = False
    for e in range(stage.epochs):
        if (
            not llie_frozen
            and _llie_frozen_at(stage, e * spe, spe * stage.epochs)
            and getattr(model, "llie", None) is not None
        ):
            apply_freeze(model, [*stage.freeze, "llie"])
            llie_frozen = True
        gen = torch.Generator(device=dev).manual_seed(_epoch_seed(seed, e, 0, 2))
        m = train_one_epoch(model, model, train_loader, ctx, gen)
        row = {"stage_name": stage.name, "epoch": e + 1, "lr": opt.param_groups[0]["lr"], **counts}
        row.update({f"train_{k}" if k not in ("bad_steps", "img_per_s") else k: v for k, v in m.items()})
        if val_loader is not None:
            row.update(
                evaluate(
                    model,
                    val_loader,
                    criterion,
                    dev,
                    amp_s,
                    lowlight=lowlight != "off",
                    sim_ranges=ranges,
                    seed=_epoch_seed(seed, 0, 0, 3),
                    channels_last=channels_last,
                )
            )
        rows.append(row)
        if on_epoch_end is not None:
            on_epoch_end(row)
    return rows
