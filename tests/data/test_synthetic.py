"""lowlight_matting.data.synthetic / backgrounds / composite: item format, linear-light compositing,
determinism across instances, access orders and DataLoader workers, and alpha statistics that make matting
hard (many fractional pixels, thin sub-pixel strands, semi-transparency)."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lowlight_matting.color import composite, linear_to_srgb, linear_to_u8, srgb_to_linear, u8_to_linear
from lowlight_matting.data import (
    PHOTOS,
    SyntheticConfig,
    SyntheticMattingDataset,
    alpha_statistics,
    collate_matting,
    random_background,
)
from lowlight_matting.data.backgrounds import PROCEDURAL_KINDS, load_photo, procedural_background
from lowlight_matting.seeding import worker_init_fn


@pytest.fixture(scope="module")
def ds():
    return SyntheticMattingDataset(24, size=96, seed=3)


# the mix SyntheticConfig() drew before it became the course's (easier) one data definition
HARD_MIX = dict(p_hair=0.85, p_fur=0.3, p_transparent=0.45, p_similar_colour=0.3, p_photo=0.55)


def _stats(**config):
    d = SyntheticMattingDataset(16, size=256, seed=11, **config)
    stats = [alpha_statistics(d[i]["alpha"]) for i in range(len(d))]
    return {k: np.array([s[k] for s in stats]) for k in stats[0]}


@pytest.fixture(scope="module")
def stats256():
    return _stats()


def test_item_format(ds):
    item = ds[0]
    assert sorted(item) == ["alpha", "bg", "fg", "image"]
    for k in ("image", "fg", "bg"):
        assert item[k].shape == (96, 96, 3) and item[k].dtype == np.uint8, k
    a = item["alpha"]
    assert a.shape == (96, 96) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    # alpha is quantised to 8 bits so that a saved PNG reads back to the same values
    np.testing.assert_array_equal(np.round(a * 255) / np.float32(255), a)
    assert len(ds) == 24 and ds[-1]["image"].shape == (96, 96, 3)
    with pytest.raises(IndexError):
        ds[24]


def test_rectangular_size():
    item = SyntheticMattingDataset(1, size=(48, 80), seed=0)[0]
    assert item["image"].shape == (48, 80, 3) and item["alpha"].shape == (48, 80)


def test_image_is_the_linear_light_composite_of_fg_and_bg(ds):
    for i in range(4):
        item = ds[i]
        np.testing.assert_array_equal(item["image"], composite(item["fg"], item["bg"], item["alpha"]))
        # and not the usual sRGB-space average, which darkens every mixed pixel
        a = item["alpha"][..., None]
        srgb_mix = np.round(a * item["fg"] + (1 - a) * item["bg"])
        mixed = (item["alpha"] > 0.2) & (item["alpha"] < 0.8)
        if mixed.sum() > 50 and np.abs(item["fg"].astype(int) - item["bg"]).mean() > 20:
            assert np.abs(srgb_mix[mixed] - item["image"][mixed]).mean() > 1.0


def test_composite_formula_and_checks():
    white = np.full((2, 2, 3), 255, np.uint8)
    black = np.zeros((2, 2, 3), np.uint8)
    half = np.full((2, 2), 0.5, np.float32)
    expected = np.round(float(linear_to_srgb(np.float64(0.5))) * 255)
    assert composite(white, black, half)[0, 0, 0] == expected == 188
    np.testing.assert_array_equal(composite(white, black, np.ones((2, 2))), white)
    np.testing.assert_array_equal(composite(white, black, np.zeros((2, 2))), black)
    with pytest.raises(ValueError, match="alpha"):
        composite(white, black, np.ones((3, 3)))
    with pytest.raises(ValueError, match="uint8"):
        composite(white.astype(np.float32), black, half)


def test_colour_tables_agree_with_the_exact_srgb_formula():
    u = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_allclose(u8_to_linear(u), srgb_to_linear(u / 255.0), atol=1e-6)
    np.testing.assert_array_equal(linear_to_u8(u8_to_linear(u)), u)
    x = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    ref = np.round(linear_to_srgb(x.astype(np.float64)) * 255)
    assert np.abs(linear_to_u8(x).astype(int) - ref).max() <= 1


def test_deterministic_across_instances_and_access_order():
    a = SyntheticMattingDataset(6, size=64, seed=5)
    b = SyntheticMattingDataset(6, size=64, seed=5)
    forward = [a[i] for i in range(6)]
    backward = [b[i] for i in reversed(range(6))][::-1]
    for x, y in zip(forward, backward, strict=True):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    # different index or seed -> a different sample
    assert not np.array_equal(forward[0]["alpha"], forward[1]["alpha"])
    other = SyntheticMattingDataset(6, size=64, seed=6)[0]
    assert not np.array_equal(forward[0]["image"], other["image"])


def test_deterministic_across_dataloader_workers():
    d = SyntheticMattingDataset(8, size=48, seed=1)
    direct = collate_matting([d[i] for i in range(8)])
    loader = DataLoader(
        d, batch_size=4, num_workers=2, collate_fn=collate_matting, worker_init_fn=worker_init_fn
    )
    batches = list(loader)
    for key in ("image", "alpha", "fg", "bg"):
        torch.testing.assert_close(torch.cat([b[key] for b in batches]), direct[key], rtol=0, atol=0)
    # the two workers loaded different samples, not copies of one stream
    assert not torch.equal(batches[0]["alpha"], batches[1]["alpha"])


def test_alpha_statistics_make_matting_hard(stats256):
    """The default mix (SyntheticConfig(): hair in 40 % of samples, fur 10 %, semi-transparent parts 20 %)."""
    frac, thin, sub = stats256["fractional"], stats256["thin"], stats256["subpixel"]
    semi, fg = stats256["semi_transparent"], stats256["foreground"]
    # a segmentation-like matte (an anti-aliased disc) has well under 2 % fractional pixels
    assert frac.mean() > 0.08, frac
    assert (frac > 0.02).mean() >= 0.75, frac
    assert semi.mean() > 0.05
    # thin structures (narrower than 3 px, most of them sub-pixel strands) in at least half of the samples
    assert (thin > 0.003).mean() >= 0.5, thin
    assert sub.sum() > 0.5 * thin.sum()
    # there is a foreground to find in every sample, and it does not fill the frame
    assert (fg > 0.01).all() and (fg < 0.9).all(), fg


def test_a_harder_mix_gives_harder_mattes(stats256):
    hard = _stats(**HARD_MIX)
    frac, thin, semi = hard["fractional"], hard["thin"], hard["semi_transparent"]
    assert frac.mean() > 0.15 and (frac > 0.02).mean() >= 0.9, frac
    assert semi.mean() > 0.1 and (thin > 0.003).mean() >= 0.8, (semi, thin)
    assert frac.mean() > 1.5 * stats256["fractional"].mean()


def test_statistics_of_a_plain_disc_are_not_hard():
    import cv2

    a = np.zeros((256, 256), np.uint8)
    cv2.circle(a, (128 * 16, 128 * 16), 60 * 16, 255, -1, cv2.LINE_AA, 4)
    s = alpha_statistics(a / 255.0)
    assert s["fractional"] < 0.02 and s["thin"] < 0.002


def test_each_part_can_be_switched_on_alone():
    off = dict(
        p_body=0.0,
        p_hair=0.0,
        p_fur=0.0,
        p_fuzzy=0.0,
        p_holes=0.0,
        p_lace=0.0,
        p_transparent=0.0,
        p_motion=0.0,
    )
    hair = SyntheticMattingDataset(4, size=128, seed=0, **{**off, "p_hair": 1.0})
    for i in range(4):
        s = alpha_statistics(hair[i]["alpha"])
        assert s["subpixel"] > 0.002 and s["foreground"] < 0.2, s
    body = SyntheticMattingDataset(4, size=128, seed=0, **{**off, "p_body": 1.0})
    for i in range(4):
        s = alpha_statistics(body[i]["alpha"])
        assert s["foreground"] > 0.05 and s["fractional"] < 0.1, s
    glassy = SyntheticMattingDataset(6, size=128, seed=0, **{**off, "p_transparent": 1.0})
    assert max(alpha_statistics(glassy[i]["alpha"])["semi_transparent"] for i in range(6)) > 0.05


def test_config_is_checked():
    with pytest.raises(ValueError, match="p_hair"):
        SyntheticConfig(p_hair=1.5)
    with pytest.raises(ValueError, match="backgrounds"):
        SyntheticMattingDataset(2, backgrounds="web")
    with pytest.raises(ValueError, match="length"):
        SyntheticMattingDataset(-1)


def test_transform_gets_and_replaces_image_alpha_fg_and_bg():
    """The transform sees all four arrays (fg/bg travel with image and alpha, for the composition loss) and
    its output replaces them."""
    seen = {}

    def t(image, alpha, fg, bg):
        seen["shapes"] = (image.shape, alpha.shape, fg.shape, bg.shape)
        return {"image": image[:32, :32], "alpha": alpha[:32, :32], "fg": fg[:16, :16], "bg": bg[:8, :8]}

    item = SyntheticMattingDataset(1, size=64, transform=t)[0]
    assert seen["shapes"] == ((64, 64, 3), (64, 64), (64, 64, 3), (64, 64, 3))
    assert sorted(item) == ["alpha", "bg", "fg", "image"]
    assert [item[k].shape[:2] for k in ("image", "alpha", "fg", "bg")] == [
        (32, 32),
        (32, 32),
        (16, 16),
        (8, 8),
    ]


def test_photos_are_local_and_licence_checked():
    assert set(PHOTOS) >= {"astronaut", "chelsea", "coffee"}
    for name, licence in PHOTOS.items():
        assert "CC0" in licence or "public domain" in licence, (name, licence)
        img = load_photo(name)
        assert img.dtype == np.uint8 and min(img.shape[:2]) >= 256
    with pytest.raises(KeyError, match="licence"):
        load_photo("stereo_motorcycle")


def test_backgrounds_are_deterministic_and_rarely_repeat():
    bgs = [random_background(np.random.default_rng([0, i]), (48, 64)) for i in range(16)]
    again = random_background(np.random.default_rng([0, 3]), (48, 64))
    np.testing.assert_array_equal(bgs[3], again)
    assert all(b.shape == (48, 64, 3) and b.dtype == np.uint8 for b in bgs)
    # no two backgrounds are (nearly) the same picture
    flat = np.stack([b.astype(np.float32).ravel() for b in bgs])
    d = np.abs(flat[:, None] - flat[None]).mean(axis=2) + np.eye(len(bgs)) * 1e3
    assert d.min() > 3.0
    for kind in PROCEDURAL_KINDS:
        img = procedural_background(np.random.default_rng(1), (40, 40), kind)
        assert img.shape == (40, 40, 3) and img.std() > 1.0, kind
    with pytest.raises(ValueError, match="source"):
        random_background(np.random.default_rng(0), (8, 8), source="web")


def test_alpha_statistics_and_detail_window_on_a_known_matte():
    from lowlight_matting.data import detail_window

    a = np.zeros((64, 64), np.float32)
    a[10:30, 10:30] = 1.0  # a solid square: no fractional or thin pixels
    a[40:60, 50] = 0.3  # a 0.3-px strand
    s = alpha_statistics(a)
    assert s["fractional"] == pytest.approx(20 / 64**2)
    assert s["thin"] == pytest.approx(20 / 64**2) and s["subpixel"] == pytest.approx(20 / 64**2)
    assert s["foreground"] == pytest.approx(400 / 64**2)
    y, x = detail_window(a, 16)
    assert y <= 40 < y + 16 and x <= 50 < x + 16
    with pytest.raises(ValueError, match="alpha"):
        alpha_statistics(np.zeros((2, 2, 3)))


def test_reseed_reaches_a_random_transform_so_workers_differ():
    from lowlight_matting.augment import build_train_transform
    from lowlight_matting.data import SyntheticMattingDataset

    a = SyntheticMattingDataset(1, size=48, seed=0, transform=build_train_transform(size=32, seed=0))
    b = SyntheticMattingDataset(1, size=48, seed=0, transform=build_train_transform(size=32, seed=0))
    assert np.array_equal(a[0]["image"], b[0]["image"])  # same state: the same "random" augmentation
    a.reseed(1)
    b.reseed(2)
    assert not np.array_equal(a[0]["image"], b[0]["image"])
