"""A matting model ready for photos: any size in, full-resolution alpha and RGBA cut-out out.

The pieces, in the order a photo goes through :class:`Matter`:

1. **Input check** (:func:`check_image`): uint8/uint16/float RGB, grey or RGBA; NaN, infinities and float
   values outside [0, 1] are refused, not clipped.
2. **Working resolution.** The network runs on a copy whose long side is at most ``long_side`` pixels
   (default :data:`DEFAULT_LONG_SIDE`, rounded to a multiple of the model's stride ``model.stride``),
   reflect-padded (OpenCV's ``BORDER_REFLECT_101``, which works at any size, 1x1 included) up to a multiple
   of the stride and cropped back afterwards, so the aspect ratio is kept exactly. Photos smaller than
   ``long_side`` run at their own size. Memory for the network depends on ``long_side`` only.
3. **Edge-aware upsampling** back to full size (:mod:`.upsample`); bilinear for very noisy photos.
4. **Output check**: a NaN or infinite alpha (a broken model) is an error, never a transparent cut-out.
5. **Foreground colours** for :meth:`Matter.cutout`: pymatting's multi-level estimation (Germer et al.,
   "Fast Multi-Level Foreground Estimation", ICPR 2020), solved in linear light, so background colour does
   not bleed into the transparent edge; ``foreground="none"`` keeps the photo's colours (faster).

Example:
    >>> from lowlight_matting.models import build_model
    >>> matter = Matter(build_model("test_convnext"), long_side=64, foreground="none")
    >>> image = np.zeros((300, 201, 3), np.uint8)
    >>> matter.predict(image).shape
    (300, 201)
    >>> matter.cutout(image).shape
    (300, 201, 4)
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

from lowlight_matting.color import linear_to_u8, u8_to_linear
from lowlight_matting.device import resolve_device

from .upsample import guide_noise, guided_upsample

__all__ = [
    "DEFAULT_LONG_SIDE",
    "FOREGROUND_METHODS",
    "PRECISIONS",
    "UPSAMPLE_METHODS",
    "Matter",
    "check_image",
    "estimate_foreground",
    "model_stride",
    "working_size",
]

DEFAULT_LONG_SIDE = 512
"""Default long side of the working resolution in pixels (a multiple of 32, the usual encoder stride)."""

FOREGROUND_METHODS = ("ml", "none")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
UPSAMPLE_METHODS = ("auto", "guided", "bilinear")


def model_stride(model: Any) -> int:
    """The multiple a model's input sides are padded to: ``model.stride`` (a CV-UNet's encoder stride,
    lcm'd with an integer LLIE down-scaling factor; see :attr:`lowlight_matting.models.CVUNet.stride`),
    32 for a module without one. Checked to be an integer in [1, 256]."""
    return _check_stride(getattr(model, "stride", 32), "model.stride")


def _check_stride(stride: Any, name: str = "stride") -> int:
    if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= 256:
        raise ValueError(f"{name} must be an integer in [1, 256], got {stride!r:.40}")
    return int(stride)


def working_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) the network sees before padding: scaled so the long side is at most ``long_side``, never up.

    Example:
        >>> working_size(3000, 2000, 512), working_size(100, 61, 512)
        ((512, 341), (100, 61))
    """
    if height < 1 or width < 1:
        raise ValueError(f"image: empty ({height} x {width})")
    s = min(1.0, long_side / max(height, width))
    return max(1, round(height * s)), max(1, round(width * s))


def _pad_amounts(h: int, w: int, stride: int) -> tuple[int, int]:
    return (-h) % stride, (-w) % stride


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """``image`` as contiguous uint8 RGB (H, W, 3); every other input is checked, never silently fixed.

    Accepted: uint8 or uint16 (rounded to 8 bits) grey (H, W), RGB or RGBA (alpha dropped); float in [0, 1]
    (scaled by 255). Refused with a ``ValueError`` naming ``name``: other shapes or dtypes, an empty image,
    NaN or infinite values, and float values outside [0, 1] (uint8 values stored as float: divide by 255).
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"{name}: expected an RGB array (H, W, 3) (grey and RGBA accepted), got shape {a.shape}"
        )
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name}: empty image of shape {a.shape}")
    a = a[:, :, :3]
    if a.dtype == np.uint16:
        a = np.round(a.astype(np.float32) / 257.0).astype(np.uint8)
    elif a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"{name}: expected uint8, uint16 or float in [0, 1], got dtype {a.dtype}")
        f = a.astype(np.float32)
        if not np.isfinite(f).all():
            raise ValueError(f"{name}: holds NaN or infinite values")
        lo, hi = float(f.min()), float(f.max())
        if lo < 0.0 or hi > 1.0:
            hint = " (divide uint8 values by 255)" if hi <= 255.0 and lo >= 0.0 else ""
            raise ValueError(f"{name}: float values must be in [0, 1], got {lo:g} .. {hi:g}{hint}")
        a = np.round(f * 255.0).astype(np.uint8)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


class _OnnxModel:
    """Callable wrapper of an onnxruntime session with the model's call signature (float32 tensors)."""

    def __init__(self, session: Any):
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        (y,) = self.session.run(None, {self.input_name: x.detach().cpu().float().numpy()})[:1]
        y = np.asarray(y, dtype=np.float32)
        b, _, h, w = x.shape
        if y.ndim != 4 or y.shape[0] != b or y.shape[2:] != (h, w):
            raise ValueError(
                f"ONNX graph: output shape {y.shape} for input {tuple(x.shape)}; expected ({b}, 1, {h}, {w})"
            )
        return torch.from_numpy(y)


class Matter:
    """A matting model ready for photos: ``predict`` (alpha) and ``cutout`` (RGBA) at full resolution.

    Args:
        model: a CV-UNet (``nn.Module``: float (B, 3, H, W) in [0, 1] → alpha (B, 1, H, W)) or an
            onnxruntime ``InferenceSession`` of an exported one (then pass ``stride``).
        device: ``None``/``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        long_side: long side of the working resolution; rounded to a multiple of the stride.
        precision: ``"auto"`` (bf16 autocast on a CUDA GPU that supports it, else fp32), ``"fp32"``,
            ``"bf16"`` or ``"fp16"`` (autocast; fp16 only on CUDA).
        foreground: ``"ml"`` (pymatting multi-level foreground estimation in :meth:`cutout`) or ``"none"``.
        upsample: ``"auto"`` (guided, unless the photo is so noisy that the guide would copy its noise
            into the alpha: then bilinear), ``"guided"`` or ``"bilinear"``. :attr:`last_upsample` records
            which one the last photo got.
        radius, eps: guided upsampling parameters (radius in working-resolution pixels); ``eps`` is raised
            by the squared noise level of the (normalised) guide, so noisier photos are smoothed more.
        noise_limit: with ``upsample="auto"``, the guide noise level (std, normalised guide) above which
            bilinear upsampling is used (:meth:`choose_upsample`). Measured on the ten course test samples,
            true alpha reduced 3x (384 -> 128 px) and brought back: the guided filter beats bilinear on all
            clean photos, on about half of the mildly darkened ones (noise 0.02-0.07) and on none above
            0.085; of the limits 0-0.15, 0.08 gave the lowest total SAD. A data-dependent compromise:
            single photos disagree (notebook 08, section 4, repeats the measurement).
        stride: override the input stride (default: ``model.stride``, see :func:`model_stride`; 32 for an
            ONNX session).
        name: label used in reports (e.g. by :class:`AutoMatter`).

    Raises (at construction, once — not once per photo): ``ValueError`` for an unknown option, a bad
    ``device`` (:func:`lowlight_matting.device.resolve_device`) or ``precision="fp16"`` without CUDA.
    """

    def __init__(
        self,
        model: torch.nn.Module | Any,
        device: str | torch.device | None = None,
        long_side: int = DEFAULT_LONG_SIDE,
        precision: str = "auto",
        foreground: str = "ml",
        upsample: str = "auto",
        radius: int = 1,
        eps: float = 1e-4,
        noise_limit: float = 0.08,
        stride: int | None = None,
        name: str = "model",
    ):
        if upsample not in UPSAMPLE_METHODS:
            raise ValueError(f"upsample must be one of {UPSAMPLE_METHODS}, got {upsample!r}")
        if foreground not in FOREGROUND_METHODS:
            raise ValueError(f"foreground must be one of {FOREGROUND_METHODS}, got {foreground!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if isinstance(model, torch.nn.Module):
            self.device = resolve_device(device)
            self.model = model.eval().to(self.device)
            if self.device.type == "cuda":
                self.model = self.model.to(memory_format=torch.channels_last)
            self.stride = model_stride(model) if stride is None else _check_stride(stride)
            self.backend = "torch"
        elif hasattr(model, "run") and hasattr(model, "get_inputs"):
            self.device = torch.device("cpu")
            self.model = _OnnxModel(model)
            self.stride = _check_stride(32 if stride is None else stride)
            self.backend = "onnxruntime"
        else:
            raise TypeError(
                f"model: expected an nn.Module or an onnxruntime InferenceSession, got {type(model)}"
            )
        if long_side < 1:
            raise ValueError(f"long_side must be positive, got {long_side}")
        self.long_side = max(self.stride, round(long_side / self.stride) * self.stride)
        self.precision = precision
        self.foreground = foreground
        self.upsample = upsample
        self.radius = int(radius)
        self.eps = float(eps)
        self.noise_limit = float(noise_limit)
        self.last_upsample: str | None = None
        self.name = name
        self.config: dict[str, Any] = dict(getattr(model, "config", {}) or {})
        _ = self.autocast_dtype  # fp16 on a CPU fails here, once, not on every photo

    # --- precision ---------------------------------------------------------------------------------------
    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype inference uses on this device, or None for plain fp32."""
        if self.backend != "torch" or self.precision == "fp32":
            return None
        if self.precision == "auto":
            if self.device.type == "cuda" and torch.cuda.is_bf16_supported():
                return torch.bfloat16
            return None
        if self.precision == "fp16":
            if self.device.type != "cuda":
                raise ValueError(
                    f"precision='fp16' needs a CUDA device, this model runs on {self.device.type} "
                    "(use 'bf16' or 'fp32')"
                )
            return torch.float16
        return torch.bfloat16

    def _autocast(self):
        dtype = self.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    # --- pre / post processing ---------------------------------------------------------------------------
    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """Size (h, w) the photo is resized to before padding to a multiple of :attr:`stride`."""
        return working_size(height, width, self.long_side)

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        """uint8 RGB → float32 (3, h_pad, w_pad) in [0, 1] at the working resolution, reflect-padded."""
        H, W = image.shape[:2]
        h, w = self.working_size(H, W)
        small = image if (h, w) == (H, W) else cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        ph, pw = _pad_amounts(h, w, self.stride)
        if ph or pw:
            small = cv2.copyMakeBorder(small, 0, ph, 0, pw, cv2.BORDER_REFLECT_101)
        return np.ascontiguousarray(small.transpose(2, 0, 1)).astype(np.float32) / 255.0

    @torch.inference_mode()
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """(B, 3, h, w) float32 → (B, h, w) float32 alpha, on the model's device and precision."""
        x = torch.from_numpy(batch).to(self.device, non_blocking=True)
        if self.backend == "torch" and self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            y = self.model(x)
        if isinstance(y, dict):
            y = y["alpha"]
        y = y[:, 0].float()
        if not bool(torch.isfinite(y).all()):  # a broken model: never a silently transparent cut-out
            raise ValueError(f"model {self.name!r} produced NaN or infinite alpha values (broken weights?)")
        return y.clamp_(0, 1).cpu().numpy()

    def _finish(self, image: np.ndarray, alpha_pad: np.ndarray) -> np.ndarray:
        H, W = image.shape[:2]
        h, w = self.working_size(H, W)
        alpha_lo = np.ascontiguousarray(alpha_pad[:h, :w])
        if (h, w) == (H, W):
            self.last_upsample = "none"
            return alpha_lo.astype(np.float32)
        method, noise = self.choose_upsample(image)
        self.last_upsample = method
        if method == "bilinear":
            return np.clip(cv2.resize(alpha_lo, (W, H), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
        return guided_upsample(image, alpha_lo, radius=self.radius, eps=self.eps + noise**2)

    def choose_upsample(self, image: np.ndarray) -> tuple[str, float]:
        """``(method, noise)``: how :meth:`predict` brings ``image``'s alpha to full size, and why.

        ``method`` is ``"none"`` (the photo is no larger than the working size), ``"bilinear"`` or
        ``"guided"``; with ``upsample="auto"`` it is ``"guided"`` when the guide noise
        (:func:`~.upsample.guide_noise`, std of the brightness-normalised photo at full resolution) is at
        most :attr:`noise_limit`, else ``"bilinear"``. ``noise`` is that level (0.0 when not measured).
        """
        img = check_image(image)
        H, W = img.shape[:2]
        h, w = self.working_size(H, W)
        if (h, w) == (H, W):
            return "none", 0.0
        if self.upsample == "bilinear":
            return "bilinear", 0.0
        noise = guide_noise(img, (h, w))
        if self.upsample == "auto":
            return ("guided" if noise <= self.noise_limit else "bilinear"), noise
        return "guided", noise

    # --- public API --------------------------------------------------------------------------------------
    def predict_lowres(self, image: np.ndarray) -> np.ndarray:
        """The network's alpha at the working resolution (before upsampling), float32 (h, w)."""
        img = check_image(image)
        h, w = self.working_size(*img.shape[:2])
        return self._forward(self._prepare(img)[None])[0, :h, :w]

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Alpha matte of ``image`` (uint8 RGB (H, W, 3); grey/RGBA/16-bit/float accepted) as float32
        (H, W) in [0, 1] at the photo's own resolution."""
        img = check_image(image)
        return self._finish(img, self._forward(self._prepare(img)[None])[0])

    def predict_batch(self, images: Sequence[np.ndarray], batch_size: int = 8) -> list[np.ndarray]:
        """:meth:`predict` for many photos; photos with the same padded working size share a forward pass."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        imgs = [check_image(im, f"images[{i}]") for i, im in enumerate(images)]
        prepared = [self._prepare(im) for im in imgs]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(prepared):
            groups.setdefault(x.shape, []).append(i)
        out: list[np.ndarray | None] = [None] * len(imgs)
        for idx in groups.values():
            for k in range(0, len(idx), batch_size):
                chunk = idx[k : k + batch_size]
                alphas = self._forward(np.stack([prepared[i] for i in chunk]))
                for i, a in zip(chunk, alphas, strict=True):
                    out[i] = self._finish(imgs[i], a)
        return out  # type: ignore[return-value]

    def estimate_foreground(self, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Foreground colours F (uint8 RGB) for ``image`` and its ``alpha`` (pymatting's
        ``estimate_foreground_ml``: Germer et al., ICPR 2020), or the image itself with ``foreground="none"``."""
        img = check_image(image)
        if self.foreground == "none":
            return img
        return estimate_foreground(img, alpha)

    def cutout(self, image: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
        """RGBA uint8 (H, W, 4) cut-out: estimated foreground colours plus the predicted alpha.

        Pass ``alpha`` (from :meth:`predict`) to skip running the network again.
        """
        img = check_image(image)
        a = self.predict(img) if alpha is None else np.asarray(alpha, dtype=np.float32)
        if a.shape != img.shape[:2]:
            raise ValueError(f"alpha: shape {a.shape} does not match the image {img.shape[:2]}")
        if not np.isfinite(a).all():
            raise ValueError("alpha: holds NaN or infinite values")
        fg = self.estimate_foreground(img, a)
        return np.dstack([fg, np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)])

    def warmup(self) -> Matter:
        """Run once on a tiny image (loads kernels, compiles pymatting's numba code if not cached)."""
        img = np.full((self.stride * 2, self.stride * 2 + 1, 3), 128, np.uint8)
        self.cutout(img)
        return self

    def __repr__(self) -> str:
        return (
            f"Matter(name={self.name!r}, backend={self.backend}, device={self.device}, long_side={self.long_side}, "
            f"stride={self.stride}, precision={self.precision}, foreground={self.foreground!r})"
        )


def estimate_foreground(
    image: np.ndarray, alpha: np.ndarray, regularization: float = 1e-5, linear: bool = True
) -> np.ndarray:
    """Foreground colours (uint8 sRGB) by multi-level estimation (Germer et al. 2020, via pymatting).

    Solves for the F (and B) that make ``I = αF + (1 − α)B`` hold with smooth F and B, coarse to fine, so a
    pixel at a semi-transparent hair edge gets the hair's colour rather than the mix with the background.
    ``linear=True`` (default) solves in linear light (:func:`lowlight_matting.color.u8_to_linear`, back with
    :func:`~lowlight_matting.color.linear_to_u8`), where the equation is physics: light from the strand and
    from the background adds up, and the course's data are composited that way
    (:func:`lowlight_matting.color.composite`). ``linear=False`` solves on the sRGB-encoded values, as most
    matting code does; re-composited in linear light such an F is off at mixed pixels.
    """
    from pymatting import estimate_foreground_ml

    img8 = check_image(image)
    if max(img8.shape[:2]) < 2:  # pymatting's level count is log2(size): a 1x1 image divides by zero
        return img8  # one pixel has no neighbours to borrow colours from: its own colour is the estimate
    img = u8_to_linear(img8) if linear else img8.astype(np.float32) / 255.0
    a = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)
    fg = np.asarray(estimate_foreground_ml(img, a, regularization=regularization))
    if linear:
        return linear_to_u8(fg)
    return np.clip(np.round(fg * 255.0), 0, 255).astype(np.uint8)
