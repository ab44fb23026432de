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

from lowlight_matting.io import atomic_write

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
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint file not found")
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
    """Rebuild the model stored in a checkpoint (path or loaded dict) and load its weights (eval mode)."""
    from lowlight_matting.models import build_model

    ckpt = source if isinstance(source, dict) else load_checkpoint(source, map_location=map_location)
    name = "checkpoint" if isinstance(source, dict) else str(source)
    if "model" not in ckpt or "model_config" not in ckpt:
        raise CheckpointError(f"{name}: missing 'model' or 'model_config' entry (keys: {sorted(ckpt)})")
    cfg = dict(ckpt["model_config"])
    cfg["pretrained"] = None  # the checkpoint holds the weights; never look for the original file
    model = build_model(**cfg)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{name}: weights do not fit the model it describes ({e})") from e
    return model.eval()
