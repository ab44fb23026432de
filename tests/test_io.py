"""io: image sizes are read from the header before decoding, non-regular files are named and never opened,
folder scans report what they skip, and the atomic writer follows the umask."""

import os
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from lowlight_matting.io import (
    ImageReadError,
    atomic_write,
    file_problem,
    read_header,
    read_image,
    read_raw,
    scan_images,
    write_image,
)


def png_claiming(path, width, height):
    """A PNG of a few dozen bytes whose header claims ``width`` x ``height`` (valid CRCs)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def test_the_header_is_read_without_decoding(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.zeros((7, 11, 3), np.uint8))
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: pytest.fail("decoded"))
    assert read_header(path) == (11, 7, 1)


@pytest.mark.parametrize(
    "size, words",
    [
        ((12000, 12000), "12000 x 12000 = 144,000,000 pixels; limit 100,000,000"),
        ((30000, 30000), "900,000,000 pixels; limit 100,000,000"),  # Pillow's own guard fires first
        (
            (200000, 200000),
            "image too large",
        ),  # past OpenCV's limit: used to be a raw "(-215:Assertion failed)"
    ],
)
def test_huge_headers_are_refused_before_decoding(tmp_path, monkeypatch, size, words):
    path = png_claiming(tmp_path / "bomb.png", *size)
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(ImageReadError, match=words) as info:
        read_image(path)
    assert str(info.value).startswith(f"{path}: ")


def test_a_limit_above_pillows_guard_is_honoured(tmp_path):
    path = png_claiming(tmp_path / "big.png", 30000, 30000)
    limit = Image.MAX_IMAGE_PIXELS
    assert read_header(path, max_pixels=10**10) == (30000, 30000, 1)  # only the header: nothing allocated
    assert Image.MAX_IMAGE_PIXELS == limit  # Pillow's guard is back
    assert read_header(tmp_path / "big.png", max_pixels=None)[:2] == (30000, 30000)
    small = tmp_path / "s.png"
    cv2.imwrite(str(small), np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ImageReadError, match="20 pixels; limit 19"):
        read_image(small, max_pixels=19)


def test_files_that_are_not_regular_are_named_and_never_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    os.symlink("loop.png", tmp_path / "loop.png")
    os.symlink("gone.png", tmp_path / "broken.png")
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "empty.png").write_bytes(b"")
    cases = {
        "pipe.png": "not a regular file",
        "loop.png": "symlink loop",
        "broken.png": "broken symlink",
        "dir.png": "is a folder",
        "missing.png": "file not found",
        "empty.png": "file is empty",
    }
    for name, words in cases.items():
        with pytest.raises(ImageReadError, match=f"{name}: {words}"):
            read_raw(tmp_path / name)
    assert file_problem(tmp_path / "empty.png") is None


def test_sample_types_and_channels_opencv_returns_but_we_do_not_use(tmp_path):
    Image.fromarray(np.full((4, 5), np.nan, np.float32), mode="F").save(tmp_path / "nan.tiff")
    Image.fromarray(np.zeros((4, 5), np.int32), mode="I").save(tmp_path / "int.tiff")
    for name, words in (("nan.tiff", "sample type float32"), ("int.tiff", "sample type int32")):
        with pytest.raises(ImageReadError, match=f"{name}: unsupported {words}"):
            read_image(tmp_path / name)
    bad_exif = Image.Exif()
    bad_exif[0x0112] = 99  # not an orientation: ignored, not a crash
    Image.fromarray(np.zeros((3, 6, 3), np.uint8)).save(tmp_path / "odd.jpg", exif=bad_exif.tobytes())
    assert read_image(tmp_path / "odd.jpg").shape == (3, 6, 3)


def test_scans_report_every_skipped_item(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    for rel in ("a.png", "sub/b.png"):
        cv2.imwrite(str(root / rel), np.zeros((4, 4, 3), np.uint8))
    os.symlink(root / "sub", root / "linked")
    os.symlink("loop", root / "loop")
    os.mkfifo(root / "pipe.jpg")
    (root / "notes.txt").write_text("not an image")
    files, notes = scan_images([root], recursive=True)
    assert files == [root / "a.png", root / "sub" / "b.png"]
    text = "\n".join(notes)
    assert f"skipped {root / 'linked'}: symlinked folder" in text
    assert f"skipped {root / 'loop'}: symlink loop" in text
    assert f"skipped {root / 'pipe.jpg'}: not a regular file" in text
    assert "notes.txt" not in text  # not an image: not worth a note
    files, notes = scan_images([root])
    assert files == [root / "a.png"] and any("2 sub-folder(s) not searched" in n for n in notes)
    files, notes = scan_images([str(tmp_path / "*.nothing")])
    assert files == [] and notes == [f"{tmp_path / '*.nothing'}: no file matches this pattern"]
    files, _ = scan_images(
        [root / "loop", root / "pipe.jpg"]
    )  # named explicitly: kept for the reader to name
    assert files == [root / "loop", root / "pipe.jpg"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        a = atomic_write(tmp_path / "a.txt", "x")
        b = write_image(tmp_path / "b.png", np.zeros((2, 2), np.uint8))
    finally:
        os.umask(old)
    assert (a.stat().st_mode & 0o777) == mode and (b.stat().st_mode & 0o777) == mode


def test_atomic_write_refuses_a_folder_and_leaves_nothing_behind(tmp_path):
    folder = tmp_path / "out.png"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="out.png: is a folder"):
        atomic_write(folder, b"data")
    assert list(tmp_path.iterdir()) == [folder] and not any(folder.iterdir())
