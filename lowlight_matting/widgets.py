"""Interactive low-light explorer for notebook 01 (ipywidgets): sliders -> simulated photo + histogram, live.

The picture and the histogram are PNG bytes in ``ipywidgets.Image`` widgets (the histogram is drawn with
Matplotlib's Agg canvas, not ``plt.show``), so they update in any Jupyter front end and can be tested
headless: set a slider's ``value`` and the ``observe`` callback re-renders.

The sliders update on release (``continuous_update=False``): a render takes a noticeable fraction of a second
at 384 px, and a slider that sent its value on every pixel of a drag would queue up one render per pixel.
While dragging, only the slider's readout moves; the picture follows when the handle is let go (arrow keys
on a focused handle still send one value per step).

Sliders (their ``description`` is the name a browser test looks for):

==============  ====================================================================================
``exposure``    exposure change in stops (EV); the simulator's ratio is ``r = 2 ** -exposure``
``gamma``       extra tone exponent on the sRGB output, ``s ** gamma`` (1 = none; > 1 darkens, crushing
                the shadows). It runs *opposite* to the article's gamma: the article computes
                ``x ** (1/gamma) * scale``, so slider value ``g`` is the article's ``1/gamma`` (the
                article's 0.4 is 2.5 here). The statistics line shows the article's equivalent.
``shot noise``  shot-noise level (variance per unit of linear signal)
``read noise``  read-noise variance (linear units squared)
``gain``        ISP digital gain applied after the noise (the phone night-mode look)
==============  ====================================================================================

Example:
    >>> import numpy as np
    >>> box = low_light_explorer(np.full((32, 32, 3), 128, np.uint8))
    >>> box.sliders["exposure"].value = -5.0     # the picture updates
    >>> bool(box.output.mean() < 128)
    True
"""

from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np

from lowlight_matting.color import mean_luminance
from lowlight_matting.simulate import LowLightSimulator
from lowlight_matting.viz import histogram_png

__all__ = ["GAMMA_TOOLTIP", "SLIDER_NAMES", "LowLightExplorer", "low_light_explorer", "png_bytes"]

SLIDER_NAMES = ("exposure", "gamma", "shot noise", "read noise", "gain")

GAMMA_TOOLTIP = (
    "s ** gamma on the sRGB output; > 1 darkens. The article's gamma is 1/this (its 0.4 = 2.5 here)"
)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a uint8 RGB (H, W, 3) or grey (H, W) image as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


class LowLightExplorer(widgets.VBox):
    """A ``VBox`` of the simulated picture, its histogram, five sliders and a line of statistics.

    Attributes for code and tests: ``sliders`` (dict name -> ``FloatSlider``), ``image_widget`` and
    ``histogram_widget`` (``ipywidgets.Image``), ``stats`` (``HTML``), ``output`` (the current uint8 picture),
    ``params()`` (the simulator parameters the sliders mean), ``update()`` (re-render; sliders call it).
    """

    def __init__(
        self, image: np.ndarray, seed: int = 0, max_side: int = 384, display_width: int = 320, **values: float
    ) -> None:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"low_light_explorer: image must be uint8 (H, W, 3), got {image.dtype} {image.shape}"
            )
        s = max_side / max(image.shape[:2])
        if s < 1:
            import cv2

            size = (max(1, round(image.shape[1] * s)), max(1, round(image.shape[0] * s)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        unknown = set(values) - {n.replace(" ", "_") for n in SLIDER_NAMES}
        if unknown:
            raise TypeError(f"low_light_explorer: unknown slider value(s) {sorted(unknown)}")
        self.image = image
        self.seed = seed
        self.updates = 0
        style = {"description_width": "90px"}
        layout = widgets.Layout(width="420px")

        def slider(name, value, lo, hi, step, fmt, tooltip=None):
            return widgets.FloatSlider(
                value=values.get(name.replace(" ", "_"), value),
                min=lo,
                max=hi,
                step=step,
                description=name,
                readout_format=fmt,
                continuous_update=False,  # render on release: a drag must not queue one render per pixel
                tooltip=tooltip,
                style=style,
                layout=layout,
            )

        self.sliders = {
            "exposure": slider("exposure", -3.0, -8.0, 0.0, 0.25, "+.2f"),
            "gamma": slider("gamma", 1.0, 0.3, 3.0, 0.05, ".2f", GAMMA_TOOLTIP),
            "shot noise": slider("shot noise", 0.004, 0.0, 0.03, 0.0005, ".4f"),
            "read noise": slider("read noise", 0.0002, 0.0, 0.002, 0.00001, ".5f"),
            "gain": slider("gain", 1.0, 1.0, 64.0, 0.5, ".1f"),
        }

        # Fixed display width, height from the PNG's aspect ratio; flex-start so the HBox never stretches them.
        def picture_layout():
            return widgets.Layout(width=f"{display_width}px", height="auto", align_self="flex-start")

        self.image_widget = widgets.Image(format="png", layout=picture_layout())
        self.histogram_widget = widgets.Image(format="png", layout=picture_layout())
        self.stats = widgets.HTML()
        self.output = image
        super().__init__(
            [
                widgets.HBox([self.image_widget, self.histogram_widget]),
                *self.sliders.values(),
                self.stats,
            ]
        )
        for sl in self.sliders.values():
            sl.observe(self._on_change, names="value")
        self.update()

    def params(self) -> dict[str, float]:
        """The :meth:`LowLightSimulator.apply` parameters the sliders currently mean."""
        v = {k: float(s.value) for k, s in self.sliders.items()}
        return {
            "ratio": 2.0 ** -v["exposure"],
            "gamma": v["gamma"],
            "shot": v["shot noise"],
            "read": v["read noise"],
            "gain": v["gain"],
            "noise_seed": self.seed,
        }

    def render(self) -> np.ndarray:
        """The simulated picture for the current slider values (uint8 RGB)."""
        return LowLightSimulator.apply(self.image, **self.params())

    def update(self) -> None:
        """Re-render the picture, its histogram and the statistics line."""
        out = self.render()
        self.output = out
        self.image_widget.value = png_bytes(out)
        self.histogram_widget.value = histogram_png([self.image, out], ["normal", "simulated"])
        p = self.params()
        lum_in, lum_out = mean_luminance(self.image), mean_luminance(out)
        clipped = float(np.mean(out.max(axis=2) >= 255) * 100)
        black = float(np.mean(out.max(axis=2) == 0) * 100)
        self.stats.value = (
            f"<code>ratio 1/{p['ratio']:.1f} &middot; gamma {p['gamma']:.2f} = the article's gamma "
            f"{1 / p['gamma']:.2f} &middot; mean luminance {lum_out:.4f} (normal {lum_in:.4f}) &middot; "
            f"black {black:.1f}% &middot; clipped {clipped:.1f}%</code>"
        )
        self.updates += 1

    def _on_change(self, change) -> None:
        self.update()


def low_light_explorer(
    image: np.ndarray, seed: int = 0, max_side: int = 384, display_width: int = 320, **values: float
) -> LowLightExplorer:
    """The notebook-01 explorer: a ``VBox`` (a :class:`LowLightExplorer`) with five sliders (re-rendering on release).

    ``image``: uint8 RGB photo (downscaled to ``max_side`` for speed); ``seed``: the noise seed (fixed, so
    moving a slider changes only what it controls); ``values``: starting slider values by name with
    underscores (``exposure=-4``, ``shot_noise=0.01``...); ``display_width``: CSS pixels of each picture (the
    height follows the aspect ratio). Display it as the last expression of a cell.
    """
    return LowLightExplorer(image, seed=seed, max_side=max_side, display_width=display_width, **values)
