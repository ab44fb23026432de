"""lowlight_matting.augment: the training transform darkens, keeps a soft alpha soft, is strict and seeded;
and the article's traps are real (so the fixes matter)."""

import warnings

import albumentations as A
import cv2
import numpy as np
import pytest
import skimage.data

from lowlight_matting.augment import (
    DARK_GAMMA_LIMIT,
    AugmentedDataset,
    LowLight,
    build_article_transform,
    build_train_transform,
    reseed_transform,
)
from lowlight_matting.simulate import mean_luminance


@pytest.fixture(scope="module")
def sample():
    image = cv2.resize(skimage.data.coffee(), (96, 64), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[:64, :96]
    alpha = np.clip((xx - 20) / 50.0 + 0.1 * np.sin(yy / 5.0), 0, 1).astype(np.float32)  # a soft matte
    return image, alpha


def test_output_contract(sample):
    image, alpha = sample
    out = build_train_transform(size=48, seed=0)(image=image, alpha=alpha)
    assert set(out) >= {"image", "alpha"}
    assert out["image"].shape == (48, 48, 3) and out["image"].dtype == np.uint8
    assert out["alpha"].shape == (48, 48) and out["alpha"].dtype == np.float32
    assert 0 <= out["alpha"].min() and out["alpha"].max() <= 1


def test_lowlight_transform_darkens_on_average(sample):
    image, alpha = sample
    dark = build_train_transform(size=48, lowlight=True, seed=0)
    plain = build_train_transform(size=48, lowlight=False, seed=0)
    lum_dark = np.mean([mean_luminance(dark(image=image, alpha=alpha)["image"]) for _ in range(40)])
    lum_plain = np.mean([mean_luminance(plain(image=image, alpha=alpha)["image"]) for _ in range(40)])
    lum0 = mean_luminance(image)
    assert lum_dark < 0.7 * lum0
    assert lum_dark < 0.7 * lum_plain
    assert lum_plain == pytest.approx(lum0, rel=0.25)


def test_soft_alpha_stays_soft_through_geometry(sample):
    image, alpha = sample
    small_alpha = cv2.resize(alpha, (24, 16), interpolation=cv2.INTER_AREA)
    small_image = cv2.resize(image, (24, 16), interpolation=cv2.INTER_AREA)
    levels_in = len(np.unique(small_alpha))
    t = build_train_transform(size=64, lowlight=False, seed=0)  # upsamples 16 px -> 64 px
    out = t(image=small_image, alpha=small_alpha)["alpha"]
    assert out.dtype == np.float32
    assert len(np.unique(out)) > 3 * levels_in  # bilinear makes new in-between values
    # the article's NEAREST default can only copy the input's values (blocks and staircases)
    nearest = A.Compose(
        [A.RandomResizedCrop(size=(64, 64), scale=(0.8, 1.0))], additional_targets={"alpha": "mask"}
    )
    out_n = nearest(image=small_image, alpha=small_alpha)["alpha"]
    assert set(np.unique(out_n)) <= set(np.unique(small_alpha))
    assert np.abs(np.diff(out, axis=1)).max() < np.abs(np.diff(out_n, axis=1)).max()


def test_strict_rejects_a_wrong_argument():
    with pytest.warns(UserWarning, match="var_limit"):
        loose = A.Compose([A.GaussNoise(var_limit=(10.0, 50.0))])  # the article: silently defaults
    assert loose.transforms[0].std_range == (0.2, 0.44)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="var_limit"):
            A.Compose([A.GaussNoise(var_limit=(10.0, 50.0))], strict=True)
        with pytest.raises(ValueError, match="max_holes"):
            A.Compose([A.CoarseDropout(max_holes=8)], strict=True)
    t = build_train_transform(size=32, seed=0)
    assert t.strict
    with pytest.raises(ValueError, match="not in available keys"):
        t(image=np.zeros((40, 40, 3), np.uint8), matte=np.zeros((40, 40), np.float32))


def test_random_gamma_direction():
    img = np.full((8, 8, 3), 100, np.uint8)
    article = A.RandomGamma(gamma_limit=(30, 60), p=1.0)
    fixed = A.RandomGamma(gamma_limit=DARK_GAMMA_LIMIT, p=1.0)
    assert article(image=img)["image"].mean() > img.mean()  # the article's setting brightens
    assert fixed(image=img)["image"].mean() < img.mean()


def test_seeded_transforms_repeat_and_reseed_diverges(sample):
    image, alpha = sample
    a, b = build_train_transform(size=32, seed=5), build_train_transform(size=32, seed=5)
    for _ in range(3):
        oa, ob = a(image=image, alpha=alpha), b(image=image, alpha=alpha)
        np.testing.assert_array_equal(oa["image"], ob["image"])
        np.testing.assert_array_equal(oa["alpha"], ob["alpha"])
    a.reseed(1)
    b.reseed(2)
    outs_a = [a(image=image, alpha=alpha)["image"] for _ in range(3)]
    outs_b = [b(image=image, alpha=alpha)["image"] for _ in range(3)]
    assert not all(np.array_equal(x, y) for x, y in zip(outs_a, outs_b, strict=True))
    a.reseed(1)
    np.testing.assert_array_equal(a(image=image, alpha=alpha)["image"], outs_a[0])


def test_plain_compose_copies_repeat_until_reseeded(sample):
    import copy

    image, alpha = sample
    t = build_train_transform(size=32)
    worker0, worker1 = copy.deepcopy(t), copy.deepcopy(t)  # what a DataLoader does to the dataset
    np.testing.assert_array_equal(
        worker0(image=image, alpha=alpha)["image"], worker1(image=image, alpha=alpha)["image"]
    )
    reseed_transform(worker0, 10)
    reseed_transform(worker1, 11)
    a = [worker0(image=image, alpha=alpha)["image"] for _ in range(3)]
    b = [worker1(image=image, alpha=alpha)["image"] for _ in range(3)]
    assert not all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_cutout_hides_image_only(sample):
    image, alpha = sample
    t = A.Compose(
        [
            A.CoarseDropout(
                num_holes_range=(2, 2), hole_height_range=(0.2, 0.2), hole_width_range=(0.2, 0.2), p=1.0
            )
        ],
        additional_targets={"alpha": "mask"},
        strict=True,
        seed=0,
    )
    out = t(image=np.full_like(image, 200), alpha=alpha)
    assert (out["image"] == 0).all(axis=2).mean() > 0.02
    np.testing.assert_array_equal(out["alpha"], alpha)
    # and the training transform's cut-out covers at most ~10% of the area
    holes = build_train_transform(size=64, lowlight=False, seed=0).transforms[-1]
    assert isinstance(holes, A.CoarseDropout) and holes.fill_mask is None
    assert holes.num_holes_range[1] * holes.hole_height_range[1] * holes.hole_width_range[1] <= 0.1


def test_lowlight_transform_is_image_only_and_seeded(sample):
    image, alpha = sample
    t = A.Compose([LowLight(preset="mild", p=1.0)], additional_targets={"alpha": "mask"}, strict=True, seed=3)
    out = t(image=image, alpha=alpha)
    np.testing.assert_array_equal(out["alpha"], alpha)
    assert mean_luminance(out["image"]) < mean_luminance(image)
    with pytest.raises(ValueError, match="preset"):
        LowLight(preset="nope")


def test_article_transform_shows_its_traps(sample):
    image, alpha = sample
    with pytest.warns(UserWarning, match="var_limit"):
        t = build_article_transform(size=32, seed=0)
    out = t(image=image, alpha=alpha)
    assert out["image"].dtype == np.float32  # Normalize: not a uint8 picture any more
    assert not t.strict
    with pytest.raises(ValueError):
        A.RandomResizedCrop(512, 512, scale=(0.8, 1.0))  # the article's positional form no longer builds


def test_augmented_dataset_and_worker_reseed(sample):
    image, alpha = sample
    ds = AugmentedDataset([{"image": image, "alpha": alpha, "fg": image}] * 3, build_train_transform(size=32))
    assert len(ds) == 3 and set(ds[0]) == {"image", "alpha"}
    ds.reseed(4)
    first = ds[0]["image"]
    ds.reseed(4)
    np.testing.assert_array_equal(ds[0]["image"], first)
