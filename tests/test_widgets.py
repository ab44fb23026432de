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


def test_sliders_render_on_release_not_on_every_pixel_of_a_drag(photo):
    """``continuous_update=False``: the front end sends a value when the handle is let go (or per arrow-key
    step), so a drag costs one render, not one per pixel moved; each value sent renders exactly once."""
    box = low_light_explorer(photo, seed=0, max_side=64)
    assert all(box.sliders[n].continuous_update is False for n in SLIDER_NAMES)
    n = box.updates
    box.sliders["exposure"].value = -4.0
    box.sliders["exposure"].value = -4.0  # the same value again: no change event, no render
    assert box.updates == n + 1


def test_gamma_runs_opposite_to_the_articles_gamma_and_says_so(photo):
    """The slider's gamma g is the tone exponent s ** g; the article computes x ** (1/gamma), so the slider at
    2.5 (with no exposure cut, noise or gain) is the article's curve at its gamma 0.4, without its scale."""
    box = low_light_explorer(photo, seed=0, max_side=64, exposure=0.0, shot_noise=0.0, read_noise=0.0)
    box.sliders["gamma"].value = 2.5
    article_curve = np.round(255 * (box.image / 255.0) ** (1 / 0.4))
    assert np.abs(box.output.astype(float) - article_curve).max() <= 1  # sRGB -> linear -> sRGB rounding
    assert mean_luminance(box.output) < mean_luminance(box.image)  # > 1 darkens
    assert "the article's gamma 0.40" in box.stats.value
    assert "article" in box.sliders["gamma"].tooltip and "1/" in box.sliders["gamma"].tooltip


def test_contact_sheet_captions_are_readable_and_do_not_overlap():
    """Captions at >= 9 pt (6 pt was unreadable), none overlapping another text or another picture, even when
    every optional step (gain, rows, blur, JPEG, white balance) is written under every picture."""
    from lowlight_matting.viz import CAPTION_FONTSIZE, contact_sheet, contact_sheet_figure

    assert CAPTION_FONTSIZE >= 9
    ims = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    sim = LowLightSimulator(p_blur=1.0, p_jpeg=1.0, p_row=1.0, p_gain=1.0)
    for thumb in (64, 256):
        fig, params = contact_sheet_figure(ims, sim, seed=0, thumb=thumb)
        assert all(p["blur_length"] > 1 and p["jpeg_quality"] and p["gain"] != 1 for p in params)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        texts = [(ax, t) for ax in fig.axes for t in (ax.title, ax.xaxis.label) if t.get_text()]
        assert len(texts) == 2 * len(ims) + len(ims)  # titles of both rows, captions of the bottom row
        assert all(t.get_fontsize() >= CAPTION_FONTSIZE for _, t in texts)
        boxes = [(ax, t.get_window_extent(renderer)) for ax, t in texts]
        for i, (ax, box) in enumerate(boxes):
            assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)
            assert not any(box.overlaps(other) for j, (_, other) in enumerate(boxes) if j != i)
            assert not any(box.overlaps(a.get_window_extent(renderer)) for a in fig.axes if a is not ax)
        sheet = contact_sheet(ims, sim, seed=0, thumb=thumb)
        assert abs(sheet.shape[0] - fig.bbox.height) < 1 and abs(sheet.shape[1] - fig.bbox.width) < 1


def test_format_params_keeps_captions_narrow():
    from lowlight_matting.viz import format_params

    p = {"ratio": 8.0, "shot": 3e-3, "read": 5e-5, "gain": 4.0, "row_std": 1e-3, "blur_length": 5.0}
    p |= {"jpeg_quality": 60, "wb": (1.1, 1.0, 0.9)}
    lines = format_params(p).splitlines()
    assert lines[0] == "exposure 1/8.0 (-3.0 EV)" and len(lines) == 5
    assert max(len(line) for line in lines) <= 28
    assert format_params({"ratio": 2.0}) == "exposure 1/2.0 (-1.0 EV)\nshot 0  read 0"
