"""FAST mode and notebook settings: one convention for the whole course.

Every notebook has one cell tagged ``parameters`` holding raw values only (papermill style), then calls
:func:`settings` once; everything else the notebook needs is derived from what it returns.

``LOWLIGHT_FAST=1`` (set by ``make test``) shrinks sizes, counts, epochs and steps so that each notebook runs
in well under a minute on 2 CPU cores. Unset, notebooks run at the size given in their parameters cell, which
a learner's laptop finishes in minutes.

FAST shrink rules (applied to integer parameters by name, so a notebook never spells out two sets of values):

============================================  ============
parameter name                                FAST value
============================================  ============
``size``, ``*_size`` (image side in pixels)   min(v, 64)
``n``, ``n_*`` (numbers of images/samples)    min(v, 4)
``epochs``, ``*_epochs``                      min(v, 1)
``steps``, ``*_steps``                        min(v, 3)
``batch_size``                                min(v, 4)
============================================  ============

A notebook that needs a different FAST value for one key passes it in ``fast_values``.

Example:
    >>> s = settings(fast=True, size=256, n_images=12, seed=0)
    >>> (s.size, s.n_images, s.seed, s.fast)
    (64, 4, 0, True)
"""

from __future__ import annotations

import os
import random
from types import SimpleNamespace
from typing import Any

import numpy as np

ENV_VAR = "LOWLIGHT_FAST"

_RULES: tuple[tuple[str, str, int], ...] = (
    # (match kind, pattern, cap)
    ("exact", "batch_size", 4),
    ("exact", "size", 64),
    ("suffix", "_size", 64),
    ("exact", "n", 4),
    ("prefix", "n_", 4),
    ("exact", "epochs", 1),
    ("suffix", "_epochs", 1),
    ("exact", "steps", 3),
    ("suffix", "_steps", 3),
)


def is_fast(fast: bool | None = None) -> bool:
    """Return ``fast`` if given, else whether ``LOWLIGHT_FAST`` is set to a true value (1/true/yes/on)."""
    if fast is not None:
        return bool(fast)
    return os.environ.get(ENV_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


def fast_cap(name: str) -> int | None:
    """The FAST-mode cap for a parameter called ``name``, or None when FAST leaves it alone."""
    for kind, pattern, cap in _RULES:
        if (
            (kind == "exact" and name == pattern)
            or (kind == "suffix" and name.endswith(pattern))
            or (kind == "prefix" and name.startswith(pattern))
        ):
            return cap
    return None


def shrink(
    params: dict[str, Any], fast: bool | None = None, fast_values: dict[str, Any] | None = None
) -> dict:
    """Apply the FAST rules to ``params`` (a copy is returned; nothing happens when FAST is off)."""
    out = dict(params)
    if not is_fast(fast):
        return out
    for key, value in params.items():
        cap = fast_cap(key)
        if cap is not None and isinstance(value, int) and not isinstance(value, bool):
            out[key] = min(value, cap)
    out.update(fast_values or {})
    return out


def settings(fast: bool | None = None, *, fast_values: dict[str, Any] | None = None, **params: Any):
    """Derive a notebook's run settings from its ``parameters`` cell.

    Shrinks ``params`` under FAST mode (see the module docstring), seeds Python, NumPy and torch with
    ``params["seed"]`` when present, makes sure nothing is fetched from a model hub (``HF_HUB_OFFLINE=1``),
    and returns a namespace with the params plus ``fast`` (bool).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    values = shrink(params, fast=fast, fast_values=fast_values)
    values["fast"] = is_fast(fast)
    seed = values.get("seed")
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            import torch

            torch.manual_seed(seed)
        except ImportError:  # pragma: no cover - torch is a hard dependency
            pass
    return SimpleNamespace(**values)
