"""lowlight_matting.color: the exact sRGB transfer, the one luminance and the one meaning of "dark", for NumPy
arrays (float and uint8) and torch tensors alike."""

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from lowlight_matting.color import (
    DARK_THRESHOLD,
    is_dark,
    linear_to_srgb,
    linear_to_u8,
    mean_luminance,
    srgb_to_linear,
    u8_to_linear,
)


@pytest.fixture(scope="module")
def photo():
    return cv2.resize(skimage.data.astronaut(), (48, 40), interpolation=cv2.INTER_AREA)


def to_tensor(img):
    return torch.from_numpy(img).permute(2, 0, 1).float().div(255.0)


# --- sRGB transfer ---------------------------------------------------------------------------------------------


def test_srgb_transfer_matches_the_standard_and_round_trips():
    x = np.linspace(0, 1, 1001, dtype=np.float64)
    lin = srgb_to_linear(x)
    assert lin[0] == 0 and abs(lin[-1] - 1) < 1e-12
    assert abs(srgb_to_linear(np.float64(0.5)) - 0.21404114) < 1e-6  # IEC 61966-2-1
    assert srgb_to_linear(np.float64(0.04045)) == pytest.approx(0.04045 / 12.92, abs=1e-12)  # linear segment
    assert srgb_to_linear(np.float64(0.8)) == pytest.approx(((0.8 + 0.055) / 1.055) ** 2.4, abs=1e-12)
    np.testing.assert_allclose(linear_to_srgb(lin), x, atol=1e-9)
    assert np.all(np.diff(lin) > 0)
    assert srgb_to_linear(np.zeros(3, np.float32)).dtype == np.float32


def test_torch_transfer_agrees_with_numpy():
    x = np.linspace(0, 1, 1001, dtype=np.float64)
    t = torch.from_numpy(x)
    torch.testing.assert_close(srgb_to_linear(t), torch.from_numpy(srgb_to_linear(x)))
    torch.testing.assert_close(linear_to_srgb(srgb_to_linear(t)), t)


def test_transfer_clips_out_of_range_values():
    assert linear_to_srgb(np.array([-0.1, 1.5])).tolist() == pytest.approx([0.0, 1.0])
    assert linear_to_srgb(torch.tensor([-0.1, 1.5])).tolist() == pytest.approx([0.0, 1.0])


def test_transfer_refuses_integer_images():
    with pytest.raises(TypeError, match="255"):
        srgb_to_linear(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(TypeError, match="255"):
        linear_to_srgb(torch.zeros(3, dtype=torch.uint8))


def test_uint8_tables_match_the_formula_and_round_trip():
    codes = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_allclose(u8_to_linear(codes), srgb_to_linear(codes / 255.0), atol=1e-7)
    np.testing.assert_array_equal(linear_to_u8(u8_to_linear(codes)), codes)


# --- luminance and "dark" --------------------------------------------------------------------------------------


def test_mean_luminance_is_linear_rec709(photo):
    white = np.full_like(photo, 255)
    assert mean_luminance(white) == pytest.approx(1.0)
    red = np.zeros_like(photo)
    red[..., 0] = 255
    assert mean_luminance(red) == pytest.approx(0.2126)
    stack = np.stack([photo, white])
    np.testing.assert_allclose(mean_luminance(stack), [mean_luminance(photo), 1.0], rtol=1e-6)


def test_mean_luminance_of_uint8_equals_the_float_path(photo):
    # the uint8 image goes through a look-up table, the float one through the formula
    assert mean_luminance(photo) == pytest.approx(mean_luminance(photo.astype(np.float32) / 255.0), rel=1e-6)


def test_mean_luminance_torch_agrees_with_numpy(photo):
    t = mean_luminance(to_tensor(photo)[None])
    assert t.shape == (1,) and float(t[0]) == pytest.approx(mean_luminance(photo), rel=1e-5)
    u8 = torch.from_numpy(photo).permute(2, 0, 1)  # uint8 tensors are accepted too
    assert float(mean_luminance(u8)) == pytest.approx(mean_luminance(photo), rel=1e-5)


def test_dark_threshold_is_the_articles_03_in_linear_light():
    assert DARK_THRESHOLD == float(srgb_to_linear(np.float64(0.3)))
    assert DARK_THRESHOLD == pytest.approx(0.0732, abs=1e-4)


def test_mid_grey_is_not_dark_and_a_third_of_it_is():
    grey = np.full((8, 8, 3), 128, np.uint8)
    assert mean_luminance(grey) > 2 * DARK_THRESHOLD  # sRGB 0.5 is 0.214 in linear light
    assert is_dark(grey) is False
    assert is_dark(grey // 3) is True


def test_is_dark_per_image_for_stacks_and_tensors():
    # sRGB codes just below and just above the threshold's code value (0.3 * 255 = 76.5)
    images = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (76, 77, 10, 200)])
    expected = [True, False, True, False]
    assert is_dark(images).tolist() == expected
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    assert is_dark(batch).tolist() == expected
    assert is_dark(images[1], threshold=1.0) is True  # the threshold is a parameter
