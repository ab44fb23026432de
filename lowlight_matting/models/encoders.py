"""Encoders: one wrapper over any timm feature extractor, returning an (N, C, H, W) feature pyramid.

:class:`Encoder` builds ``timm.create_model(name, features_only=True, ...)`` and reads what the decoder needs
from timm's own ``feature_info``: the channels and the reduction (stride) of every feature map. It fixes the
two traps of the article's ``SwinEncoder`` sketch:

1. **Channels-last features.** timm's Swin Transformer keeps its tokens as (N, H, W, C) and its feature
   extractor says so in ``output_fmt`` (``NHWC``). A UNet decoder concatenates along dim 1, so the maps are
   permuted to (N, C, H, W) here. The format is read from timm, never guessed from the shape (a map with
   C == W would fool a shape test).
2. **Fixed input size.** Swin is built with ``strict_img_size=False`` (in timm 1.0.31 the same switch as
   ``dynamic_img_size=True``; Swin has no ``dynamic_img_pad``): its patch embedding then takes any size
   divisible by the patch size (4) and every block builds its shifted-window attention mask for the size it
   sees (``dynamic_mask``). The window stays 7×7 (the stage grids at the nominal 224 are 56/28/14/7, so the
   last stage keeps its shift of 0, as in pre-training); each block zero-pads its token grid on the
   bottom/right to a multiple of 7 and crops after attention (the padded tokens are not masked out, which
   is timm's behaviour). :class:`~lowlight_matting.models.CVUNet` pads its input to the total stride (32),
   so the patch size always divides it; the bare :class:`Encoder` needs sides divisible by 4 for Swin.

The article's ``features[1:]`` is the third bug: timm returns the stride-4, 8, 16 and 32 maps, and the slice
drops the stride-4 one that its comment says it keeps. Here every map is returned.

Pretrained weights come from a local file only (``pretrained="weights.safetensors"`` or ``.pth``: a timm
classification checkpoint of the same architecture, as published on the model hubs), through
``pretrained_cfg_overlay=dict(file=...)``; the file is never fetched. A state dict of the feature extractor
itself (e.g. saved from ``encoder.body``) is accepted as well.

Example:
    >>> import torch
    >>> enc = Encoder("test_convnext")
    >>> enc.channels, enc.reductions
    ([24, 32, 48, 64], [4, 8, 16, 32])
    >>> [tuple(f.shape) for f in enc(torch.rand(1, 3, 64, 96))]
    [(1, 24, 16, 24), (1, 32, 8, 12), (1, 48, 4, 6), (1, 64, 2, 3)]
    >>> len(enc.stages)
    4
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lowlight_matting.io import file_problem

from .config import check_encoder_name

__all__ = ["ENCODER_PRESETS", "Encoder", "PretrainedWeightsError", "is_channels_last_format", "group_stages"]


class PretrainedWeightsError(RuntimeError, ValueError):
    """A local pretrained-weights file is unreadable or does not fit the model; one line naming the file.

    A ``ValueError`` too, so command lines report it as bad input like any other bad file."""


# timm.create_model arguments that open, fetch or unpickle files: the encoder file goes through ``pretrained``
_LOADING_KWARGS = ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path", "cache_dir")


def _first_line(e: BaseException, limit: int = 200) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:limit] if text else ''}"


#: Named encoders. ``timm_kwargs`` are passed to ``timm.create_model``; ``decoder_channels`` is the default
#: decoder width per level (from stride total/2 down to stride 1) that :func:`build_model` uses with it.
ENCODER_PRESETS: dict[str, dict[str, Any]] = {
    "mobilenetv2_100": {
        "timm_kwargs": {},
        "decoder_channels": [128, 64, 48, 32, 16],
        "about": "MobileNetV2 1.0 (Sandler et al., CVPR 2018): the article's example of a light CV-UNet encoder; cvunet-base uses it",
    },
    "convnext_tiny": {
        "timm_kwargs": {},
        "decoder_channels": [256, 128, 64, 32, 16],
        "about": "ConvNeXt-Tiny (Liu et al., CVPR 2022): a modernised ResNet, strides 4-32",
    },
    "swin_tiny_patch4_window7_224": {
        # any input size: the patch embedding stops asserting 224x224 and attention masks follow the input
        "timm_kwargs": {"strict_img_size": False},
        "decoder_channels": [256, 128, 64, 32, 16],
        "about": "Swin-Tiny (Liu et al., ICCV 2021): shifted-window attention, channels-last (NHWC) features",
    },
    "test_convnext": {
        "timm_kwargs": {},
        "decoder_channels": [32, 24, 16, 16, 8],
        "about": "timm's tiny test ConvNeXt (0.2 M parameters, random init): FAST mode and unit tests",
    },
}


def is_channels_last_format(output_fmt: Any) -> bool:
    """True when timm's ``output_fmt`` (a ``timm.layers.Format`` or a string) says features are (N, H, W, C)."""
    if output_fmt is None:
        return False
    value = getattr(output_fmt, "value", output_fmt)
    return str(value).upper() == "NHWC"


def _norm(name: str) -> str:
    return name.replace(".", "_")


def _ordered_leaves(
    module: nn.Module, feature_names: set[str], prefix: str = ""
) -> list[tuple[str, nn.Module]]:
    """Children of ``module`` in registration (= forward) order, expanded where a feature module is nested."""
    out = []
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if any(
            f.startswith(full + ".") or _norm(f).startswith(_norm(full) + "_") for f in feature_names
        ) and not (full in feature_names or _norm(full) in {_norm(f) for f in feature_names}):
            nested = _ordered_leaves(child, feature_names, prefix=full + ".")
            if nested:
                out += nested
                continue
        out.append((full, child))
    return out


def group_stages(body: nn.Module, feature_modules: list[str]) -> list[list[nn.Module]] | None:
    """Split a timm feature extractor into one group of modules per feature level, in forward order.

    Group ``i`` holds every module that runs after feature ``i - 1`` was taken and up to (including) the module
    that produces feature ``i``, so freezing groups ``0..k-1`` freezes everything feature ``k - 1`` depends on.
    Works for timm's ``FeatureListNet`` (modules flattened as ``stages_0``) and for the models that are their own
    feature extractor (e.g. ``EfficientNetFeatures``, feature modules ``blocks.2``). Returns None when the
    feature modules cannot be found among the children (e.g. hook- or getter-based extractors).
    """
    wanted = set(feature_modules)
    wanted_norm = [_norm(f) for f in feature_modules]
    leaves = _ordered_leaves(body, wanted)
    groups: list[list[nn.Module]] = [[] for _ in feature_modules]
    level = 0
    for name, module in leaves:
        if level >= len(feature_modules):  # modules after the last feature (not run by the extractor)
            break
        groups[level].append(module)
        if _norm(name) == wanted_norm[level]:
            level += 1
    if level != len(feature_modules):
        return None
    return groups


def _check_file(path: str | os.PathLike, what: str = "pretrained weights") -> Path:
    """``path`` if it is a readable regular file; checked with ``os.stat`` before anything opens it (a FIFO
    would block the reader)."""
    p = Path(path).expanduser()
    problem = file_problem(p)
    if problem == "file not found":
        raise FileNotFoundError(f"{what} file not found: {p} (nothing is downloaded; pass a local file)")
    if problem is not None:
        raise PretrainedWeightsError(f"{p}: {what}: {problem}")
    return p


def _load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Read a .safetensors or torch file holding a state dict (or a dict with 'state_dict'/'model'); torch
    files with ``weights_only=True`` (tensors and plain containers only, nothing executed)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise PretrainedWeightsError(f"{path}: cannot read weights ({_first_line(e)})") from e
    if isinstance(sd, dict):
        for key in ("state_dict", "model", "state_dict_ema"):
            if isinstance(sd.get(key), dict):
                sd = sd[key]
                break
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise PretrainedWeightsError(f"{path}: not a state dict of tensors")
    return sd


class Encoder(nn.Module):
    """A timm feature extractor returning every feature map as (N, C, H, W), with named stages.

    Args:
        name: a timm model name (see :data:`ENCODER_PRESETS` for the course's; any timm model with
            ``features_only`` support works).
        pretrained: None (random init) or a path to a local weights file (.safetensors/.pth/.bin): a timm
            classification checkpoint of ``name``, or a state dict of the feature extractor. Never downloaded.
        out_indices: which feature levels to return (timm's default: all).
        **timm_kwargs: passed to ``timm.create_model`` (on top of the preset's, e.g. ``drop_path_rate``).

    Attributes:
        body: the timm feature extractor.
        channels / reductions: per returned map, from ``feature_info`` (e.g. [96, 192, 384, 768] / [4, 8, 16, 32]).
        mean / std: the normalisation the weights were trained with (from ``pretrained_cfg``), RGB in [0, 1].
        channels_last_output: True when timm returns (N, H, W, C) maps (Swin), which ``forward`` permutes.
        stages: ``nn.ModuleList`` of ``nn.ModuleList`` — the modules of each feature level in forward order
            (``stages[0]`` includes the stem). ``for s in enc.stages[:k]: s.requires_grad_(False)`` freezes the
            first k. It shares modules with ``body`` and is kept out of ``state_dict`` (no duplicate keys).

    Shapes: ``forward(x)`` with x (N, 3, H, W) normalised → list of (N, C_i, H / r_i, W / r_i) (ceil), one per
    level, shallow to deep.
    """

    def __init__(
        self,
        name: str = "mobilenetv2_100",
        pretrained: str | os.PathLike | None = None,
        out_indices: list[int] | tuple[int, ...] | None = None,
        **timm_kwargs: Any,
    ) -> None:
        super().__init__()
        import timm

        check_encoder_name(name, "encoder")
        loading = sorted(set(timm_kwargs) & set(_LOADING_KWARGS))
        if loading:
            raise ValueError(
                f"encoder {name!r}: timm argument {loading[0]!r} is not accepted (it opens or fetches files); "
                "pass a local weights file as pretrained="
            )
        kwargs = dict(ENCODER_PRESETS.get(name, {}).get("timm_kwargs", {}))
        kwargs.update(timm_kwargs)
        if out_indices is not None:
            kwargs["out_indices"] = tuple(out_indices)
        self.name = name
        if pretrained is None or pretrained is False:
            body = timm.create_model(name, features_only=True, pretrained=False, **kwargs)
        else:
            path = _check_file(pretrained)
            body = self._create_pretrained(timm, name, path, kwargs)
        self.body = body

        info = body.feature_info
        self.channels: list[int] = list(info.channels())
        self.reductions: list[int] = list(info.reduction())
        self.feature_modules: list[str] = list(info.module_name())
        self.channels_last_output = is_channels_last_format(getattr(body, "output_fmt", None))
        cfg = getattr(body, "pretrained_cfg", None) or {}
        mean = tuple(float(v) for v in cfg.get("mean", (0.485, 0.456, 0.406)))
        std = tuple(float(v) for v in cfg.get("std", (0.229, 0.224, 0.225)))
        if len(mean) == 1:
            mean, std = mean * 3, std * 3
        self.mean, self.std = mean, std

        groups = group_stages(body, self.feature_modules)
        if groups is None:
            warnings.warn(
                f"encoder {name}: could not split {type(body).__name__} into per-level stages; "
                "`stages` holds the whole encoder as one stage",
                stacklevel=2,
            )
            groups = [[body]]
        # not registered as a submodule: same modules as `body`, so state_dict keys stay unique
        object.__setattr__(self, "stages", nn.ModuleList(nn.ModuleList(g) for g in groups))

    @staticmethod
    def _create_pretrained(timm_mod, name: str, path: Path, kwargs: dict) -> nn.Module:
        """timm's local-file route first (classification checkpoints); else a feature-extractor state dict."""
        try:
            return timm_mod.create_model(
                name,
                features_only=True,
                pretrained=True,
                pretrained_cfg_overlay={"file": str(path)},
                **kwargs,
            )
        except Exception as first:  # shape/key mismatch, unreadable file ...
            body = timm_mod.create_model(name, features_only=True, pretrained=False, **kwargs)
            try:
                sd = _load_state_dict_file(path)
                for prefix in ("encoder.body.", "body.", "module."):
                    if all(k.startswith(prefix) for k in sd):
                        sd = {k[len(prefix) :]: v for k, v in sd.items()}
                body.load_state_dict(sd, strict=True)
            except Exception as second:
                raise PretrainedWeightsError(
                    f"{path}: not usable as weights of encoder {name!r} "
                    f"(as a timm checkpoint: {_first_line(first)}; "
                    f"as a feature-extractor state dict: {_first_line(second)})"
                ) from second
            return body

    @property
    def stride(self) -> int:
        """The total stride: inputs whose sides are multiples of it map to whole feature maps."""
        return max(self.reductions)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.body(x)
        if self.channels_last_output:
            feats = [f.permute(0, 3, 1, 2) for f in feats]
        return list(feats)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, channels={self.channels}, reductions={self.reductions}"
