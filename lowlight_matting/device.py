"""The one place that turns a device name into a :class:`torch.device`.

>>> resolve_device("cpu")
device(type='cpu')
"""

from __future__ import annotations

import re

import torch

__all__ = ["DEVICE_CHOICES", "cpu_model", "describe_device", "resolve_device"]

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


def resolve_device(device: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` (or None): ``cuda:local_rank`` when CUDA is available, else the CPU; ``"cuda"`` means
    ``cuda:local_rank``; ``"cpu"``, ``"cuda:N"``, ``"mps"`` are taken as they are.

    Raises ``ValueError`` naming the value when it is not a device name, or when it names an accelerator
    this machine does not have.
    """
    if isinstance(device, torch.device):
        name = str(device)
    else:
        name = "auto" if device in (None, "") else str(device).strip().lower()
    if not _PATTERN.fullmatch(name):
        raise ValueError(f"device: {device!r} is not a device name ({DEVICE_CHOICES})")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{int(local_rank)}"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device: {device!r} requested but CUDA is not available on this machine")
        index = int(name.split(":")[1])
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device: {device!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device: {device!r} requested but MPS is not available on this machine")
    return torch.device(name)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; else what :mod:`platform` knows)."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return cpu


def describe_device(device: str | torch.device = "cpu") -> str:
    """A one-line description for records: the GPU's name, or the CPU's model, core count and torch threads."""
    import os

    dev = torch.device(device)
    if dev.type == "cuda":
        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"
