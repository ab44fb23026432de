"""Configs as files and command-line edits: YAML in and out, ``key.sub=value`` overrides, merging.

Example:
    >>> from lowlight_matting.train.config import StageConfig, TrainConfig
    >>> cfg = TrainConfig(stages=[StageConfig(name="all", epochs=2, lr=1e-3)])
    >>> cfg = apply_overrides(cfg, ["data.batch_size=4", "stages.0.lr=5e-4", "amp.mode=off"])
    >>> cfg.data.batch_size, cfg.stages[0].lr, cfg.amp.mode
    (4, 0.0005, 'off')
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from lowlight_matting.io import atomic_write
from lowlight_matting.train.config import ConfigError, TrainConfig

__all__ = ["apply_overrides", "merge_config", "read_config_file", "save_config"]


# ------------------------------------------------------------------------------------------------- overrides
def _parse_value(text: str) -> Any:
    """A command-line value: YAML scalar/list/mapping syntax (``1e-4``, ``true``, ``null``, ``[a, b]``)."""
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # YAML 1.1 reads "1e-4" as a string; accept it as a number
    if isinstance(v, str):
        try:
            return float(v) if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", v) else v
        except ValueError:
            return v
    return v


def apply_overrides(cfg: TrainConfig, overrides: list[str] | None) -> TrainConfig:
    """Return a copy of ``cfg`` with ``key.sub=value`` overrides applied (then validated).

    Keys are dotted paths; list items are addressed by index (``stages.1.lr=5e-5``); values use YAML
    syntax (``model.llie=null``, ``stages.0.freeze=[encoder, decoder]``).
    """
    data = cfg.to_dict()
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value (e.g. data.batch_size=16)")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = data
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            where = ".".join(parts[: i + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"override {key}: {where} is not an index of a list of {len(node)}")
                idx = int(part)
                if last:
                    node[idx] = _parse_value(text)
                else:
                    node = node[idx]
            elif isinstance(node, dict):
                if part not in node and not (last and _is_free_mapping(data, parts[:-1])):
                    raise ConfigError(
                        f"override {key}: unknown key {where} (known: {', '.join(sorted(node))})"
                    )
                if last:
                    node[part] = _parse_value(text)
                else:
                    node = node[part]
            else:
                raise ConfigError(f"override {key}: {'.'.join(parts[:i])} is a value, not a section")
    return TrainConfig.from_dict(data)


def _is_free_mapping(data: dict, parts: list[str]) -> bool:
    """Free-form mappings (model.kwargs, data.simulator) accept new keys."""
    return len(parts) == 2 and parts[0] in ("model", "data") and parts[1] in _FREE_MAPPINGS


# ------------------------------------------------------------------------------------------------------ YAML
def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping a YAML config file holds (not yet validated); errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    return data


def merge_config(base: dict, over: dict) -> dict:
    """``over`` laid on ``base``, section by section (free mappings like ``model.kwargs`` are replaced whole)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in _FREE_MAPPINGS:
            out[k] = merge_config(out[k], v)
        else:
            out[k] = v
    return out


_FREE_MAPPINGS = ("kwargs", "simulator", "synthetic")


def save_config(cfg: TrainConfig, path: str | os.PathLike) -> Path:
    """Write ``cfg`` as YAML (keys in definition order), atomically."""
    return atomic_write(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
