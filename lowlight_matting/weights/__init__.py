"""Trained models shipped with the package, and the one reader of model files (by name or by path).

- :data:`SHIPPED`: ``"cvunet-base"`` (trained under normal light) and ``"cvunet-lowlight"`` (fine-tuned for
  low light), ``.safetensors`` files in this folder, each with a ``.md`` card saying how it was trained.
- :func:`read_model_file`: ``(model_config, state_dict, metadata)`` of a shipped name, a training checkpoint
  (``.pt``) or exported weights (``.safetensors``), validated: nothing in a file runs code, opens another
  file or sizes an allocation beyond the schema's bounds; non-finite weights are refused.
- :func:`load_model`: random-init build from the validated config, then the state dict (eval mode).
- :func:`load_shipped_into`: what ``build_model(..., pretrained="cvunet-base")`` uses.
- :func:`interpolate_weights`: the line between a base and its fine-tune (WiSE-FT).

Modules: :mod:`.files` reads (and imports no model code: ``build_model`` uses it for shipped names),
:mod:`.load` builds; :mod:`.interpolate` blends two models' weights; :mod:`.card` renders the model cards.
"""

from .files import (
    ARCHITECTURE_KEYS,
    SHIPPED,
    WEIGHTS_DIR,
    WEIGHTS_FORMAT,
    CheckpointError,
    is_weights_file,
    load_shipped_into,
    load_state_dict_checked,
    read_checkpoint,
    read_model_file,
    shipped_path,
)
from .interpolate import interpolate_weights
from .load import load_model

__all__ = [
    "ARCHITECTURE_KEYS",
    "SHIPPED",
    "WEIGHTS_DIR",
    "WEIGHTS_FORMAT",
    "CheckpointError",
    "read_checkpoint",
    "interpolate_weights",
    "is_weights_file",
    "load_model",
    "load_shipped_into",
    "load_state_dict_checked",
    "read_model_file",
    "shipped_path",
]
