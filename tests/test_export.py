"""export: safetensors weights round-trip safely; ONNX graphs have dynamic batch/height/width and agree with
PyTorch (run with onnxruntime) at several sizes, aligned to the stride or not."""

import json

import numpy as np
import pytest
import torch

from lowlight_matting.deploy import Matter, load_matter
from lowlight_matting.export import (
    ExportError,
    PaddedModel,
    compare_onnx,
    export_onnx,
    load_weights,
    onnx_metadata,
    read_weights_metadata,
    save_weights,
)
from lowlight_matting.models import build_model

SIZES = ((1, 64, 96), (2, 77, 45), (1, 33, 200))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model("test_convnext").eval()
    with torch.no_grad():  # make the refinement branch matter (it starts at zero)
        m.head.refine[-1].weight.normal_(0, 0.1)
    return m


def test_weights_round_trip_with_config_in_the_header(model, tmp_path):
    path = save_weights(model, tmp_path / "m.safetensors", metadata={"run": "demo"})
    meta = read_weights_metadata(path)
    assert json.loads(meta["model_config"]) == model.config and meta["run"] == "demo"
    back = load_weights(path)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x))
    with pytest.raises(FileExistsError):
        save_weights(model, path)


def test_half_precision_weights_are_smaller_and_close(model, tmp_path):
    full = save_weights(model, tmp_path / "f32.safetensors")
    half = save_weights(model, tmp_path / "f16.safetensors", dtype="float16")
    assert half.stat().st_size < 0.6 * full.stat().st_size
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert (load_weights(half)(x) - model(x)).abs().max() < 1e-2


def test_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ExportError, match="other.safetensors"):
        load_weights(tmp_path / "other.safetensors")


def test_padded_model_equals_the_model_on_aligned_sizes(model):
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(PaddedModel(model, 32)(x), model(x))
        assert PaddedModel(model, 32)(torch.rand(1, 3, 77, 45)).shape == (1, 1, 77, 45)


def check_graph(model, path, tmp_path):
    meta = onnx_metadata(path)
    assert meta["stride"] == "32" and json.loads(meta["model_config"]) == model.config
    rows = compare_onnx(model, path, sizes=SIZES)
    assert [r["input"] for r in rows] == [(b, 3, h, w) for b, h, w in SIZES]
    assert max(r["max_abs_diff"] for r in rows) < 1e-4, rows
    # and through Matter: an ONNX-backed Matter gives the PyTorch Matter's alpha
    image = np.random.default_rng(0).integers(0, 256, (150, 101, 3), dtype=np.uint8)
    a_onnx = load_matter(path, long_side=64).predict(image)
    a_torch = Matter(model, long_side=64).predict(image)
    np.testing.assert_allclose(a_onnx, a_torch, atol=1e-4)


def test_legacy_onnx_export_has_dynamic_shapes(model, tmp_path):
    path = export_onnx(model, tmp_path / "m.onnx", legacy=True)
    assert onnx_metadata(path)["exporter"] == "legacy"
    check_graph(model, path, tmp_path)
    with pytest.raises(FileExistsError):
        export_onnx(model, path, legacy=True)


@pytest.mark.slow
def test_dynamo_onnx_export_has_dynamic_shapes(model, tmp_path):
    """The default exporter (torch.export): slow (tens of seconds on 2 cores) but the supported path."""
    path = export_onnx(model, tmp_path / "m.onnx", fallback=False)
    assert onnx_metadata(path)["exporter"] == "dynamo"
    check_graph(model, path, tmp_path)
