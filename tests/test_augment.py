"""lowlight_matting.augment: the training transform darkens, keeps a soft alpha soft, is strict and seeded,
moves fg/bg with the same geometry as image and alpha (so the composite still holds) and never changes them
photometrically."""

import albumentations as A
import cv2
import numpy as np
import pytest
import skimage.data

from lowlight_matting.augment import (
    DARK_GAMMA_LIMIT,
    MATTING_TARGETS,
    AugmentedDataset,
    LowLight,
    build_article_transform,
    build_train_transform,
    reseed_transform,
)
from lowlight_matting.color import composite, mean_luminance


@pytest.fixture(scope="module")
def sample():
    image = cv2.resize(skimage.data.coffee(), (96, 64), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[:64, :96]
    alpha = np.clip((xx - 20) / 50.0 + 0.1 * np.sin(yy / 5.0), 0, 1).astype(np.float32)  # a soft matte
    return image, alpha


@pytest.fixture(scope="module")
def layers():
    """fg, bg, alpha and their linear-light composite ``image`` (as synthetic matting data has them)."""
    fg = cv2.resize(skimage.data.coffee(), (96, 64), interpolation=cv2.INTER_AREA)
    bg = cv2.resize(skimage.data.chelsea(), (96, 64), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[:64, :96]
    alpha = np.clip((xx - 20) / 50.0 + 0.1 * np.sin(yy / 5.0), 0, 1).astype(np.float32)  # not symmetric
    return {"image": composite(fg, bg, alpha), "alpha": alpha, "fg": fg, "bg": bg}


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
    assert len(np.unique(out)) > 3 * levels_in  # bilinear makes new in-between values (NEAREST cannot)


def test_training_transform_is_strict():
    t = build_train_transform(size=32, seed=0)
    assert t.strict
    with pytest.raises(ValueError, match="not in available keys"):
        t(image=np.zeros((40, 40, 3), np.uint8), matte=np.zeros((40, 40), np.float32))


def test_dark_gamma_limit_darkens():
    img = np.full((8, 8, 3), 100, np.uint8)
    for limit in DARK_GAMMA_LIMIT:  # both ends of our range darken (the article's (30, 60) brightened)
        assert A.RandomGamma(gamma_limit=(limit, limit), p=1.0)(image=img)["image"].mean() < img.mean()


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


def test_training_cutout_hides_image_only(layers):
    holes = build_train_transform(size=64, lowlight=False, seed=0).transforms[-1]
    assert isinstance(holes, A.CoarseDropout)
    assert holes.num_holes_range[1] * holes.hole_height_range[1] * holes.hole_width_range[1] <= 0.1
    # our configured cut-out, forced on: holes in the image, alpha, fg and bg untouched
    forced = A.Compose([holes], additional_targets=MATTING_TARGETS, strict=True, seed=0)
    forced.transforms[0].p = 1.0
    out = forced(**{**layers, "image": np.full_like(layers["image"], 200)})
    assert (out["image"] == 0).all(axis=2).mean() > 0.005
    for k in ("alpha", "fg", "bg"):
        np.testing.assert_array_equal(out[k], layers[k], err_msg=k)


def test_lowlight_transform_is_image_only_and_seeded(sample):
    image, alpha = sample

    def run(seed):
        t = A.Compose([LowLight(preset="mild", p=1.0)], additional_targets={"alpha": "mask"}, strict=True)
        return reseed_transform(t, seed)(image=image, alpha=alpha)

    out = run(3)
    np.testing.assert_array_equal(out["alpha"], alpha)
    assert mean_luminance(out["image"]) < mean_luminance(image)
    np.testing.assert_array_equal(run(3)["image"], out["image"])
    assert not np.array_equal(run(4)["image"], out["image"])
    with pytest.raises(ValueError, match="preset"):
        LowLight(preset="nope")
    with pytest.raises(ValueError, match="low > high"):
        LowLight(ranges={"ratio": (9, 2)})


def test_article_transform_shows_its_traps(sample):
    image, alpha = sample
    with pytest.warns(UserWarning, match="var_limit"):
        t = build_article_transform(size=32, seed=0)
    out = t(image=image, alpha=alpha)
    assert out["image"].dtype == np.float32  # Normalize: not a uint8 picture any more
    assert not t.strict


# --- fg and bg travel with the image ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fg_bg_alpha_share_the_geometry_and_the_composite_still_holds(layers, seed):
    out = build_train_transform(size=48, photometric=False, seed=seed)(**layers)
    assert {k: out[k].shape for k in layers} == {
        "image": (48, 48, 3),
        "alpha": (48, 48),
        "fg": (48, 48, 3),
        "bg": (48, 48, 3),
    }
    assert out["fg"].dtype == np.uint8 and out["bg"].dtype == np.uint8
    # I = alpha F + (1 - alpha) B after the geometry (up to resampling a product: ~0.3 DN on average)
    err = np.abs(composite(out["fg"], out["bg"], out["alpha"]).astype(int) - out["image"])
    assert err.mean() < 1.0
    # a layer moved differently (here: mirrored) breaks it by far
    wrong = np.abs(composite(out["fg"][:, ::-1], out["bg"], out["alpha"]).astype(int) - out["image"])
    assert wrong.mean() > 10 * err.mean()


def test_layers_are_aligned_pixel_for_pixel(layers):
    # fg and bg that are copies of the (asymmetric) alpha must come out as copies of the transformed alpha
    marker = np.repeat(np.round(layers["alpha"] * 255).astype(np.uint8)[..., None], 3, axis=2)
    for seed in range(4):
        out = build_train_transform(size=40, seed=seed)(
            image=layers["image"], alpha=layers["alpha"], fg=marker, bg=marker
        )
        for k in ("fg", "bg"):
            diff = np.abs(out[k][..., 0] - out["alpha"] * 255)  # uint8 vs float resampling: ~1 DN of rounding
            assert diff.max() <= 2.0 and diff.mean() < 0.5, (k, seed, diff.max(), diff.mean())


def test_photometric_steps_leave_fg_bg_and_alpha_alone(layers):
    geometric = build_train_transform(size=48, photometric=False, seed=7)(**layers)
    full = build_train_transform(size=48, lowlight=True, p_lowlight=1.0, seed=7)(**layers)
    for k in ("alpha", "fg", "bg"):
        np.testing.assert_array_equal(full[k], geometric[k], err_msg=k)  # same geometry, nothing else
    assert mean_luminance(full["image"]) < 0.7 * mean_luminance(geometric["image"])  # the image was darkened


def test_augmented_dataset_keeps_fg_bg_and_worker_reseed(layers):
    geometric = AugmentedDataset(
        [dict(layers, name="x")] * 3, build_train_transform(size=32, photometric=False)
    )
    assert len(geometric) == 3
    item = geometric[0]
    assert set(item) == {"image", "alpha", "fg", "bg"}  # fg/bg kept, other keys dropped
    assert np.abs(composite(item["fg"], item["bg"], item["alpha"]).astype(int) - item["image"]).mean() < 1.0
    plain = AugmentedDataset(
        [{"image": layers["image"], "alpha": layers["alpha"]}], build_train_transform(size=32)
    )
    assert set(plain[0]) == {"image", "alpha"}
    ds = AugmentedDataset([layers] * 3, build_train_transform(size=32))
    ds.reseed(4)
    first = ds[0]
    ds.reseed(4)
    again = ds[0]
    for k in first:
        np.testing.assert_array_equal(again[k], first[k], err_msg=k)


def test_augmented_dataset_refuses_a_transform_without_fg_bg_targets(layers):
    t = A.Compose([A.HorizontalFlip(p=1.0)], additional_targets={"alpha": "mask"}, strict=True)
    with pytest.raises(ValueError, match=r"^AugmentedDataset: items have \['fg', 'bg'\]"):
        AugmentedDataset([layers], t)[0]
