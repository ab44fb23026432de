"""Low-light image enhancement (LLIE) front ends: Zero-DCE++ and the article's illumination estimator.

Both map a float RGB batch x (B, 3, H, W) in [0, 1] to ``(enhanced, map)``: the brightened image, same shape,
and the per-pixel map that produced it (the curve parameter of Zero-DCE++, the illumination map z of the
estimator). The map is what the smoothness loss regularises (:mod:`lowlight_matting.models.llie_losses`).

**Zero-DCE++** (C. Li, C. Guo, C. C. Loy, "Learning to Enhance Low-Light Image via Zero-Reference Deep Curve
Estimation", TPAMI 2021; the CVPR 2020 Zero-DCE by Guo et al. made lighter). A light-enhancement (LE) curve

    LE(x) = x + a · (x² − x) = x + a · x · (x − 1),    a ∈ [−1, 1]

maps [0, 1] onto itself monotonically and keeps 0 and 1 fixed; a < 0 brightens, a > 0 darkens. Applying it
n = 8 times gives a high-order curve. A 7-layer network of depthwise-separable 3×3 convolutions (32
channels; layers 5, 6, 7 take the concatenation of layers 3+4, 2+5, 1+6) estimates one 3-channel map a
(tanh) per pixel, shared by the 8 iterations (Zero-DCE used 8 different maps, 24 channels). The map can be
estimated on a copy downscaled by ``scale_factor`` and upsampled bilinearly, since illumination is smooth.
10,561 parameters (42,244 bytes = 41 KiB in float32) — the article's "about 100 KB of parameters" is about 2.4×
too large. It is a curve estimator, not a Retinex model as the article says.

**Illumination estimator** (the article's second sketch): conv 3→32, 8 residual blocks, conv 32→3, sigmoid map
z ∈ (0, 1), and ``enhanced = x · z + (1 − z) · 0.5``. The article left ``ResBlock`` undefined (here: two 3×3
convs with a ReLU between and an identity skip, as in EDSR) and clamps z "to avoid division by zero" although
nothing divides by z — the formula blends each pixel towards mid-grey, lifting dark pixels by giving up
contrast (z ≤ 1 scales local differences by z). A dark pixel (x ≤ 0.5) can never go above 0.5, so for
dark training images the Zero-DCE losses are lowest at z = 0 (uniform grey) and training goes there (notebook
04). 149,731 parameters, 14× Zero-DCE++.

Example:
    >>> import torch
    >>> net = ZeroDCEPP()
    >>> sum(p.numel() for p in net.parameters())
    10561
    >>> y, a = net(torch.rand(2, 3, 33, 47))
    >>> tuple(y.shape), tuple(a.shape)
    ((2, 3, 33, 47), (2, 3, 33, 47))
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "le_curve",
    "apply_le_curve",
    "DepthwiseSeparableConv",
    "ZeroDCEPP",
    "load_official_zero_dce_pp",
    "ResBlock",
    "IlluminationEstimator",
    "build_llie",
    "LLIE_CHOICES",
]

LLIE_CHOICES = ("zero_dce_pp", "illumination")


def le_curve(x: torch.Tensor, a: torch.Tensor | float) -> torch.Tensor:
    """One light-enhancement curve step: ``x + a · (x² − x)``, x in [0, 1], a in [−1, 1] (a < 0 brightens).

    Zero-DCE's paper (Guo et al., CVPR 2020, Eq. 1) writes ``LE(x) = x + α · x · (1 − x)`` (α > 0 brightens);
    the authors' released code computes ``x + r · (x² − x)``, the same curve with ``r = −α``. We follow the
    code, so their released weights (:func:`load_official_zero_dce_pp`) load and behave unchanged.
    """
    return x + a * (x * x - x)


def apply_le_curve(x: torch.Tensor, a: torch.Tensor | float, iterations: int = 8) -> torch.Tensor:
    """Apply :func:`le_curve` ``iterations`` times with the same map ``a`` (Zero-DCE++'s shared curve).

    The arithmetic runs in x's dtype (a is cast to it), so a bf16 curve under autocast does not round the
    image 8 times.
    """
    if isinstance(a, torch.Tensor):
        a = a.to(x.dtype)
    for _ in range(int(iterations)):
        x = le_curve(x, a)
    return x


def _check_image(x: torch.Tensor, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a float tensor (B, 3, H, W) in [0, 1], got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be floating point in [0, 1], got {x.dtype}")


class DepthwiseSeparableConv(nn.Module):
    """3×3 depthwise conv (one filter per channel) then 1×1 pointwise conv; both with bias.

    Parameter names ``depth_conv`` / ``point_conv`` match the Zero-DCE++ release (``CSDN_Tem``).
    Parameters: 10·c_in + c_in·c_out + c_out.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.depth_conv = nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch)
        self.point_conv = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class ZeroDCEPP(nn.Module):
    """Zero-DCE++ (Li, Guo, Loy, TPAMI 2021): x (B, 3, H, W) in [0, 1] → (enhanced, curve), both (B, 3, H, W).

    Args:
        scale_factor: estimate the curve on x downscaled by this factor (1 = full resolution; the authors use
            12 for 1200×900 photos), then upsample the curve bilinearly to H×W. Must leave ≥ 1 pixel.
        iterations: curve applications (8 in the paper).
        channels: width of the curve network (32 in the paper).

    Layers ``e_conv1``..``e_conv7`` match the authors' state dict, so :func:`load_official_zero_dce_pp` can load
    their file. Resampling follows their code: downscale with ``F.interpolate(scale_factor=1/s, bilinear)``,
    upsample with ``align_corners=True`` (their ``UpsamplingBilinear2d``) — to exactly H×W here, where their
    ``scale_factor`` upsampling misses by a pixel when H is not a multiple of s.
    """

    def __init__(self, scale_factor: float = 1, iterations: int = 8, channels: int = 32) -> None:
        super().__init__()
        if not scale_factor or scale_factor < 1:
            raise ValueError(f"scale_factor must be >= 1, got {scale_factor!r}")
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations!r}")
        self.scale_factor = scale_factor
        self.iterations = int(iterations)
        c = int(channels)
        self.e_conv1 = DepthwiseSeparableConv(3, c)
        self.e_conv2 = DepthwiseSeparableConv(c, c)
        self.e_conv3 = DepthwiseSeparableConv(c, c)
        self.e_conv4 = DepthwiseSeparableConv(c, c)
        self.e_conv5 = DepthwiseSeparableConv(2 * c, c)
        self.e_conv6 = DepthwiseSeparableConv(2 * c, c)
        self.e_conv7 = DepthwiseSeparableConv(2 * c, 3)

    def estimate_curve(self, x: torch.Tensor) -> torch.Tensor:
        """The curve map a (B, 3, H, W) in [−1, 1] for x (B, 3, H, W)."""
        _check_image(x)
        h, w = x.shape[-2:]
        s = self.scale_factor
        if s != 1:
            if h // s < 1 or w // s < 1:
                raise ValueError(f"input {h}x{w} is too small for scale_factor={s}")
            x_in = F.interpolate(x, scale_factor=1 / s, mode="bilinear")
        else:
            x_in = x
        x1 = F.relu(self.e_conv1(x_in))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        a = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        if a.shape[-2:] != (h, w):
            a = F.interpolate(a, size=(h, w), mode="bilinear", align_corners=True)
        return a

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.estimate_curve(x)
        return apply_le_curve(x, a, self.iterations), a

    @torch.no_grad()
    def identity_(self) -> ZeroDCEPP:
        """Make the enhancer the identity, in place: zero its last layer, so the curve map is a = tanh(0) = 0
        and every curve step leaves the image unchanged. A front end added to a trained matting model then
        starts at that model's predictions (its gradients are not zero: the last layer learns first)."""
        self.e_conv7.point_conv.weight.zero_()
        if self.e_conv7.point_conv.bias is not None:
            self.e_conv7.point_conv.bias.zero_()
        return self

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}, iterations={self.iterations}"


def load_official_zero_dce_pp(
    path: str | os.PathLike, scale_factor: float = 1, map_location: str | torch.device = "cpu"
) -> ZeroDCEPP:
    """Load the authors' released Zero-DCE++ weights (e.g. ``Epoch99.pth``) into :class:`ZeroDCEPP`.

    The file is the plain ``state_dict`` their training script saves: keys
    ``e_conv{1..7}.{depth_conv,point_conv}.{weight,bias}`` (a ``module.`` prefix from DataParallel is
    stripped). Read with ``weights_only=True``. It is not shipped with this project.

    Raises:
        FileNotFoundError: no such file (the message names it).
        ValueError: the file is not a Zero-DCE++ state dict (missing/unexpected keys or wrong shapes).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"Zero-DCE++ weights file not found: {p}")
    try:
        sd = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"{p}: cannot read Zero-DCE++ weights ({type(e).__name__}: {e})") from e
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"{p}: expected a state dict, found {type(sd).__name__}")
    sd = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}
    net = ZeroDCEPP(scale_factor=scale_factor)
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{p}: not a Zero-DCE++ state dict ({e})") from e
    return net.eval()


class ResBlock(nn.Module):
    """Residual block ``x + conv(relu(conv(x)))`` with 3×3 convs (EDSR style, no normalisation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class IlluminationEstimator(nn.Module):
    """The article's estimator: x (B, 3, H, W) in [0, 1] → (x·z + (1 − z)·0.5, z), z = sigmoid(net(x)).

    Args:
        channels: image channels (3).
        filters: width (32).
        n_blocks: residual blocks (8).
        scale_factor: estimate z at 1/scale_factor resolution and upsample it (1 = full, as the article).

    z is kept in [1e-6, 1] as in the article; the clamp is harmless but not needed (nothing divides by z).
    """

    def __init__(
        self, channels: int = 3, filters: int = 32, n_blocks: int = 8, scale_factor: float = 1
    ) -> None:
        super().__init__()
        if not scale_factor or scale_factor < 1:
            raise ValueError(f"scale_factor must be >= 1, got {scale_factor!r}")
        self.scale_factor = scale_factor
        self.conv1 = nn.Conv2d(channels, filters, 3, padding=1)
        self.res_blocks = nn.Sequential(*[ResBlock(filters) for _ in range(n_blocks)])
        self.conv2 = nn.Conv2d(filters, channels, 3, padding=1)

    def estimate_map(self, x: torch.Tensor) -> torch.Tensor:
        """The illumination map z (B, 3, H, W) in [1e-6, 1]."""
        _check_image(x)
        h, w = x.shape[-2:]
        x_in = x
        if self.scale_factor != 1:
            if h // self.scale_factor < 1 or w // self.scale_factor < 1:
                raise ValueError(f"input {h}x{w} is too small for scale_factor={self.scale_factor}")
            x_in = F.interpolate(x, scale_factor=1 / self.scale_factor, mode="bilinear")
        z = torch.sigmoid(self.conv2(self.res_blocks(self.conv1(x_in))))
        if z.shape[-2:] != (h, w):
            z = F.interpolate(z, size=(h, w), mode="bilinear", align_corners=True)
        return z.clamp(1e-6, 1.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.estimate_map(x).to(x.dtype)
        return x * z + (1 - z) * 0.5, z


def build_llie(name: str | None, scale_factor: float = 1) -> nn.Module | None:
    """``None``/``"none"`` → None, ``"zero_dce_pp"`` → :class:`ZeroDCEPP`, ``"illumination"`` → estimator."""
    if name is None or (isinstance(name, str) and name.lower() in {"", "none"}):
        return None
    key = str(name).lower().replace("-", "_").replace("+", "p")
    if key in {"zero_dce_pp", "zerodcepp", "zero_dcepp"}:
        return ZeroDCEPP(scale_factor=scale_factor)
    if key in {"illumination", "illumination_estimator"}:
        return IlluminationEstimator(scale_factor=scale_factor)
    raise ValueError(f"llie must be None or one of {LLIE_CHOICES}, got {name!r}")
