"""CV-UNet: any input size to an alpha of the same size in [0, 1], parts by name, config round trip, bf16."""

import json

import pytest
import torch

from lowlight_matting.checkpoint import model_from_checkpoint, save_checkpoint
from lowlight_matting.export import save_weights
from lowlight_matting.models import CVUNet, build_model, describe_model, pad_to_multiple
from lowlight_matting.models.config import ModelConfigError, validate_model_config
from lowlight_matting.weights import SHIPPED

PRESETS = ["test_convnext", "mobilenetv2_100", "convnext_tiny", "swin_tiny_patch4_window7_224"]
_CACHE: dict = {}


def model_for(name: str) -> CVUNet:
    """One random-init model per preset for the whole file (building the big ones costs ~1 s each)."""
    if name not in _CACHE:
        torch.manual_seed(0)
        _CACHE[name] = build_model(name)
    return _CACHE[name]


def _assert_alpha(alpha: torch.Tensor, shape: tuple) -> None:
    assert tuple(alpha.shape) == shape
    assert alpha.dtype == torch.float32
    assert torch.isfinite(alpha).all() and alpha.min() >= 0 and alpha.max() <= 1


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_maps_odd_sizes_to_alpha_of_the_same_size_forward_and_backward(name):
    model = model_for(name).train()
    model.zero_grad(set_to_none=True)
    x = torch.rand(1, 3, 97, 129)
    alpha = model(x)
    _assert_alpha(alpha, (1, 1, 97, 129))
    (alpha - 0.5).pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    first_stage = [p.grad for p in model.encoder.stages[0].parameters()]
    assert any(g.abs().sum() > 0 for g in first_stage)  # the gradient reaches the stem through the decoder
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        _assert_alpha(model.eval()(torch.rand(1, 3, 250, 333)), (1, 1, 250, 333))


def test_any_size_even_smaller_than_the_stride():
    model = model_for("test_convnext").eval()
    with torch.no_grad():
        for h, w in [(17, 23), (1, 5), (64, 64), (33, 200)]:
            _assert_alpha(model(torch.rand(2, 3, h, w)), (2, 1, h, w))


def test_pad_to_multiple_reflects_and_crops_back():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).view(2, 3, 5, 7)
    padded, (h, w) = pad_to_multiple(x, 4)
    assert padded.shape[-2:] == (8, 8) and (h, w) == (5, 7)
    assert torch.equal(padded[..., :5, :7], x)
    assert torch.equal(padded[..., 5, :7], x[..., 3, :])  # reflection, not zeros
    tiny, _ = pad_to_multiple(x[..., :1, :2], 32)  # larger pad than image: replicate
    assert tiny.shape[-2:] == (32, 32) and torch.equal(tiny[..., 31, 0], x[..., 0, 0])


def test_samples_in_a_batch_do_not_interact():
    model = model_for("test_convnext").eval()
    x = torch.rand(3, 3, 40, 56)
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("llie", ["zero_dce_pp", "illumination"])
def test_llie_front_end_and_aux_outputs(llie):
    model = build_model("test_convnext", llie=llie)
    out = model(torch.rand(1, 3, 45, 61), return_aux=True)
    assert set(out) == {"alpha", "enhanced", "curve"}
    _assert_alpha(out["alpha"], (1, 1, 45, 61))
    assert out["enhanced"].shape == (1, 3, 45, 61) and out["curve"].shape == (1, 3, 45, 61)
    out["alpha"].mean().backward()
    llie_grads = [p.grad for p in model.llie.parameters()]
    assert all(
        g is not None and torch.isfinite(g).all() for g in llie_grads
    )  # the matting loss reaches the LLIE


def test_without_llie_aux_outputs_are_none():
    out = model_for("test_convnext")(torch.rand(1, 3, 32, 32), return_aux=True)
    assert out["enhanced"] is None and out["curve"] is None and model_for("test_convnext").llie is None


def test_the_encoder_sees_the_enhanced_image():
    model = build_model("test_convnext", llie="zero_dce_pp").eval()
    seen = []
    handle = model.encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    x = torch.rand(1, 3, 32, 32) * 0.2
    with torch.no_grad():
        enhanced = model(x, return_aux=True)["enhanced"]
    handle.remove()
    expected = (enhanced - model.mean) / model.std
    torch.testing.assert_close(seen[0], expected)


@pytest.mark.parametrize("refine_input", ["input", "both"])
def test_refine_input_options(refine_input):
    model = build_model("test_convnext", llie="zero_dce_pp", refine_input=refine_input)
    _assert_alpha(model(torch.rand(1, 3, 30, 31)), (1, 1, 30, 31))
    with pytest.raises(ValueError, match="refine_input"):
        build_model("test_convnext", refine_input="sideways")


def test_parts_are_reachable_by_name_and_freezable():
    model = build_model("test_convnext", llie="zero_dce_pp")
    for part in ("llie", "encoder", "decoder", "head"):
        assert isinstance(getattr(model, part), torch.nn.Module)
    assert model.encoder.channels and model.encoder.reductions and len(model.encoder.stages) == 4
    model.encoder.requires_grad_(False)
    model.llie.requires_grad_(False)
    model(torch.rand(1, 3, 32, 32)).mean().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.head.parameters())


def test_input_checks():
    model = model_for("test_convnext")
    with pytest.raises(ValueError, match="x must be"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="llie"):
        build_model("test_convnext", llie="retinex")


def test_config_is_json_and_rebuilds_the_same_model(tmp_path):
    model = build_model("test_convnext", llie="zero_dce_pp", decoder_channels=[16, 16, 16, 8, 8]).eval()
    config = json.loads(json.dumps(model.config))
    rebuilt = build_model(**config).eval()
    assert rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))

    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, {"model": model.state_dict(), "model_config": model.config})
    restored = model_from_checkpoint(ckpt)
    with torch.no_grad():
        torch.testing.assert_close(restored(x), model(x))


def test_checkpoint_rebuild_does_not_need_the_pretrained_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    weights = tmp_path / "enc.safetensors"
    save_file(timm.create_model("test_convnext").state_dict(), str(weights))
    model = build_model("test_convnext", pretrained=weights).eval()
    assert (
        model.pretrained_source == str(weights) and model.config["pretrained"] is None
    )  # files hold weights
    payload = {"model": model.state_dict(), "model_config": model.config}
    weights.unlink()
    restored = model_from_checkpoint(payload)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(restored(x), model(x))


def test_bf16_autocast_forward_and_backward_on_cpu():
    model = build_model("test_convnext", llie="zero_dce_pp")
    x = torch.rand(1, 3, 33, 47)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, return_aux=True)
    _assert_alpha(out["alpha"], (1, 1, 33, 47))
    out["alpha"].mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_channels_last_model_and_input_give_the_same_alpha():
    model = model_for("test_convnext").eval()
    x = torch.rand(1, 3, 48, 80)
    with torch.no_grad():
        ref = model(x)
        model.to(memory_format=torch.channels_last)
        try:
            out = model(x.contiguous(memory_format=torch.channels_last))
        finally:
            model.to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_describe_model_reports_parameters_flops_and_shapes():
    """Parameter count equals the model's; feature shapes follow the strides; FLOPs scale with the area."""
    info = describe_model("test_convnext", size=64, latency_repeat=1)
    model = build_model("test_convnext")
    assert info["params"]["total"] == sum(p.numel() for p in model.parameters())
    assert info["feature_shapes"] == [
        (c, 64 // r, 64 // r) for c, r in zip(model.encoder.channels, model.encoder.reductions, strict=True)
    ]
    # a fully convolutional network: four times the pixels, four times the FLOPs (to within the stride padding)
    twice = describe_model("test_convnext", size=128, latency_repeat=1)
    assert twice["gflops"] == pytest.approx(4 * info["gflops"], rel=0.02)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"encoder": "not_a_model"}, "encoder: unknown timm model 'not_a_model'"),
        ({"encoder": "hf-hub:timm/resnet18"}, "encoder: 'hf-hub:timm/resnet18' is not a timm model name"),
        ({"encoder_kwargs": {"checkpoint_path": "/etc/passwd"}}, "key 'checkpoint_path' is not allowed"),
        (
            {"encoder_kwargs": {"pretrained_cfg_overlay": {"file": "x"}}},
            "'pretrained_cfg_overlay' is not allowed",
        ),
        ({"encoder_kwargs": {"drop_path_rate": float("nan")}}, "drop_path_rate: expected a finite number"),
        ({"decoder_channels": [200000] * 5}, r"decoder_channels\[0\]: expected an integer in \[1, 4096\]"),
        ({"decoder_channels": [4096] * 5}, "would need 1367 M decoder weights"),
        ({"decoder_channels": [True] * 5}, "decoder_channels"),
        ({"refine_channels": 10**9}, "refine_channels"),
        ({"llie": "zero_dce_pp", "llie_scale_factor": 1e9}, "llie_scale_factor"),
        ({"llie": "retinex"}, "llie"),
    ],
)
def test_build_model_checks_every_argument_before_allocating(kwargs, words):
    with pytest.raises(ModelConfigError, match=words) as info:
        build_model(**{"encoder": "test_convnext", **kwargs})
    assert isinstance(info.value, ValueError) and str(info.value).startswith("build_model: ")


def test_a_files_config_may_not_choose_files_or_unknown_keys():
    cfg = build_model("test_convnext").config
    assert validate_model_config(cfg, "m.pt") == cfg
    # old checkpoints recorded the encoder file they were initialised from: provenance, never opened
    assert validate_model_config({**cfg, "pretrained": "/some/encoder.pth"}, "m.pt")["pretrained"] is None
    for bad, words in [
        ({"pretrained": True}, "pretrained: must be None in a file"),
        ({"extra": 1}, "unknown key 'extra'"),
        ({"encoder": None}, "encoder: None is not a timm model name"),
    ]:
        with pytest.raises(ModelConfigError, match=f"m.pt: model_config: {words}"):
            validate_model_config({**cfg, **bad}, "m.pt")
    with pytest.raises(ModelConfigError, match="m.pt: model_config: expected a dict"):
        validate_model_config(["encoder"], "m.pt")


def test_stride_includes_an_integer_llie_scale_factor():
    assert build_model("test_convnext").stride == 32
    assert build_model("test_convnext", llie="zero_dce_pp", llie_scale_factor=4).stride == 32
    assert build_model("test_convnext", llie="zero_dce_pp", llie_scale_factor=3).stride == 96


@pytest.fixture
def shipped_base(tmp_path, monkeypatch):
    torch.manual_seed(3)
    base = build_model("test_convnext").eval()
    with torch.no_grad():
        base.head.refine[-1].weight.normal_(0, 0.1)
    monkeypatch.setattr("lowlight_matting.weights.files.WEIGHTS_DIR", tmp_path)
    save_weights(base, tmp_path / SHIPPED["cvunet-base"])
    return base


def test_pretrained_shipped_name_loads_every_weight_but_a_fresh_llie(shipped_base):
    torch.manual_seed(4)
    plain = build_model("test_convnext", pretrained="cvunet-base").eval()
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), shipped_base(x))
    assert plain.pretrained_source == "cvunet-base" and plain.config["pretrained"] is None
    torch.manual_seed(4)
    fresh = build_model("test_convnext", llie="zero_dce_pp")
    torch.manual_seed(4)
    with_llie = build_model("test_convnext", llie="zero_dce_pp", pretrained="cvunet-base")
    for k, v in with_llie.state_dict().items():
        ref = fresh.state_dict()[k] if k.startswith("llie.") else shipped_base.state_dict()[k]
        torch.testing.assert_close(v, ref, msg=k)


def test_pretrained_shipped_name_that_does_not_fit_says_which_setting_differs(shipped_base):
    with pytest.raises(ModelConfigError) as info:
        build_model("test_convnext", decoder_channels=[16, 16, 16, 8, 8], pretrained="cvunet-base")
    msg = str(info.value)
    assert "pretrained='cvunet-base' does not fit" in msg and "decoder_channels=[32, 24, 16, 16, 8]" in msg
    assert "\n" not in msg and "refine_channels" not in msg
    with pytest.raises(ValueError, match="cvunet-lowlight.* is not installed"):
        build_model("test_convnext", pretrained="cvunet-lowlight")
    with pytest.raises(ValueError, match="shipped: cvunet-base, cvunet-lowlight"):
        build_model("test_convnext", pretrained="cvunet-typo")
