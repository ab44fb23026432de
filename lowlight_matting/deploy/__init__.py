"""Using a trained matting model on real photos: any size in, full-resolution alpha and RGBA cut-out out.

- :mod:`.matter` — :class:`Matter`: input checks, working resolution, padding to the model's stride, the
  network, the output check, foreground colours (:func:`estimate_foreground`);
- :mod:`.upsample` — the guided filter and fast guided upsampling that bring the alpha back to full size
  (He, Sun & Tang 2010; He & Sun 2015), noise estimation (Immerkaer 1996);
- :mod:`.route` — :func:`image_brightness`, :class:`AutoMatter` and :class:`Route` (switching by brightness,
  threshold :data:`~lowlight_matting.color.DARK_THRESHOLD`), :func:`calibrate_threshold`;
- :mod:`.load` — :func:`load_matter`, :func:`load_auto_matter`, :func:`load_model` (shipped names,
  checkpoints, weights, ONNX).

Example:
    >>> import numpy as np
    >>> from lowlight_matting.models import build_model
    >>> matter = Matter(build_model("test_convnext"), long_side=64, foreground="none")
    >>> matter.predict(np.zeros((300, 201, 3), np.uint8)).shape
    (300, 201)
"""

from lowlight_matting.color import DARK_THRESHOLD

from .load import load_auto_matter, load_matter, load_model
from .matter import (
    DEFAULT_LONG_SIDE,
    FOREGROUND_METHODS,
    PRECISIONS,
    UPSAMPLE_METHODS,
    Matter,
    check_image,
    estimate_foreground,
    model_stride,
    working_size,
)
from .route import (
    BRIGHTNESS_METHODS,
    AutoMatter,
    Calibration,
    Route,
    balanced_accuracy,
    calibrate_threshold,
    calibration_images,
    image_brightness,
    threshold_between,
)
from .upsample import (
    box_mean,
    estimate_noise,
    guide_noise,
    guided_filter,
    guided_filter_coefficients,
    guided_upsample,
    resize_bilinear_rows,
)

__all__ = [
    "BRIGHTNESS_METHODS",
    "DARK_THRESHOLD",
    "DEFAULT_LONG_SIDE",
    "FOREGROUND_METHODS",
    "PRECISIONS",
    "UPSAMPLE_METHODS",
    "AutoMatter",
    "Calibration",
    "Matter",
    "Route",
    "balanced_accuracy",
    "box_mean",
    "calibrate_threshold",
    "calibration_images",
    "check_image",
    "estimate_foreground",
    "estimate_noise",
    "guide_noise",
    "guided_filter",
    "guided_filter_coefficients",
    "guided_upsample",
    "image_brightness",
    "load_auto_matter",
    "load_matter",
    "load_model",
    "model_stride",
    "resize_bilinear_rows",
    "threshold_between",
    "working_size",
]
