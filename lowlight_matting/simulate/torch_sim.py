"""The batched low-light simulator in torch: a whole ``(B, 3, H, W)`` batch at once, on any device.

:func:`simulate_batch` draws per-sample parameters from the one law of :mod:`.params` (the same function the
NumPy :class:`~lowlight_matting.simulate.LowLightSimulator` draws from) and :func:`apply_batch` applies the
steps of :mod:`.numpy_sim` in the same order: sRGB -> linear, white balance, motion blur, exposure cut,
sensor + row noise, digital gain, back to sRGB, tone exponent, 8-bit rounding, JPEG.

Host synchronisation (the training loop runs this every step on the GPU). Parameters are drawn on the
generator's device -- pass a CPU ``torch.Generator`` (``None`` also draws them on the CPU) -- and copied to
the images' device without waiting; kernel sizes come from the ranges, not the draws; no ``.item()``, no
Python loop over the batch. The one exception is JPEG: the samples drawn for it (``p_jpeg``, 30 % by
default) are copied to the host, encoded and decoded there by the same OpenCV codec as the NumPy path
(:func:`~lowlight_matting.simulate.numpy_sim.jpeg_roundtrip`), and copied back -- one device-to-host copy
per batch that has such a sample. ``p_jpeg=0`` removes it. (Why not ``torchvision.io.encode_jpeg`` on the GPU:
its ``decode_jpeg`` needs the encoded bytes on the CPU, so it synchronises as well; the functions are
deprecated since torchvision 0.29; and a second codec would make the two simulators' JPEG step differ.)
With a CUDA generator, reading the per-sample JPEG qualities is a further synchronisation.

Remaining differences from the NumPy path: the random streams (same distribution, not the same draws); on
an image smaller than half the blur kernel the edges are replicated instead of mirrored.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lowlight_matting.color import linear_to_srgb, srgb_to_linear
from lowlight_matting.simulate.noise import add_sensor_noise
from lowlight_matting.simulate.numpy_sim import jpeg_roundtrip
from lowlight_matting.simulate.params import PARAM_DEFAULTS, check_ranges, draw_params

__all__ = ["apply_batch", "motion_blur_kernels", "sample_params_torch", "simulate_batch"]

_BATCH_PARAMS = tuple(k for k in PARAM_DEFAULTS if k != "noise_seed")


def sample_params_torch(batch_size: int, generator: torch.Generator | None = None, **ranges: Any):
    """Draw ``batch_size`` parameter sets from the law of :mod:`.params`, on ``generator``'s device.

    ``generator``: a ``torch.Generator`` (None: torch's default CPU stream). Returns a dict of float32
    tensors ``(B,)`` (``wb``: ``(B, 3)``; ``jpeg_quality``: int64, 0 = none).

    >>> p = sample_params_torch(8, torch.Generator().manual_seed(0))
    >>> p["ratio"].shape, p["wb"].shape, p["jpeg_quality"].dtype
    (torch.Size([8]), torch.Size([8, 3]), torch.int64)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"sample_params_torch: batch_size must be a positive int, got {batch_size!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"sample_params_torch: generator must be a torch.Generator or None, got {generator!r}"
        )
    rr = check_ranges(ranges, "simulate_batch")
    dev = generator.device if generator is not None else torch.device("cpu")
    p = draw_params(
        lambda: torch.rand(batch_size, generator=generator, device=dev),
        lambda: torch.randn(batch_size, generator=generator, device=dev),
        torch,
        rr,
    )
    p["jpeg_quality"] = p["jpeg_quality"].to(torch.int64)
    return p


def motion_blur_kernels(length: torch.Tensor, angle: torch.Tensor, size: int) -> torch.Tensor:
    """Per-sample motion-blur kernels ``(B, size, size)``: the formula of ``numpy_sim.motion_blur_kernel``.

    ``length``, ``angle`` (degrees): tensors ``(B,)``; ``size``: odd kernel side (lines longer than it are cut).
    ``length <= 1`` (a sample without blur) gives a delta, so it passes through the convolution unchanged.
    """
    h = size // 2
    r = torch.arange(-h, h + 1, device=length.device, dtype=torch.float32)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    t = torch.deg2rad(angle.to(torch.float32)).view(-1, 1, 1)
    along = xx * torch.cos(t) + yy * torch.sin(t)
    perp = -xx * torch.sin(t) + yy * torch.cos(t)
    length = length.to(torch.float32).view(-1, 1, 1)
    w = (1.0 - perp.abs()).clamp_min(0.0) * (along.abs() <= length.clamp_min(1.0) / 2 + 1e-6)
    w = w / w.sum(dim=(1, 2), keepdim=True)
    delta = ((xx == 0) & (yy == 0)).to(torch.float32)
    return torch.where(length <= 1.0, delta, w)  # length <= 1 (blur off): exactly the identity


def _check_images(images, who: str) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"{who}: images must be a (B, 3, H, W) tensor, got {getattr(images, 'shape', images)}"
        )
    if not images.is_floating_point():
        raise TypeError(f"{who}: images must be float in [0, 1], got {images.dtype}")


def _noise_generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator | None:
    """``generator`` when it lives on ``device``; else a ``device`` generator seeded from it (None: default)."""
    if generator is None or generator.device == device:
        return generator
    seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))  # a host read of a CPU tensor for a CPU generator: no GPU sync
    return gen


def _jpeg(s: torch.Tensor, qualities: list[int]) -> torch.Tensor:
    """Replace each sample ``i`` with ``qualities[i] > 0`` by its JPEG round trip (host, OpenCV)."""
    idx = [i for i, q in enumerate(qualities) if q > 0]
    if not idx:
        return s
    sel = torch.tensor(idx, device=s.device)
    u8 = torch.round(s[sel] * 255.0).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    dec = np.stack([jpeg_roundtrip(u8[j], qualities[i]) for j, i in enumerate(idx)])
    s = s.clone()
    s[sel] = torch.from_numpy(dec).to(s.device, non_blocking=True).permute(0, 3, 1, 2).to(s.dtype) / 255.0
    return s


def apply_batch(
    images: torch.Tensor,
    params: dict[str, Any],
    generator: torch.Generator | None = None,
    *,
    quantize: bool = True,
    blur_size: int | None = None,
) -> torch.Tensor:
    """Apply given per-sample parameters to a batch: the steps of ``LowLightSimulator.apply``, batched.

    ``images``: float (B, 3, H, W) sRGB in [0, 1]. ``params``: the names of ``LowLightSimulator.apply``
    except ``noise_seed`` (the noise comes from ``generator``), each a number or a tensor ``(B,)`` (``wb``:
    ``(3,)`` or ``(B, 3)``) on any device; missing ones mean "off". ``blur_size``: odd kernel side; None
    derives it from the largest ``blur_length`` (one host read); ``0`` skips the blur. ``quantize``: round to
    8-bit levels (JPEG'd samples are 8-bit in any case). Returns a tensor of the images' shape, device and
    dtype in [0, 1].
    """
    _check_images(images, "apply_batch")
    unknown = set(params) - set(_BATCH_PARAMS)
    if unknown:
        raise TypeError(
            f"apply_batch: unknown parameter(s) {sorted(unknown)}; known: {', '.join(_BATCH_PARAMS)}"
            " (the noise comes from generator, not noise_seed)"
        )
    b, _, h, w = images.shape
    device = images.device

    def param(name: str, shape: tuple[int, ...]) -> torch.Tensor:
        v = torch.as_tensor(params.get(name, PARAM_DEFAULTS[name]), dtype=torch.float32)
        return v.to(device, non_blocking=True).expand(shape)

    ratio, shot, read = param("ratio", (b,)), param("shot", (b,)), param("read", (b,))
    row_std, gain, gamma = param("row_std", (b,)), param("gain", (b,)), param("gamma", (b,))
    blur_length, blur_angle = param("blur_length", (b,)), param("blur_angle", (b,))
    wb = param("wb", (b, 3))

    def col(v: torch.Tensor) -> torch.Tensor:
        return v.reshape(b, 1, 1, 1)

    x = srgb_to_linear(images.to(torch.float32))
    x = x * wb.reshape(b, 3, 1, 1)
    if blur_size is None:  # a host read: simulate_batch passes the size from the ranges instead
        blur_size = int(math.ceil(float(torch.as_tensor(params.get("blur_length", 0.0)).max()))) | 1
    if not isinstance(blur_size, int) or blur_size < 0 or (blur_size > 1 and blur_size % 2 == 0):
        raise ValueError(f"apply_batch: blur_size must be 0, 1 or an odd kernel side, got {blur_size!r}")
    if blur_size > 1:
        k = motion_blur_kernels(blur_length, blur_angle, blur_size)
        pad = blur_size // 2
        mode = "reflect" if min(h, w) > pad else "replicate"
        xp = F.pad(x.reshape(1, b * 3, h, w), (pad, pad, pad, pad), mode=mode)
        weight = k.repeat_interleave(3, dim=0).unsqueeze(1)  # (B*3, 1, k, k)
        x = F.conv2d(xp, weight, groups=b * 3).view(b, 3, h, w)
    x = x / col(ratio)
    gen_noise = _noise_generator(generator, device)
    x = add_sensor_noise(x, col(shot), col(read), gen_noise)
    z = torch.randn((b, 1, h, 1), generator=gen_noise, device=device)
    x = x + col(row_std) * z
    x = x * col(gain)
    s = linear_to_srgb(x) ** col(gamma)
    if quantize:
        s = torch.round(s * 255.0) / 255.0
    if "jpeg_quality" in params:
        q = torch.as_tensor(params["jpeg_quality"]).expand(b)
        s = _jpeg(s, [int(v) for v in q.tolist()])  # a CPU tensor for a CPU generator: no GPU sync
    return s.clamp(0.0, 1.0).to(images.dtype)


def simulate_batch(images, generator=None, *, quantize: bool = True, return_params: bool = False, **ranges):
    """Batched low-light simulation: the :class:`LowLightSimulator` law and steps, per-sample parameters.

    ``images``: float tensor (B, 3, H, W), sRGB in [0, 1], on any device. ``generator``: a ``torch.Generator``
    (None: torch's default streams); a CPU generator keeps the call free of GPU synchronisation except for
    the JPEG step (module docstring). The noise is drawn on the images' device, from ``generator`` itself
    when it lives there, else from a device generator seeded from it. ``ranges``: as for
    :class:`LowLightSimulator` (a preset: ``**SIMULATOR_PRESETS["mild"]``). ``quantize``: round to 8-bit
    levels like the NumPy path. Returns a tensor of the same shape, device and dtype in [0, 1]; with
    ``return_params=True`` also the dict of per-sample parameter tensors (on the images' device).

    >>> x = torch.full((4, 3, 16, 16), 0.7)
    >>> y = simulate_batch(x, torch.Generator().manual_seed(0))
    >>> y.shape, bool((y.mean(dim=(1, 2, 3)) < 0.7).all())
    (torch.Size([4, 3, 16, 16]), True)
    """
    _check_images(images, "simulate_batch")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"simulate_batch: generator must be a torch.Generator or None, got {generator!r}")
    rr = check_ranges(ranges, "simulate_batch")
    p = sample_params_torch(images.shape[0], generator, **ranges)
    blur_size = (int(math.ceil(rr["blur_length"][1])) | 1) if rr["p_blur"] > 0 else 0
    todo = p if rr["p_jpeg"] > 0 else {k: v for k, v in p.items() if k != "jpeg_quality"}
    out = apply_batch(images, todo, generator, quantize=quantize, blur_size=blur_size)
    if not return_params:
        return out
    return out, {k: v.to(images.device, non_blocking=True) for k, v in p.items()}
