"""Alpha-aware training augmentation (albumentations 2.0.8) for low-light matting.

:func:`build_train_transform` mirrors the seed article's table (gamma, brightness/contrast +-40%, motion blur
<= 7, cut-out <= 10% of the area, random resized crop, colour jitter, Gaussian noise) and fixes what its code
gets wrong; :func:`build_article_transform` keeps the article's configuration as written, so notebook 02 can
show each trap next to its fix:

1. ``A.RandomGamma(gamma_limit=(30, 60))`` *brightens*: albumentations computes ``x ** (limit / 100)`` on
   [0, 1] values, and an exponent below 1 lifts a picture. Darkening needs limits above 100; we use
   (167, 333), i.e. ``x ** (1/0.6)`` to ``x ** (1/0.3)`` -- what the article's "gamma in [0.3, 0.6]" meant.
2. ``GaussNoise(var_limit=...)`` and ``CoarseDropout(max_holes=...)`` use argument names removed in 2.x:
   albumentations only *warns* and keeps its defaults (``GaussNoise``: std 20-44% of the range, i.e. 51-112
   code values -- far noisier than intended). We build with ``strict=True`` so a wrong name fails loudly,
   and translate: ``var_limit=(10, 50)`` (variance in DN^2) is ``std_range=(sqrt(10)/255, sqrt(50)/255)``.
3. Geometric transforms resample masks with NEAREST by default, which turns a soft alpha into a staircase
   of a few values. The Compose sets ``mask_interpolation=cv2.INTER_LINEAR`` (and each geometric transform
   is built with it), and the alpha is kept float32.
4. A ``Compose`` held by a Dataset is copied into every DataLoader worker with the same random state, so all
   workers draw the same augmentations. :func:`reseed_transform` (and ``MattingCompose.reseed``) restarts
   the stream; :func:`lowlight_matting.seeding.worker_init_fn` calls ``dataset.reseed(seed)`` per worker.
   Also: ``Compose(seed=s)`` seeds *every* transform with the same ``s``, so their streams start equal
   (correlated decisions); ``reseed`` shares one generator across all transforms instead.
5. Cut-out hides image pixels only (``fill_mask=None``): the alpha stays the ground truth.

Foreground and background travel with the image. Items of synthetic and ``fg_alpha_bg`` data carry the layers
``fg``, ``bg`` of ``I = alpha F + (1 - alpha) B``; the composition loss
(:func:`lowlight_matting.losses.composition_loss`) re-composites them with the predicted alpha and compares
with the same layers under the true alpha, so they must stay pixel-aligned with ``alpha``. They are declared
*mask* targets (:data:`MATTING_TARGETS`), which albumentations moves through every geometric transform with
the same parameters as the image and leaves alone in every pixel-level one (image-type targets would get the
photometric steps too). Geometry only, by choice: the photometric steps are non-linear (gamma, clipping,
the simulator working in linear light), mix neighbours (blur) or occlude (cut-out), so applying them to F and
B would not produce the photometric change of I -- the composite of changed layers is not the changed
composite -- while the clean layers keep ``I_geom = alpha F + (1 - alpha) B`` true after the geometry (every
geometric step here resamples image and masks with the same bilinear filter). The photometric changes are
what the *network input* sees; the composition target is the clean, geometrically aligned scene.

Also different from the article: no ``Normalize`` in the pipeline (our models take [0, 1] RGB and normalise
inside; the contract is uint8 image in, uint8 image out), and the darkening comes *before* the noise (a dark
exposure is taken first, the sensor adds noise to it).

Example:
    >>> import numpy as np
    >>> t = build_train_transform(size=64, seed=0)
    >>> out = t(image=np.zeros((80, 96, 3), np.uint8), alpha=np.zeros((80, 96), np.float32))
    >>> out["image"].shape, out["image"].dtype, out["alpha"].shape, out["alpha"].dtype
    ((64, 64, 3), dtype('uint8'), (64, 64), dtype('float32'))
    >>> layers = t(image=np.zeros((80, 96, 3), np.uint8), alpha=np.zeros((80, 96), np.float32),
    ...            fg=np.zeros((80, 96, 3), np.uint8), bg=np.zeros((80, 96, 3), np.uint8))
    >>> sorted(layers), layers["fg"].shape
    (['alpha', 'bg', 'fg', 'image'], (64, 64, 3))
"""

from __future__ import annotations

import math
import random
from typing import Any

import albumentations as A
import cv2
import numpy as np

from lowlight_matting.simulate import SIMULATOR_PRESETS, LowLightSimulator, preset_ranges, sample_params

__all__ = [
    "MATTING_TARGETS",
    "AugmentedDataset",
    "LowLight",
    "MattingCompose",
    "build_article_transform",
    "build_train_transform",
    "reseed_transform",
]

# alpha, fg and bg are masks: geometric transforms only, resampled like the image (see the module docstring).
MATTING_TARGETS: dict[str, str] = {"alpha": "mask", "fg": "mask", "bg": "mask"}
_LAYER_KEYS = ("fg", "bg")

# The article's "var_limit=(10, 50)" (variance in uint8 DN^2), as a std fraction of the range.
NOISE_STD_RANGE = (math.sqrt(10.0) / 255.0, math.sqrt(50.0) / 255.0)
# The article's "gamma in [0.3, 0.6]" meant x ** (1/gamma): exponents 1/0.6 .. 1/0.3, in albumentations' percent.
DARK_GAMMA_LIMIT = (100.0 / 0.6, 100.0 / 0.3)


def reseed_transform(transform: A.BaseCompose, seed: int | None) -> A.BaseCompose:
    """Restart every random stream of an albumentations Compose from ``seed``; returns the transform.

    One NumPy generator and one ``random.Random`` are shared by all transforms inside (unlike
    ``Compose.set_random_seed``, which gives each transform its own generator with the *same* seed).
    """
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
    transform.seed = seed
    return transform


class MattingCompose(A.Compose):
    """``A.Compose`` with ``reseed(seed)`` (see :func:`reseed_transform`), so DataLoader workers can diverge."""

    def reseed(self, seed: int | None) -> None:
        reseed_transform(self, seed)


class LowLight(A.ImageOnlyTransform):
    """The physically based :class:`~lowlight_matting.simulate.LowLightSimulator` as an albumentations transform.

    Parameters are drawn from the Compose's random stream (so ``seed``/``reseed`` govern them) by
    :func:`~lowlight_matting.simulate.sample_params`, the same law as every other simulator;
    ``preset`` names one of ``simulate.SIMULATOR_PRESETS``; ``ranges`` override it. Image only: masks (and
    ``fg``/``bg``, which are mask targets here) are untouched.
    """

    def __init__(self, preset: str = "default", ranges: dict[str, Any] | None = None, p: float = 1.0):
        super().__init__(p=p)
        if preset not in SIMULATOR_PRESETS:
            raise ValueError(
                f"LowLight: unknown preset {preset!r}; choose from {', '.join(SIMULATOR_PRESETS)}"
            )
        self.preset = preset
        self.ranges = dict(ranges or {})
        self._merged = preset_ranges(preset, **self.ranges)
        LowLightSimulator(**self._merged)  # validate the ranges now

    def get_params(self) -> dict[str, Any]:
        return {"sim_params": sample_params(self.random_generator, **self._merged)}

    def apply(self, img: np.ndarray, sim_params: dict[str, Any] | None = None, **params: Any) -> np.ndarray:
        if img.dtype != np.uint8:
            raise TypeError(f"LowLight: expects uint8 images, got {img.dtype}")
        return LowLightSimulator.apply(img, **(sim_params or {}))

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("preset", "ranges")


def build_train_transform(
    size: int = 512,
    lowlight: bool = True,
    seed: int | None = None,
    *,
    p_lowlight: float = 0.8,
    preset: str = "default",
    photometric: bool = True,
) -> MattingCompose:
    """The training augmentation, called as ``t(image=uint8 (H, W, 3), alpha=float32 (H, W))``, optionally
    with ``fg=``, ``bg=`` uint8 (H, W, 3) (returned under the same keys).

    Geometry (image, alpha, fg and bg together, all resampled bilinearly): random resized crop to ``size`` x
    ``size`` (80-100% of the area), horizontal flip. Photometry (image only; skipped when ``photometric`` is
    False): colour jitter (saturation and hue), brightness/contrast +-40%; when ``lowlight``, with
    probability ``p_lowlight`` either the physical :class:`LowLight` simulator (``preset``) or a darkening
    ``RandomGamma`` with exponent 1.67-3.33; then motion or Gaussian blur (kernel <= 7), Gaussian noise with
    std 3.2-7.1 code values, and cut-out of 1-4 holes each 5-15% of a side (<= 9% of the area) filled black
    in the image only. The geometric steps come first and draw first from the stream, so for one seed the
    geometry is the same with and without the photometric steps.

    Returns a :class:`MattingCompose` built with ``strict=True``; ``seed`` fixes its stream (None: random).
    """
    if size < 8:
        raise ValueError(f"build_train_transform: size must be >= 8, got {size}")
    if not 0.0 <= p_lowlight <= 1.0:
        raise ValueError(f"build_train_transform: p_lowlight must be in [0, 1], got {p_lowlight}")
    linear = cv2.INTER_LINEAR
    transforms: list[Any] = [
        A.RandomResizedCrop(
            size=(size, size), scale=(0.8, 1.0), interpolation=linear, mask_interpolation=linear, p=1.0
        ),
        A.HorizontalFlip(p=0.5),
    ]
    if photometric:
        transforms += [
            A.ColorJitter(brightness=0.0, contrast=0.0, saturation=0.2, hue=0.05, p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.4, contrast_limit=0.4, p=0.5),
        ]
        if lowlight:
            transforms.append(
                A.OneOf(
                    [LowLight(preset=preset, p=1.0), A.RandomGamma(gamma_limit=DARK_GAMMA_LIMIT, p=1.0)],
                    p=p_lowlight,
                )
            )
        transforms += [
            A.OneOf([A.MotionBlur(blur_limit=7, p=1.0), A.GaussianBlur(blur_limit=(3, 7), p=1.0)], p=0.3),
            A.GaussNoise(std_range=NOISE_STD_RANGE, p=0.5),
            A.CoarseDropout(
                num_holes_range=(1, 4),
                hole_height_range=(0.05, 0.15),
                hole_width_range=(0.05, 0.15),
                fill=0,
                fill_mask=None,
                p=0.3,
            ),
        ]
    t = MattingCompose(
        transforms,
        additional_targets=dict(MATTING_TARGETS),
        strict=True,
        mask_interpolation=linear,
        seed=seed,
    )
    if seed is not None:
        t.reseed(seed)
    return t


def build_article_transform(size: int = 512, seed: int | None = None) -> A.Compose:
    """The seed article's pipeline as written (bugs kept, for teaching only -- do not train with it).

    Only change: ``RandomResizedCrop(512, 512, ...)`` is spelt ``size=(512, 512)``, because the positional
    form no longer even builds in albumentations 2.x. Kept as written: ``GaussNoise(var_limit=...)``
    (ignored with a warning -> default std 20-44% noise), ``RandomGamma(gamma_limit=(30, 60))`` (brightens),
    NEAREST mask resampling, no strict mode, ``Normalize`` at the end (the image comes out float,
    ImageNet-normalised). Building it emits albumentations' "not valid" warning.
    """
    return A.Compose(
        [
            A.RandomResizedCrop(size=(size, size), scale=(0.8, 1.0)),
            A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.2, hue=0.1),
            A.GaussNoise(var_limit=(10.0, 50.0)),
            A.RandomGamma(gamma_limit=(30, 60)),
            A.OneOf([A.MotionBlur(blur_limit=7), A.GaussianBlur(blur_limit=7)], p=0.5),
            A.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ],
        additional_targets={"alpha": "mask"},
        seed=seed,
    )


class AugmentedDataset:
    """A map-style dataset applying ``transform`` to items with ``image`` and ``alpha`` (e.g. a list of dicts).

    ``ds[i]`` -> ``{"image": uint8 (H, W, 3), "alpha": float32 (H, W)}``, plus ``fg`` and ``bg`` when the item
    has them: they go through the transform with image and alpha (same geometry, no photometric change; see
    the module docstring), so a composition loss still sees aligned layers. Other keys are dropped (they
    would need the same geometry). A transform must then declare ``fg``/``bg`` targets, as
    :func:`build_train_transform` does (:data:`MATTING_TARGETS`). ``reseed(seed)`` reseeds the transform --
    what :func:`lowlight_matting.seeding.worker_init_fn` calls in each DataLoader worker.
    """

    def __init__(self, items, transform) -> None:
        self.dataset = items
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        item = self.dataset[i]
        kwargs = {"image": item["image"], "alpha": np.asarray(item["alpha"], np.float32)}
        layers = [k for k in _LAYER_KEYS if item.get(k) is not None]
        declared = getattr(self.transform, "additional_targets", None)
        if layers and declared is not None and not set(layers) <= set(declared):
            raise ValueError(
                f"AugmentedDataset: items have {layers} but the transform does not declare them as targets; "
                f"build it with additional_targets={MATTING_TARGETS} (as build_train_transform does)"
            )
        kwargs |= {k: item[k] for k in layers}
        out = self.transform(**kwargs)
        return {k: out[k] for k in kwargs}

    def reseed(self, seed: int | None) -> None:
        reseed = getattr(self.transform, "reseed", None)
        if callable(reseed):
            reseed(seed)
        else:
            reseed_transform(self.transform, seed)
