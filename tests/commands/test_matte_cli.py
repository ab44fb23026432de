"""``lowlight-matting matte``: a folder of awkward photos in, correct RGBA cut-outs out, inputs untouched;
the shipped models by default; every bad input or option a one-line message, never a traceback."""

import hashlib
import io
import os
import struct
import zlib

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from lowlight_matting.checkpoint import save_checkpoint
from lowlight_matting.cli import main
from lowlight_matting.deploy import load_matter
from lowlight_matting.export import save_weights
from lowlight_matting.io import read_image
from lowlight_matting.models import build_model
from lowlight_matting.weights import SHIPPED


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
    """Content of every regular file below ``folder`` (never opens a FIFO, never follows a link)."""
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(root, n)
            if not os.path.islink(p) and os.path.isfile(p):
                out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def png_header_only(path, width, height):
    """A tiny PNG whose header claims ``width`` x ``height`` (valid CRCs, almost no pixel data)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(data)
    return path


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """Two stand-in shipped models (normal: alpha ~0.1, low light: ~0.9) in a temporary weights folder."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    torch.manual_seed(0)
    m = build_model("test_convnext").eval()
    for name, value in (("cvunet-base", 0.1), ("cvunet-lowlight", 0.9)):
        with torch.no_grad():
            m.head.coarse.weight.zero_()
            m.head.coarse.bias.fill_(float(np.log(value / (1 - value))))
        save_weights(m, folder / SHIPPED[name])
    monkeypatch.setattr("lowlight_matting.weights.files.WEIGHTS_DIR", folder)
    monkeypatch.delenv("LOWLIGHT_MATTING_CHECKPOINT", raising=False)
    return folder


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
    monkeypatch.setattr("lowlight_matting.weights.files.WEIGHTS_DIR", tmp_path / "no_weights_here")
    cv2.imwrite(str(tmp_path / "a.png"), photo(32, 32))
    assert main(["matte", str(tmp_path / "a.png"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "shipped" in err and "cvunet_base.safetensors is missing" in err and "--checkpoint" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["matte", str(empty), "-o", str(tmp_path / "o"), "--checkpoint", "x.pt"]) == 2
    assert "no images" in capsys.readouterr().err


def test_matte_with_no_checkpoint_routes_between_the_shipped_models(tmp_path, shipped, capsys):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "day.png"), photo(40, 40))
    cv2.imwrite(str(src / "night.png"), (photo(40, 40) // 12).astype(np.uint8))
    out = tmp_path / "out"
    assert main(["matte", str(src), "-o", str(out), "--alpha-only", "--quiet", "--long-side", "32"]) == 0
    err = capsys.readouterr().err
    assert "normal 1, lowlight 1" in err and "threshold 0.0732" in err  # color.DARK_THRESHOLD
    assert abs(cv2.imread(str(out / "night.png"), 0).mean() - 0.9 * 255) < 3
    assert abs(cv2.imread(str(out / "day.png"), 0).mean() - 0.1 * 255) < 3
    # a shipped model by name
    out2 = tmp_path / "out2"
    argv = ["matte", str(src / "day.png"), "-o", str(out2), "--checkpoint", "cvunet-lowlight", "--alpha-only"]
    assert main(argv + ["--quiet", "--long-side", "32"]) == 0
    assert abs(cv2.imread(str(out2 / "day.png"), 0).mean() - 0.9 * 255) < 3
    assert main(["matte", str(src), "-o", str(tmp_path / "out3"), "--checkpoint", "cvunet-nope"]) == 2
    assert (
        "cvunet-nope: not a file, nor a shipped model name (shipped: cvunet-base" in capsys.readouterr().err
    )


def test_matte_refuses_a_huge_header_before_decoding_and_keeps_going(tmp_path, ckpts, capsys):
    """A 32 KB PNG claiming 12000 x 12000 used to be decoded (4.8 GB, 44 s) and matted, exit 0."""
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "ok.png"), photo(32, 32))
    png_header_only(src / "bomb.png", 12000, 12000)
    png_header_only(src / "past_opencv.png", 200000, 200000)  # past OpenCV's own limit: its raw assertion
    out = tmp_path / "out"
    argv = ["matte", str(src), "-o", str(out), "--checkpoint", str(ckpts[0]), "--quiet", "--no-foreground"]
    assert main(argv + ["--long-side", "32"]) == 1
    err = capsys.readouterr().err
    assert "bomb.png: image too large (12000 x 12000 = 144,000,000 pixels; limit 100,000,000" in err
    assert "past_opencv.png: image too large" in err and "-215" not in err and "Traceback" not in err
    assert (out / "ok.png").exists() and not (out / "bomb.png").exists()
    assert main(argv + ["--long-side", "32", "--max-pixels", "1000", "--overwrite"]) == 1
    assert "ok.png: image too large (32 x 32 = 1,024 pixels; limit 1,000" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(argv + ["--max-pixels", "0"])
    assert info.value.code == 2 and "--max-pixels" in capsys.readouterr().err


def test_matte_names_fifos_symlink_loops_and_skipped_symlinked_folders(tmp_path, ckpts, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    cv2.imwrite(str(src / "ok.png"), photo(32, 32))
    cv2.imwrite(str(src / "sub" / "deep.png"), photo(32, 32))
    os.mkfifo(src / "pipe.png")  # used to hang matte forever
    os.symlink("loop.png", src / "loop.png")  # a link to itself
    os.symlink(src / "sub", src / "linked")  # a symlinked sub-folder: not followed, but reported
    before = hashes(src)
    out = tmp_path / "out"
    argv = ["matte", str(src), "-o", str(out), "--checkpoint", str(ckpts[0]), "--quiet", "--no-foreground"]
    assert main(argv + ["--long-side", "32", "--recursive"]) == 0
    err = capsys.readouterr().err
    assert f"skipped {src / 'pipe.png'}: not a regular file" in err
    assert f"skipped {src / 'loop.png'}: symlink loop" in err
    assert f"skipped {src / 'linked'}: symlinked folder" in err
    assert (out / "ok.png").exists() and (out / "sub" / "deep.png").exists() and not (out / "linked").exists()
    # given by name, the FIFO and the loop are per-file failures with their names, not a hang or a traceback
    argv = [
        "matte",
        str(src / "pipe.png"),
        str(src / "loop.png"),
        str(src / "ok.png"),
        "-o",
        str(tmp_path / "o2"),
    ]
    assert main(argv + ["--checkpoint", str(ckpts[0]), "--quiet", "--long-side", "32"]) == 1
    err = capsys.readouterr().err
    assert (
        "pipe.png: not a regular file" in err and "loop.png: symlink loop" in err and "Traceback" not in err
    )
    assert hashes(src) == before


def test_matte_never_writes_into_an_input_folder_through_a_symlink(tmp_path, ckpts, capsys):
    src = make_inputs(tmp_path)
    (src / "sub").mkdir()
    cv2.imwrite(str(src / "sub" / "x.png"), photo(32, 32))
    before = hashes(src)
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(src, out / "sub")  # out/sub/x.png would really be in/x.png
    argv = ["matte", str(src), "-o", str(out), "--checkpoint", str(ckpts[0]), "--recursive", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "would write into the input folder" in err and "through a symlink" in err
    assert hashes(src) == before and sorted(p.name for p in out.iterdir()) == ["sub"]


def test_matte_usage_errors_are_one_line_and_exit_2(tmp_path, ckpts, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), photo(32, 32))
    base = ["matte", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--checkpoint", str(ckpts[0])]
    assert main(base + ["--device", "banana"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "matte: --device: 'banana' is not a device name (auto, cpu, cuda, cuda:N or mps)"
    assert main(base + ["--device", "cpu", "--precision", "fp16"]) == 2  # once, up front, not once per photo
    err = capsys.readouterr().err
    assert "--precision fp16 needs a CUDA GPU" in err and len(err.strip().splitlines()) == 1
    for bad in ("nan", "1.5", "-0.1"):
        with pytest.raises(SystemExit) as info:
            main(base + ["--threshold", bad])
        assert info.value.code == 2 and "--threshold" in capsys.readouterr().err
    bad_ckpt = tmp_path / "bad.pt"
    torch.save({"model": {}, "model_config": {"encoder": "test_convnext", "mystery": 1}}, bad_ckpt)
    assert (
        main(["matte", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--checkpoint", str(bad_ckpt)])
        == 2
    )
    err = capsys.readouterr().err
    assert f"{bad_ckpt}: model_config: unknown key 'mystery'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_matte_one_pixel_photos_and_outputs_follow_the_umask(tmp_path, ckpts, capsys):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "dot.png"), np.full((1, 1, 3), 200, np.uint8))  # used to fail: "division by zero"
    cv2.imwrite(str(src / "line.png"), np.full((1, 9, 3), 90, np.uint8))
    old = os.umask(0o027)
    try:
        assert (
            main(["matte", str(src), "-o", str(tmp_path / "out"), "--checkpoint", str(ckpts[0]), "--quiet"])
            == 0
        )
    finally:
        os.umask(old)
    for name, shape in (("dot.png", (1, 1, 4)), ("line.png", (1, 9, 4))):
        out = tmp_path / "out" / name
        assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == shape
        assert (out.stat().st_mode & 0o777) == 0o640
