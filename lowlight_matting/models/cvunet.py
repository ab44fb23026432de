"""CV-UNet: a UNet matting network (RGB in, alpha out, no trimap) over a swappable timm encoder.

Data flow for x (B, 3, H, W) in [0, 1], any H and W::

    x ──► [LLIE] ──► e (enhanced, or x itself without LLIE)
          e ──► normalise with the encoder's mean/std ──► reflect-pad to a multiple of the total stride S
            ──► encoder: maps at strides r_1 < ... < r_n = S
            ──► decoder: from stride S, repeatedly ×2 bilinear upsample, concatenate the skip at that stride,
                two 3×3 conv + GroupNorm + ReLU; strides the encoder has no map for (e.g. 2 and 1 for ConvNeXt,
                1 for MobileNetV2) get a skip computed from the (padded, normalised) image itself
            ──► crop the padding ──► head: 1×1 conv → coarse alpha logit, then a full-resolution refinement
                that sees the decoder features, the image and the coarse logit and adds a residual
            ──► sigmoid ──► alpha (B, 1, H, W) in [0, 1]

**What the encoder sees.** The LLIE output replaces the input: the encoder's pretrained filters were learnt
on well-exposed ImageNet photos, and the point of the front end is to hand them an image from that
distribution. The matting loss back-propagates through the LLIE, so joint training can adapt the curve to
what helps matting (pre-train it first with :func:`~lowlight_matting.train.pretrain_llie`, as the article
advises).

**What the refinement sees** (``refine_input``): by default the *enhanced* image (``"enhanced"``). The
refinement is a few 3×3 convolutions at full resolution deciding fine structure (hair) from local contrast,
with no per-image normalisation: in a dark input a hair edge spans a few code values, after Zero-DCE++ the
curve's slope in the shadows (typically 2-4×) has stretched it, and it is the same picture the encoder
features were computed from, so features and pixels agree. The curve is monotone per pixel, so nothing the
original held is lost (the noise is stretched too — the encoder sees that either way). ``"input"`` gives
the original image instead, ``"both"`` concatenates the two (6 channels) — the safer choice with the
article's illumination estimator, whose output has *less* contrast than its input. Without an LLIE all
three are the same image.

Example:
    >>> import torch
    >>> model = build_model("test_convnext", llie="zero_dce_pp")
    >>> alpha = model(torch.rand(1, 3, 97, 129))
    >>> tuple(alpha.shape), bool(alpha.min() >= 0), bool(alpha.max() <= 1)
    ((1, 1, 97, 129), True, True)
    >>> out = model(torch.rand(1, 3, 40, 50), return_aux=True)
    >>> sorted(out), tuple(out["curve"].shape)
    (['alpha', 'curve', 'enhanced'], (1, 3, 40, 50))
    >>> rebuilt = build_model(**model.config)
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import MAX_DECODER_PARAMS, REFINE_INPUTS, ModelConfigError, validate_model_config
from .encoders import ENCODER_PRESETS, Encoder
from .llie import build_llie

__all__ = [
    "CVUNet",
    "UNetDecoder",
    "MattingHead",
    "REFINE_INPUTS",
    "build_model",
    "conv_norm_act",
    "is_shipped_name",
    "pad_to_multiple",
]


def _groups(channels: int, max_groups: int = 8) -> int:
    return math.gcd(channels, max_groups) or 1


def conv_norm_act(in_ch: int, out_ch: int, kernel: int = 3) -> nn.Sequential:
    """Conv (no bias) → GroupNorm → ReLU. GroupNorm: matting trains with batches of 2-8 crops, and a frozen
    encoder stage must not depend on batch statistics in the decoder."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False),
        nn.GroupNorm(_groups(out_ch), out_ch),
        nn.ReLU(inplace=True),
    )


def pad_to_multiple(
    x: torch.Tensor, multiple: int, mode: str = "reflect"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) at the bottom/right so H and W become multiples of ``multiple``; returns (padded, (H, W)).

    Reflect padding (no hard black border for the encoder to see as an edge) when the image is larger than the
    pad, else replicate.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        use = mode if (mode != "reflect" or (ph < h and pw < w)) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=use)
    return x, (h, w)


class ImageSkip(nn.Module):
    """A skip for a stride the encoder does not provide: average-pool the image by ``stride``, conv it."""

    def __init__(self, stride: int, out_ch: int, in_ch: int = 3) -> None:
        super().__init__()
        self.stride = stride
        self.conv = conv_norm_act(in_ch, out_ch)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(image, self.stride) if self.stride > 1 else image
        return self.conv(x)


class DecoderBlock(nn.Module):
    """Upsample to the skip's size, concatenate, two conv-norm-relu."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = conv_norm_act(in_ch + skip_ch, out_ch)
        self.conv2 = conv_norm_act(out_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = torch.cat([x, skip.to(x.dtype)], dim=1)
        return self.conv2(self.conv1(x))


class UNetDecoder(nn.Module):
    """UNet decoder from the deepest encoder map to full resolution, one block per halving of the stride.

    Args:
        channels / reductions: the encoder's (see :class:`~lowlight_matting.models.encoders.Encoder`); the
            reductions must be powers of two.
        decoder_channels: output width of each block, from stride S/2 down to stride 1 (log2 S entries).
        image_skip_channels: width of the image-derived skips at strides without an encoder map.

    ``forward(features, image)``: features as the encoder returns them, image the padded normalised input
    (B, 3, H, W); returns (B, decoder_channels[-1], H, W).
    """

    def __init__(
        self,
        channels: list[int],
        reductions: list[int],
        decoder_channels: list[int] | tuple[int, ...],
        image_skip_channels: int = 16,
    ) -> None:
        super().__init__()
        if any(r < 1 or r & (r - 1) for r in reductions):
            raise ValueError(f"encoder reductions must be powers of two, got {reductions}")
        stride = max(reductions)
        n_levels = int(math.log2(stride))
        if len(decoder_channels) != n_levels:
            raise ValueError(
                f"decoder_channels needs {n_levels} entries (strides {stride // 2} down to 1) for an encoder of "
                f"total stride {stride}, got {list(decoder_channels)}"
            )
        # the last map at each reduction is the one used (some encoders return two at one stride)
        self.skip_index = {r: i for i, r in enumerate(reductions)}
        self.bottom_index = self.skip_index[stride]
        self.out_strides = [stride >> (k + 1) for k in range(n_levels)]
        self.blocks = nn.ModuleList()
        self.image_skips = nn.ModuleDict()
        in_ch = channels[self.bottom_index]
        for r, out_ch in zip(self.out_strides, decoder_channels, strict=True):
            if r in self.skip_index:
                skip_ch = channels[self.skip_index[r]]
            else:
                skip_ch = image_skip_channels
                self.image_skips[str(r)] = ImageSkip(r, image_skip_channels)
            self.blocks.append(DecoderBlock(in_ch, skip_ch, int(out_ch)))
            in_ch = int(out_ch)
        self.out_channels = in_ch

    def forward(self, features: list[torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        x = features[self.bottom_index]
        for r, block in zip(self.out_strides, self.blocks, strict=True):
            skip = features[self.skip_index[r]] if r in self.skip_index else self.image_skips[str(r)](image)
            x = block(x, skip)
        return x


class MattingHead(nn.Module):
    """Coarse alpha logit (1×1 conv) plus a full-resolution residual refinement that sees the image.

    ``forward(features, image)`` → alpha logits (B, 1, H, W); features (B, C, H, W) from the decoder, image
    (B, image_channels, H, W) in [0, 1]. The last refinement conv starts at zero, so at initialisation the
    refinement passes the coarse logit through unchanged.
    """

    def __init__(self, in_ch: int, image_channels: int = 3, refine_channels: int = 16) -> None:
        super().__init__()
        self.coarse = nn.Conv2d(in_ch, 1, 1)
        self.refine = nn.Sequential(
            conv_norm_act(in_ch + image_channels + 1, refine_channels),
            conv_norm_act(refine_channels, refine_channels),
            nn.Conv2d(refine_channels, 1, 3, padding=1),
        )
        nn.init.zeros_(self.refine[-1].weight)
        nn.init.zeros_(self.refine[-1].bias)

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        coarse = self.coarse(features)
        delta = self.refine(torch.cat([features, (image - 0.5).to(features.dtype), coarse], dim=1))
        return coarse + delta


class CVUNet(nn.Module):
    """The matting network; build it with :func:`build_model` (which also fills :attr:`config`).

    ``forward(x)`` → alpha (B, 1, H, W) float32 in [0, 1] for x (B, 3, H, W) float in [0, 1], any H, W;
    ``forward(x, return_aux=True)`` → ``dict(alpha=, enhanced=, curve=)`` (the last two None without LLIE).

    Parts (freeze them by name): ``llie`` (None or module), ``encoder`` (``.stages``, ``.channels``,
    ``.reductions``), ``decoder``, ``head``.
    """

    def __init__(
        self,
        encoder: Encoder,
        decoder: UNetDecoder,
        head: MattingHead,
        llie: nn.Module | None = None,
        refine_input: str = "enhanced",
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if refine_input not in REFINE_INPUTS:
            raise ValueError(f"refine_input must be one of {REFINE_INPUTS}, got {refine_input!r}")
        self.llie = llie
        self.encoder = encoder
        self.decoder = decoder
        self.head = head
        self.refine_input = refine_input
        self.register_buffer("mean", torch.tensor(encoder.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(encoder.std).view(1, 3, 1, 1), persistent=False)
        self.config: dict[str, Any] = dict(config or {})
        self.pretrained_source: str | None = None

    @property
    def stride(self) -> int:
        """The multiple the input's sides should have: the encoder's total stride, times the LLIE's
        down-scaling factor when that is an integer that does not divide it (``lcm``), so every level sees
        whole pixels. :class:`~lowlight_matting.deploy.Matter` and the ONNX export pad to it; ``forward``
        itself pads to the encoder's stride and takes any size."""
        stride = int(self.encoder.stride)
        factor = float(getattr(self.llie, "scale_factor", 1) or 1) if self.llie is not None else 1.0
        if factor > 1 and factor.is_integer():
            stride = math.lcm(stride, int(factor))
        return stride

    def forward(
        self, x: torch.Tensor, return_aux: bool = False
    ) -> torch.Tensor | dict[str, torch.Tensor | None]:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a float tensor (B, 3, H, W) in [0, 1], got {shape}")
        enhanced = curve = None
        e = x
        if self.llie is not None:
            enhanced, curve = self.llie(x)
            e = enhanced
        if self.refine_input == "enhanced":
            ref = e
        elif self.refine_input == "input":
            ref = x
        else:
            ref = torch.cat([e, x.to(e.dtype)], dim=1)
        normed = (e - self.mean.to(e.dtype)) / self.std.to(e.dtype)
        padded, (h, w) = pad_to_multiple(normed, self.encoder.stride)
        features = self.encoder(padded)
        dec = self.decoder(features, padded)[..., :h, :w]
        logits = self.head(dec, ref)
        alpha = torch.sigmoid(logits.float())
        if return_aux:
            return {"alpha": alpha, "enhanced": enhanced, "curve": curve}
        return alpha


def is_shipped_name(pretrained: Any) -> bool:
    """True when ``pretrained`` reads as a shipped model name (``"cvunet-base"``), not as an encoder file:
    a string without a file suffix or a folder separator that is not an existing file."""
    if not isinstance(pretrained, str) or not pretrained or "/" in pretrained or os.sep in pretrained:
        return False
    return not os.path.splitext(pretrained)[1] and not os.path.isfile(pretrained)


def _decoder_parameters(
    channels: list[int],
    reductions: list[int],
    decoder_channels: list[int],
    image_skip_channels: int,
    refine_channels: int,
    image_channels: int,
) -> int:
    """Weights of the decoder and head :func:`build_model` is about to allocate (3x3 convolutions only: the
    bulk), so an oversized config is refused before a byte is allocated."""
    stride = max(reductions)
    skips = {r: c for r, c in zip(reductions, channels, strict=True)}
    in_ch, total = skips[stride], 0
    for k, out in enumerate(decoder_channels):
        skip = skips.get(stride >> (k + 1), image_skip_channels)
        total += 9 * (in_ch + skip) * out + 9 * out * out
        in_ch = out
    return (
        total
        + 9 * (in_ch + image_channels + 1) * refine_channels
        + 9 * refine_channels * (refine_channels + 1)
    )


def build_model(
    encoder: str = "mobilenetv2_100",
    llie: str | None = None,
    pretrained: str | os.PathLike | None = None,
    decoder_channels: list[int] | tuple[int, ...] | None = None,
    refine_input: str = "enhanced",
    refine_channels: int = 16,
    image_skip_channels: int = 16,
    llie_scale_factor: float = 1,
    encoder_kwargs: dict[str, Any] | None = None,
) -> CVUNet:
    """Build a :class:`CVUNet`; every argument is checked first (:func:`~lowlight_matting.models.config.
    validate_model_config`: known values, bounded sizes, no file-loading timm options).

    Args:
        encoder: a preset of :data:`~lowlight_matting.models.ENCODER_PRESETS` (``mobilenetv2_100``,
            ``convnext_tiny``, ``swin_tiny_patch4_window7_224``, ``test_convnext``) or any timm model name.
        llie: None, ``"zero_dce_pp"`` or ``"illumination"`` — the enhancement front end.
        pretrained: None (random init); a local encoder weights file (never downloaded; a missing or
            mismatched file raises an error naming it); or the name of a shipped model
            (:data:`lowlight_matting.weights.SHIPPED`, e.g. ``"cvunet-base"``): the architecture asked for is
            built and the shipped weights are loaded into it — every weight but the LLIE's must fit (else an
            error says which setting differs); an LLIE, when asked for, stays freshly initialised.
        decoder_channels: widths from stride S/2 down to 1 (default: the preset's, else halving from 256).
        refine_input: which image the full-resolution refinement sees: ``"enhanced"`` (default), ``"input"``
            or ``"both"`` (see the module docstring).
        refine_channels, image_skip_channels: widths of the refinement and the image-derived skips.
        llie_scale_factor: Zero-DCE++/estimator downscale factor for estimating the map.
        encoder_kwargs: extra ``timm.create_model`` arguments: only ``drop_rate`` / ``drop_path_rate``.

    Returns:
        the model in train mode, with ``model.config`` (JSON-able) such that ``build_model(**model.config)``
        builds the same architecture (with random weights: ``config["pretrained"]`` is always None, a file
        holds its own weights) and ``model.pretrained_source`` (the encoder file or shipped name it was
        initialised from, or None).

    Raises:
        ModelConfigError (a ``ValueError``): an argument is out of its schema, e.g. an unknown ``encoder``.
    """
    args = validate_model_config(
        {
            "encoder": encoder,
            "llie": llie,
            "pretrained": pretrained,
            "decoder_channels": decoder_channels,
            "refine_input": refine_input,
            "refine_channels": refine_channels,
            "image_skip_channels": image_skip_channels,
            "llie_scale_factor": llie_scale_factor,
            "encoder_kwargs": encoder_kwargs,
        },
        source="build_model",
        from_file=False,
    )
    enc_kwargs = dict(args["encoder_kwargs"] or {})
    shipped = is_shipped_name(pretrained)
    enc = Encoder(encoder, pretrained=None if shipped else pretrained, **enc_kwargs)
    n_levels = int(math.log2(enc.stride)) if enc.stride & (enc.stride - 1) == 0 else None
    if decoder_channels is None:
        preset = ENCODER_PRESETS.get(encoder, {}).get("decoder_channels")
        if preset is not None and n_levels == len(preset):
            decoder_channels = list(preset)
        elif n_levels is not None:
            decoder_channels = [max(16, 256 >> k) for k in range(n_levels)]
        else:
            raise ModelConfigError(
                f"build_model: encoder {encoder!r} has total stride {enc.stride}, not a power of two"
            )
    decoder_channels = [int(c) for c in decoder_channels]
    image_channels = 6 if refine_input == "both" else 3
    if n_levels is not None and len(decoder_channels) == n_levels:
        n_params = _decoder_parameters(
            enc.channels,
            enc.reductions,
            decoder_channels,
            image_skip_channels,
            refine_channels,
            image_channels,
        )
        if n_params > MAX_DECODER_PARAMS:
            raise ModelConfigError(
                f"build_model: decoder_channels {decoder_channels} with encoder {encoder!r} would need "
                f"{n_params / 1e6:.0f} M decoder weights (limit {MAX_DECODER_PARAMS / 1e6:.0f} M)"
            )
    llie_module = build_llie(llie, scale_factor=llie_scale_factor)
    decoder = UNetDecoder(
        enc.channels, enc.reductions, decoder_channels, image_skip_channels=image_skip_channels
    )
    head = MattingHead(decoder.out_channels, image_channels=image_channels, refine_channels=refine_channels)
    config = {
        "encoder": encoder,
        "llie": llie if llie is None else str(llie),
        "pretrained": None,
        "decoder_channels": decoder_channels,
        "refine_input": refine_input,
        "refine_channels": int(refine_channels),
        "image_skip_channels": int(image_skip_channels),
        "llie_scale_factor": llie_scale_factor,
        "encoder_kwargs": enc_kwargs,
    }
    model = CVUNet(enc, decoder, head, llie=llie_module, refine_input=refine_input, config=config)
    model.pretrained_source = None if pretrained is None else os.fspath(pretrained)
    if shipped:
        # weights.files reads model files and imports no model code (no import cycle); function-local
        # because importing it runs weights/__init__, which imports weights.load, which imports this module
        from lowlight_matting.weights.files import load_shipped_into

        load_shipped_into(model, str(pretrained))
    return model
