"""Shared input checks, dtype handling and reductions of the matting losses."""

from __future__ import annotations

import torch
from torch import Tensor, nn

_REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------------------------- checks
def _check_alpha(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"{name} must have shape (B, 1, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got {x.dtype}")
    return x


def _check_rgb(name: str, x: object, like: Tensor | None = None) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got {x.dtype}")
    if like is not None and (x.shape[0] != like.shape[0] or x.shape[-2:] != like.shape[-2:]):
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}, which does not match the matte's batch and size "
            f"{(like.shape[0], like.shape[-2], like.shape[-1])}"
        )
    return x


def _check_pair(pred: object, target: object) -> tuple[Tensor, Tensor]:
    _check_alpha("pred", pred)
    _check_alpha("target", target)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    return pred, target


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _f32(*xs: Tensor) -> list[Tensor]:
    """Cast to float32 (half/bf16 inputs); float64 stays float64 so gradcheck works."""
    return [x.float() if x.dtype in (torch.float16, torch.bfloat16) else x for x in xs]


def _no_autocast(x: Tensor):
    return torch.autocast(device_type=x.device.type, enabled=False)


def _reduce(per_sample: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def _per_sample_mean(x: Tensor) -> Tensor:
    return x.flatten(1).mean(dim=1)


class _Loss(nn.Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
