"""Batch matting items into float32 tensors for the model and the losses.

Example:
    >>> import numpy as np
    >>> item = {"image": np.zeros((8, 6, 3), np.uint8), "alpha": np.ones((8, 6), np.float32)}
    >>> batch = collate_matting([item, item])
    >>> tuple(batch["image"].shape), tuple(batch["alpha"].shape), batch["image"].dtype
    ((2, 3, 8, 6), (2, 1, 8, 6), torch.float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

RGB_KEYS = ("image", "normal", "fg", "bg")
ALPHA_KEYS = ("alpha", "trimap")


def _rgb(value: Any, key: str, i: int):
    """(H, W, 3) uint8/float array or (3, H, W) tensor -> float32 (3, H, W) in [0, 1]."""
    import torch

    if isinstance(value, torch.Tensor):
        t = value
        if t.ndim == 3 and t.shape[0] != 3 and t.shape[-1] == 3:
            t = t.permute(2, 0, 1)
    else:
        a = np.asarray(value)
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"collate_matting: item {i} {key!r} must be (H, W, 3), got shape {a.shape}")
        t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))
    if t.ndim != 3 or t.shape[0] != 3:
        raise ValueError(
            f"collate_matting: item {i} {key!r} must be (H, W, 3) or (3, H, W), got {tuple(t.shape)}"
        )
    if t.dtype == torch.uint8:
        return t.float().div_(255.0)
    return t.float()


def _alpha(value: Any, key: str, i: int):
    """(H, W) or (1, H, W) / (H, W, 1) -> float32 (1, H, W) in [0, 1]."""
    import torch

    t = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
    if t.ndim == 3 and t.shape[-1] == 1 and t.shape[0] != 1:
        t = t[..., 0]
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[0] != 1:
        raise ValueError(f"collate_matting: item {i} {key!r} must be (H, W), got shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        return t.float().div_(255.0)
    return t.float()


def collate_matting(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``DataLoader(collate_fn=collate_matting)``: stack items into a batch.

    Returns float32 tensors ``image`` (B, 3, H, W) in [0, 1] and ``alpha`` (B, 1, H, W), plus ``normal``,
    ``fg``, ``bg`` (B, 3, H, W) and ``trimap`` (B, 1, H, W) when the items have them, and ``lowlight`` as a
    bool tensor (B,). Other numbers become tensors; anything else (e.g. names) a list. uint8 is scaled by
    1/255; float input is taken as already in [0, 1]. Every item needs the same keys and sizes.
    """
    import torch  # imported here so that `import lowlight_matting.data` stays light

    if not items:
        raise ValueError("collate_matting: empty batch")
    keys = list(items[0])
    for i, it in enumerate(items):
        if set(it) != set(keys):
            raise ValueError(f"collate_matting: item {i} has keys {sorted(it)}, item 0 has {sorted(keys)}")
    out: dict[str, Any] = {}
    for key in keys:
        values = [it[key] for it in items]
        if key in RGB_KEYS or key in ALPHA_KEYS:
            conv = _rgb if key in RGB_KEYS else _alpha
            ts = [conv(v, key, i) for i, v in enumerate(values)]
            shapes = {tuple(t.shape) for t in ts}
            if len(shapes) > 1:
                raise ValueError(f"collate_matting: {key!r} sizes differ within the batch: {sorted(shapes)}")
            out[key] = torch.stack(ts)
        elif all(isinstance(v, (bool, np.bool_)) for v in values):
            out[key] = torch.tensor([bool(v) for v in values])
        elif all(isinstance(v, (int, float, np.integer, np.floating)) for v in values):
            out[key] = torch.tensor(np.asarray(values))
        else:
            out[key] = list(values)
    for key in ("image", "alpha"):
        if key not in out:
            raise ValueError(f"collate_matting: items have no {key!r} (keys: {keys})")
    return out
