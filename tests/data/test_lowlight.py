"""lowlight_matting.data.LowLightPairs and collate_matting: low-light triples from the simulator, per-item
seeding that does not depend on DataLoader workers, the deferred (GPU batch) mode, and batching."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lowlight_matting.color import mean_luminance
from lowlight_matting.data import LowLightPairs, SyntheticMattingDataset, collate_matting
from lowlight_matting.seeding import worker_init_fn
from lowlight_matting.simulate import LowLightSimulator, simulate_batch, simulate_low_light


@pytest.fixture(scope="module")
def base():
    return SyntheticMattingDataset(8, size=48, seed=2)


def test_items_are_low_light_triples(base):
    pairs = LowLightPairs(base, seed=0)
    item = pairs[0]
    assert sorted(item) == ["alpha", "bg", "fg", "image", "lowlight", "normal"]
    ref = base[0]
    np.testing.assert_array_equal(item["normal"], ref["image"])
    np.testing.assert_array_equal(item["alpha"], ref["alpha"])
    assert item["lowlight"] is True
    assert item["image"].shape == ref["image"].shape and item["image"].dtype == np.uint8
    assert item["image"].mean() < 0.8 * item["normal"].mean()
    assert len(pairs) == len(base)


def test_deterministic_per_item_and_independent_of_access_order(base):
    a = LowLightPairs(base, seed=7)
    b = LowLightPairs(base, seed=7)
    fwd = [a[i]["image"] for i in range(len(base))]
    bwd = [b[i]["image"] for i in reversed(range(len(base)))][::-1]
    for x, y in zip(fwd, bwd, strict=True):
        np.testing.assert_array_equal(x, y)
    # another seed gives other noise
    assert not np.array_equal(fwd[0], LowLightPairs(base, seed=8)[0]["image"])


def test_same_image_at_two_indices_gets_different_noise():
    class Repeat:
        def __init__(self, item):
            self.item = item

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return dict(self.item)

    pairs = LowLightPairs(Repeat(SyntheticMattingDataset(1, size=48)[0]), seed=0)
    assert not np.array_equal(pairs[0]["image"], pairs[1]["image"])


def test_workers_do_not_change_or_repeat_results(base):
    pairs = LowLightPairs(base, seed=3)
    direct = collate_matting([pairs[i] for i in range(len(pairs))])
    for workers in (0, 2):
        loader = DataLoader(
            pairs,
            batch_size=2,
            num_workers=workers,
            collate_fn=collate_matting,
            worker_init_fn=worker_init_fn,
        )
        got = torch.cat([b["image"] for b in loader])
        torch.testing.assert_close(got, direct["image"], rtol=0, atol=0)


def test_epochs_draw_fresh_degradations(base):
    pairs = LowLightPairs(base, seed=0)
    first = pairs[0]["image"]
    pairs.set_epoch(1)
    second = pairs[0]["image"]
    assert not np.array_equal(first, second)
    pairs.set_epoch(0)
    np.testing.assert_array_equal(pairs[0]["image"], first)


def test_reseed_is_a_no_op(base):
    pairs = LowLightPairs(base, seed=0)
    before = pairs[1]["image"]
    pairs.reseed(12345)  # what worker_init_fn calls in every worker
    np.testing.assert_array_equal(pairs[1]["image"], before)


def test_p_lowlight(base):
    none = LowLightPairs(base, p_lowlight=0.0)
    for i in range(3):
        it = none[i]
        assert it["lowlight"] is False
        np.testing.assert_array_equal(it["image"], it["normal"])
    half = LowLightPairs(SyntheticMattingDataset(40, size=16), p_lowlight=0.5, seed=1)
    share = np.mean([half[i]["lowlight"] for i in range(40)])
    assert 0.25 < share < 0.75
    with pytest.raises(ValueError, match="p_lowlight"):
        LowLightPairs(base, p_lowlight=1.5)


def test_custom_simulators(base):
    sim = LowLightSimulator.from_preset("mild", seed=0)
    a = LowLightPairs(base, simulator=sim, seed=0)[2]
    b = LowLightPairs(base, simulator=LowLightSimulator.from_preset("mild", seed=99), seed=0)[2]
    np.testing.assert_array_equal(a["image"], b["image"])  # the pair's seed decides, not the simulator's
    # a plain function f(image, rng=...) such as the article's recipe
    f = LowLightPairs(base, simulator=simulate_low_light, seed=0)
    np.testing.assert_array_equal(
        f[1]["image"], LowLightPairs(base, simulator=simulate_low_light, seed=0)[1]["image"]
    )
    assert f[1]["image"].mean() < f[1]["normal"].mean()
    with pytest.raises(TypeError, match="callable"):
        LowLightPairs(base, simulator=42)


def test_deferred_mode_hands_normal_images_to_the_batched_simulator(base):
    pairs = LowLightPairs(base, defer=True, p_lowlight=1.0)
    assert pairs.simulator is None
    batch = collate_matting([pairs[i] for i in range(4)])
    torch.testing.assert_close(batch["image"], batch["normal"])
    assert batch["lowlight"].dtype == torch.bool and batch["lowlight"].all()
    g = torch.Generator().manual_seed(0)
    dark = simulate_batch(batch["normal"][batch["lowlight"]], generator=g)
    assert dark.shape == batch["normal"].shape and dark.mean() < batch["normal"].mean()


def test_both_modes_darken_alike(base):
    # the dataset's NumPy simulator and the deferred batched one draw from one law: similar darkening
    pairs = LowLightPairs(SyntheticMattingDataset(64, size=32, seed=5), seed=0)
    now = collate_matting([pairs[i] for i in range(64)])
    later = simulate_batch(now["normal"], torch.Generator().manual_seed(0))
    ratio_now = (mean_luminance(now["image"]) / mean_luminance(now["normal"])).log()
    ratio_later = (mean_luminance(later) / mean_luminance(now["normal"])).log()
    assert float(ratio_now.median()) == pytest.approx(float(ratio_later.median()), abs=0.4)


def test_collate_shapes_dtypes_and_ranges(base):
    items = [LowLightPairs(base)[i] for i in range(3)]
    b = collate_matting(items)
    for k in ("image", "normal", "fg", "bg"):
        assert b[k].shape == (3, 3, 48, 48) and b[k].dtype == torch.float32, k
        assert 0 <= b[k].min() and b[k].max() <= 1
    assert b["alpha"].shape == (3, 1, 48, 48) and b["alpha"].dtype == torch.float32
    np.testing.assert_allclose(b["fg"][1].permute(1, 2, 0).numpy() * 255, items[1]["fg"], atol=1e-3)
    np.testing.assert_array_equal(b["alpha"][2, 0].numpy(), items[2]["alpha"])


def test_collate_accepts_tensors_and_passes_names_through():
    items = [
        {"image": torch.rand(3, 8, 8), "alpha": torch.rand(1, 8, 8), "name": "a", "weight": 1.5},
        {"image": torch.rand(3, 8, 8), "alpha": torch.rand(1, 8, 8), "name": "b", "weight": 2.0},
    ]
    b = collate_matting(items)
    assert b["image"].shape == (2, 3, 8, 8) and b["alpha"].shape == (2, 1, 8, 8)
    assert b["name"] == ["a", "b"] and b["weight"].tolist() == [1.5, 2.0]


def test_collate_errors_name_the_problem():
    a = {"image": np.zeros((8, 8, 3), np.uint8), "alpha": np.zeros((8, 8), np.float32)}
    with pytest.raises(ValueError, match="sizes differ"):
        collate_matting([a, {"image": np.zeros((9, 8, 3), np.uint8), "alpha": np.zeros((9, 8), np.float32)}])
    with pytest.raises(ValueError, match="keys"):
        collate_matting([a, {"image": a["image"]}])
    with pytest.raises(ValueError, match=r"'image' must be"):
        collate_matting([{"image": np.zeros((8, 8), np.uint8), "alpha": a["alpha"]}])
    with pytest.raises(ValueError, match="empty"):
        collate_matting([])
    with pytest.raises(ValueError, match="'alpha'"):
        collate_matting([{"image": a["image"]}])
