"""Simulating low light: the seed article's recipe (kept for comparison) and a physically based simulator.

Modules, one job each:

* :mod:`.article` -- :func:`simulate_low_light`, the article's recipe, flaws included (chapter 01 shows them);
* :mod:`.params` -- the one table of ranges :data:`DEFAULT_RANGES`, the :data:`SIMULATOR_PRESETS`, and the one
  parameter law :func:`~.params.draw_params` that both simulators draw from;
* :mod:`.noise` -- :func:`add_sensor_noise`, zero-mean noise of variance ``shot * x + read`` in linear light
  (the Poisson-Gaussian model in the Gaussian form of Brooks et al. 2019, "Unprocessing Images for Learned
  Raw Denoising"), NumPy or torch;
* :mod:`.numpy_sim` -- :class:`LowLightSimulator`, one uint8 image at a time (DataLoader workers, the CLI,
  the test sets);
* :mod:`.torch_sim` -- :func:`simulate_batch`, a whole float batch at once on any device (the training loop).

Both simulators draw the same parameters from the same law and apply the same steps (sRGB -> linear, colour
cast, motion blur, exposure cut, sensor noise, digital gain, sRGB, tone, 8 bits, JPEG); what still differs is
listed in :mod:`.torch_sim`. The alpha matte is never touched: the simulators take images only. The sRGB
transfer and luminance live in :mod:`lowlight_matting.color` (import them from there).

Importing this package does not import torch; :func:`simulate_batch` and the other torch names load
:mod:`.torch_sim` on first use.

Example:
    >>> import numpy as np
    >>> from lowlight_matting.simulate import LowLightSimulator
    >>> image = np.full((32, 32, 3), 180, np.uint8)
    >>> sim = LowLightSimulator(seed=0)
    >>> dark = sim(image)
    >>> bool(dark.mean() < image.mean()), sorted(sim.last_params)[:3]
    (True, ['blur_angle', 'blur_length', 'gain'])
    >>> np.array_equal(sim.apply(image, **sim.last_params), dark)   # the deterministic form
    True
"""

from __future__ import annotations

import importlib
from typing import Any

from lowlight_matting.simulate.article import simulate_low_light
from lowlight_matting.simulate.noise import add_sensor_noise
from lowlight_matting.simulate.numpy_sim import (
    LowLightSimulator,
    jpeg_roundtrip,
    motion_blur_kernel,
    sample_params,
)
from lowlight_matting.simulate.params import (
    DEFAULT_RANGES,
    PARAM_DEFAULTS,
    SIMULATOR_PRESETS,
    check_ranges,
    draw_params,
    preset_ranges,
)

_TORCH_NAMES = ("apply_batch", "motion_blur_kernels", "sample_params_torch", "simulate_batch")

__all__ = [
    "DEFAULT_RANGES",
    "PARAM_DEFAULTS",
    "SIMULATOR_PRESETS",
    "LowLightSimulator",
    "add_sensor_noise",
    "check_ranges",
    "draw_params",
    "jpeg_roundtrip",
    "motion_blur_kernel",
    "preset_ranges",
    "sample_params",
    "simulate_low_light",
    *_TORCH_NAMES,
]


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        value = getattr(importlib.import_module(f"{__name__}.torch_sim"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
