"""Building a model from a model file: random initialisation from the validated config, then the weights.

Example:
    >>> import tempfile, os
    >>> from lowlight_matting.models import build_model
    >>> from lowlight_matting.checkpoint import save_checkpoint
    >>> m = build_model("test_convnext")
    >>> path = save_checkpoint(os.path.join(tempfile.mkdtemp(), "m.pt"), {"model": m.state_dict(), "model_config": m.config})
    >>> load_model(path).config == m.config
    True
"""

from __future__ import annotations

import os
from typing import Any

import torch

from lowlight_matting.models.config import ModelConfigError
from lowlight_matting.models.cvunet import build_model

from .files import CheckpointError, load_state_dict_checked, read_model_file

__all__ = ["load_model"]


def load_model(
    source: str | os.PathLike | dict[str, Any], map_location: str | torch.device = "cpu"
) -> torch.nn.Module:
    """The model in a shipped name / checkpoint / weights file / checkpoint dict, in eval mode on
    ``map_location``: built from the validated config with random initialisation, then the file's state dict
    loaded (see :func:`~.files.read_model_file`; nothing in the file is executed)."""
    cfg, state, meta = read_model_file(source)
    label = str(meta.get("source", "checkpoint"))
    try:
        model = build_model(**cfg)
    except ModelConfigError as e:  # e.g. a decoder over the size limit
        raise CheckpointError(f"{label}: {e}") from e
    load_state_dict_checked(model, state, label)
    return model.eval().to(map_location)
