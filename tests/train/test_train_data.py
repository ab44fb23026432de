"""Training data: on-device darkening of a share of a batch, the joint flip, in-memory synthetic data."""

import math

import numpy as np
import pytest
import torch

from lowlight_matting.color import composite
from lowlight_matting.data import TensorMattingDataset, random_hflip
from lowlight_matting.train import ConfigError, build_datasets, darken_batch, preset
from lowlight_matting.train.data import epoch_seed, simulator_ranges


# ----------------------------------------------------------------------------------------------- darkening
def _images(b: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 0.6 + 0.3


def test_darken_batch_darkens_about_p_of_the_samples():
    """p=0.5 darkens ~half of 512 samples (4 sd), each darker; the others stay bit-identical."""
    x = _images(512)
    out, mask = darken_batch(x, torch.Generator().manual_seed(1), 0.5, {})
    n = len(mask)
    assert mask.dtype == torch.bool and mask.shape == (n,)
    assert abs(mask.float().mean().item() - 0.5) < 4 * math.sqrt(0.25 / n)
    assert torch.equal(out[~mask], x[~mask])
    per_sample = (out - x).abs().flatten(1).amax(1)
    assert bool((per_sample[mask] > 0).all())
    assert bool((out[mask].mean(dim=(1, 2, 3)) < x[mask].mean(dim=(1, 2, 3))).all())


def test_darken_batch_is_reproducible_under_a_seed():
    """The same generator seed gives the same mask and the same dark images; another seed another mask."""
    x = _images(64)
    a, ma = darken_batch(x, torch.Generator().manual_seed(7), 0.5, {})
    b, mb = darken_batch(x, torch.Generator().manual_seed(7), 0.5, {})
    _, mc = darken_batch(x, torch.Generator().manual_seed(8), 0.5, {})
    assert torch.equal(a, b) and torch.equal(ma, mb)
    assert not torch.equal(ma, mc)


def test_darken_batch_extremes():
    """p=0 returns the input untouched with an all-False mask; p=1 darkens every sample."""
    x = _images(8)
    out, mask = darken_batch(x, torch.Generator().manual_seed(0), 0.0, {})
    assert out is x and not mask.any()
    out, mask = darken_batch(x, torch.Generator().manual_seed(0), 1.0, {})
    assert mask.all() and out.shape == x.shape
    assert bool((out.mean(dim=(1, 2, 3)) < x.mean(dim=(1, 2, 3))).all())


def test_darken_batch_uses_the_simulator_ranges():
    """The ranges reach the simulator: an exposure cut of 20x gives much darker images than one of 2x."""
    x = _images(16)
    only = {"preset": "exposure_only", "p_extreme": 0.0}
    ranges = simulator_ranges({**only, "ratio": [2.0, 2.0]})
    assert ranges["ratio"] == (2.0, 2.0) and ranges["p_blur"] == 0.0  # lists become tuples, preset expanded
    bright, _ = darken_batch(x, torch.Generator().manual_seed(0), 1.0, ranges)
    dark, _ = darken_batch(
        x, torch.Generator().manual_seed(0), 1.0, simulator_ranges({**only, "ratio": [20, 20]})
    )
    assert dark.mean() < 0.5 * bright.mean() and bright.mean() < x.mean()


def test_simulator_ranges_expands_presets_and_refuses_unknown():
    """A simulator preset expands (own keys win); unknown presets/ranges are ConfigErrors."""
    from lowlight_matting.simulate import SIMULATOR_PRESETS

    got = simulator_ranges({"preset": "mild", "p_blur": 0.0, "ratio": [3, 4]})
    assert got == {**SIMULATOR_PRESETS["mild"], "p_blur": 0.0, "ratio": (3, 4)}
    with pytest.raises(ConfigError, match=r"data\.simulator.*pitch_black"):
        simulator_ranges({"preset": "pitch_black"})
    with pytest.raises(ConfigError, match=r"data\.simulator.*exposure"):
        simulator_ranges({"exposure": [1, 2]})


# ---------------------------------------------------------------------------------------------- joint flip
def _marked_batch(b: int = 16, h: int = 6, w: int = 8) -> dict:
    """A batch whose image, alpha, fg, bg carry a marker pixel at (row i % h, column 1) in sample i."""
    batch = {
        "image": torch.zeros(b, 3, h, w),
        "alpha": torch.zeros(b, 1, h, w),
        "fg": torch.zeros(b, 3, h, w),
        "bg": torch.zeros(b, 3, h, w),
    }
    for i in range(b):
        for k, v in batch.items():
            v[i, :, i % h, 1] = 1.0 + i + 100 * list(batch).index(k)
    batch["name"] = [f"s{i}" for i in range(b)]  # not a tensor: passed through
    batch["brightness"] = torch.arange(b, dtype=torch.float32)  # not image-shaped: passed through
    return batch


def test_random_hflip_moves_the_marker_of_every_entry_together():
    """A flipped sample's marker moves to column w-2 in image, alpha, fg and bg; others are untouched."""
    batch = _marked_batch()
    b, w = batch["image"].shape[0], batch["image"].shape[-1]
    out = random_hflip(batch, torch.Generator().manual_seed(0))
    flipped = out["image"][:, 0].amax(1)[:, w - 2] > 0  # the marker's column per sample
    assert 0 < int(flipped.sum()) < b  # some flipped, some not (seeded)
    for k in ("image", "alpha", "fg", "bg"):
        assert torch.equal(out[k][flipped], batch[k][flipped].flip(-1)), k
        assert torch.equal(out[k][~flipped], batch[k][~flipped]), k
        assert torch.equal(out[k][:, :, :, w - 2].amax((1, 2)) > 0, flipped), k  # same samples in every entry
    assert out["name"] is batch["name"] and out["brightness"] is batch["brightness"]
    assert torch.equal(batch["image"], _marked_batch()["image"])  # the input batch is not modified


def test_random_hflip_is_seeded_and_honours_p():
    """The same generator seed flips the same samples; p=0 flips none and p=1 flips all."""
    batch = _marked_batch()
    a = random_hflip(batch, torch.Generator().manual_seed(5))
    b = random_hflip(batch, torch.Generator().manual_seed(5))
    assert all(torch.equal(a[k], b[k]) for k in ("image", "alpha", "fg", "bg"))
    none = random_hflip(batch, torch.Generator().manual_seed(5), p=0.0)
    every = random_hflip(batch, torch.Generator().manual_seed(5), p=1.0)
    for k in ("image", "alpha", "fg", "bg"):
        assert torch.equal(none[k], batch[k]) and torch.equal(every[k], batch[k].flip(-1))


def test_random_hflip_keeps_channels_last():
    """A channels-last image stays channels-last after the flip (the training loop's memory format)."""
    batch = _marked_batch()
    batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
    out = random_hflip(batch, torch.Generator().manual_seed(0), p=1.0)
    assert out["image"].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out["image"], batch["image"].flip(-1))


# ------------------------------------------------------------------------------------------ in-memory data
def _cfg(*extra):
    return preset("fast_base", ["data.length=6", "data.val_length=3", "data.size=24", "seed=5", *extra])


def test_in_memory_synthetic_data_shapes_and_determinism():
    """In-memory data: length x size² uint8 tensors, equal per data seed, new for another seed."""
    train, val = build_datasets(_cfg())
    assert isinstance(train, TensorMattingDataset) and isinstance(val, TensorMattingDataset)
    assert tuple(train.image.shape) == (6, 3, 24, 24) and tuple(train.alpha.shape) == (6, 1, 24, 24)
    assert len(val) == 3 and train.image.dtype == torch.uint8
    again, _ = build_datasets(_cfg())
    assert torch.equal(train.image, again.image) and torch.equal(train.alpha, again.alpha)
    other, _ = build_datasets(_cfg("data.seed=1"))
    assert not torch.equal(train.image, other.image)
    assert not torch.equal(train.image[:3], val.image)


def test_in_memory_data_seed_defaults_to_the_run_seed():
    """data.seed: null draws the samples with the run's seed."""
    a, _ = build_datasets(_cfg("data.seed=null", "seed=11"))
    b, _ = build_datasets(_cfg("data.seed=11", "seed=0"))
    assert torch.equal(a.image, b.image)


def test_in_memory_keeps_fg_bg_only_for_the_composition_term():
    """fg/bg are stored only when loss.composition > 0 (they double the memory); the images are the same."""
    plain, plain_val = build_datasets(_cfg())
    comp, comp_val = build_datasets(_cfg("loss.composition=0.5"))
    assert sorted(plain[0]) == ["alpha", "image"] and sorted(plain_val[0]) == ["alpha", "image"]
    assert sorted(comp[0]) == ["alpha", "bg", "fg", "image"] and sorted(comp_val[0]) == [
        "alpha",
        "bg",
        "fg",
        "image",
    ]
    assert torch.equal(plain.image, comp.image)
    # they are the layers of the image: image = composite(fg, bg, alpha) (linear light), up to 8-bit rounding
    for i in range(len(comp)):
        item = {k: v.permute(1, 2, 0).numpy() for k, v in comp[i].items()}
        recon = composite(item["fg"], item["bg"], item["alpha"][..., 0] / 255.0)
        assert np.abs(recon.astype(int) - item["image"].astype(int)).max() <= 1


def test_no_validation_set_when_val_length_is_zero():
    """data.val_length=0 gives no validation dataset."""
    _, val = build_datasets(_cfg("data.val_length=0"))
    assert val is None


def test_epoch_seeds_are_distinct_per_epoch_rank_and_stream():
    """Each (epoch, rank, stream) gets its own 63-bit seed, and the same inputs the same seed."""
    seeds = {epoch_seed(3, e, r, s) for e in range(4) for r in range(2) for s in range(5)}
    assert len(seeds) == 40 and all(0 <= x < 2**63 for x in seeds)
    assert epoch_seed(3, 1, 0, 2) == epoch_seed(3, 1, 0, 2) != epoch_seed(4, 1, 0, 2)
