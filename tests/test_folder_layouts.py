"""FolderMattingDataset on the folder layouts of the public matting datasets (chapter 09): P3M-10k (train,
P3M-500-P, P3M-500-NP), AM-2k, Distinctions-646, PPM-100 and Composition-1k-style fg/alpha/bg, found by
``layout="auto"``; the earlier folder names keep precedence; ``folder_tree`` prints a dataset folder."""

import cv2
import numpy as np
import pytest

from lowlight_matting.color import composite
from lowlight_matting.data import FolderMattingDataset
from lowlight_matting.data.folder import ALPHA_DIRS, FG_DIRS, IMAGE_DIRS, folder_tree
from lowlight_matting.io import write_image


def _photo(seed, h=16, w=20):
    """A smooth random photo (JPEG keeps it within a few grey levels)."""
    grid = np.random.default_rng(seed).integers(0, 256, (3, 3, 3), dtype=np.uint8)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)


def _alpha(seed, h=16, w=20):
    a = np.zeros((h, w), np.float32)
    a[2 + seed % 4 : h - 2, 3:-3] = 1.0
    a[1 + seed % 4, 3:-3] = 0.5
    return a


def _pairs(root, main, alpha, stems, main_ext=".png"):
    """Write photo (or foreground) and matte files; returns {stem: seed}."""
    seeds = {}
    for k, stem in enumerate(stems):
        write_image(root / main / f"{stem}{main_ext}", _photo(k))
        write_image(root / alpha / f"{stem}.png", _alpha(k))
        seeds[stem] = k
    return seeds


def _check(ds, seeds, layout, main_name):
    assert ds.layout == layout and ds.main_dir.name == main_name
    assert ds.names == sorted(seeds)
    for i, stem in enumerate(ds.names):
        item = ds[i]
        np.testing.assert_allclose(item["alpha"], np.round(_alpha(seeds[stem]) * 255) / 255, atol=1e-7)
        key = "fg" if layout == "fg_alpha_bg" else "image"
        np.testing.assert_array_equal(item[key], _photo(seeds[stem]))
        if layout == "fg_alpha_bg":
            np.testing.assert_array_equal(item["image"], composite(item["fg"], item["bg"], item["alpha"]))


def test_p3m10k_train_and_both_validation_sets(tmp_path):
    root = tmp_path / "P3M-10k"
    train = _pairs(root / "train", "blurred_image", "mask", ["p_0a", "p_0b", "p_0c"])
    write_image(root / "train" / "facemask" / "p_0a.png", _alpha(0))  # optional extra folder: ignored
    val_p = _pairs(root / "validation" / "P3M-500-P", "blurred_image", "mask", ["p_1a", "p_1b"])
    val_np = _pairs(root / "validation" / "P3M-500-NP", "original_image", "mask", ["np_2a", "np_2b"], ".jpg")
    for split in ("P3M-500-P", "P3M-500-NP"):
        for stem in val_p if split.endswith("-P") else val_np:
            write_image(root / "validation" / split / "trimap" / f"{stem}.png", _alpha(0))
    _check(FolderMattingDataset(root / "train"), train, "image_alpha", "blurred_image")
    _check(FolderMattingDataset(root / "validation" / "P3M-500-P"), val_p, "image_alpha", "blurred_image")
    ds = FolderMattingDataset(root / "validation" / "P3M-500-NP")  # needs "original_image" in IMAGE_DIRS
    assert ds.layout == "image_alpha" and ds.main_dir.name == "original_image" and len(ds) == 2
    assert ds.alpha_dir.name == "mask"
    assert np.abs(ds[0]["image"].astype(int) - _photo(0)).mean() < 8  # JPEG: close, not equal


def test_am2k_train_is_foregrounds_unless_asked_and_validation_is_photos(tmp_path):
    root = tmp_path / "AM-2k"
    train = _pairs(root / "train", "original", "mask", ["m_1", "m_2"])
    for stem, k in train.items():
        write_image(root / "train" / "fg" / f"{stem}.png", _photo(k + 10))
    auto = FolderMattingDataset(root / "train")
    assert auto.layout == "fg_alpha_bg" and auto.main_dir.name == "fg"  # fg/ decides "auto"
    np.testing.assert_array_equal(auto[0]["fg"], _photo(10))
    _check(FolderMattingDataset(root / "train", layout="image_alpha"), train, "image_alpha", "original")
    val = _pairs(root / "validation", "original", "mask", ["m_3"])
    write_image(root / "validation" / "trimap" / "m_3.png", _alpha(0))
    _check(FolderMattingDataset(root / "validation"), val, "image_alpha", "original")


def test_distinctions646_upper_case_fg_and_gt(tmp_path):
    root = tmp_path / "Distinctions-646"
    for split, stems in (("Train", ["a", "b", "c"]), ("Test", ["t"])):
        seeds = _pairs(root / split, "FG", "GT", stems)
        ds = FolderMattingDataset(root / split)  # needs "FG" in FG_DIRS and "GT" in ALPHA_DIRS
        assert ds.alpha_dir.name == "GT" and not ds.backgrounds  # no bg/: the package's own backgrounds
        _check(ds, seeds, "fg_alpha_bg", "FG")


def test_ppm100_image_and_matte(tmp_path):
    seeds = _pairs(tmp_path / "PPM-100", "image", "matte", ["0001_o", "0002_o"])
    ds = FolderMattingDataset(tmp_path / "PPM-100")
    _check(ds, seeds, "image_alpha", "image")
    assert ds.alpha_dir.name == "matte"


def test_composition1k_fg_alpha_and_bg(tmp_path):
    root = tmp_path / "Composition-1k" / "train"
    seeds = _pairs(root, "fg", "alpha", ["obj_1", "obj_2", "obj_3"])
    for k in range(2):
        write_image(root / "bg" / f"coco_{k}.jpg", _photo(100 + k, 40, 50))
    ds = FolderMattingDataset(root)
    _check(ds, seeds, "fg_alpha_bg", "fg")
    assert [p.name for p in ds.backgrounds] == ["coco_0.jpg", "coco_1.jpg"]


def test_new_folder_names_come_last_so_existing_layouts_read_as_before(tmp_path):
    assert IMAGE_DIRS.index("original_image") == len(IMAGE_DIRS) - 1
    assert ALPHA_DIRS[-1] == "GT" and FG_DIRS[-1] == "FG"
    seeds = _pairs(tmp_path, "image", "alpha", ["s"])
    write_image(tmp_path / "original_image" / "other.png", _photo(5))
    write_image(tmp_path / "GT" / "other.png", _alpha(1))
    ds = FolderMattingDataset(tmp_path)
    assert (ds.main_dir.name, ds.alpha_dir.name) == ("image", "alpha")
    _check(ds, seeds, "image_alpha", "image")


def test_folder_tree_lists_folders_counts_and_the_first_files(tmp_path):
    root = tmp_path / "toy"
    for name in ("a.png", "b.png", "c.png"):
        write_image(root / "image" / name, _photo(0, 2, 2))
    write_image(root / "alpha" / "a.png", _alpha(0, 2, 2))
    (root / "alpha" / ".hidden").write_text("x")
    assert folder_tree(root).splitlines() == [
        "toy/",
        "├── alpha/  (1 file)",
        "│   └── a.png",
        "└── image/  (3 files)",
        "    ├── a.png",
        "    ├── b.png",
        "    └── ... 1 more",
    ]
    assert folder_tree(root, max_files=5).splitlines()[-1] == "    └── c.png"


@pytest.mark.parametrize("layout", ["fg_alpha_bg", "image_alpha"])
def test_explicit_layout_on_a_folder_with_both(tmp_path, layout):
    seeds = _pairs(tmp_path, "original", "mask", ["x"])
    write_image(tmp_path / "FG" / "x.png", _photo(7))
    ds = FolderMattingDataset(tmp_path, layout=layout)
    assert ds.layout == layout and ds.main_dir.name == ("FG" if layout == "fg_alpha_bg" else "original")
    if layout == "image_alpha":
        _check(ds, seeds, "image_alpha", "original")
