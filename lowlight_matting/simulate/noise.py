"""Heteroscedastic sensor noise in linear light (the Poisson-Gaussian model), for NumPy arrays and torch tensors.

One formula, both backends (both simulators import it; it imports neither). torch is imported only when a
tensor is given, so the NumPy simulator stays free of it.
"""

from __future__ import annotations

import numpy as np

from lowlight_matting.color import _is_torch

__all__ = ["add_sensor_noise"]


def add_sensor_noise(linear, shot, read, rng=None):
    """Add sensor noise in linear light: ``y = x + sqrt(shot * max(x, 0) + read) * z``, z ~ N(0, 1).

    So ``E[y - x] = 0`` exactly and ``Var[y - x] = shot * x + read``: photon (shot) noise is Poisson with
    variance proportional to the signal, read noise is signal-independent. Like Brooks et al. 2019
    ("Unprocessing Images for Learned Raw Denoising") we use the Gaussian approximation of the Poisson part,
    which is accurate once a pixel collects more than a few photons and keeps the noise exactly zero-centred.
    The result is *not* clipped (clip when you quantise).

    ``linear``: float NumPy array or torch tensor, any shape. ``shot``, ``read``: non-negative scalars or
    arrays/tensors broadcastable to ``linear`` (e.g. per-sample ``(B, 1, 1, 1)``). ``rng``: NumPy Generator or
    seed for arrays, ``torch.Generator`` (on the tensor's device) for tensors. Returns the same type, shape
    and dtype.

    >>> x = np.full(100_000, 0.1)
    >>> y = add_sensor_noise(x, shot=0.01, read=1e-4, rng=0)
    >>> round(float((y - x).var()), 4)      # 0.01 * 0.1 + 1e-4
    0.0011
    """
    if _is_torch(linear):
        import torch

        if not linear.is_floating_point():
            raise TypeError(f"add_sensor_noise: linear must be a float tensor, got {linear.dtype}")
        if rng is not None and not isinstance(rng, torch.Generator):
            raise TypeError(
                f"add_sensor_noise: for tensors pass rng as a torch.Generator or None, got {rng!r}"
            )
        shot_t = torch.as_tensor(shot, dtype=linear.dtype, device=linear.device)
        read_t = torch.as_tensor(read, dtype=linear.dtype, device=linear.device)
        var = (shot_t * linear.clamp_min(0.0) + read_t).clamp_min(0.0)
        z = torch.randn(linear.shape, generator=rng, device=linear.device, dtype=linear.dtype)
        return linear + var.sqrt() * z
    x = np.asarray(linear)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"add_sensor_noise: linear must be a float array, got {x.dtype}")
    shot_a, read_a = np.asarray(shot, x.dtype), np.asarray(read, x.dtype)
    if np.any(shot_a < 0) or np.any(read_a < 0):
        raise ValueError(f"add_sensor_noise: shot and read must be >= 0, got shot={shot!r}, read={read!r}")
    rng = np.random.default_rng(rng)
    var = shot_a * np.maximum(x, 0) + read_a
    z = rng.standard_normal(x.shape, dtype=np.float64 if x.dtype == np.float64 else np.float32)
    return (x + np.sqrt(var) * z.astype(x.dtype, copy=False)).astype(x.dtype, copy=False)
