"""Helpers shared by the training tests (a plain module: the DDP test's spawned workers import it too)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from lowlight_matting.checkpoint import load_checkpoint
from lowlight_matting.data import TensorMattingDataset
from lowlight_matting.train import StageConfig, TrainConfig, preset

# 8 samples at batch 4: a pass over the training data is L = 2 optimizer steps
TINY = [
    "device=cpu",
    "data.size=32",
    "data.length=8",
    "data.val_length=4",
    "data.batch_size=4",
    "logging.plot=false",
    "logging.verbose=false",
    "logging.progress=false",
    "seed=3",
]
STEPS_PER_PASS = 2

# the article's shape in miniature: head only, then everything with the LLIE frozen after half the stage
STAGES = [
    StageConfig(name="head", epochs=1, lr=1e-3, freeze=["encoder", "decoder"]),
    StageConfig(name="all", epochs=2, lr=5e-4, freeze=[], freeze_llie_after=0.5, warmup_epochs=0.5),
]


def tiny_config(
    out_dir: str | Path,
    name: str = "run",
    stages: list[StageConfig] | None = None,
    base: str = "fast_base",
    **extra: object,
) -> TrainConfig:
    """A named preset shrunk to 8 samples of 32 px (2 steps per pass), with ``key=value`` extras
    (``**{"data.lowlight": "off"}``) and optionally other stages."""
    overrides = [f"out_dir={out_dir}", f"name={name}", *TINY] + [f"{k}={v}" for k, v in extra.items()]
    cfg = preset(base, overrides)
    if stages is not None:
        cfg.stages = [dataclasses.replace(s, freeze=list(s.freeze)) for s in stages]  # copies
    return cfg.validate()


def last(run_dir: str | Path) -> dict:
    """The run's ``last.pt``."""
    return load_checkpoint(Path(run_dir) / "last.pt")


def state_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter and buffer."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def differing(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Keys whose tensors are not bit-equal (``a`` and ``b`` must hold the same keys)."""
    assert a.keys() == b.keys()
    return [k for k in a if not torch.equal(a[k], b[k])]


def all_finite(state: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def tensor_dataset(n: int, size: int, *, seed: int = 0, fg_bg: bool = False) -> TensorMattingDataset:
    """``n`` random uint8 samples (alpha on the 1/255 grid), optionally with fg/bg."""
    g = torch.Generator().manual_seed(seed)

    def rgb():
        return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)

    alpha = torch.randint(0, 256, (n, 1, size, size), generator=g, dtype=torch.uint8)
    return TensorMattingDataset(rgb(), alpha, *((rgb(), rgb()) if fg_bg else ()))


class BNNet(torch.nn.Module):
    """A tiny matting net with BatchNorm (running statistics are weights the engine must check too)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(x))


class Recorder(torch.nn.Module):
    """Predicts alpha = the image's first channel (times ``w``, which stays 1 when the fit is exact) and
    records every training input."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.seen.append(x.detach().clone())
        return x[:, :1] * self.w
