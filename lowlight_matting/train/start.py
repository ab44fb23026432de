"""How a run starts: its model (from scratch, or from a trained model's weights) and, on ``--resume``, the
check that the config still describes the run being continued.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from torch import nn

from lowlight_matting.checkpoint import CheckpointError
from lowlight_matting.train.config import ConfigError, StageConfig, TrainConfig

__all__ = ["RESUME_FREE_KEYS", "build_model_for", "config_changes", "distill_teacher", "load_init_checkpoint"]


# ------------------------------------------------------------------------------------------------ the model
def build_model_for(cfg: TrainConfig) -> nn.Module:
    """The model ``cfg.model`` describes, starting from ``cfg.model.init_checkpoint`` when given.

    Call after seeding: the random initialisation draws from torch's global generator.
    """
    from lowlight_matting.models import build_model

    m = cfg.model
    model = build_model(encoder=m.encoder, llie=m.llie, pretrained=m.pretrained, **m.kwargs)
    if m.init_checkpoint:
        load_init_checkpoint(model, m.init_checkpoint)
    return model


def load_init_checkpoint(model: nn.Module, source: str | os.PathLike) -> dict[str, list[str]]:
    """Start ``model`` from the weights of a trained model: a shipped name (``cvunet-base``), a training
    checkpoint (``best.pt``) or exported ``.safetensors`` weights.

    Weights missing from the source are allowed only in the LLIE (added for fine-tuning); a new LLIE starts
    as the identity (:meth:`~lowlight_matting.models.ZeroDCEPP.identity_`), so the fine-tune begins exactly at
    the source model's predictions. Any other mismatch raises
    :class:`~lowlight_matting.checkpoint.CheckpointError`. Returns ``{"missing": [...], "unexpected": [...]}``.
    """
    from lowlight_matting.weights import read_model_file

    _, state, _ = read_model_file(source)
    own = model.state_dict()
    bad_shape = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if bad_shape:
        raise CheckpointError(
            f"{source}: weights of another architecture (shape mismatch in {bad_shape[:3]})"
        )
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("llie.")]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"{source}: does not fit the model (missing {missing[:3]}, unexpected {list(result.unexpected_keys)[:3]}); "
            "model.encoder and model.kwargs must match the source's model config"
        )
    llie = getattr(model, "llie", None)
    if llie is not None and any(k.startswith("llie.") for k in result.missing_keys):
        identity = getattr(llie, "identity_", None)
        if callable(identity):
            identity()
    return {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys)}


def distill_teacher(
    cfg: TrainConfig, model: nn.Module, device: torch.device, *, given: bool
) -> nn.Module | None:
    """A frozen copy (eval mode, no gradients, on ``device``) of the starting ``model`` for ``loss.distill``;
    None when the term is off. ``given``: the model was passed in rather than built from ``cfg`` (it is then
    the starting point even without ``model.init_checkpoint``). Call before a resume loads later weights."""
    if cfg.loss.distill <= 0:
        return None
    if not given and not cfg.model.init_checkpoint:
        raise ConfigError(
            "loss.distill: needs model.init_checkpoint (the trained model whose normal-light predictions it "
            "keeps); a model trained from scratch has nothing to keep"
        )
    teacher = copy.deepcopy(model).to(device).eval().requires_grad_(False)
    if cfg.channels_last:
        teacher.to(memory_format=torch.channels_last)
    return teacher


# ------------------------------------------------------------------------------------------------- resume
RESUME_FREE_KEYS = (
    "name",
    "out_dir",
    "device",
    "stop_after_epochs",
    "checkpoint.resume",
    "checkpoint.allow_config_change",
    "data.num_workers",
    "data.pin_memory",
    "logging",
)
"""Config keys (and sections) that may differ when a run is resumed: where it runs and what it prints.
Any other difference (seed, data, model, loss, stages, optimiser, precision ...) changes the run."""


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as dotted keys (``stages.0.lr``); free mappings keep their dict value."""
    if isinstance(d, dict) and prefix.rsplit(".", 1)[-1] not in ("kwargs", "simulator", "synthetic"):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(d, list) and prefix == "stages":
        out = {prefix: len(d)}
        for i, v in enumerate(d):
            out.update(_flatten(v, f"{prefix}.{i}"))
        return out
    return {prefix: d}


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The dotted keys whose values differ between two config dicts, except :data:`RESUME_FREE_KEYS`.

    Keys missing from ``old`` (added to the schema since the run started) count as changed only when the new
    value differs from the schema's default.
    """
    defaults = _flatten(TrainConfig().to_dict())
    a, b = _flatten(old), _flatten(new)
    changed = []
    for key in sorted(set(a) | set(b)):
        if any(key == f or key.startswith(f + ".") for f in RESUME_FREE_KEYS):
            continue
        before = a.get(key, defaults.get(key)) if key in a or key in defaults else None
        if key.startswith("stages.") and key not in a:
            before = _stage_default(key)
        if before != b.get(key):
            changed.append(key)
    return changed


def _stage_default(key: str) -> Any:
    field_name = key.split(".", 2)[2] if key.count(".") >= 2 else None
    return getattr(StageConfig(), field_name, None) if field_name else None
