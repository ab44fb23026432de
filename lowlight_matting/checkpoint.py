"""Checkpoints: written atomically, read without executing code.

Writing is here; reading is :mod:`lowlight_matting.weights` (the one reader of every model file), which
:func:`load_checkpoint` and :func:`model_from_checkpoint` call. :class:`CheckpointError` is defined there
and re-exported here.

A checkpoint is a plain ``dict`` saved with :func:`torch.save`; it is read back with
``torch.load(..., weights_only=True)``, which refuses any pickled callable or arbitrary object, so a
checkpoint from an untrusted source cannot run code. Everything in it must therefore be tensors, numbers,
strings, lists, tuples and dicts (NumPy RNG states are stored as lists/tensors, not ``ndarray``).

Keys (all but ``model`` and ``model_config`` optional):

- ``format``: :data:`FORMAT`
- ``model``: the model's ``state_dict``
- ``model_config``: keyword arguments of :func:`lowlight_matting.models.build_model` that rebuild it
- ``optimizer``, ``scaler``, ``scheduler``: their ``state_dict``
- ``epoch``, ``step``, ``stage``: where training stood
- ``rng``: random states (torch CPU/CUDA as tensors, NumPy and Python as plain lists)
- ``config``: the training configuration as a plain dict
- ``metrics``: last validation metrics
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from lowlight_matting.io import atomic_write
from lowlight_matting.weights.files import CheckpointError, read_checkpoint
from lowlight_matting.weights.load import load_model

__all__ = ["FORMAT", "CheckpointError", "load_checkpoint", "model_from_checkpoint", "save_checkpoint"]

FORMAT = "lowlight-matting/1"


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Save ``payload`` to ``path`` atomically: write a temp file in the same folder, then rename over.

    An interrupted save never leaves a truncated checkpoint behind.
    """
    data = {"format": FORMAT, **payload}
    return atomic_write(path, lambda tmp: torch.save(data, tmp))


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device | None = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` semantics (no code is executed).

    The reader is :func:`lowlight_matting.weights.files.read_checkpoint` (the one reader of model files;
    it lives there so the weights package needs nothing from this module).

    Raises:
        CheckpointError: the file is missing or not a regular file, holds objects other than tensors and
            plain containers (e.g. a pickled callable), or is not a dict.
    """
    return read_checkpoint(path, map_location=map_location)


def model_from_checkpoint(
    source: str | os.PathLike | dict[str, Any], map_location: str | torch.device | None = "cpu"
) -> torch.nn.Module:
    """Rebuild the model stored in a checkpoint (path or loaded dict) and load its weights (eval mode).

    This is :func:`lowlight_matting.weights.load_model` (the one loader: the config is validated, the model
    built with random init, non-finite weights refused); new code can call that directly.
    """
    return load_model(source, map_location="cpu" if map_location is None else map_location)
