"""Running a training config: the run folder, stages, checkpoints, resume and DistributedDataParallel.

One run = a :class:`~lowlight_matting.train.config.TrainConfig`. Its ``stages`` run in order; each stage
freezes the parts it names (:func:`~lowlight_matting.train.freeze.apply_freeze`), builds a fresh AdamW over
the *trainable* parameters only, with a per-step schedule (linear warm-up, then cosine / step / constant),
and trains for its length (:func:`~lowlight_matting.train.loop.train_one_epoch`, the one loop). After every
pass the model is validated on dark (and, when the run darkens data, also normal-light) images, a row is
added to ``metrics.csv``, ``curves.png`` is redrawn, ``last.pt`` is written and ``best.pt`` when the
validation metric improved.

Reproducibility: checkpoints hold the global RNG states and every pass reseeds its streams from
``(seed, epoch, rank)``, so a run stopped after any pass and resumed with ``--resume`` ends with the same
weights as an uninterrupted one (bit-exact on CPU). ``--resume`` refuses a config that differs from the
one the run started with in anything that changes the run.

Distributed: launched with ``torchrun --nproc_per_node=N`` the runner reads ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK``, initialises the process group (nccl on GPU, gloo on CPU), shards data with a
``DistributedSampler``, wraps the model in ``DistributedDataParallel`` (re-wrapped when a stage changes what
is trainable) and lets only rank 0 print, log and write checkpoints. ``data.batch_size`` is per process.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from lowlight_matting.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lowlight_matting.device import describe_device, resolve_device
from lowlight_matting.io import write_json
from lowlight_matting.models.llie_losses import ZeroDCELoss
from lowlight_matting.seeding import capture_rng_state, reseed_chain, restore_rng_state, seed_everything
from lowlight_matting.train.config import ConfigError, TrainConfig
from lowlight_matting.train.config_io import apply_overrides, save_config
from lowlight_matting.train.data import (
    build_datasets,
    build_loader,
    epoch_seed,
    shard_for_rank,
    simulator_ranges,
)
from lowlight_matting.train.distributed import DistInfo, setup_distributed, wrap
from lowlight_matting.train.freeze import apply_freeze
from lowlight_matting.train.history import _tensorboard, plot_history, write_history
from lowlight_matting.train.loop import (
    NonFiniteLossError,
    StepContext,
    check_finite_weights,
    llie_frozen_at,
    train_one_epoch,
    validate,
)
from lowlight_matting.train.optim import build_criterion, build_optimizer, build_scheduler, resolve_amp
from lowlight_matting.train.start import build_model_for, config_changes, distill_teacher

__all__ = ["train"]


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


# -------------------------------------------------------------------------------------------------- train
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

    This is the package's one training entry point: ``lowlight-matting train``, the demo, its ablation and
    seeds, and the notebooks all call it.

    Args:
        config: a :class:`TrainConfig`, a dict, or a YAML file path.
        overrides: ``key.sub=value`` strings applied on top.
        model: use this model instead of building one from ``config.model`` (its ``config`` attribute is
            still what checkpoints record).
        train_dataset, val_dataset: use these (items as in :mod:`lowlight_matting.data`, fixed size; e.g.
            :class:`~lowlight_matting.data.TensorMattingDataset`) instead of the ones ``config.data``
            describes -- the same samples, drawn once by the caller for several runs.
        on_epoch_end: called (rank 0) with each pass's metrics row.

    The run folder (``out_dir/name``) receives ``config.yaml``, ``environment.json``, ``metrics.csv``,
    ``curves.png``, ``last.pt``, ``best.pt`` and, when tensorboard is installed, ``tb/``.

    Example (a CPU run of a few seconds on synthetic data)::

        from lowlight_matting.train import preset, train
        run_dir = train(preset("fast_base"), overrides=["out_dir=/tmp/runs", "name=demo"])
    """
    if isinstance(config, (str, os.PathLike)):
        from lowlight_matting.train.presets import load_config

        cfg = load_config(config, overrides)
    elif isinstance(config, dict):
        cfg = apply_overrides(TrainConfig.from_dict(config), overrides)
    else:
        cfg = apply_overrides(config, overrides)
    info = setup_distributed(cfg.device)
    try:
        with _determinism(cfg.deterministic):
            return _Run(cfg, info, model, train_dataset, val_dataset, on_epoch_end).run()
    finally:
        if info.initialised_here and dist.is_initialized():
            dist.destroy_process_group()


class _Run:
    """One call of :func:`train`: prepares the model, data and state, then runs the stages pass by pass."""

    def __init__(
        self, cfg: TrainConfig, info: DistInfo, model, train_dataset, val_dataset, on_epoch_end
    ) -> None:
        self.cfg, self.info = cfg, info
        try:
            self.device = resolve_device(cfg.device, info.local_rank)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.amp = resolve_amp(cfg.amp.mode, self.device)
        self.run_dir = cfg.run_dir
        self.on_epoch_end = on_epoch_end
        self.model_arg, self.train_ds, self.val_ds = model, train_dataset, val_dataset
        self.last_path, self.best_path = self.run_dir / "last.pt", self.run_dir / "best.pt"

    def log(self, msg: str) -> None:
        if self.info.is_main and self.cfg.logging.verbose:
            print(msg, flush=True)

    # ------------------------------------------------------------------------------------------ preparing
    def _load_resume(self) -> dict[str, Any] | None:
        cfg = self.cfg
        if not cfg.checkpoint.resume:
            if self.last_path.exists():
                raise FileExistsError(
                    f"{self.run_dir} already holds a run (last.pt); continue it with --resume "
                    "(checkpoint.resume=true) or choose another name/out_dir"
                )
            return None
        if not self.last_path.is_file():
            raise CheckpointError(f"{self.last_path}: nothing to resume (no last.pt in the run folder)")
        resume = load_checkpoint(self.last_path)
        changed = config_changes(resume.get("config", {}), cfg.to_dict())
        if changed and not cfg.checkpoint.allow_config_change:
            raise ConfigError(
                f"{self.last_path}: --resume with a config that differs from the run's in "
                f"{', '.join(changed[:6])}{' ...' if len(changed) > 6 else ''}; resume with the run's own "
                f"config ({self.run_dir / 'config.yaml'}), or pass --allow-config-change to continue anyway"
            )
        self.config_changed = changed
        return resume

    def _write_config(self, resume: dict[str, Any] | None) -> None:
        """``config.yaml`` holds the config the run started with; an allowed change on resume is written
        beside it (``config.resume-<epoch>.yaml``), never over it. ``environment.json`` says where the run
        trained (device, processes, versions; ``environment.resume-<epoch>.json`` for each resume): a record
        made later, elsewhere, quotes it instead of describing its own machine."""
        if not self.info.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = "environment.json" if resume is None else f"environment.resume-{resume.get('epoch', 0)}.json"
        write_json(
            self.run_dir / env,
            {
                "device": describe_device(self.device),
                "processes": self.info.world_size,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
        )
        if resume is None:
            save_config(self.cfg, self.run_dir / "config.yaml")
        elif getattr(self, "config_changed", None):
            path = self.run_dir / f"config.resume-{resume.get('epoch', 0)}.yaml"
            save_config(self.cfg, path)
            self.log(f"resuming with changed {', '.join(self.config_changed)} (written to {path.name})")

    def _loaders(self) -> tuple[Any, Any]:
        cfg, d, info = self.cfg, self.cfg.data, self.info
        if self.train_ds is None:
            self.train_ds, built_val = build_datasets(cfg)
            self.val_ds = self.val_ds if self.val_ds is not None else built_val
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
        return loader, val_loader

    def run(self) -> Path:
        cfg, info = self.cfg, self.info
        resume = self._load_resume()
        seed_everything(cfg.seed)
        model = self.model_arg if self.model_arg is not None else build_model_for(cfg)
        self.model_config = dict(getattr(model, "config", {}) or {})
        # the starting weights, before a resume replaces them
        self.teacher = distill_teacher(cfg, model, self.device, given=self.model_arg is not None)
        if self.teacher is not None and info.distributed:  # one target on every rank, like DDP's model
            for t in self.teacher.state_dict().values():
                dist.broadcast(t, 0)
        if resume is not None:
            try:
                model.load_state_dict(resume["model"])
            except RuntimeError as e:
                raise CheckpointError(
                    f"{self.last_path}: weights do not fit the configured model ({e})"
                ) from e
        model.to(self.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.loader, self.val_loader = self._loaders()
        self.criterion = build_criterion(cfg.loss)
        needs_llie_loss = cfg.loss.llie > 0 or any(s.objective == "llie" for s in cfg.stages)
        self.llie_loss = ZeroDCELoss() if needs_llie_loss else None
        self.sim_ranges = simulator_ranges(cfg.data.simulator)

        self.state = {"epoch": 0, "step": 0, "stage": 0, "stage_epoch": 0, "best": None, "bad_total": 0}
        self.history: list[dict[str, Any]] = []
        if resume is not None:
            for k in self.state:
                if k in resume:
                    self.state[k] = resume[k]
            self.history = list(resume.get("history", []))
            restore_rng_state(resume.get("rng", {}))
        self._write_config(resume)
        self.tb = _tensorboard(self.run_dir, cfg.logging.tensorboard) if info.is_main else None
        self.log(
            f"run {self.run_dir} | device {self.device} | amp {self.amp.name} | world {info.world_size} | "
            f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters"
        )
        try:
            self.spe = len(self.loader)
            passes = cfg.stage_passes(self.spe)
            self.total_passes = sum(passes)
            for si in range(self.state["stage"], len(cfg.stages)):
                first = self.state["stage_epoch"] if si == self.state["stage"] else 0
                if first < passes[si] and self._stage(si, first, passes[si], resume):
                    return self.run_dir  # stopped early (stop_after_epochs)
                self.state["stage_epoch"] = 0
        finally:
            if self.tb is not None:
                self.tb.close()
        return self.run_dir

    # ---------------------------------------------------------------------------------------------- stages
    def _stage(self, si: int, first: int, n_pass: int, resume: dict[str, Any] | None) -> bool:
        """Run passes ``first .. n_pass - 1`` of stage ``si``; True when the run stops early."""
        cfg, model, spe = self.cfg, self.model, self.spe
        stage = cfg.stages[si]
        stage_steps = stage.steps if stage.steps is not None else spe * stage.epochs
        counts = apply_freeze(model, stage.freeze)
        optimizer = build_optimizer(model, stage.lr, cfg.optim)
        warmup = stage.warmup_steps or round(stage.warmup_epochs * spe)
        scheduler = build_scheduler(optimizer, cfg.optim, stage_steps, warmup, spe)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp.scaler)
        if resume is not None and si == resume.get("stage") and first > 0:
            optimizer.load_state_dict(resume["optimizer"])
            scheduler.load_state_dict(resume["scheduler"])
            if resume.get("scaler"):
                scaler.load_state_dict(resume["scaler"])
        length = f"{stage.steps} steps" if stage.steps is not None else f"{stage.epochs} epochs"
        self.log(
            f"stage {si + 1}/{len(cfg.stages)} '{stage.name}' ({stage.objective}): lr {stage.lr:g}, {length}, "
            f"frozen {stage.freeze or 'nothing'} -> {counts['trainable']:,} trainable / {counts['frozen']:,} frozen"
        )
        ctx = StepContext(
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            criterion=self.criterion,
            device=self.device,
            amp=self.amp,
            grad_clip=cfg.optim.grad_clip,
            lowlight=cfg.data.lowlight,
            p_lowlight=cfg.data.p_lowlight if stage.p_lowlight is None else stage.p_lowlight,
            sim_ranges=self.sim_ranges,
            channels_last=cfg.channels_last,
            max_bad_steps=cfg.optim.max_bad_steps,
            info=self.info,
            llie_loss=self.llie_loss,
            llie_weight=cfg.loss.llie,
            teacher=self.teacher,
            distill_weight=cfg.loss.distill,
            progress=cfg.logging.progress,
            log_every=cfg.logging.log_every,
            step=self.state["step"],
            flip=cfg.data.augment == "flip",
            objective=stage.objective,
        )
        llie_frozen, net = None, None
        for e in range(first, n_pass):
            frozen_now = llie_frozen_at(stage, e * spe, stage_steps)
            if frozen_now != llie_frozen:
                if frozen_now and getattr(model, "llie", None) is not None:
                    apply_freeze(model, [*stage.freeze, "llie"])
                    if llie_frozen is not None:
                        self.log(f"  LLIE frozen from stage pass {e + 1}")
                target = model.llie if stage.objective == "llie" else model
                net = wrap(target, self.info, self.device, cfg.compile)
                llie_frozen = frozen_now
            if self._pass(si, e, n_pass, ctx, net, stage_steps, optimizer, scheduler, scaler):
                return True
        return False

    def _pass(self, si, e, n_pass, ctx, net, stage_steps, optimizer, scheduler, scaler) -> bool:
        """One pass over the data, its validation, history row and checkpoints; True when the run stops."""
        cfg, info, model, state = self.cfg, self.info, self.model, self.state
        stage = cfg.stages[si]
        epoch = state["epoch"]
        ctx.desc = f"{stage.name} {e + 1}/{n_pass}"
        # per-pass streams: shuffle + worker seeds, dataset reseed, on-device simulator, batch flips
        self.loader.generator.manual_seed(epoch_seed(cfg.seed, epoch, info.rank))
        if isinstance(self.loader.sampler, torch.utils.data.DistributedSampler):
            self.loader.sampler.set_epoch(epoch)
        if cfg.data.num_workers == 0:
            reseed_chain(self.train_ds, epoch_seed(cfg.seed, epoch, info.rank, 1) % 2**32)
        sim_gen = torch.Generator().manual_seed(
            epoch_seed(cfg.seed, epoch, info.rank, 2)
        )  # host: no GPU sync
        flip_gen = torch.Generator(device=self.device).manual_seed(epoch_seed(cfg.seed, epoch, info.rank, 4))
        metrics = train_one_epoch(
            net,
            model,
            self.loader,
            ctx,
            sim_gen,
            max_steps=stage_steps - e * self.spe,
            flip_generator=flip_gen,
        )
        check_finite_weights(model, f"{stage.name} pass {e + 1}")
        state["bad_total"] += metrics["bad_steps"]
        skip = ("images", "time_s", "data_wait_s", "img_per_s", "bad_steps")
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "stage": si + 1,
            "stage_name": stage.name,
            "lr": optimizer.param_groups[0]["lr"],
            **{f"train_{k}": v for k, v in metrics.items() if k not in skip},
            "bad_steps": metrics["bad_steps"],
            "img_per_s": metrics["img_per_s"],
            "data_wait_share": metrics["data_wait_s"] / max(metrics["time_s"], 1e-9),
        }
        row.update(self._validate())
        self._check_pass(row, stage.name, e)
        state["epoch"] = epoch + 1
        state["step"] = ctx.step
        state["stage"], state["stage_epoch"] = si, e + 1
        metric = row.get(cfg.checkpoint.metric, row.get("train_total"))
        improved = _better(metric, state["best"], cfg.checkpoint.mode)
        if improved:
            state["best"] = float(metric)
        self.history.append(row)
        stopping = cfg.stop_after_epochs is not None and state["epoch"] >= cfg.stop_after_epochs
        if info.is_main:
            self._save(row, improved, optimizer, scheduler, scaler)
            if cfg.logging.plot and (e + 1 == n_pass or stopping or cfg.logging.plot_every_epoch):
                plot_history(self.history, self.run_dir / "curves.png")
            self.log(
                f"epoch {epoch + 1}/{self.total_passes} [{stage.name}] loss {row.get('train_total', float('nan')):.4f}"
                + (f" | val_mse {row['val_mse']:.5f}" if "val_mse" in row else "")
                + (f" | skipped {metrics['bad_steps']}" if metrics["bad_steps"] else "")
                + f" | {metrics['img_per_s']:.1f} img/s"
                + (" *" if improved else "")
            )
            if self.on_epoch_end is not None:
                self.on_epoch_end(row)
        if info.distributed:
            dist.barrier()
        if stopping:
            self.log(f"stopping after {state['epoch']} epochs (stop_after_epochs); continue with --resume")
        return stopping

    def _check_pass(self, row: dict[str, Any], stage: str, e: int) -> None:
        """Stop the run (nothing saved from this pass) when validation gives NaN/inf although the weights are
        finite (e.g. a learning rate so large that the activations overflow). Non-finite training steps are
        the loop's business (skipped; ``optim.max_bad_steps`` of them in a row stop the run)."""
        where = f"after {stage} pass {e + 1}"
        bad = [
            k for k, v in row.items() if k.startswith("val") and isinstance(v, float) and not math.isfinite(v)
        ]
        if bad:
            raise NonFiniteLossError(
                f"{where}: validation gave non-finite {', '.join(bad)} (the model's outputs overflow); nothing "
                "was saved from this pass. Lower the learning rate"
            )

    def _validate(self) -> dict[str, float]:
        """Validation MSE/MAE/loss on darkened images (when the run darkens) and on normal light."""
        if self.val_loader is None:
            return {}
        cfg, d = self.cfg, self.cfg.data
        kw = {"channels_last": cfg.channels_last, "info": self.info}
        row = validate(
            self.model,
            self.val_loader,
            self.criterion,
            self.device,
            self.amp,
            lowlight=d.lowlight != "off",
            sim_ranges=self.sim_ranges,
            seed=epoch_seed(cfg.seed, 0, 0, 3) + self.info.rank,
            **kw,
        )
        if d.lowlight != "off":
            row.update(
                validate(
                    self.model,
                    self.val_loader,
                    self.criterion,
                    self.device,
                    self.amp,
                    lowlight=False,
                    prefix="val_normal_",
                    **kw,
                )
            )
        return row

    def _save(self, row, improved, optimizer, scheduler, scaler) -> None:
        state = self.state
        payload = {
            "model": self.model.state_dict(),
            "model_config": self.model_config,
            "epoch": state["epoch"],
            "step": state["step"],
            "stage": state["stage"],
            "stage_epoch": state["stage_epoch"],
            "best": state["best"],
            "bad_total": state["bad_total"],
            "config": self.cfg.to_dict(),
            "metrics": {k: v for k, v in row.items() if isinstance(v, (int, float))},
            "history": self.history,
        }
        if improved:
            save_checkpoint(self.best_path, payload)
        save_checkpoint(
            self.last_path,
            {
                **payload,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": capture_rng_state(),
            },
        )
        write_history(self.history, self.run_dir / "metrics.csv")
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    self.tb.add_scalar(k, v, state["epoch"])


def _better(value: float, best: float | None, mode: str) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best if mode == "min" else value > best
