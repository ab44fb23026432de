"""Checkpoints: written atomically, read without executing code.

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

from lowlight_matting.io import atomic_write, file_problem

FORMAT = "lowlight-matting/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, unsafe, or not a lowlight-matting checkpoint."""


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

    Raises:
        CheckpointError: the file is missing, holds objects other than tensors and plain containers
            (e.g. a pickled callable), or is not a dict.
    """
    p = Path(path)
    problem = file_problem(p)  # os.stat only: a FIFO or a symlink loop is named, never opened
    if problem is not None:
        raise CheckpointError(f"{p}: checkpoint {problem}")
    try:
        data = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle.UnpicklingError, RuntimeError, EOFError ...
        raise CheckpointError(
            f"{p}: refused or unreadable checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            "Checkpoints are loaded with weights_only=True and may hold only tensors and plain containers."
        ) from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{p}: not a checkpoint dict (found {type(data).__name__})")
    return data


def model_from_checkpoint(
    source: str | os.PathLike | dict[str, Any], map_location: str | torch.device | None = "cpu"
) -> torch.nn.Module:
    """Rebuild the model stored in a checkpoint (path or loaded dict) and load its weights (eval mode).

    Kept for existing callers; it is :func:`lowlight_matting.weights.load_model` (the one loader: the config
    is validated, the model built with random init, non-finite weights refused). New code should call that.
    The import is function-local because the weights package reads checkpoints with this module.
    """
    from lowlight_matting.weights import load_model

    return load_model(source, map_location="cpu" if map_location is None else map_location)
