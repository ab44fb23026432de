"""Fuzz ``matte`` and ``load_matter`` with malformed files, on a fixed seed.

Image cases: every Pillow mode x format pair that writes, tiny and thin sizes, EXIF orientations,
truncations at several points, wrong magic bytes, random bit flips, headers claiming huge sizes (PNG, BMP,
JPEG, WebP, TIFF), NaN/int32 TIFFs, empty files, FIFOs, symlink loops, broken links and folders named like
images. They go through ``lowlight-matting matte`` twice (as a folder, and named one by one). Model cases:
hostile and broken model configs, weights and files (``.pt``, ``.safetensors``, ``.onnx``) through
``load_matter`` and through ``matte --checkpoint``.

Asserted for every case: no traceback (and no "internal error"), an exit status in {0, 1, 2}, a message
that names the file when it is refused (or an output when it is accepted), inputs byte-identical
afterwards, and no file created outside the output folder. :data:`N_CASES` (in README's "Reliability and
safety") is checked against the cases actually generated.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from lowlight_matting.checkpoint import save_checkpoint
from lowlight_matting.cli import main
from lowlight_matting.deploy import load_matter
from lowlight_matting.export import save_weights
from lowlight_matting.models import build_model

SEED = 14
N_IMAGE_CASES = 135
N_MODEL_CASES = 45
N_CASES = N_IMAGE_CASES + N_MODEL_CASES
REPO = pathlib.Path(__file__).resolve().parents[1]

# Pillow mode x format pairs that Pillow writes and OpenCV decodes (checked on Pillow 10-12, OpenCV 4.9-5)
WRITABLE = {
    "PNG": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"),
    "JPEG": ("1", "L", "RGB", "CMYK", "YCbCr"),
    "WEBP": ("L", "RGB", "RGBA"),
    "BMP": ("1", "L", "P", "RGB", "RGBA"),
    "TIFF": ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"),
}
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tiff"}


def encode(array: np.ndarray, fmt: str, mode: str | None = None, **save) -> bytes:
    im = Image.fromarray(array)
    if mode is not None:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **save)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 99))
        + png_chunk(b"IEND", b"")
    )


def bmp_claiming(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 16, 0, 0, 54) + info + b"\0" * 16


def tiff_claiming(width: int, height: int) -> bytes:
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, 16)]  # fmt: skip
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0" * 4
    return b"II*\0" + struct.pack("<I", 24) + b"\0" * 16 + ifd


def jpeg_claiming(valid_jpeg: bytes, width: int, height: int) -> bytes:
    i = valid_jpeg.index(b"\xff\xc0")  # baseline SOF0: length(2) precision(1) height(2) width(2)
    return valid_jpeg[: i + 5] + struct.pack(">HH", height, width) + valid_jpeg[i + 9 :]


def webp_claiming(valid_lossless: bytes, width: int, height: int) -> bytes:
    i = valid_lossless.index(b"VP8L") + 9  # chunk header(8) + signature 0x2f(1), then 14+14 bits - 1
    bits = (width - 1) | ((height - 1) << 14)
    old = int.from_bytes(valid_lossless[i : i + 4], "little")
    new = (old & ~((1 << 28) - 1)) | bits
    return valid_lossless[:i] + new.to_bytes(4, "little") + valid_lossless[i + 4 :]


def image_cases(rng: np.random.Generator) -> list[tuple[str, bytes | str, str]]:
    """(file name, bytes or a special kind, expected: "ok", "fail" or "either")."""
    cases: list[tuple[str, bytes | str, str]] = []
    photo = rng.integers(0, 256, (20, 27, 3), dtype=np.uint8)
    valid: dict[str, bytes] = {}
    for fmt, modes in WRITABLE.items():
        for mode in modes:
            data = encode(photo, fmt, mode)
            expect = (
                "fail" if (fmt, mode) in {("TIFF", "I"), ("TIFF", "F")} else "ok"
            )  # int32 / float32 samples
            cases.append((f"mode_{mode.replace(';', '')}_{fmt.lower()}{SUFFIX[fmt]}", data, expect))
            if mode == "RGB":
                valid[fmt] = data
    lossless = encode(photo, "WEBP", lossless=True)
    cases.append(("lossless.webp", lossless, "ok"))
    cases.append(("progressive.jpg", encode(photo, "JPEG", progressive=True), "ok"))
    nan = np.where(rng.random((9, 9)) < 0.5, np.nan, 0.5).astype(np.float32)
    cases.append(("nan.tiff", encode(nan, "TIFF"), "fail"))
    cases.append(("inf.tiff", encode(np.full((9, 9), np.inf, np.float32), "TIFF"), "fail"))
    deep = np.asarray(rng.integers(0, 65536, (9, 13, 3)), dtype=np.uint16)
    import cv2

    for suffix in (".png", ".tiff"):
        cases.append((f"deep_rgb_{suffix[1:]}{suffix}", cv2.imencode(suffix, deep)[1].tobytes(), "ok"))
        rgba16 = np.dstack([deep, deep[:, :, :1]])
        cases.append((f"deep_rgba_{suffix[1:]}{suffix}", cv2.imencode(suffix, rgba16)[1].tobytes(), "ok"))
    for h, w in ((1, 1), (1, 2), (2, 1), (1, 300), (300, 1), (2, 2), (3, 500)):
        cases.append(
            (f"size_{h}x{w}.png", encode(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "PNG"), "ok")
        )
    for orientation in (1, 3, 6, 8, 0, 9, 65535):
        exif = Image.Exif()
        exif[0x0112] = orientation
        cases.append((f"exif_{orientation}.jpg", encode(photo, "JPEG", exif=exif.tobytes()), "ok"))
    for fmt, data in valid.items():  # truncated at several points
        for k, cut in enumerate((0, 1, 8, 16, 40, len(data) // 2, len(data) - 1)):
            expect = "fail" if cut < 40 else "either"  # OpenCV fills some truncated images in grey
            name = f"cut{k}_{cut}_{fmt.lower()}{SUFFIX[fmt]}"
            cases.append((name, data[:cut], "fail" if cut == 0 else expect))
    for k, suffix in enumerate((".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")):
        cases.append((f"random{k}{suffix}", rng.bytes(int(rng.integers(1, 3000))), "fail"))
    cases.append(("text.png", b"this is not an image\n" * 20, "fail"))
    cases.append(("png_named.jpg", valid["PNG"], "ok"))  # decoded by content, as OpenCV does
    cases.append(("jpeg_named.png", valid["JPEG"], "ok"))
    cases.append(("png_magic_only.png", b"\x89PNG\r\n\x1a\n", "fail"))
    cases.append(("jpeg_magic_only.jpg", b"\xff\xd8\xff\xe0" + rng.bytes(30), "fail"))
    for fmt, data in valid.items():  # random bit flips: anything may happen, but never a traceback
        for k in range(3):
            buf = bytearray(data)
            for pos in rng.integers(0, len(buf), int(rng.integers(1, 12))):
                buf[int(pos)] ^= 1 << int(rng.integers(0, 8))
            cases.append((f"flip{k}_{fmt.lower()}{SUFFIX[fmt]}", bytes(buf), "either"))
    for w, h in ((12000, 12000), (30000, 30000), (200000, 200000), (1, 2**31 - 1), (0, 10), (2**31, 2**31)):
        cases.append((f"huge_png_{w}x{h}.png", png_claiming(w, h), "fail"))
    for w, h in ((50000, 50000), (12000, -12000), (10**9, 1)):
        cases.append((f"huge_bmp_{w}x{h}.bmp".replace("-", "m"), bmp_claiming(w, h), "fail"))
    cases.append(("huge_65000.jpg", jpeg_claiming(valid["JPEG"], 65000, 65000), "fail"))
    cases.append(("huge_12000_jpeg.jpg", jpeg_claiming(valid["JPEG"], 12000, 12000), "fail"))
    cases.append(("zero_height.jpg", jpeg_claiming(valid["JPEG"], 27, 0), "fail"))
    cases.append(("huge_16384.webp", webp_claiming(lossless, 16384, 16384), "fail"))
    cases.append(("huge_100000.tiff", tiff_claiming(100000, 100000), "fail"))
    cases.append(("huge_12000_tiff.tiff", tiff_claiming(12000, 12000), "fail"))
    cases.append(("empty.png", b"", "fail"))
    cases.append(("fifo.png", "fifo", "fail"))
    cases.append(("loop.png", "loop", "fail"))
    cases.append(("broken_link.png", "broken", "fail"))
    cases.append(("folder.png", "folder", "dir"))  # a folder named like an image: searched, not read
    cases.append(("link_to_valid.png", "link", "ok"))
    return cases


def make_special(path: pathlib.Path, kind: str, folder: pathlib.Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "loop":
        os.symlink(path.name, path)
    elif kind == "broken":
        os.symlink("does_not_exist.png", path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "link":
        os.symlink(folder / "mode_RGB_png.png", path)


def snapshot(root: pathlib.Path, skip: pathlib.Path | None = None) -> dict[str, str]:
    """Every entry below ``root`` (except ``skip``): content hash for regular files, the kind otherwise.
    Never opens a FIFO and never follows a link."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None and pathlib.Path(dirpath) == skip.parent:
            dirnames[:] = [d for d in dirnames if pathlib.Path(dirpath, d) != skip]
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if skip is not None and pathlib.Path(p) == skip:
                continue
            if os.path.islink(p):
                out[p] = "link:" + os.readlink(p)
            elif os.path.isfile(p):
                out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
            else:
                out[p] = "dir" if os.path.isdir(p) else "special"
    return out


def check_run(code: int, err: str) -> None:
    assert code in (0, 1, 2), code
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]


@pytest.fixture(autouse=True)
def one_thread():
    """Toy-sized forward passes: one thread is faster than two fighting a busy machine's other jobs."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(SEED)
    m = build_model("test_convnext").eval()
    d = tmp_path_factory.mktemp("model")
    return m, save_checkpoint(d / "model.pt", {"model": m.state_dict(), "model_config": m.config})


def test_matte_survives_malformed_images(tmp_path, checkpoint, capsys):
    rng = np.random.default_rng(SEED)
    cases = image_cases(rng)
    assert len(cases) == N_IMAGE_CASES and len({pathlib.Path(c[0]).stem for c in cases}) == len(cases)
    src = tmp_path / "in"
    src.mkdir()
    for name, data, _ in cases:
        if isinstance(data, bytes):
            (src / name).write_bytes(data)
    for name, data, _ in cases:
        if isinstance(data, str):
            make_special(src / name, data, src)
    before = snapshot(tmp_path)
    common = ["--checkpoint", str(checkpoint[1]), "--quiet", "--no-foreground", "--long-side", "32"]

    # 1. the folder: special files are skipped with a note, the rest matted or refused by name
    out = tmp_path / "out_folder"
    code = main(["matte", str(src), "-o", str(out), *common])
    err = capsys.readouterr().err
    check_run(code, err)
    assert code == 1  # some files failed, the others were written
    for name, _, expect in cases:
        written = (out / pathlib.Path(name).with_suffix(".png")).exists()
        named = str(src / name) in err
        if expect == "dir":
            assert not written and "1 sub-folder(s) not searched" in err
        elif expect == "ok":
            assert written and not named, (name, err[-3000:])
        elif expect == "fail":
            assert named and not written, (name, err[-3000:])
        else:
            assert written != named, (name, written, named)
    assert snapshot(tmp_path, skip=out) == before  # inputs identical, nothing written outside out/

    # 2. every file named explicitly: special files reach the reader and are refused by name
    out2 = tmp_path / "out_named"
    code = main(["matte", *[str(src / c[0]) for c in cases], "-o", str(out2), *common])
    err = capsys.readouterr().err
    check_run(code, err)
    failed = [line for line in err.splitlines() if line.startswith("  ")]
    for name, _, expect in cases:
        named = any(str(src / name) in line for line in failed)
        written = (out2 / pathlib.Path(name).with_suffix(".png")).exists()
        if expect == "ok":
            assert written and not named, (name, err[-3000:])
        elif expect == "fail":
            assert named and not written, (name, err[-3000:])
        elif expect == "either":
            assert written != named, (name, written, named)
    assert all(line.count("\n") == 0 and len(line) < 600 for line in failed)
    outside = snapshot(tmp_path, skip=out2)
    assert {k: v for k, v in outside.items() if not k.startswith(str(out))} == before


def model_cases(tmp_path: pathlib.Path, model: torch.nn.Module, rng: np.random.Generator):
    """(file, expected: "ok" or "fail") for hostile and broken model files."""
    import onnx
    from onnx import TensorProto, helper
    from safetensors.torch import load_file, save_file

    cfg, state = model.config, model.state_dict()
    marker = tmp_path / "code_ran"

    class Marker:
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": Marker()}, evil)
    files: list[tuple[pathlib.Path, str]] = []

    def ckpt(name, payload, expect="fail"):
        files.append((save_checkpoint(tmp_path / name, payload), expect))

    bad_configs = {
        "ek_checkpoint_path": {"encoder_kwargs": {"checkpoint_path": str(evil)}},
        "ek_overlay": {"encoder_kwargs": {"pretrained_cfg_overlay": {"file": str(evil)}}},
        "ek_pretrained": {"encoder_kwargs": {"pretrained": True}},
        "ek_cfg": {"encoder_kwargs": {"pretrained_cfg": {"url": "http://x"}}},
        "ek_nan": {"encoder_kwargs": {"drop_rate": float("nan")}},
        "pretrained_true": {"pretrained": True},
        "enc_hub": {"encoder": "hf-hub:timm/test_convnext"},
        "enc_dir": {"encoder": f"local-dir:{tmp_path}"},
        "enc_unknown": {"encoder": "no_such_net"},
        "enc_path": {"encoder": "../../etc/passwd"},
        "enc_int": {"encoder": 7},
        "dc_huge": {"decoder_channels": [200000] * 5},
        "dc_wide": {"decoder_channels": [4096] * 5},
        "dc_zero": {"decoder_channels": [0] * 5},
        "dc_long": {"decoder_channels": [8] * 40},
        "dc_text": {"decoder_channels": "wide"},
        "rc_huge": {"refine_channels": 10**9},
        "isc_neg": {"image_skip_channels": -4},
        "llie_evil": {"llie": "os.system"},
        "scale_inf": {"llie": "zero_dce_pp", "llie_scale_factor": float("inf")},
        "refine_bad": {"refine_input": "everything"},
        "unknown_key": {"__class__": "x"},
    }
    for name, bad in bad_configs.items():
        ckpt(f"{name}.pt", {"model": state, "model_config": {**cfg, **bad}})
    ckpt("cfg_list.pt", {"model": state, "model_config": ["test_convnext"]})
    ckpt("no_config.pt", {"model": state})
    ckpt("no_model.pt", {"model_config": cfg})
    ckpt("model_list.pt", {"model": [1, 2, 3], "model_config": cfg})
    nan_state = {k: v.clone() for k, v in state.items()}
    nan_state["head.coarse.bias"].fill_(float("nan"))
    ckpt("nan_weights.pt", {"model": nan_state, "model_config": cfg})
    other = build_model("test_convnext", decoder_channels=[8, 8, 8, 8, 8]).state_dict()
    ckpt("wrong_shapes.pt", {"model": other, "model_config": cfg})
    ckpt("old_provenance.pt", {"model": state, "model_config": {**cfg, "pretrained": str(evil)}}, "ok")
    pickled = tmp_path / "pickled_code.pt"
    torch.save({"model": state, "model_config": cfg, "hook": Marker()}, pickled)
    files.append((pickled, "fail"))
    good = save_checkpoint(tmp_path / "good.pt", {"model": state, "model_config": cfg})
    raw = good.read_bytes()
    for k, cut in enumerate((10, len(raw) // 2)):
        (tmp_path / f"cut{k}.pt").write_bytes(raw[:cut])
        files.append((tmp_path / f"cut{k}.pt", "fail"))
    (tmp_path / "random.pt").write_bytes(rng.bytes(500))
    files.append((tmp_path / "random.pt", "fail"))
    st = save_weights(model, tmp_path / "w.safetensors")
    tensors = load_file(str(st))
    for name, meta in {
        "st_foreign": {},
        "st_badjson": {"format": "lowlight-matting-weights/1", "model_config": "{"},
        "st_hostile": {"format": "lowlight-matting-weights/1", "model_config": json.dumps({**cfg, "encoder_kwargs": {"checkpoint_path": str(evil)}})},
    }.items():  # fmt: skip
        save_file(tensors, str(tmp_path / f"{name}.safetensors"), metadata=meta)
        files.append((tmp_path / f"{name}.safetensors", "fail"))
    (tmp_path / "st_header_bomb.safetensors").write_bytes((2**62).to_bytes(8, "little") + b"{}")
    (tmp_path / "st_cut.safetensors").write_bytes(st.read_bytes()[: st.stat().st_size // 2])
    files += [(tmp_path / "st_header_bomb.safetensors", "fail"), (tmp_path / "st_cut.safetensors", "fail")]
    files.append((st, "ok"))
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", 3, "h", "w"])
    y = helper.make_tensor_value_info("alpha", TensorProto.FLOAT, ["b", 1, "h", "w"])
    graph = helper.make_graph([helper.make_node("ReduceMean", ["image"], ["alpha"], axes=[1])], "g", [x], [y])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(onnx_model, str(tmp_path / "graph.onnx"))
    files.append((tmp_path / "graph.onnx", "ok"))
    stride = onnx.ModelProto()
    stride.CopyFrom(onnx_model)
    stride.metadata_props.add(key="stride", value="4000000000")
    onnx.save(stride, str(tmp_path / "stride_bomb.onnx"))
    (tmp_path / "random.onnx").write_bytes(rng.bytes(400))
    (tmp_path / "cut.onnx").write_bytes((tmp_path / "graph.onnx").read_bytes()[:30])
    files += [(tmp_path / n, "fail") for n in ("stride_bomb.onnx", "random.onnx", "cut.onnx")]
    os.mkfifo(tmp_path / "fifo.pt")
    os.symlink("loop.pt", tmp_path / "loop.pt")
    files += [(tmp_path / "fifo.pt", "fail"), (tmp_path / "loop.pt", "fail")]
    return files, marker


def test_load_matter_and_matte_survive_hostile_model_files(tmp_path, checkpoint, capsys):
    rng = np.random.default_rng(SEED)
    models = tmp_path / "models"
    models.mkdir()
    files, marker = model_cases(models, checkpoint[0], rng)
    assert len(files) == N_MODEL_CASES and len({f for f, _ in files}) == len(files)
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(photo)
    before = snapshot(tmp_path)
    for k, (path, expect) in enumerate(files):
        if expect == "ok":
            assert load_matter(path, device="cpu", long_side=32, foreground="none").predict(
                np.zeros((5, 5, 3), np.uint8)
            ).shape == (5, 5)
        else:
            with pytest.raises(ValueError) as info:  # CheckpointError, ExportError, ModelConfigError
                load_matter(path, device="cpu", long_side=32)
            msg = str(info.value)
            assert str(path) in msg and "\n" not in msg, msg
        out = tmp_path / f"out{k}"
        code = main(
            [
                "matte",
                str(photo),
                "-o",
                str(out),
                "--checkpoint",
                str(path),
                "--quiet",
                "--no-foreground",
                "--long-side",
                "32",
            ]
        )
        err = capsys.readouterr().err
        check_run(code, err)
        if expect == "ok":
            assert code == 0 and (out / "photo.png").exists(), err
        else:
            assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1, err
            assert not out.exists()
        assert not marker.exists(), path  # nothing from any file was executed
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not os.path.relpath(k, tmp_path).startswith("out")} == before


def test_readme_states_the_case_count():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Reliability and safety") : text.index("## Installation notes")]
    assert f"feeds {N_CASES} malformed cases" in section and "tests/test_fuzz.py" in section
    assert (
        f"{N_IMAGE_CASES} image files" in section
        and f"{N_MODEL_CASES} hostile or broken model files" in section
    )
