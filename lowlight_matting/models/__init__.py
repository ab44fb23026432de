"""Models: CV-UNet over swappable timm encoders, and the low-light enhancement (LLIE) front ends.

- :func:`build_model` → :class:`CVUNet` (alpha matting, any input size) — :mod:`.cvunet`
- :func:`validate_model_config` — the schema every model config (from a file or a caller) passes — :mod:`.config`
- :class:`Encoder`, :data:`ENCODER_PRESETS` — timm feature extractors as (N, C, H, W) pyramids — :mod:`.encoders`
- :class:`ZeroDCEPP`, :func:`load_official_zero_dce_pp`, :class:`IlluminationEstimator` — :mod:`.llie`
- the Zero-DCE non-reference losses, :class:`ZeroDCELoss` — :mod:`.llie_losses` (pre-training: :func:`lowlight_matting.train.pretrain_llie`)
- :func:`describe_model`, :func:`compare_encoders` — parameters, FLOPs, feature shapes, latency — :mod:`.summary`
"""

from .config import (
    MODEL_CONFIG_KEYS,
    REFINE_INPUTS,
    ModelConfigError,
    check_encoder_name,
    validate_model_config,
)
from .cvunet import CVUNet, MattingHead, UNetDecoder, build_model, is_shipped_name, pad_to_multiple
from .encoders import ENCODER_PRESETS, Encoder, PretrainedWeightsError, is_channels_last_format
from .llie import (
    LLIE_CHOICES,
    DepthwiseSeparableConv,
    IlluminationEstimator,
    ResBlock,
    ZeroDCEPP,
    apply_le_curve,
    build_llie,
    le_curve,
    load_official_zero_dce_pp,
)
from .llie_losses import (
    ColorConstancyLoss,
    CurveSmoothnessLoss,
    ExposureLoss,
    SpatialConsistencyLoss,
    ZeroDCELoss,
    color_constancy_loss,
    curve_smoothness_loss,
    exposure_loss,
    spatial_consistency_loss,
)
from .summary import compare_encoders, count_flops, count_parameters, describe_model

__all__ = [
    "MODEL_CONFIG_KEYS",
    "REFINE_INPUTS",
    "ModelConfigError",
    "check_encoder_name",
    "validate_model_config",
    "is_shipped_name",
    "CVUNet",
    "MattingHead",
    "UNetDecoder",
    "build_model",
    "pad_to_multiple",
    "ENCODER_PRESETS",
    "Encoder",
    "PretrainedWeightsError",
    "is_channels_last_format",
    "LLIE_CHOICES",
    "DepthwiseSeparableConv",
    "IlluminationEstimator",
    "ResBlock",
    "ZeroDCEPP",
    "apply_le_curve",
    "build_llie",
    "le_curve",
    "load_official_zero_dce_pp",
    "ColorConstancyLoss",
    "CurveSmoothnessLoss",
    "ExposureLoss",
    "SpatialConsistencyLoss",
    "ZeroDCELoss",
    "color_constancy_loss",
    "curve_smoothness_loss",
    "exposure_loss",
    "spatial_consistency_loss",
    "compare_encoders",
    "count_flops",
    "count_parameters",
    "describe_model",
]
