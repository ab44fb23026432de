"""Matting metrics as the field computes them: SAD, MSE, Gradient and Connectivity error.

- :mod:`.reference` — the Deep Image Matting reference conventions on NumPy (one matte pair at a time, with
  an optional trimap): :func:`sad`, :func:`mse`, :func:`gradient_error`, :func:`connectivity_error`,
  :func:`compute_metrics` (all four), :func:`error_maps` (where each one punishes), :func:`make_trimap`, and
  the constants of the reference (σ = 1.4, thresholds 0.1…1, differences < 0.15 forgiven). Its docstring
  gives the formulas, the sources and every deliberate difference from the MATLAB files.
- :mod:`.batched` — SAD, MSE and Gradient on (B, 1, H, W) torch batches on any device, for validation
  during training (:func:`batch_metrics`).
- :mod:`.checks` — the input checks both share (shapes, dtypes, the [0, 1] range, trimap values), each
  error naming the argument.

Example:
    >>> import numpy as np
    >>> compute_metrics(np.zeros((10, 100)), np.ones((10, 100)))["sad"]
    1.0
"""

from lowlight_matting.metrics.batched import (
    batch_metrics,
    gradient_error_torch,
    mse_torch,
    sad_torch,
)
from lowlight_matting.metrics.reference import (
    CONNECTIVITY_MIN_DIFF,
    CONNECTIVITY_STEP,
    GRADIENT_EPSILON,
    GRADIENT_SIGMA,
    METRIC_NAMES,
    compute_metrics,
    connectivity_error,
    connectivity_levels,
    error_maps,
    gauss_gradient_kernels,
    gradient_error,
    gradient_magnitude,
    make_trimap,
    mse,
    sad,
)

__all__ = [
    "GRADIENT_SIGMA",
    "GRADIENT_EPSILON",
    "CONNECTIVITY_STEP",
    "CONNECTIVITY_MIN_DIFF",
    "METRIC_NAMES",
    "gauss_gradient_kernels",
    "gradient_magnitude",
    "connectivity_levels",
    "sad",
    "mse",
    "gradient_error",
    "connectivity_error",
    "compute_metrics",
    "error_maps",
    "make_trimap",
    "sad_torch",
    "mse_torch",
    "gradient_error_torch",
    "batch_metrics",
]
