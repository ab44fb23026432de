"""Inspect models: parameters per part, FLOPs at a size, the encoder's feature pyramid, measured latency.

Example:
    >>> info = describe_model("test_convnext", size=64, latency_repeat=1)
    >>> info["feature_shapes"]
    [(24, 16, 16), (32, 8, 8), (48, 4, 4), (64, 2, 2)]
    >>> info["params"]["total"] == sum(v for k, v in info["params"].items() if k != "total")
    True
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

__all__ = ["count_parameters", "count_flops", "describe_model", "compare_encoders"]


def count_parameters(module: nn.Module | None, trainable_only: bool = False) -> int:
    """Number of (distinct) parameters of ``module`` (0 for None)."""
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Floating-point operations of one forward pass on ``x`` (a multiply-add counts 2), by
    ``torch.utils.flop_counter`` (matrix products and convolutions; element-wise ops are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def describe_model(
    model_or_encoder: nn.Module | str,
    size: int | tuple[int, int] = 512,
    device: str | torch.device | None = None,
    latency_repeat: int = 3,
    flops: bool = True,
    **build_kwargs: Any,
) -> dict[str, Any]:
    """Parameters, FLOPs, encoder feature shapes and median forward latency of a CV-UNet.

    Args:
        model_or_encoder: a built ``CVUNet`` or an encoder name (built with ``build_model(name, **build_kwargs)``,
            random init).
        size: input side (or (H, W)).
        device: where to time it (default: CUDA when available, else CPU).
        latency_repeat: timed forward passes (batch 1, no grad, eval mode) after one warm-up; 0 skips timing.
        flops: count FLOPs (one extra forward).

    Returns:
        dict(name, params=dict(llie, encoder, decoder, head, total), gflops, size, feature_shapes
        [(C, H, W) per level], reductions, latency_ms, device).
    """
    from .cvunet import build_model

    if isinstance(model_or_encoder, str):
        model = build_model(model_or_encoder, **build_kwargs)
    else:
        model = model_or_encoder
    h, w = (size, size) if isinstance(size, int) else size
    dev = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    first = next(model.parameters())
    orig_device, was_training = first.device, model.training
    model.to(dev).eval()
    x = torch.rand(1, 3, h, w, device=dev)
    try:
        with torch.no_grad():
            e = model.llie(x)[0] if model.llie is not None else x
            normed = (e - model.mean) / model.std
            from .cvunet import pad_to_multiple

            feats = model.encoder(pad_to_multiple(normed, model.stride)[0])
        info: dict[str, Any] = {
            "name": getattr(model.encoder, "name", type(model.encoder).__name__),
            "params": {
                "llie": count_parameters(model.llie),
                "encoder": count_parameters(model.encoder),
                "decoder": count_parameters(model.decoder),
                "head": count_parameters(model.head),
                "total": count_parameters(model),
            },
            "size": (h, w),
            "feature_shapes": [tuple(f.shape[1:]) for f in feats],
            "reductions": list(model.encoder.reductions),
            "gflops": count_flops(model, x) / 1e9 if flops else None,
            "device": str(dev),
            "latency_ms": None,
        }
        if latency_repeat:
            with torch.no_grad():
                model(x)
                _sync(dev)
                times = []
                for _ in range(int(latency_repeat)):
                    t0 = time.perf_counter()
                    model(x)
                    _sync(dev)
                    times.append(time.perf_counter() - t0)
            info["latency_ms"] = 1000 * sorted(times)[len(times) // 2]
    finally:
        model.to(orig_device).train(was_training)
    return info


def compare_encoders(
    names: list[str] | tuple[str, ...], size: int = 512, **kwargs: Any
) -> list[dict[str, Any]]:
    """:func:`describe_model` for each encoder name (random init), in order."""
    return [describe_model(n, size=size, **kwargs) for n in names]
