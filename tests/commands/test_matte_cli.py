"""``lowlight-matting matte``: a folder of awkward photos in, correct RGBA cut-outs out, inputs untouched."""

import hashlib
import io

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from lowlight_matting.checkpoint import save_checkpoint
from lowlight_matting.cli import main
from lowlight_matting.deploy import load_matter
from lowlight_matting.io import read_image
from lowlight_matting.models import build_model


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    m = build_model("test_convnext").eval()
    normal = save_checkpoint(d / "normal.pt", {"model": m.state_dict(), "model_config": m.config})
    with torch.no_grad():  # a "low-light model" that answers alpha ~ 0.9 everywhere
        m.head.coarse.weight.zero_()
        m.head.coarse.bias.fill_(float(np.log(9.0)))
    low = save_checkpoint(d / "low.pt", {"model": m.state_dict(), "model_config": m.config})
    return normal, low


def photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(30, 230, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8), (w, h))
    cv2.circle(img, (w // 2, h // 2), min(h, w) // 3, (220, 180, 120), -1)
    return img


def make_inputs(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rgb = photo(48, 64)
    cv2.imwrite(str(src / "plain.png"), rgb[:, :, ::-1])
    cv2.imwrite(str(src / "grey.png"), rgb[:, :, 0])
    cv2.imwrite(str(src / "rgba.png"), np.dstack([rgb[:, :, ::-1], np.full((48, 64), 7, np.uint8)]))
    cv2.imwrite(str(src / "deep.png"), rgb[:, :, ::-1].astype(np.uint16) * 257)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display: 40 x 24 stored -> 24 x 40 shown
    buf = io.BytesIO()
    Image.fromarray(photo(24, 40, seed=1)).save(buf, format="JPEG", exif=exif.tobytes())
    (src / "rotated.jpg").write_bytes(buf.getvalue())
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (src / "notes.txt").write_text("not an image")  # skipped: found in a folder without an image suffix
    return src


def hashes(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_matte_folder_writes_rgba_for_good_files_and_reports_the_corrupt_one(tmp_path, ckpts, capsys):
    src = make_inputs(tmp_path)
    before = hashes(src)
    out = tmp_path / "out"
    argv = ["matte", str(src), "-o", str(out), "--checkpoint", str(ckpts[0]), "--long-side", "32", "--quiet"]
    assert main(argv + ["--save-alpha"]) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "1 file(s) failed" in err and "wrote 5" in err
    assert hashes(src) == before  # inputs byte-identical
    matter = load_matter(ckpts[0], long_side=32, foreground="none")
    for name in ("plain", "grey", "rgba", "deep", "rotated"):
        rgba = cv2.imread(str(out / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        image = read_image(next(src.glob(f"{name}.*")))
        assert rgba.shape == (*image.shape[:2], 4), name
        expected = np.round(matter.predict(image) * 255)
        assert np.abs(rgba[:, :, 3].astype(float) - expected).max() <= 1, name
        alpha_png = cv2.imread(str(out / f"{name}_alpha.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(alpha_png, rgba[:, :, 3])
    assert cv2.imread(str(out / "rotated.png"), cv2.IMREAD_UNCHANGED).shape[:2] == (40, 24)
    assert not (out / "broken.png").exists() and not (out / "notes.png").exists()

    # a second run refuses to overwrite and writes nothing; --overwrite replaces
    stamp = hashes(out)
    assert main(argv) == 2
    assert "exist already" in capsys.readouterr().err
    assert hashes(out) == stamp
    assert main(argv + ["--overwrite", "--no-foreground"]) == 1
    rgba = cv2.imread(str(out / "plain.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(rgba[:, :, 2::-1], read_image(src / "plain.png"))  # photo colours kept


def test_matte_alpha_only_and_name_collisions(tmp_path, ckpts, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    cv2.imwrite(str(a / "cat.png"), photo(40, 40))
    cv2.imwrite(str(b / "cat.png"), photo(40, 40, seed=2))
    cv2.imwrite(str(b / "cat.jpg"), photo(40, 40, seed=3))
    out = tmp_path / "out"
    argv = ["matte", str(a / "cat.png"), str(b / "*.*"), "-o", str(out), "--checkpoint", str(ckpts[0])]
    assert main(argv + ["--alpha-only", "--quiet", "--long-side", "32"]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 3 and "cat.png" in written  # nothing silently overwritten
    assert "renamed" in capsys.readouterr().err
    assert all(cv2.imread(str(p), cv2.IMREAD_UNCHANGED).ndim == 2 for p in out.iterdir())


def test_matte_refuses_to_write_into_an_input_folder(tmp_path, ckpts, capsys):
    src = make_inputs(tmp_path)
    before = hashes(src)
    for target in (src, src / "cutouts"):
        assert main(["matte", str(src), "-o", str(target), "--checkpoint", str(ckpts[0]), "--quiet"]) == 2
        assert "refusing" in capsys.readouterr().err
    assert main(["matte", str(src / "plain.png"), "-o", str(src), "--checkpoint", str(ckpts[0])]) == 2
    assert hashes(src) == before


def test_matte_auto_routes_by_brightness(tmp_path, ckpts, capsys):
    src = tmp_path / "in"
    src.mkdir()
    bright = photo(48, 48)
    cv2.imwrite(str(src / "day.png"), bright)
    cv2.imwrite(str(src / "night.png"), (bright // 12).astype(np.uint8))
    out = tmp_path / "out"
    argv = [
        "matte",
        str(src),
        "-o",
        str(out),
        "--checkpoint",
        str(ckpts[0]),
        "--lowlight-checkpoint",
        str(ckpts[1]),
    ]
    assert main(argv + ["--auto", "--alpha-only", "--quiet", "--long-side", "32"]) == 0
    assert "normal 1, lowlight 1" in capsys.readouterr().err
    night = cv2.imread(str(out / "night.png"), cv2.IMREAD_UNCHANGED)
    assert abs(night.mean() - 0.9 * 255) < 3  # answered by the low-light model
    day = cv2.imread(str(out / "day.png"), cv2.IMREAD_UNCHANGED)
    expected = np.round(load_matter(ckpts[0], long_side=32).predict(read_image(src / "day.png")) * 255)
    assert np.abs(day.astype(float) - expected).max() <= 1
    assert main(argv + ["--quiet"]) == 2  # a low-light model without --auto is a usage error
    assert "--auto" in capsys.readouterr().err


def test_matte_without_a_model_or_images(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LOWLIGHT_MATTING_CHECKPOINT", raising=False)
    assert main(["matte", str(tmp_path), "-o", str(tmp_path / "o")]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert main(["matte", str(tmp_path), "-o", str(tmp_path / "o"), "--checkpoint", "x.pt"]) == 2
    assert "no images" in capsys.readouterr().err
