"""Automatic switching by brightness: measure a photo in linear light, route it to the normal or the
low-light model, and calibrate the cut-off on data.

:class:`AutoMatter` measures the photo's brightness (:func:`image_brightness`, the mean linear-light luminance
of :mod:`lowlight_matting.color`) and sends photos darker than its threshold to the low-light model, others
to the original one, recording a :class:`Route` that says which and why. The default threshold is
:data:`lowlight_matting.color.DARK_THRESHOLD` — the one meaning of "dark" in the package (the article's sRGB
0.3, in linear light: 0.0732), the same cut the training loss and the evaluation use.

The article this course follows recommends switching "by brightness" but measures brightness as the mean of
gamma-encoded (sRGB) grey values; the sRGB mean of a photo says little about how much light reached the
sensor (a mid-grey sRGB 0.5 is only 21% of the light of white). Here brightness is linear light, and
:func:`calibrate_threshold` computes a data-driven alternative: the equal-error point between normal photos
and the same photos after the training-time low-light simulator. The two distributions overlap (the
simulator's mildest exposure cuts and its bright-but-noisy ISP cases look normal to a brightness meter), so
no single cut separates them; notebook 08 plots both samples with the calibrated and the default threshold.

Example:
    >>> round(image_brightness(np.full((8, 8, 3), 128, np.uint8)), 3)
    0.216
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lowlight_matting.color import DARK_THRESHOLD, luminance, mean_luminance

from .matter import Matter, check_image

__all__ = [
    "BRIGHTNESS_METHODS",
    "AutoMatter",
    "Calibration",
    "Route",
    "balanced_accuracy",
    "calibrate_threshold",
    "calibration_images",
    "image_brightness",
    "threshold_between",
]


BRIGHTNESS_METHODS = ("mean_linear", "percentile")


def image_brightness(image: np.ndarray, method: str = "mean_linear", percentile: float = 75.0) -> float:
    """Brightness of a photo in [0, 1], measured in *linear light* (proportional to photons, not to sRGB).

    ``"mean_linear"``: :func:`lowlight_matting.color.mean_luminance`, the mean Rec. 709 luminance
    ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` of the linearised image — the one definition the simulator, the
    loss weight and the evaluation's brightness bins use too. ``"percentile"``: the ``percentile``-th
    percentile of :func:`lowlight_matting.color.luminance`, robust to a few bright lamps in a dark scene.

    Example:
        >>> round(image_brightness(np.full((4, 4, 3), 255, np.uint8)), 3)
        1.0
        >>> round(image_brightness(np.full((4, 4, 3), 128, np.uint8)), 3)  # sRGB mid-grey is ~22% of white
        0.216
    """
    if method not in BRIGHTNESS_METHODS:
        raise ValueError(f"method must be one of {BRIGHTNESS_METHODS}, got {method!r}")
    img = check_image(image)
    if method == "mean_linear":
        return float(mean_luminance(img))
    if not (isinstance(percentile, int | float) and 0.0 <= percentile <= 100.0):
        raise ValueError(f"percentile must be a number in [0, 100], got {percentile!r}")
    return float(np.percentile(luminance(img), percentile))


@dataclass(frozen=True)
class Route:
    """Which model :class:`AutoMatter` used for a photo, and why."""

    name: str  # "normal" or "lowlight"
    brightness: float
    threshold: float
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


class AutoMatter:
    """Route each photo to the original (``normal``) or the low-light model by its brightness.

    A photo whose :func:`image_brightness` is below ``threshold`` goes to ``lowlight``, any other to
    ``normal``; :attr:`last_route` (and :meth:`route`) report the decision as a :class:`Route`.

    Example:
        >>> from lowlight_matting.models import build_model
        >>> auto = AutoMatter(Matter(build_model("test_convnext"), long_side=64),
        ...                   Matter(build_model("test_convnext"), long_side=64))
        >>> auto.route(np.full((8, 8, 3), 10, np.uint8)).name
        'lowlight'
    """

    def __init__(
        self,
        normal: Matter,
        lowlight: Matter,
        threshold: float = DARK_THRESHOLD,
        method: str = "mean_linear",
        percentile: float = 75.0,
    ):
        if not (isinstance(threshold, int | float) and 0.0 < threshold < 1.0):  # also refuses NaN
            raise ValueError(f"threshold must be in (0, 1) (linear-light luminance), got {threshold}")
        if method not in BRIGHTNESS_METHODS:
            raise ValueError(f"method must be one of {BRIGHTNESS_METHODS}, got {method!r}")
        self.normal = normal
        self.lowlight = lowlight
        self.threshold = float(threshold)
        self.method = method
        self.percentile = percentile
        self.last_route: Route | None = None
        self.counts: dict[str, int] = {"normal": 0, "lowlight": 0}

    def route(self, image: np.ndarray) -> Route:
        """Decide (without running a model) which model ``image`` goes to."""
        b = image_brightness(image, self.method, self.percentile)
        what = "mean linear luminance" if self.method == "mean_linear" else f"p{self.percentile:g} luminance"
        if b < self.threshold:
            return Route("lowlight", b, self.threshold, f"{what} {b:.4f} < threshold {self.threshold:.4f}")
        return Route("normal", b, self.threshold, f"{what} {b:.4f} >= threshold {self.threshold:.4f}")

    def select(self, image: np.ndarray) -> tuple[Matter, Route]:
        r = self.route(image)
        self.last_route = r
        self.counts[r.name] = self.counts.get(r.name, 0) + 1
        return (self.lowlight if r.name == "lowlight" else self.normal), r

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Alpha from the routed model; the decision is in :attr:`last_route`."""
        matter, _ = self.select(image)
        return matter.predict(image)

    def predict_with_route(self, image: np.ndarray) -> tuple[np.ndarray, Route]:
        matter, r = self.select(image)
        return matter.predict(image), r

    def cutout(self, image: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
        """RGBA from the routed model (foreground estimation as that model's ``foreground`` option)."""
        matter, _ = self.select(image)
        return matter.cutout(image, alpha=alpha)


def balanced_accuracy(normal: Iterable[float], lowlight: Iterable[float], threshold: float) -> float:
    """Mean of the two per-class accuracies of the rule "low light iff brightness < threshold"."""
    n = np.asarray(list(normal), np.float64)
    low = np.asarray(list(lowlight), np.float64)
    return float(0.5 * (np.mean(low < threshold) + np.mean(n >= threshold)))


def threshold_between(normal: Iterable[float], lowlight: Iterable[float]) -> tuple[float, float]:
    """Threshold t separating two brightness samples ("low light" iff brightness < t): the equal-error point.

    The two samples overlap in practice (a dim but normally exposed room vs a mildly darkened photo), so the
    cut is put where the share of normal photos sent to the low-light model equals the share of low-light
    photos sent to the normal one. Both empirical distribution functions are interpolated linearly in
    log-brightness (brightness is multiplicative: exposure halves or doubles it), which makes t vary
    smoothly with the data instead of jumping between sample values. Returns ``(t, balanced_accuracy)``.

    Example:
        >>> t, acc = threshold_between([0.2, 0.3, 0.5], [0.01, 0.02, 0.04])
        >>> bool(0.04 < t < 0.2), acc
        (True, 1.0)
    """
    n = np.log(np.maximum(np.sort(np.asarray(list(normal), np.float64)), 1e-6))
    low = np.log(np.maximum(np.sort(np.asarray(list(lowlight), np.float64)), 1e-6))
    if n.size == 0 or low.size == 0:
        raise ValueError("threshold_between: both samples must be non-empty")

    def cdf(sample: np.ndarray, x: np.ndarray) -> np.ndarray:  # interpolated P(sample < x), 0 ... 1
        ranks = (np.arange(sample.size) + 0.5) / sample.size
        return np.interp(x, sample, ranks, left=0.0, right=1.0)

    grid = np.linspace(min(n[0], low[0]) - 0.5, max(n[-1], low[-1]) + 0.5, 4001)
    gap = cdf(n, grid) - (1.0 - cdf(low, grid))  # increasing: false "dark" minus false "normal"
    k = int(np.argmin(np.abs(gap)))
    ties = np.flatnonzero(np.abs(gap) <= np.abs(gap[k]) + 1e-12)
    t = float(np.exp(0.5 * (grid[ties[0]] + grid[ties[-1]])))
    return t, balanced_accuracy(np.exp(n), np.exp(low), t)


@dataclass
class Calibration:
    """Result of :func:`calibrate_threshold`: the threshold and the samples it came from."""

    threshold: float
    balanced_accuracy: float
    normal: np.ndarray
    lowlight: np.ndarray
    method: str
    sources: list[str] = field(default_factory=list)


def calibration_images(n_synthetic: int = 32, size: int = 256, seed: int = 0) -> list[np.ndarray]:
    """The photos :func:`calibrate_threshold` uses by default: ``data_samples/`` (every split that loads)
    plus ``n_synthetic`` synthetic composites from :class:`lowlight_matting.data.SyntheticMattingDataset`."""
    from lowlight_matting import data

    images: list[np.ndarray] = []
    for split in ("train", "val", "test"):
        try:
            images += [item["image"] for item in data.load_samples(split)]
        except Exception:  # a split may not exist; the synthetic set below is always there
            continue
    if n_synthetic:
        ds = data.SyntheticMattingDataset(n_synthetic, size=size, seed=seed)
        images += [ds[i]["image"] for i in range(len(ds))]
    return images


def calibrate_threshold(
    images: Sequence[np.ndarray] | None = None,
    simulator: Any = None,
    seed: int = 0,
    method: str = "mean_linear",
    percentile: float = 75.0,
    n_synthetic: int = 32,
    return_details: bool = False,
) -> float | Calibration:
    """Calibrate the :class:`AutoMatter` threshold on normal vs simulated low-light photos.

    Each image is measured as is (the "normal" sample) and after ``simulator`` (default
    ``LowLightSimulator(seed=seed)``, the training-time degradation, so "low light" means exactly what the
    low-light model was fine-tuned on); :func:`threshold_between` then picks the cut. ``images`` default to
    :func:`calibration_images` (the committed samples plus synthetic composites).

    Returns the threshold, or a :class:`Calibration` with both samples when ``return_details``.
    """
    if images is None:
        images = calibration_images(n_synthetic=n_synthetic, seed=seed)
    if simulator is None:
        from lowlight_matting.simulate import LowLightSimulator

        simulator = LowLightSimulator(seed=seed)
    images = list(images)
    if not images:
        raise ValueError("calibrate_threshold: no images")
    normal = np.array([image_brightness(im, method, percentile) for im in images])
    dark = np.array([image_brightness(simulator(check_image(im)), method, percentile) for im in images])
    t, acc = threshold_between(normal, dark)
    if not return_details:
        return t
    return Calibration(t, acc, normal, dark, method, sources=[f"{len(images)} images"])
