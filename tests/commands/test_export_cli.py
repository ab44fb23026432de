"""``lowlight-matting export``: writes ONNX and weights from a checkpoint or a shipped name, checks them,
never overwrites, never writes over a folder; bad options and files are one-line errors."""

import numpy as np
import pytest
import torch

from lowlight_matting.checkpoint import save_checkpoint
from lowlight_matting.cli import main
from lowlight_matting.deploy import load_matter
from lowlight_matting.export import save_weights
from lowlight_matting.models import build_model
from lowlight_matting.weights import SHIPPED
from lowlight_matting.weights import load_model as load_weights


def test_export_cli_writes_checked_onnx_and_weights(tmp_path, capsys):
    torch.manual_seed(0)
    m = build_model("test_convnext").eval()
    ckpt = save_checkpoint(tmp_path / "m.pt", {"model": m.state_dict(), "model_config": m.config})
    onnx_path, weights = tmp_path / "m.onnx", tmp_path / "m.safetensors"
    argv = ["export", str(ckpt), "--onnx", str(onnx_path), "--weights", str(weights), "--legacy", "--check"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "check (2, 3, 77, 45)" in err
    image = np.random.default_rng(0).integers(0, 256, (70, 50, 3), dtype=np.uint8)
    ref = load_matter(ckpt, long_side=64).predict(image)
    for path in (onnx_path, weights):
        np.testing.assert_allclose(load_matter(path, long_side=64).predict(image), ref, atol=1e-4)
    before = onnx_path.read_bytes()
    assert main(argv) == 2
    assert "exists" in capsys.readouterr().err and onnx_path.read_bytes() == before
    assert main(argv + ["--overwrite"]) == 0


def test_export_cli_usage_errors(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.pt"), "--weights", str(tmp_path / "w.safetensors")]) == 2
    assert "missing.pt" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.pt")]) == 2
    assert "nothing to do" in capsys.readouterr().err


def test_export_cli_refuses_a_folder_as_output_even_with_overwrite(tmp_path, capsys):
    m = build_model("test_convnext").eval()
    ckpt = save_checkpoint(tmp_path / "m.pt", {"model": m.state_dict(), "model_config": m.config})
    folder = tmp_path / "existing"
    folder.mkdir()
    for flag in ("--onnx", "--weights"):
        assert main(["export", str(ckpt), flag, str(folder), "--overwrite", "--legacy"]) == 2
        err = capsys.readouterr().err
        assert err.strip() == f"export: {flag} {folder}: is a folder; give a file name"
    assert folder.is_dir() and not any(folder.iterdir())


def test_export_cli_tolerance_must_be_finite(tmp_path, capsys):
    """``--tolerance nan`` used to switch the ONNX check off (every comparison with nan is false)."""
    for bad in ("nan", "inf", "-1", "x"):
        with pytest.raises(SystemExit) as info:
            main(["export", "m.pt", "--onnx", str(tmp_path / "m.onnx"), "--check", "--tolerance", bad])
        assert info.value.code == 2 and "--tolerance" in capsys.readouterr().err


def test_export_help_tells_the_smallest_size(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "stride / 2 + 1" in out and "17 px" in out and "so any size works" not in out


def test_export_cli_loads_a_shipped_model_by_name_and_refuses_bad_files(tmp_path, capsys, monkeypatch):
    torch.manual_seed(1)
    m = build_model("test_convnext").eval()
    monkeypatch.setattr("lowlight_matting.weights.files.WEIGHTS_DIR", tmp_path)
    save_weights(m, tmp_path / SHIPPED["cvunet-base"])
    out = tmp_path / "half.safetensors"
    assert main(["export", "cvunet-base", "--weights", str(out), "--dtype", "float16"]) == 0
    back = load_weights(out)
    assert back.config == m.config
    for (_, a), (_, b) in zip(back.state_dict().items(), m.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-3)
    capsys.readouterr()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 truncated zip")
    assert main(["export", str(junk), "--weights", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert str(junk) in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
