"""lowlight_matting.widgets (headless): the explorer's sliders re-render the picture and its histogram."""

import io

import ipywidgets as widgets
import numpy as np
import pytest
import skimage.data
from PIL import Image

from lowlight_matting import LowLightSimulator
from lowlight_matting.color import mean_luminance
from lowlight_matting.widgets import SLIDER_NAMES, low_light_explorer


@pytest.fixture(scope="module")
def photo():
    return skimage.data.chelsea()


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_explorer_is_a_vbox_with_the_named_float_sliders(photo):
    box = low_light_explorer(photo, seed=0)
    assert isinstance(box, widgets.VBox)
    found = {w.description: w for w in box.children if isinstance(w, widgets.FloatSlider)}
    assert set(found) == set(SLIDER_NAMES) == {"exposure", "gamma", "shot noise", "read noise", "gain"}
    assert all(isinstance(box.sliders[n], widgets.FloatSlider) for n in SLIDER_NAMES)
    assert max(box.output.shape[:2]) <= 384  # downscaled for speed
    shown = decode(box.image_widget.value)
    np.testing.assert_array_equal(shown, box.output)
    assert decode(box.histogram_widget.value).ndim == 3


def test_moving_each_slider_updates_the_picture(photo):
    """Each slider sets its own simulator parameter and re-renders: the picture shown is the simulator's output
    for the parameters the sliders now mean, and the histogram changes with it."""
    box = low_light_explorer(photo, seed=0, max_side=96, exposure=-2.0)
    for name, value, param, want in [
        ("exposure", -5.0, "ratio", 32.0),  # five stops darker: 1/32 of the light
        ("gamma", 2.0, "gamma", 2.0),
        ("shot noise", 0.02, "shot", 0.02),
        ("read noise", 0.001, "read", 0.001),
        ("gain", 8.0, "gain", 8.0),
    ]:
        before_img, before_hist, before_n = box.image_widget.value, box.histogram_widget.value, box.updates
        before = box.params()
        box.sliders[name].value = value
        assert box.updates == before_n + 1, name
        after = box.params()
        assert after[param] == pytest.approx(want), name
        assert {k: v for k, v in after.items() if k != param} == {
            k: v for k, v in before.items() if k != param
        }
        assert box.image_widget.value != before_img, name
        assert box.histogram_widget.value != before_hist, name
        np.testing.assert_array_equal(
            decode(box.image_widget.value), LowLightSimulator.apply(box.image, **box.params())
        )


def test_slider_values_change_the_statistics_the_right_way(photo):
    box = low_light_explorer(photo, seed=0, max_side=96, exposure=-1.0, shot_noise=0.0, read_noise=0.0)
    bright = mean_luminance(box.output)
    box.sliders["exposure"].value = -4.0
    darker = mean_luminance(box.output)
    assert darker == pytest.approx(bright / 8, rel=0.15)  # three stops = 1/8 of the light
    flat_std = box.output.astype(float).std()
    box.sliders["shot noise"].value = 0.03
    box.sliders["gain"].value = 16.0
    assert mean_luminance(box.output) > 4 * darker
    assert box.output.astype(float).std() > flat_std
    assert "mean luminance" in box.stats.value
    assert box.params()["ratio"] == pytest.approx(16.0)


def test_explorer_checks_its_inputs(photo):
    with pytest.raises(ValueError, match="uint8"):
        low_light_explorer(photo / 255.0)
    with pytest.raises(TypeError, match="unknown slider"):
        low_light_explorer(photo, brightness=1)
