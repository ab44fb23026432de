"""Reading model files — a training checkpoint, exported weights, a shipped model by name — as data.

(Building a model from what is read is :mod:`.load`; this module imports no model code, so
``build_model(pretrained="cvunet-base")`` can use it without an import cycle.)

One reader, :func:`read_model_file`, for every way a trained CV-UNet arrives:

- a **shipped name** from :data:`SHIPPED` (``"cvunet-base"``, ``"cvunet-lowlight"``): a ``.safetensors``
  file installed with the package, in this folder (:func:`shipped_path`);
- a **training checkpoint** (``.pt``, :mod:`lowlight_matting.checkpoint`): read with
  ``torch.load(weights_only=True)``, which refuses pickled code;
- **exported weights** (``.safetensors``, written by :func:`lowlight_matting.export.save_weights`): a flat table
  of tensors with ``model_config`` (JSON) and :data:`WEIGHTS_FORMAT` in its header; float16 / bfloat16
  storage is cast back to float32.

Whatever the source, a file is data: it never chooses code, files or sizes. Its ``model_config`` passes
:func:`lowlight_matting.models.validate_model_config` (known keys, bounded sizes, a timm-registered encoder,
no key that makes timm open or fetch a file); every floating-point weight must be finite. :func:`load_model`
(:mod:`.load`) then builds the architecture with random initialisation and loads the state dict into it — nothing in the
file is executed, and the only file opened is the one named.

Errors are :class:`~lowlight_matting.checkpoint.CheckpointError` (a ``ValueError``): one line naming the
file and what is wrong.

Example:
    >>> import tempfile, os
    >>> from lowlight_matting.models import build_model
    >>> from lowlight_matting.checkpoint import save_checkpoint
    >>> m = build_model("test_convnext")
    >>> path = save_checkpoint(os.path.join(tempfile.mkdtemp(), "m.pt"), {"model": m.state_dict(), "model_config": m.config})
    >>> read_model_file(path)[0] == m.config
    True
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from lowlight_matting.io import file_problem
from lowlight_matting.models.config import ModelConfigError, validate_model_config

__all__ = [
    "ARCHITECTURE_KEYS",
    "SHIPPED",
    "WEIGHTS_DIR",
    "WEIGHTS_FORMAT",
    "CheckpointError",
    "is_weights_file",
    "load_shipped_into",
    "load_state_dict_checked",
    "read_checkpoint",
    "read_model_file",
    "shipped_path",
]


class CheckpointError(ValueError):
    """A model file (checkpoint, weights, shipped name) is missing, unreadable, unsafe or malformed; one line
    naming the file. Re-exported as :class:`lowlight_matting.checkpoint.CheckpointError`."""


WEIGHTS_FORMAT = "lowlight-matting-weights/1"
"""The ``format`` entry of an exported weights file's header."""

SHIPPED: dict[str, str] = {
    "cvunet-base": "cvunet_base.safetensors",
    "cvunet-lowlight": "cvunet_lowlight.safetensors",
}
"""Models installed with the package: name -> file in :data:`WEIGHTS_DIR` (each with a ``.md`` card)."""

WEIGHTS_DIR = Path(__file__).resolve().parent
"""Where the shipped ``.safetensors`` files live (this package's folder)."""

ARCHITECTURE_KEYS = ("encoder", "decoder_channels", "refine_input", "refine_channels", "image_skip_channels")
"""The config entries that decide the shape of every weight outside the LLIE."""


def read_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device | None = "cpu"
) -> dict[str, Any]:
    """A training checkpoint's dict, read with ``torch.load(weights_only=True)``: tensors and plain
    containers only, a pickled callable is refused (nothing is executed). The path is checked with
    ``os.stat`` first, so a FIFO or a symlink loop is named, never opened."""
    p = Path(path)
    problem = file_problem(p)
    if problem is not None:
        raise CheckpointError(f"{p}: checkpoint {problem}")
    try:
        data = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle.UnpicklingError, RuntimeError, EOFError ...
        raise CheckpointError(
            f"{p}: refused or unreadable checkpoint ({_first_line(e)}). "
            "Checkpoints are loaded with weights_only=True and may hold only tensors and plain containers."
        ) from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{p}: not a checkpoint dict (found {type(data).__name__})")
    return data


def shipped_path(name: str) -> Path:
    """The file of the shipped model ``name``; :class:`CheckpointError` for an unknown name (listing the
    known ones) or when the file is not installed."""
    if name not in SHIPPED:
        raise CheckpointError(f"{name}: not a file, nor a shipped model name (shipped: {', '.join(SHIPPED)})")
    p = WEIGHTS_DIR / SHIPPED[name]
    if file_problem(p) is not None:
        raise CheckpointError(f"shipped model {name!r} is not installed ({p} is missing)")
    return p


def is_weights_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is a safetensors file: by suffix, or by its header (8-byte length, then ``{``).
    Reads 9 bytes of a regular file only."""
    p = Path(path)
    if p.suffix.lower() == ".safetensors":
        return True
    if file_problem(p) is not None:
        return False
    try:
        with open(p, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__


def _check_tensors(state: Any, label: str) -> dict[str, torch.Tensor]:
    """A plain ``{str: Tensor}`` dict with finite floating-point values, float32 where floating."""
    if not isinstance(state, dict) or not state:
        raise CheckpointError(
            f"{label}: 'model' must be a non-empty dict of tensors, got {type(state).__name__}"
        )
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise CheckpointError(
                f"{label}: weights must map names to tensors; found {str(k)[:80]!r}: {type(v).__name__}"
            )
        if v.is_floating_point():
            if not bool(torch.isfinite(v).all()):
                raise CheckpointError(
                    f"{label}: weight {k!r} holds non-finite values (NaN or inf); refusing a broken model"
                )
            v = v.float()
        out[k] = v
    return out


def _read_safetensors(p: Path, label: str) -> tuple[Any, dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            if meta.get("format") != WEIGHTS_FORMAT or "model_config" not in meta:
                raise CheckpointError(
                    f"{label}: not a lowlight-matting weights file (header format {meta.get('format')!r:.60}, "
                    f"expected {WEIGHTS_FORMAT!r} with a model_config entry)"
                )
            try:
                config = json.loads(meta["model_config"])
            except ValueError as e:
                raise CheckpointError(f"{label}: model_config in the header is not valid JSON ({e})") from e
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except CheckpointError:
        raise
    except Exception as e:  # safetensors' header/length errors, truncated data, I/O
        raise CheckpointError(f"{label}: not a readable safetensors file ({_first_line(e)})") from e
    meta.pop("model_config", None)
    return config, tensors, meta


def _from_checkpoint(ckpt: dict[str, Any], label: str) -> tuple[Any, Any, dict[str, Any]]:
    if "model" not in ckpt or "model_config" not in ckpt:
        keys = ", ".join(sorted(str(k) for k in ckpt)[:12])
        raise CheckpointError(f"{label}: missing 'model' or 'model_config' entry (keys: {keys})")
    meta = {
        k: ckpt[k]
        for k in ("format", "step", "epoch", "stage")
        if k in ckpt and isinstance(ckpt[k], str | int | float | None)
    }
    return ckpt["model_config"], ckpt["model"], meta


def read_model_file(
    source: str | os.PathLike | dict[str, Any],
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """``(model_config, state_dict, metadata)`` of a shipped name, a checkpoint file, a weights file or a
    checkpoint dict already loaded; all checked (see the module docstring).

    ``model_config`` is validated (``pretrained`` is None), ``state_dict`` holds float32 finite tensors,
    ``metadata`` says where it came from (``kind``: ``"shipped"``, ``"weights"`` or ``"checkpoint"``;
    ``source``; the header's entries or the checkpoint's ``format``/``step``/``stage``).

    Raises:
        CheckpointError: one line naming the file and the problem.
    """
    if isinstance(source, dict):
        label = "checkpoint"
        raw_cfg, state, meta = _from_checkpoint(source, label)
        meta["kind"] = "checkpoint"
    else:
        name = os.fspath(source)
        if isinstance(name, str) and name in SHIPPED:
            p, label, kind = shipped_path(name), f"{name} ({shipped_path(name)})", "shipped"
        else:
            p = Path(name)
            label, kind = str(p), None
            problem = file_problem(p)
            if problem == "file not found" and isinstance(name, str) and not p.suffix and os.sep not in name:
                shipped_path(name)  # raises: neither a file nor a shipped name
            if problem is not None:
                raise CheckpointError(f"{p}: {problem}")
            if p.suffix.lower() == ".onnx":
                raise CheckpointError(
                    f"{p}: an ONNX graph holds no PyTorch weights (run it with deploy.load_matter)"
                )
        if is_weights_file(p):
            raw_cfg, state, meta = _read_safetensors(p, label)
            kind = kind or "weights"
        else:
            raw_cfg, state, meta = _from_checkpoint(read_checkpoint(p), label)
            kind = kind or "checkpoint"
        meta = {**meta, "kind": kind, "source": label}
    try:
        cfg = validate_model_config(raw_cfg, label)
    except ModelConfigError as e:
        raise CheckpointError(str(e)) from e
    return cfg, _check_tensors(state, label), meta


def load_state_dict_checked(
    model: torch.nn.Module, state: dict[str, torch.Tensor], label: str, skip: tuple[str, ...] = ()
) -> torch.nn.Module:
    """``model.load_state_dict(state)`` with a one-line error (missing / unexpected / reshaped keys, an
    example of each) instead of torch's multi-line one. Keys starting with a ``skip`` prefix are left out on
    both sides (the model keeps its own values for them)."""
    own = (
        {k: v for k, v in model.state_dict().items() if not k.startswith(skip)}
        if skip
        else model.state_dict()
    )
    given = {k: v for k, v in state.items() if not k.startswith(skip)} if skip else state
    missing = sorted(own.keys() - given.keys())
    unexpected = sorted(given.keys() - own.keys())
    reshaped = sorted(k for k in own.keys() & given.keys() if own[k].shape != given[k].shape)
    if missing or unexpected or reshaped:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]!r})")
        if reshaped:
            k = reshaped[0]
            parts.append(
                f"{len(reshaped)} of another shape (e.g. {k!r}: {tuple(given[k].shape)} vs {tuple(own[k].shape)})"
            )
        raise CheckpointError(
            f"{label}: weights do not fit the model its config describes: {', '.join(parts)}"
        )
    model.load_state_dict(given, strict=not skip)  # copies (and casts) into the model's own parameters
    return model


def load_shipped_into(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """Load the shipped model ``name``'s weights into ``model`` (built by ``build_model``), all but the LLIE's.

    Every weight outside ``model.llie`` must fit: the model's :data:`ARCHITECTURE_KEYS` must equal the
    shipped config's, else a one-line error lists the settings that differ. The LLIE (if the model has one)
    keeps its fresh initialisation; a shipped LLIE is not used.
    """
    cfg, state, _ = read_model_file(name)
    own = getattr(model, "config", {}) or {}
    differ = [k for k in ARCHITECTURE_KEYS if k in cfg and k in own and cfg[k] != own[k]]
    if differ:
        shipped = ", ".join(f"{k}={cfg[k]!r}" for k in differ)
        asked = ", ".join(f"{k}={own[k]!r}" for k in differ)
        raise ModelConfigError(
            f"build_model: pretrained={name!r} does not fit: the shipped model has {shipped}; asked for {asked}"
        )
    return load_state_dict_checked(model, state, f"{name} ({shipped_path(name)})", skip=("llie.",))
