r"""Alpha-matte losses: pixel, structure, edge, composition and Laplacian terms, and their weighted sum.

Every loss compares a predicted alpha matte with the ground truth, both ``(B, 1, H, W)`` in ``[0, 1]``, and
exists twice, following kornia's pattern: a function (``alpha_mse``) and a thin :class:`torch.nn.Module`
(``AlphaMSELoss``). :class:`MattingLoss` combines them the way the article's composite loss does,

.. math::

    \mathcal{L} = \lambda_{mse} \mathcal{L}_{mse} + \lambda_{ssim} \mathcal{L}_{ssim}
        + w_{edge}(I) \, \mathcal{L}_{edge} + \lambda_{comp} \mathcal{L}_{comp} + \lambda_{lap} \mathcal{L}_{lap},

with the edge weight :math:`w_{edge}` chosen per sample from the brightness of the input image ``I``
(:func:`dynamic_edge_weight`).

Reductions: ``reduction="mean"`` (default) gives a scalar, ``"sum"`` the sum over the batch of the
per-sample losses, and ``"none"`` one value per sample, shape ``(B,)`` -- per sample rather than per pixel, so
that a per-sample weight (the dynamic edge weight) can be applied to every term alike.

Numerics: the losses compute in float32 even when called on bf16/fp16 tensors or inside an autocast region
(SSIM's variance terms and the square root of the edge magnitude lose too much in 8 mantissa bits); the
gradient flows back in the input's dtype.

Where the article was wrong, and what we do instead:

- its ``get_dynamic_weights`` returns ``torch.where(lum < 0.3, 3.0, 1.5).mean().item()``: one number for
  the whole batch (a dark image in a bright batch gets the bright weight) and ``.item()`` forces the CPU to
  wait for the GPU at every step. :func:`dynamic_edge_weight` returns a ``(B,)`` tensor on the input's
  device, built from tensor operations only, so nothing waits.
- its Sobel kernels are rebuilt and copied to the device on every call; we use
  :func:`kornia.filters.spatial_gradient` with the same *unnormalised* kernels (``[-1, 0, 1]`` x
  ``[1, 2, 1]``), so :math:`\mathcal{L}_{edge}` is the article's formula and its weights 1.5 / 3.0 mean what
  they meant there. (``kornia.filters.sobel(normalized=True)`` divides each kernel by 8, which makes the
  squared term 64x smaller and the edge weights all but meaningless; an earlier version of this module
  did that.) Borders are padded by replication, not the article's zeros, so a matte that touches the
  image border has no fake edge there.
- its brightness was the plain channel mean of gamma-encoded values; here "dark" is the package's one
  definition, :data:`lowlight_matting.color.DARK_THRESHOLD` on the mean linear luminance (the article's 0.3,
  moved to linear light).

Example:
    >>> import torch
    >>> pred, gt = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    >>> image = torch.rand(2, 3, 32, 32) * 0.2          # two dark images
    >>> total, terms = MattingLoss(ssim=0.5, edge=1.5)(pred, gt, image=image)
    >>> sorted(terms)
    ['edge', 'edge_weight', 'mse', 'ssim', 'total']
    >>> float(alpha_mse(gt, gt))
    0.0
"""

from lowlight_matting.losses.matting import MattingLoss, dynamic_edge_weight
from lowlight_matting.losses.pixel import (
    AlphaL1Loss,
    AlphaMSELoss,
    CompositionLoss,
    alpha_l1,
    alpha_mse,
    blend,
    composition_loss,
)
from lowlight_matting.losses.structure import (
    LaplacianLoss,
    SobelEdgeLoss,
    SSIMLoss,
    laplacian_loss,
    laplacian_pyramid,
    sobel_edge_loss,
    sobel_magnitude,
    ssim_loss,
    ssim_map,
)

__all__ = [
    "AlphaL1Loss",
    "AlphaMSELoss",
    "CompositionLoss",
    "LaplacianLoss",
    "MattingLoss",
    "SSIMLoss",
    "SobelEdgeLoss",
    "alpha_l1",
    "alpha_mse",
    "blend",
    "composition_loss",
    "dynamic_edge_weight",
    "laplacian_loss",
    "laplacian_pyramid",
    "sobel_edge_loss",
    "sobel_magnitude",
    "ssim_loss",
    "ssim_map",
]
