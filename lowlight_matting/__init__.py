"""lowlight_matting: adapt a CV-UNet image-matting model (RGB in, alpha out, no trimap) to low-light photos.

The package behind the course in ``notebooks/``: every function a chapter uses lives here. The public API
is flat (``from lowlight_matting import LowLightSimulator, build_model, compute_metrics``); names are
resolved lazily, so ``import lowlight_matting`` does not import torch or timm until a name needs them.

Modules, one job each: :mod:`.color` (sRGB, luminance and the one meaning of "dark"), :mod:`.simulate` (low
light), :mod:`.augment` (albumentations pipeline), :mod:`.data` (matting datasets), :mod:`.models` (CV-UNet,
encoders, LLIE), :mod:`.losses`, :mod:`.train` (the one training loop, presets, staged fine-tuning),
:mod:`.weights` (the shipped models ``cvunet-base`` / ``cvunet-lowlight``, loaded by name),
:mod:`.metrics` and :mod:`.evaluation`, :mod:`.deploy` and :mod:`.export`, :mod:`.experiment` (the demo:
recipe, run, report), :mod:`.widgets` and :mod:`.viz`, :mod:`.io` (image reading with limits, atomic
writes), :mod:`.checkpoint`, :mod:`.device`, :mod:`.course` (FAST mode), :mod:`.seeding`.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, ...]] = {
    "color": (
        "srgb_to_linear",
        "linear_to_srgb",
        "luminance",
        "mean_luminance",
        "is_dark",
        "DARK_THRESHOLD",
        "composite",
    ),
    "simulate": (
        "simulate_low_light",
        "add_sensor_noise",
        "LowLightSimulator",
        "simulate_batch",
        "SIMULATOR_PRESETS",
    ),
    "augment": ("build_train_transform", "build_article_transform"),
    "widgets": ("low_light_explorer",),
    "viz": ("contact_sheet", "image_grid"),
    "data": (
        "SyntheticMattingDataset",
        "FolderMattingDataset",
        "LowLightPairs",
        "collate_matting",
        "load_samples",
        "alpha_statistics",
    ),
    "models": (
        "build_model",
        "ENCODER_PRESETS",
        "ZeroDCEPP",
        "load_official_zero_dce_pp",
        "IlluminationEstimator",
        "ZeroDCELoss",
        "validate_model_config",
    ),
    "losses": ("MattingLoss", "dynamic_edge_weight"),
    "metrics": ("sad", "mse", "gradient_error", "connectivity_error", "compute_metrics", "make_trimap"),
    "deploy": (
        "Matter",
        "AutoMatter",
        "Route",
        "load_matter",
        "load_auto_matter",
        "calibrate_threshold",
        "image_brightness",
    ),
    "export": ("export_onnx", "save_weights"),
    "weights": ("SHIPPED", "interpolate_weights", "load_model", "read_model_file", "shipped_path"),
    "train": ("train", "preset", "load_config", "pretrain_llie"),
    "checkpoint": ("save_checkpoint", "load_checkpoint", "model_from_checkpoint", "CheckpointError"),
    "io": ("read_image", "read_alpha", "write_image", "scan_images", "atomic_write", "ImageReadError"),
    "seeding": ("seed_everything", "worker_init_fn"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'lowlight_matting' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
