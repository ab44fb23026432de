"""Loading a trained model for deployment: by shipped name, training checkpoint, exported weights or ONNX.

:func:`load_matter` turns any of them (or a model already in memory) into a :class:`~.matter.Matter`;
:func:`load_auto_matter` pairs a normal and a low-light model behind brightness routing — by default the two
models shipped with the package, which is what ``lowlight-matting matte`` uses when no checkpoint is given.
PyTorch weights are read by :func:`lowlight_matting.weights.load_model` (validated config, random-init
build, non-finite weights refused; nothing in a file is executed); ONNX graphs by
:func:`lowlight_matting.export.load_onnx_session` (checked metadata, no external data, run by onnxruntime).

Example:
    >>> import tempfile, os
    >>> from lowlight_matting.models import build_model
    >>> from lowlight_matting.checkpoint import save_checkpoint
    >>> m = build_model("test_convnext")
    >>> path = os.path.join(tempfile.mkdtemp(), "m.pt")
    >>> _ = save_checkpoint(path, {"model": m.state_dict(), "model_config": m.config})
    >>> load_matter(path, device="cpu", long_side=64).predict(np.zeros((70, 90, 3), np.uint8)).shape
    (70, 90)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np  # noqa: F401 - used by the doctest
import torch

from lowlight_matting.color import DARK_THRESHOLD
from lowlight_matting.export import load_onnx_session, onnx_stride
from lowlight_matting.weights import SHIPPED, load_model

from .matter import DEFAULT_LONG_SIDE, Matter
from .route import AutoMatter

__all__ = ["load_auto_matter", "load_matter", "load_model"]


def load_matter(
    checkpoint: str | os.PathLike | dict[str, Any] | torch.nn.Module,
    device: str | torch.device | None = None,
    long_side: int = DEFAULT_LONG_SIDE,
    precision: str = "auto",
    foreground: str = "ml",
    **kwargs: Any,
) -> Matter:
    """A :class:`Matter` from a shipped model name (``"cvunet-lowlight"``), a training checkpoint (``.pt``),
    exported ``.safetensors`` weights, an exported ``.onnx`` graph (run with onnxruntime on CPU), a loaded
    checkpoint dict or a model already in memory. ``name=`` labels it (default: the shipped name or the
    file's stem); other keyword arguments go to :class:`Matter`.

    Raises:
        CheckpointError / ExportError / ValueError: one line naming the file (or option) and the problem.
    """
    name = kwargs.pop("name", None)
    if isinstance(checkpoint, torch.nn.Module):
        model: Any = checkpoint
    elif not isinstance(checkpoint, dict) and Path(checkpoint).suffix.lower() == ".onnx":
        model, meta = load_onnx_session(checkpoint)
        kwargs.setdefault("stride", onnx_stride(meta, checkpoint))
    else:
        model = load_model(checkpoint)
    if name is None:
        if isinstance(checkpoint, dict | torch.nn.Module):
            name = "model"
        else:
            name = os.fspath(checkpoint) if os.fspath(checkpoint) in SHIPPED else Path(checkpoint).stem
    return Matter(
        model,
        device=device,
        long_side=long_side,
        precision=precision,
        foreground=foreground,
        name=name,
        **kwargs,
    )


def load_auto_matter(
    normal: str | os.PathLike | dict[str, Any] | torch.nn.Module = "cvunet-base",
    lowlight: str | os.PathLike | dict[str, Any] | torch.nn.Module = "cvunet-lowlight",
    threshold: float = DARK_THRESHOLD,
    **kwargs: Any,
) -> AutoMatter:
    """An :class:`AutoMatter` routing photos darker than ``threshold`` (mean linear luminance, default
    :data:`~lowlight_matting.color.DARK_THRESHOLD`) to ``lowlight``, others to ``normal``; each loaded with
    :func:`load_matter` (``kwargs``: ``device``, ``long_side``, ``precision``, ``foreground`` ...).
    Defaults: the two shipped models."""
    return AutoMatter(
        load_matter(normal, name="normal", **kwargs),
        load_matter(lowlight, name="lowlight", **kwargs),
        threshold=threshold,
    )
