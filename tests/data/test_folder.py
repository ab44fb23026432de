"""lowlight_matting.data.FolderMattingDataset: both layouts, every format the reader supports (8/16-bit,
grey/RGB/RGBA, JPEG/PNG/WebP/BMP, EXIF orientation), and a clear named error (or a reported skip) for every
kind of bad file."""

import warnings

import cv2
import numpy as np
import pytest
from PIL import Image

from lowlight_matting.color import composite
from lowlight_matting.data import FolderMattingDataset, MattingDataError
from lowlight_matting.io import ImageReadError, write_image


def _photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
    return base


def _alpha(h, w):
    a = np.zeros((h, w), np.float32)
    a[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1.0
    a[h // 4 - 1, w // 4 : 3 * w // 4] = 0.5
    return a


def _pair(root, stem, h=24, w=32, image_dir="image", alpha_dir="alpha", ext=".png", seed=0):
    write_image(root / image_dir / f"{stem}{ext}", _photo(h, w, seed))
    write_image(root / alpha_dir / f"{stem}.png", _alpha(h, w))


@pytest.fixture
def good(tmp_path):
    for i in range(3):
        _pair(tmp_path, f"s{i}", seed=i)
    return tmp_path


def test_image_alpha_layout(good):
    ds = FolderMattingDataset(good)
    assert ds.layout == "image_alpha" and len(ds) == 3 and ds.names == ["s0", "s1", "s2"]
    item = ds[1]
    assert sorted(item) == ["alpha", "image"]
    np.testing.assert_array_equal(item["image"], _photo(24, 32, 1))
    np.testing.assert_allclose(item["alpha"], np.round(_alpha(24, 32) * 255) / 255, atol=1e-7)
    assert item["alpha"].dtype == np.float32
    assert "n=3" in repr(ds)


def test_formats_depths_and_channels(tmp_path):
    h, w = 20, 28
    photo = _photo(h, w)
    alpha = _alpha(h, w)
    # P3M / AM-2k style folder names, JPEG photos with PNG mattes
    write_image(tmp_path / "original" / "a.jpg", photo)
    write_image(tmp_path / "mask" / "a.png", alpha)
    # 16-bit RGB photo and 16-bit matte
    cv2.imwrite(str(tmp_path / "original" / "b16.png"), (photo[:, :, ::-1].astype(np.uint16) * 257))
    cv2.imwrite(str(tmp_path / "mask" / "b16.png"), np.round(alpha * 65535).astype(np.uint16))
    # grey photo (BMP), RGBA matte (alpha channel is the matte)
    cv2.imwrite(str(tmp_path / "original" / "c.bmp"), photo[:, :, 0])
    rgba = np.dstack([photo, np.round(alpha * 255).astype(np.uint8)])
    write_image(tmp_path / "mask" / "c.png", rgba)
    # lossless WebP photo; RGBA photo (its alpha channel is dropped) with a grey matte
    cv2.imwrite(str(tmp_path / "original" / "d.webp"), photo[:, :, ::-1], [cv2.IMWRITE_WEBP_QUALITY, 101])
    write_image(tmp_path / "mask" / "d.png", alpha)
    write_image(tmp_path / "original" / "e.png", rgba)
    write_image(tmp_path / "mask" / "e.png", alpha)
    ds = FolderMattingDataset(tmp_path, layout="image_alpha")
    assert ds.names == ["a", "b16", "c", "d", "e"]
    items = {n: ds[i] for i, n in enumerate(ds.names)}
    for n, it in items.items():
        assert it["image"].shape == (h, w, 3) and it["image"].dtype == np.uint8, n
        assert it["alpha"].shape == (h, w) and it["alpha"].dtype == np.float32, n
        np.testing.assert_allclose(it["alpha"], alpha, atol=1 / 255 + 1e-6, err_msg=n)
    np.testing.assert_array_equal(items["b16"]["image"], photo)
    np.testing.assert_array_equal(items["c"]["image"], np.repeat(photo[:, :, :1], 3, axis=2))
    np.testing.assert_array_equal(items["d"]["image"], photo)
    np.testing.assert_array_equal(items["e"]["image"], photo)
    assert np.abs(items["a"]["image"].astype(int) - photo).mean() < 6  # JPEG


def test_exif_orientation_is_honoured(tmp_path):
    # stored landscape 16x24 with EXIF orientation 6 ("rotate 90 clockwise to view"): the photo is 24x16
    stored = np.zeros((16, 24, 3), np.uint8)
    stored[:4, :4] = 255  # bright top-left corner as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "image").mkdir()
    Image.fromarray(stored).save(tmp_path / "image" / "r.jpg", exif=exif, quality=100)
    write_image(tmp_path / "alpha" / "r.png", np.ones((24, 16), np.float32))
    item = FolderMattingDataset(tmp_path)[0]
    assert item["image"].shape == (24, 16, 3)
    # after a clockwise turn the stored top-left corner is at the top right
    assert item["image"][:4, -4:].mean() > 200 and item["image"][-4:, :4].mean() < 50
    # a matte that matches the stored (unrotated) size is a size mismatch, named as such
    write_image(tmp_path / "alpha" / "r.png", np.ones((16, 24), np.float32), overwrite=True)
    with pytest.raises(MattingDataError, match=r"r\.png.*does not match.*r\.jpg.*EXIF"):
        FolderMattingDataset(tmp_path)[0]


def test_fg_alpha_bg_layout(tmp_path):
    for i in range(2):
        write_image(tmp_path / "fg" / f"f{i}.png", _photo(24, 32, i))
        write_image(tmp_path / "alpha" / f"f{i}.png", _alpha(24, 32))
    for j in range(3):
        write_image(tmp_path / "bg" / f"b{j}.jpg", _photo(40 + 10 * j, 30 + 7 * j, 10 + j))
    ds = FolderMattingDataset(tmp_path, seed=4)
    assert ds.layout == "fg_alpha_bg" and len(ds) == 2 and len(ds.backgrounds) == 3
    item = ds[0]
    assert sorted(item) == ["alpha", "bg", "fg", "image"]
    assert item["bg"].shape == (24, 32, 3)
    np.testing.assert_array_equal(item["image"], composite(item["fg"], item["bg"], item["alpha"]))
    # deterministic per (seed, epoch, index); a new epoch draws new backgrounds
    again = FolderMattingDataset(tmp_path, seed=4)[0]
    np.testing.assert_array_equal(item["bg"], again["bg"])
    changed = False
    for epoch in range(1, 6):
        ds.set_epoch(epoch)
        changed |= not np.array_equal(ds[0]["bg"], item["bg"])
    assert changed


def test_fg_alpha_without_bg_uses_builtin_backgrounds(tmp_path):
    write_image(tmp_path / "fg" / "x.png", _photo(24, 32))
    write_image(tmp_path / "alpha" / "x.png", _alpha(24, 32))
    ds = FolderMattingDataset(tmp_path, layout="fg_alpha_bg")
    item = ds[0]
    assert item["bg"].shape == (24, 32, 3) and item["bg"].std() > 1.0  # a picture, not a flat fill
    np.testing.assert_array_equal(item["image"], composite(item["fg"], item["bg"], item["alpha"]))
    # a built-in background per (seed, epoch, index): the same again, another one next epoch
    np.testing.assert_array_equal(FolderMattingDataset(tmp_path, layout="fg_alpha_bg")[0]["bg"], item["bg"])
    ds.set_epoch(1)
    assert not np.array_equal(ds[0]["bg"], item["bg"])


def test_layout_and_folder_errors(tmp_path):
    with pytest.raises(MattingDataError, match="not found"):
        FolderMattingDataset(tmp_path / "nope")
    (tmp_path / "pictures").mkdir()
    with pytest.raises(MattingDataError, match="pictures"):
        FolderMattingDataset(tmp_path)
    with pytest.raises(ValueError, match="layout"):
        FolderMattingDataset(tmp_path, layout="coco")
    _pair(tmp_path, "a", image_dir="pictures", alpha_dir="truth")
    ds = FolderMattingDataset(tmp_path, image_dir="pictures", alpha_dir="truth")
    assert len(ds) == 1


def _bad_tree(root):
    """Two good pairs and one of every kind of bad file."""
    _pair(root, "good1")
    _pair(root, "good2", seed=2)
    write_image(root / "image" / "lonely.png", _photo(24, 32))  # no matte
    write_image(root / "alpha" / "orphan.png", _alpha(24, 32))  # no photo
    _pair(root, "small")
    write_image(root / "alpha" / "small.png", _alpha(12, 16), overwrite=True)  # size mismatch
    (root / "image" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")  # corrupt
    write_image(root / "alpha" / "broken.png", _alpha(24, 32))
    (root / "image" / "empty.jpg").write_bytes(b"")  # empty
    write_image(root / "alpha" / "empty.png", _alpha(24, 32))
    (root / "image" / "anim.gif").write_bytes(b"GIF89a")  # unsupported type
    write_image(root / "alpha" / "anim.png", _alpha(24, 32))
    _pair(root, "twice")
    write_image(root / "image" / "twice.jpg", _photo(24, 32))  # two photos with one stem


def test_every_bad_file_is_named_in_strict_mode(tmp_path):
    _bad_tree(tmp_path)
    with pytest.raises(MattingDataError) as err:
        FolderMattingDataset(tmp_path)
    msg = str(err.value)
    for name, why in [
        ("lonely.png", "no matching alpha"),
        ("orphan.png", "without a matching image"),
        ("empty.jpg", "empty"),
        ("anim.gif", "unsupported file type"),
        ("twice", "two files with the stem"),
    ]:
        assert any(name in line and why in line for line in msg.splitlines()), (name, msg)


def test_read_time_problems_name_the_file(tmp_path):
    _pair(tmp_path, "ok")
    _pair(tmp_path, "small")
    write_image(tmp_path / "alpha" / "small.png", _alpha(12, 16), overwrite=True)
    (tmp_path / "image" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    write_image(tmp_path / "alpha" / "broken.png", _alpha(24, 32))
    ds = FolderMattingDataset(tmp_path)  # cheap checks pass; decoding happens per item
    assert ds.names == ["broken", "ok", "small"]
    with pytest.raises(ImageReadError, match=r"broken\.png.*corrupt"):
        ds[0]
    with pytest.raises(
        MattingDataError, match=r"small\.png: alpha size 16x12 does not match .*small\.png \(32x24"
    ):
        ds[2]
    assert ds[1]["image"].shape == (24, 32, 3)


def test_skip_mode_leaves_bad_files_out_and_reports_them(tmp_path):
    _bad_tree(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = FolderMattingDataset(tmp_path, skip_bad=True)
    assert ds.names == ["good1", "good2"]
    assert [ds[i]["image"].shape for i in range(len(ds))] == [(24, 32, 3)] * 2
    skipped = {p.name: why for p, why in ds.skipped}
    assert "no matching alpha" in skipped["lonely.png"]
    assert "without a matching" in skipped["orphan.png"]
    assert "does not match" in skipped["small.png"]
    assert "corrupt" in skipped["broken.png"]
    assert "empty" in skipped["empty.jpg"]
    assert "unsupported" in skipped["anim.gif"]
    assert "two files with the stem" in skipped["twice.jpg"] and "ambiguous" in skipped["twice.png"]
    report = ds.report()
    assert all(name in report for name in skipped)
    assert any("skipped" in str(w.message) and "broken.png" in str(w.message) for w in caught)
    assert "skipped=" in repr(ds)


def test_skip_mode_with_nothing_usable_still_raises(tmp_path):
    (tmp_path / "image").mkdir()
    (tmp_path / "alpha").mkdir()
    (tmp_path / "image" / "x.png").write_bytes(b"")
    write_image(tmp_path / "alpha" / "x.png", _alpha(8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(MattingDataError, match="no usable"):
            FolderMattingDataset(tmp_path, skip_bad=True)


def test_bad_backgrounds_are_skipped_or_named(tmp_path):
    write_image(tmp_path / "fg" / "f.png", _photo(24, 32))
    write_image(tmp_path / "alpha" / "f.png", _alpha(24, 32))
    write_image(tmp_path / "bg" / "good.png", _photo(30, 40))
    (tmp_path / "bg" / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = FolderMattingDataset(tmp_path, skip_bad=True)
    assert [p.name for p in ds.backgrounds] == ["good.png"]
    assert any(p.name == "bad.jpg" for p, _ in ds.skipped)
