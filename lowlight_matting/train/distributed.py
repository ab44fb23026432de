"""Where this process stands in a run: torchrun's environment, the process group, DDP wrapping.

Launched with ``torchrun --nproc_per_node=N``, a run reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``, initialises
the process group (nccl on GPU, gloo on CPU) and wraps the model in ``DistributedDataParallel``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistInfo", "launch_rank", "setup_distributed", "wrap"]


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


def launch_rank() -> int:
    """This process's global rank as torchrun set it (``RANK``; 0 when not launched by torchrun)."""
    return int(os.environ.get("RANK", "0"))


def setup_distributed(device_pref: str = "auto") -> DistInfo:
    """Initialise ``torch.distributed`` from torchrun's environment (``WORLD_SIZE`` > 1), else a single process.

    Backend: nccl when the run uses CUDA, gloo otherwise.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = launch_rank()
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


def wrap(module: nn.Module, info: DistInfo, device: torch.device, compile_model: bool) -> nn.Module:
    net: nn.Module = module
    if info.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(module, device_ids=[device.index] if device.type == "cuda" else None)
    if compile_model:
        net = torch.compile(net)
    return net
