"""``lowlight-matting export``: writes ONNX and weights from a checkpoint, checks them, never overwrites."""

import numpy as np
import torch

from lowlight_matting.checkpoint import save_checkpoint
from lowlight_matting.cli import main
from lowlight_matting.deploy import load_matter
from lowlight_matting.models import build_model


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
