"""The non-reference losses of Zero-DCE / Zero-DCE++, and LLIE pre-training on unlabelled low-light images.

No ground truth: each loss scores the enhanced image (or the curve) on its own or against the input.
Images are float (B, 3, H, W) in [0, 1]; every loss returns a scalar tensor ≥ 0, computed in float32 (safe
under bf16 autocast).

- spatial consistency (:func:`spatial_consistency_loss`): the differences between each 4×4-averaged grey
  pixel and its four neighbours should be the same before and after enhancement (contrast is kept),
  L_spa = mean over regions of Σ_{j ∈ 4 neighbours} (|Y_i − Y_j| − |I_i − I_j|)², here with signed
  differences as in the released code (zero padding at the border, like their convolution).
- exposure control (:func:`exposure_loss`): the mean grey level of every non-overlapping 16×16 patch
  should be E = 0.6, L_exp = mean_k (Y_k − E)².
- colour constancy (:func:`color_constancy_loss`): grey-world — the channel means should agree,
  L_col = mean_batch sqrt(Σ_{(p,q)} ((J^p − J^q)²)² + ε) − sqrt(ε) over the pairs RG, RB, GB. The released
  code has no ε: d sqrt(u)/du is infinite at u = 0, so an image whose channel means coincide (a grey image)
  gets NaN gradients. ε inside the root keeps the gradient finite, and subtracting sqrt(ε) keeps the
  minimum at exactly 0.
- curve smoothness (:func:`curve_smoothness_loss`, "illumination smoothness", a total-variation term on the
  curve map A): L_tvA = 2 (Σ (∂_y A)² / n_y + Σ (∂_x A)² / n_x) / B. A mean of squared *neighbour*
  differences, so its strength depends on the image size: the same scene-following map drawn on an image of
  side c has neighbour differences ∝ 1/c and costs ∝ 1/c². The release's weight 1600 was set for its 512×512
  training images; on 96×96 crops it is (512/96)² ≈ 28× stronger and keeps the map nearly flat (notebook 04
  measures this; 1600 · (c/512)² restores the release's balance).

Weights: :class:`ZeroDCELoss` defaults to those of the released Zero-DCE++ training script
``L = 1·L_spa + 10·L_exp + 5·L_col + 1600·L_tvA``. The Zero-DCE paper (Guo et al., CVPR 2020, Eq. 9) writes
``L = L_spa + L_exp + W_col·L_col + W_tvA·L_tvA`` with W_col = 0.5 and W_tvA = 20, i.e. weights
(1, 1, 0.5, 20), which the TPAMI extension keeps in its text; the code's values are the ones its weights were
trained with (on images resized to 512×512, lr 1e-4, 100 epochs).

Example:
    >>> import torch
    >>> low = torch.rand(2, 3, 32, 32) * 0.2
    >>> total, terms = ZeroDCELoss()(low, low.clamp(0, 1) ** 0.5, torch.zeros(2, 3, 32, 32))
    >>> sorted(terms)
    ['color', 'exposure', 'smoothness', 'spatial', 'total']
    >>> bool(total >= 0)
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "spatial_consistency_loss",
    "exposure_loss",
    "color_constancy_loss",
    "curve_smoothness_loss",
    "SpatialConsistencyLoss",
    "ExposureLoss",
    "ColorConstancyLoss",
    "CurveSmoothnessLoss",
    "ZeroDCELoss",
]


def _check(x: torch.Tensor, name: str, channels: int | None = 3) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        want = f"(B, {channels}, H, W)" if channels else "(B, C, H, W)"
        raise ValueError(f"{name} must be a float tensor {want}, got {shape}")
    return x.float()


def spatial_consistency_loss(low: torch.Tensor, enhanced: torch.Tensor, region: int = 4) -> torch.Tensor:
    """Keep the 4-neighbour differences of region-averaged grey levels: (B, 3, H, W) ×2 → scalar ≥ 0."""
    low, enhanced = _check(low, "low"), _check(enhanced, "enhanced")
    if low.shape != enhanced.shape:
        raise ValueError(f"low {tuple(low.shape)} and enhanced {tuple(enhanced.shape)} differ in shape")
    k = max(1, min(region, low.shape[-2], low.shape[-1]))
    y0 = F.avg_pool2d(low.mean(1, keepdim=True), k)
    y1 = F.avg_pool2d(enhanced.mean(1, keepdim=True), k)

    def diffs(y: torch.Tensor) -> list[torch.Tensor]:
        p = F.pad(y, (1, 1, 1, 1))
        c = p[..., 1:-1, 1:-1]
        return [c - p[..., 1:-1, :-2], c - p[..., 1:-1, 2:], c - p[..., :-2, 1:-1], c - p[..., 2:, 1:-1]]

    return sum((a - b) ** 2 for a, b in zip(diffs(y0), diffs(y1), strict=True)).mean()


def exposure_loss(enhanced: torch.Tensor, target: float = 0.6, patch_size: int = 16) -> torch.Tensor:
    """Mean squared distance of each patch's mean grey level from ``target``: (B, 3, H, W) → scalar ≥ 0.

    Patches are non-overlapping ``patch_size``² squares (smaller when the image is smaller).
    """
    y = _check(enhanced, "enhanced").mean(1, keepdim=True)
    k = max(1, min(int(patch_size), y.shape[-2], y.shape[-1]))
    return ((F.avg_pool2d(y, k) - target) ** 2).mean()


def color_constancy_loss(enhanced: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Grey-world colour constancy with ε inside the square root: (B, 3, H, W) → scalar ≥ 0, finite gradients."""
    if eps <= 0:
        raise ValueError(f"eps must be > 0 (eps = 0 gives NaN gradients on grey images), got {eps}")
    m = _check(enhanced, "enhanced").mean((2, 3))  # (B, 3)
    r, g, b = m.unbind(1)
    k = (r - g).pow(2).pow(2) + (r - b).pow(2).pow(2) + (g - b).pow(2).pow(2)
    return (torch.sqrt(k + eps) - torch.sqrt(k.new_tensor(eps))).clamp_min(0).mean()


def curve_smoothness_loss(curve: torch.Tensor) -> torch.Tensor:
    """Total variation of the curve (or illumination) map, normalised as in the release: (B, C, H, W) → scalar."""
    a = _check(curve, "curve", channels=None)
    b, _, h, w = a.shape
    tv = a.new_zeros(())
    if h > 1:
        tv = tv + (a[:, :, 1:, :] - a[:, :, :-1, :]).pow(2).sum() / ((h - 1) * w)
    if w > 1:
        tv = tv + (a[:, :, :, 1:] - a[:, :, :, :-1]).pow(2).sum() / (h * (w - 1))
    return 2 * tv / b


class SpatialConsistencyLoss(nn.Module):
    """Module form of :func:`spatial_consistency_loss`; ``forward(low, enhanced)``."""

    def __init__(self, region: int = 4) -> None:
        super().__init__()
        self.region = region

    def forward(self, low: torch.Tensor, enhanced: torch.Tensor) -> torch.Tensor:
        return spatial_consistency_loss(low, enhanced, self.region)


class ExposureLoss(nn.Module):
    """Module form of :func:`exposure_loss`; ``forward(enhanced)``."""

    def __init__(self, target: float = 0.6, patch_size: int = 16) -> None:
        super().__init__()
        self.target, self.patch_size = target, patch_size

    def forward(self, enhanced: torch.Tensor) -> torch.Tensor:
        return exposure_loss(enhanced, self.target, self.patch_size)


class ColorConstancyLoss(nn.Module):
    """Module form of :func:`color_constancy_loss`; ``forward(enhanced)``."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, enhanced: torch.Tensor) -> torch.Tensor:
        return color_constancy_loss(enhanced, self.eps)


class CurveSmoothnessLoss(nn.Module):
    """Module form of :func:`curve_smoothness_loss`; ``forward(curve)``."""

    def forward(self, curve: torch.Tensor) -> torch.Tensor:
        return curve_smoothness_loss(curve)


class ZeroDCELoss(nn.Module):
    """Weighted sum of the four non-reference losses: ``forward(low, enhanced, curve) -> (total, terms)``.

    Args:
        spatial, exposure, color, smoothness: weights; defaults (1, 10, 5, 1600) are the released code's,
            the Zero-DCE paper's are (1, 1, 0.5, 20). The smoothness weight is resolution-dependent (see the
            module docstring): 1600 belongs to 512×512 training images.
        exposure_level: the target E (0.6).
        patch_size: exposure patch side (16).
        eps: ε of the colour loss.

    ``terms`` holds the detached unweighted terms and the weighted ``total``.
    """

    def __init__(
        self,
        spatial: float = 1.0,
        exposure: float = 10.0,
        color: float = 5.0,
        smoothness: float = 1600.0,
        exposure_level: float = 0.6,
        patch_size: int = 16,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        for name, v in (
            ("spatial", spatial),
            ("exposure", exposure),
            ("color", color),
            ("smoothness", smoothness),
        ):
            if v < 0:
                raise ValueError(f"weight {name} must be >= 0, got {v}")
        self.weights = {"spatial": spatial, "exposure": exposure, "color": color, "smoothness": smoothness}
        self.exposure_level, self.patch_size, self.eps = exposure_level, patch_size, eps

    def forward(
        self, low: torch.Tensor, enhanced: torch.Tensor, curve: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = {
            "spatial": spatial_consistency_loss(low, enhanced),
            "exposure": exposure_loss(enhanced, self.exposure_level, self.patch_size),
            "color": color_constancy_loss(enhanced, self.eps),
            "smoothness": curve_smoothness_loss(curve),
        }
        total = sum(self.weights[k] * v for k, v in terms.items())
        out = {k: v.detach() for k, v in terms.items()}
        out["total"] = total.detach()
        return total, out
