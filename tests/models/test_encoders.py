"""Encoders: timm feature pyramids as (N, C, H, W), named stages, local-only pretrained weights."""

import math
import socket

import pytest
import timm
import torch
from safetensors.torch import save_file

from lowlight_matting.models import ENCODER_PRESETS, Encoder, PretrainedWeightsError, is_channels_last_format

BIG = ["mobilenetv2_100", "convnext_tiny", "swin_tiny_patch4_window7_224"]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket or fetch weights fails loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    import timm.models._builder as builder

    for name in ("load_state_dict_from_url", "download_cached_file", "load_state_dict_from_hf"):
        if hasattr(builder, name):
            monkeypatch.setattr(builder, name, refuse)


@pytest.fixture(scope="module")
def swin():
    return Encoder("swin_tiny_patch4_window7_224").eval()  # eval: Swin has stochastic depth


def test_presets_cover_the_course_encoders_and_the_test_model_exists_offline():
    assert set(BIG + ["test_convnext"]) <= set(ENCODER_PRESETS)
    assert "test_convnext" in timm.list_models("test_*")


@pytest.mark.parametrize("name", ["test_convnext", "mobilenetv2_100"])
def test_feature_pyramid_matches_feature_info(name):
    enc = Encoder(name).eval()
    assert enc.channels == enc.body.feature_info.channels()
    assert enc.reductions == enc.body.feature_info.reduction()
    with torch.no_grad():
        feats = enc(torch.rand(1, 3, 64, 96))
    assert len(feats) == len(enc.channels)
    for f, c, r in zip(feats, enc.channels, enc.reductions, strict=True):
        assert tuple(f.shape) == (1, c, math.ceil(64 / r), math.ceil(96 / r))


def test_swin_channels_last_features_reach_us_as_nchw(swin):
    # timm says so itself: the format is read, not guessed from the shape
    assert is_channels_last_format(swin.body.output_fmt) and swin.channels_last_output
    x = torch.rand(1, 3, 64, 160)  # not 224: strict_img_size=False lets Swin take it
    with torch.no_grad():
        raw = swin.body(x)
        feats = swin(x)
    assert swin.reductions == [4, 8, 16, 32]  # all four maps: the article's features[1:] dropped stride 4
    for r_raw, f, c, r in zip(raw, feats, swin.channels, swin.reductions, strict=True):
        assert r_raw.shape[-1] == c  # timm's raw output is (N, H, W, C)
        assert tuple(f.shape) == (1, c, 64 // r, 160 // r)
        assert torch.equal(f, r_raw.permute(0, 3, 1, 2))


def test_is_channels_last_format_reads_timm_formats():
    from timm.layers import Format

    assert is_channels_last_format(Format.NHWC) and is_channels_last_format("NHWC")
    assert not is_channels_last_format(Format.NCHW) and not is_channels_last_format(None)


@pytest.mark.parametrize("name", ["test_convnext", "mobilenetv2_100"])
def test_stages_partition_the_encoder_and_freeze_the_first_k(name):
    enc = Encoder(name)
    assert isinstance(enc.stages, torch.nn.ModuleList) and len(enc.stages) == len(enc.channels)
    stage_params = [{id(p) for p in s.parameters()} for s in enc.stages]
    all_params = {id(p) for p in enc.parameters()}
    assert set().union(*stage_params) == all_params  # every parameter belongs to a stage ...
    assert sum(len(s) for s in stage_params) == len(all_params)  # ... to exactly one
    assert not any(k.startswith("stages.") for k in enc.state_dict())  # no duplicate keys in checkpoints

    for s in enc.stages[:2]:
        s.requires_grad_(False)
    feats = enc(torch.rand(1, 3, 64, 64))
    sum(f.mean() for f in feats[1:]).backward()
    assert all(p.grad is None for s in enc.stages[:2] for p in s.parameters())
    later = [p for s in enc.stages[2:] for p in s.parameters()]
    assert later and any(p.grad is not None and p.grad.abs().sum() > 0 for p in later)


def test_swin_stages_partition_the_encoder(swin):
    assert len(swin.stages) == 4
    ids = [{id(p) for p in s.parameters()} for s in swin.stages]
    assert set().union(*ids) == {id(p) for p in swin.parameters()}


def test_normalisation_comes_from_the_pretrained_cfg():
    enc = Encoder("test_convnext")
    assert enc.mean == tuple(float(v) for v in enc.body.pretrained_cfg["mean"])
    assert enc.std == tuple(float(v) for v in enc.body.pretrained_cfg["std"])


def test_local_pretrained_weights_load_from_safetensors_and_pth(tmp_path, no_network):
    full = timm.create_model("test_convnext", pretrained=False)
    st = tmp_path / "w.safetensors"
    save_file(full.state_dict(), str(st))
    pth = tmp_path / "w.pth"
    torch.save({"state_dict": full.state_dict()}, pth)
    for path in (st, pth):
        enc = Encoder("test_convnext", pretrained=path)
        assert torch.equal(enc.body.stem_0.weight, full.stem[0].weight)
        assert torch.equal(
            enc.body.stages_3.blocks[0].mlp.fc1.weight, full.stages[3].blocks[0].mlp.fc1.weight
        )
    # a state dict of the feature extractor itself also loads
    feat = tmp_path / "features.pth"
    torch.save(Encoder("test_convnext", pretrained=st).body.state_dict(), feat)
    assert torch.equal(Encoder("test_convnext", pretrained=feat).body.stem_0.weight, full.stem[0].weight)


def test_missing_pretrained_file_error_names_it(tmp_path, no_network):
    missing = tmp_path / "no_such_weights.safetensors"
    with pytest.raises(FileNotFoundError, match="no_such_weights.safetensors"):
        Encoder("test_convnext", pretrained=missing)


def test_mismatched_or_corrupt_pretrained_file_error_names_it(tmp_path, no_network):
    other = tmp_path / "other_model.safetensors"
    save_file(timm.create_model("test_convnext2", pretrained=False).state_dict(), str(other))
    with pytest.raises(PretrainedWeightsError, match="other_model.safetensors"):
        Encoder("test_convnext", pretrained=other)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(PretrainedWeightsError, match="junk.pth"):
        Encoder("test_convnext", pretrained=junk)


def test_building_every_preset_never_touches_the_network(no_network):
    for name in ["test_convnext", *BIG]:
        assert Encoder(name).channels


def test_unknown_encoder_is_a_clear_error():
    with pytest.raises(ValueError, match="not_a_timm_model"):
        Encoder("not_a_timm_model")


def test_timm_arguments_that_open_files_are_refused(tmp_path, no_network):
    target = tmp_path / "target.pth"
    target.write_bytes(b"never opened")
    for key, value in [
        ("checkpoint_path", str(target)),
        ("pretrained_cfg_overlay", {"file": str(target)}),
        ("pretrained_cfg", {"file": str(target)}),
    ]:
        with pytest.raises(ValueError, match=f"'{key}' is not accepted"):
            Encoder("test_convnext", **{key: value})


def test_truncated_or_non_regular_pretrained_files_are_one_line_errors(tmp_path, no_network):
    """A truncated encoder file (``--set model.pretrained=...``) used to end in a multi-line traceback text."""
    import os

    good = tmp_path / "w.pth"
    torch.save(timm.create_model("test_convnext").state_dict(), good)
    for name, data in (
        ("cut.pth", good.read_bytes()[:3000]),
        ("cut.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{"),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(PretrainedWeightsError) as info:
            Encoder("test_convnext", pretrained=path)
        msg = str(info.value)
        assert msg.startswith(str(path)) and "\n" not in msg and isinstance(info.value, ValueError)
    fifo = tmp_path / "pipe.pth"
    os.mkfifo(fifo)  # opening it would block forever
    with pytest.raises(PretrainedWeightsError, match="pipe.pth: pretrained weights: not a regular file"):
        Encoder("test_convnext", pretrained=fifo)
