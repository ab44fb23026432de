"""The schema of a model config: the arguments of :func:`~lowlight_matting.models.build_model`, checked.

A model config travels inside files — a training checkpoint's ``model_config``, the metadata header of an
exported ``.safetensors`` file, an ONNX graph's metadata — and a file is data: it must never choose code,
files or sizes to allocate. :func:`validate_model_config` is the one gate every config passes before a model
is built from it (``build_model`` calls it on its own arguments too, so a training config is checked the
same way):

=======================  ===============================================================================
key                      accepted
=======================  ===============================================================================
``encoder``              a model name in timm's registry (``timm.is_model``), e.g. ``test_convnext``;
                         plain ``name`` or ``name.tag``, never a hub (``hf-hub:``) or folder
                         (``local-dir:``) reference
``llie``                 None, ``"zero_dce_pp"`` or ``"illumination"``
``pretrained``           from a file: None (a string — the encoder file a model was *initialised* from,
                         written by older versions — is provenance only and dropped, never opened); from
                         a caller: None, a local encoder weights file or a shipped model name
``decoder_channels``     None or a list of 1 to :data:`MAX_DECODER_LEVELS` ints in [1, :data:`MAX_WIDTH`]
``refine_input``         ``"enhanced"``, ``"input"`` or ``"both"``
``refine_channels``,     ints in [1, :data:`MAX_SMALL_WIDTH`]
``image_skip_channels``
``llie_scale_factor``    a finite number in [1, :data:`MAX_LLIE_SCALE`]
``encoder_kwargs``       a dict with only :data:`ENCODER_KWARGS` keys (``drop_rate``, ``drop_path_rate``:
                         finite, in [0, 1)); never ``checkpoint_path``, ``pretrained``,
                         ``pretrained_cfg``, ``pretrained_cfg_overlay``, ``file``, ``url`` or any other
                         key timm would act on
=======================  ===============================================================================

Unknown keys are refused (a typo is an error, not a silent default). Bounds keep a hostile file from asking
for terabytes (``decoder_channels: [200000] * 5`` would be 1.4 TB of float32); ``build_model`` also refuses a
decoder of more than :data:`MAX_DECODER_PARAMS` parameters once the encoder's widths are known.

Errors are :class:`ModelConfigError` (a ``ValueError``), one line naming the source and the key.

Example:
    >>> validate_model_config({"encoder": "test_convnext", "decoder_channels": [32, 24, 16, 16, 8]}, "m.pt")["encoder"]
    'test_convnext'
    >>> validate_model_config({"encoder": "test_convnext", "encoder_kwargs": {"checkpoint_path": "x"}}, "m.pt")
    Traceback (most recent call last):
    ...
    lowlight_matting.models.config.ModelConfigError: m.pt: model_config: encoder_kwargs: key 'checkpoint_path' is not allowed (allowed: drop_path_rate, drop_rate)
"""

from __future__ import annotations

import math
import os
import re
from numbers import Real
from typing import Any

from .llie import LLIE_CHOICES

__all__ = [
    "ENCODER_KWARGS",
    "MAX_DECODER_LEVELS",
    "MAX_DECODER_PARAMS",
    "MAX_LLIE_SCALE",
    "MAX_SMALL_WIDTH",
    "MAX_WIDTH",
    "MODEL_CONFIG_KEYS",
    "REFINE_INPUTS",
    "ModelConfigError",
    "check_encoder_name",
    "validate_model_config",
]

REFINE_INPUTS = ("enhanced", "input", "both")
MODEL_CONFIG_KEYS = (
    "encoder",
    "llie",
    "pretrained",
    "decoder_channels",
    "refine_input",
    "refine_channels",
    "image_skip_channels",
    "llie_scale_factor",
    "encoder_kwargs",
)
MAX_DECODER_LEVELS = 8
"""At most 8 decoder levels: an encoder of total stride up to 256."""
MAX_WIDTH = 4096
"""Widest decoder level accepted (the course's widest is 256)."""
MAX_SMALL_WIDTH = 1024
"""Widest refinement / image-skip branch accepted (the course uses 16)."""
MAX_LLIE_SCALE = 32
"""Largest LLIE down-scaling factor accepted (Zero-DCE++'s authors use 12 for 1200x900 photos)."""
MAX_DECODER_PARAMS = 100_000_000
"""Largest decoder + head ``build_model`` builds (400 MB of float32; the course's are under 3 M)."""
ENCODER_KWARGS = ("drop_path_rate", "drop_rate")
"""The only ``timm.create_model`` arguments a config may pass: regularisation rates that change no file,
no download and no tensor size."""

# a timm registry name, optionally with a pretrained tag: letters, digits, underscores (no ':', '/', '.')
_NAME = re.compile(r"[A-Za-z0-9_]{1,100}(\.[A-Za-z0-9_]{1,100})?")


class ModelConfigError(ValueError):
    """A model config (from a file or from a caller) is malformed; the message names the source and the key."""


def check_encoder_name(name: Any, where: str = "encoder") -> str:
    """``name`` if it is a model in timm's registry (optionally ``name.tag``), else :class:`ModelConfigError`.

    Refuses hub and folder references (``hf-hub:org/model``, ``local-dir:/path``, ``timm/name``): timm would
    fetch or open files for them even without ``pretrained``.
    """
    from timm.models import is_model, split_model_name_tag

    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ModelConfigError(
            f"{where}: {name!r} is not a timm model name (letters, digits and '_', optionally '.tag')"
        )
    if not is_model(split_model_name_tag(name)[0]):
        raise ModelConfigError(f"{where}: unknown timm model {name!r} (see timm.list_models())")
    return name


def _int(value: Any, lo: int, hi: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ModelConfigError(f"{where}: expected an integer in [{lo}, {hi}], got {value!r:.80}")
    return int(value)


def _number(value: Any, lo: float, hi: float, where: str, hi_open: bool = False) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = lo <= v < hi if hi_open else lo <= v <= hi
    if not ok:
        bracket = ")" if hi_open else "]"
        raise ModelConfigError(
            f"{where}: expected a finite number in [{lo:g}, {hi:g}{bracket}, got {value!r:.80}"
        )
    return value  # type: ignore[return-value]  # kept as given (int stays int) so configs round-trip


def validate_model_config(cfg: Any, source: str = "model_config", from_file: bool = True) -> dict[str, Any]:
    """Check a model config against the schema in the module docstring; return a clean copy.

    Args:
        cfg: the config (a dict of :func:`~lowlight_matting.models.build_model` keyword arguments).
        source: what to name in errors: the file it came from, or ``"build_model"``.
        from_file: True for a config read from a file: then ``pretrained`` may only be None (a string is
            dropped as provenance, see the module docstring). False for a caller's own arguments, where
            ``pretrained`` may name a local encoder weights file or a shipped model.

    Returns:
        a new dict with the keys given (lists copied; ``pretrained`` None when ``from_file``).

    Raises:
        ModelConfigError: one line, ``"<source>: model_config: <key>: <what is wrong>"``.
    """
    prefix = f"{source}: model_config" if from_file else source
    if not isinstance(cfg, dict):
        raise ModelConfigError(
            f"{prefix}: expected a dict of build_model arguments, got {type(cfg).__name__}"
        )
    unknown = [k for k in cfg if k not in MODEL_CONFIG_KEYS]
    if unknown:
        raise ModelConfigError(
            f"{prefix}: unknown key {str(unknown[0])!r:.80} (known: {', '.join(MODEL_CONFIG_KEYS)})"
        )
    out: dict[str, Any] = {}
    if "encoder" in cfg:
        out["encoder"] = check_encoder_name(cfg["encoder"], f"{prefix}: encoder")
    elif from_file:
        raise ModelConfigError(f"{prefix}: missing key 'encoder'")
    if "llie" in cfg:
        llie = cfg["llie"]
        if llie is not None and llie not in LLIE_CHOICES:
            raise ModelConfigError(
                f"{prefix}: llie: expected None or one of {LLIE_CHOICES}, got {llie!r:.80}"
            )
        out["llie"] = llie
    if "pretrained" in cfg:
        p = cfg["pretrained"]
        if from_file:
            if p is not None and not isinstance(p, str):
                raise ModelConfigError(
                    f"{prefix}: pretrained: must be None in a file (its weights are in the file), got {p!r:.80}"
                )
            out["pretrained"] = None  # provenance only: never opened
        else:
            if p is not None and not isinstance(p, str | os.PathLike):
                raise ModelConfigError(
                    f"{prefix}: pretrained: expected None, a local encoder weights file or a shipped model "
                    f"name, got {p!r:.80}"
                )
            out["pretrained"] = p
    if "decoder_channels" in cfg and cfg["decoder_channels"] is not None:
        dc = cfg["decoder_channels"]
        if not isinstance(dc, list | tuple) or not 1 <= len(dc) <= MAX_DECODER_LEVELS:
            raise ModelConfigError(
                f"{prefix}: decoder_channels: expected a list of 1 to {MAX_DECODER_LEVELS} integers, got {dc!r:.80}"
            )
        out["decoder_channels"] = [
            _int(c, 1, MAX_WIDTH, f"{prefix}: decoder_channels[{i}]") for i, c in enumerate(dc)
        ]
    elif "decoder_channels" in cfg:
        out["decoder_channels"] = None
    if "refine_input" in cfg:
        if cfg["refine_input"] not in REFINE_INPUTS:
            raise ModelConfigError(
                f"{prefix}: refine_input: expected one of {REFINE_INPUTS}, got {cfg['refine_input']!r:.80}"
            )
        out["refine_input"] = cfg["refine_input"]
    for key in ("refine_channels", "image_skip_channels"):
        if key in cfg:
            out[key] = _int(cfg[key], 1, MAX_SMALL_WIDTH, f"{prefix}: {key}")
    if "llie_scale_factor" in cfg:
        out["llie_scale_factor"] = _number(
            cfg["llie_scale_factor"], 1, MAX_LLIE_SCALE, f"{prefix}: llie_scale_factor"
        )
    if "encoder_kwargs" in cfg and cfg["encoder_kwargs"] is not None:
        ek = cfg["encoder_kwargs"]
        if not isinstance(ek, dict):
            raise ModelConfigError(f"{prefix}: encoder_kwargs: expected a dict, got {type(ek).__name__}")
        for k in ek:
            if k not in ENCODER_KWARGS:
                raise ModelConfigError(
                    f"{prefix}: encoder_kwargs: key {str(k)!r:.80} is not allowed (allowed: {', '.join(ENCODER_KWARGS)})"
                )
        out["encoder_kwargs"] = {
            k: _number(v, 0.0, 1.0, f"{prefix}: encoder_kwargs.{k}", hi_open=True) for k, v in ek.items()
        }
    elif "encoder_kwargs" in cfg:
        out["encoder_kwargs"] = None
    return out
