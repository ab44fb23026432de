"""weights: one reader for shipped names, checkpoints and weights files; a file's config is data — it opens
nothing, runs nothing, sizes nothing beyond the schema; non-finite weights are refused."""

import json
import pathlib

import pytest
import torch

from lowlight_matting import weights
from lowlight_matting.checkpoint import CheckpointError, model_from_checkpoint, save_checkpoint
from lowlight_matting.export import save_weights
from lowlight_matting.models import build_model
from lowlight_matting.weights import SHIPPED, is_weights_file, load_model, read_model_file, shipped_path


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("test_convnext").eval()


class Marker:
    """Unpickling this object creates ``path``: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def test_every_source_gives_the_same_config_and_weights(model, tmp_path, monkeypatch):
    ckpt = save_checkpoint(tmp_path / "m.pt", {"model": model.state_dict(), "model_config": model.config})
    st = save_weights(model, tmp_path / "m.safetensors", dtype="float16")
    monkeypatch.setattr("lowlight_matting.weights.files.WEIGHTS_DIR", tmp_path)
    save_weights(model, tmp_path / SHIPPED["cvunet-base"])
    payload = {"model": model.state_dict(), "model_config": model.config}
    kinds = {}
    for source in (ckpt, st, "cvunet-base", payload):
        cfg, state, meta = read_model_file(source)
        assert cfg == model.config
        assert state.keys() == model.state_dict().keys()
        assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
        kinds[meta["kind"]] = meta
    assert set(kinds) == {"checkpoint", "weights", "shipped"} and kinds["weights"]["dtype"] == "float16"
    assert shipped_path("cvunet-base") == tmp_path / "cvunet_base.safetensors"
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        for source in (ckpt, "cvunet-base", payload):
            torch.testing.assert_close(load_model(source)(x), ref)
        torch.testing.assert_close(model_from_checkpoint(ckpt)(x), ref)  # the same loader
        assert (load_model(st)(x) - ref).abs().max() < 1e-2


def test_shipped_names_are_listed_and_missing_files_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr("lowlight_matting.weights.files.WEIGHTS_DIR", tmp_path)
    with pytest.raises(
        CheckpointError, match=r"shipped model 'cvunet-lowlight' is not installed \(.*cvunet_lowlight"
    ):
        load_model("cvunet-lowlight")
    with pytest.raises(
        CheckpointError, match="not a file, nor a shipped model name .shipped: cvunet-base, cvunet-lowlight"
    ):
        load_model("cvunet-base-v2")
    assert set(SHIPPED) == {"cvunet-base", "cvunet-lowlight"}


def test_a_hostile_model_config_opens_nothing_and_runs_nothing(model, tmp_path, monkeypatch):
    """Issue 14: ``encoder_kwargs: {"checkpoint_path": <file>}`` went to timm.create_model, and timm 1.0.9
    unpickles that file with weights_only=False. Here torch.load itself is made to unpickle everything (as
    an old timm would) and timm.create_model is watched: the config is refused before either is reached."""
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": Marker(marker)}, evil)
    loads, creates = [], []
    real_load, real_create = torch.load, __import__("timm").create_model

    def unsafe_load(f, *args, **kwargs):
        loads.append(str(f))
        kwargs["weights_only"] = str(f) != str(evil) and kwargs.get("weights_only", True)
        return real_load(f, *args, **kwargs)

    def watched_create(name, *args, **kwargs):
        creates.append(kwargs)
        return real_create(name, *args, **kwargs)

    monkeypatch.setattr(torch, "load", unsafe_load)
    monkeypatch.setattr("timm.create_model", watched_create)
    hostile = [
        {"encoder_kwargs": {"checkpoint_path": str(evil)}},
        {"encoder_kwargs": {"pretrained": True, "pretrained_cfg_overlay": {"file": str(evil)}}},
        {"encoder_kwargs": {"pretrained_cfg": {"file": str(evil)}}},
        {"pretrained": True},
        {"encoder": f"local-dir:{tmp_path}"},
        {"encoder": "hf-hub:timm/test_convnext"},
        {"file": str(evil)},
    ]
    for i, bad in enumerate(hostile):
        path = save_checkpoint(
            tmp_path / f"h{i}.pt", {"model": model.state_dict(), "model_config": {**model.config, **bad}}
        )
        with pytest.raises(CheckpointError, match=f"h{i}.pt: model_config: "):
            load_model(path)
    assert not marker.exists() and str(evil) not in loads and creates == []
    # a string `pretrained` (provenance in old checkpoints) is dropped, never opened
    path = save_checkpoint(
        tmp_path / "old.pt",
        {"model": model.state_dict(), "model_config": {**model.config, "pretrained": str(evil)}},
    )
    assert load_model(path).config["pretrained"] is None
    assert not marker.exists() and str(evil) not in loads
    assert all(
        not ({"checkpoint_path", "pretrained_cfg_overlay", "pretrained_cfg"} & set(c))
        and not c.get("pretrained")
        for c in creates
    )
    # the control: this torch.load really would have run the file's code
    monkeypatch.setattr(torch, "load", real_load)
    real_load(evil, weights_only=False)
    assert marker.exists()


def test_hostile_safetensors_headers_are_refused_before_any_allocation(model, tmp_path):
    def weights_file(name, config):
        p = save_weights(model, tmp_path / name)
        from safetensors.torch import load_file, save_file

        meta = {"format": weights.WEIGHTS_FORMAT, "model_config": config}
        save_file(load_file(str(p)), str(p), metadata=meta)
        return p

    cases = {
        "huge.safetensors": (
            json.dumps({**model.config, "decoder_channels": [200000] * 5}),
            "decoder_channels",
        ),
        "notjson.safetensors": ("{not json", "not valid JSON"),
        "list.safetensors": ("[1, 2]", "expected a dict"),
        "unknown.safetensors": (json.dumps({**model.config, "surprise": 1}), "unknown key 'surprise'"),
    }
    for name, (config, words) in cases.items():
        with pytest.raises(CheckpointError, match=f"{name}.*{words}"):
            load_model(weights_file(name, config))
    header_bomb = tmp_path / "bomb.safetensors"
    header_bomb.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match="bomb.safetensors: not a readable safetensors file"):
        load_model(header_bomb)


def test_non_finite_and_misfitting_weights_are_one_line_errors(model, tmp_path):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["decoder.blocks.0.conv1.0.weight"].fill_(float("inf"))
    path = save_checkpoint(tmp_path / "inf.pt", {"model": state, "model_config": model.config})
    with pytest.raises(
        CheckpointError, match="inf.pt: weight 'decoder.blocks.0.conv1.0.weight' holds non-finite"
    ):
        load_model(path)
    other = build_model("test_convnext", decoder_channels=[16, 16, 16, 8, 8])
    path = save_checkpoint(tmp_path / "mix.pt", {"model": other.state_dict(), "model_config": model.config})
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: weights do not fit") and "of another shape" in msg and "\n" not in msg
    for name, payload in [
        ("nomodel.pt", {"model_config": model.config}),
        ("notensors.pt", {"model": {"w": [1, 2]}, "model_config": model.config}),
        ("listcfg.pt", {"model": model.state_dict(), "model_config": ["test_convnext"]}),
    ]:
        path = save_checkpoint(tmp_path / name, payload)
        with pytest.raises(CheckpointError, match=name):
            load_model(path)


def test_files_that_are_not_files_are_named_not_opened(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.pt")
    os.symlink("loop.pt", tmp_path / "loop.pt")
    (tmp_path / "dir.safetensors").mkdir()
    for name, words in [
        ("pipe.pt", "not a regular file"),
        ("loop.pt", "symlink loop"),
        ("dir.safetensors", "is a folder"),
        ("missing.pt", "file not found"),
    ]:
        with pytest.raises(CheckpointError, match=f"{name}.*{words}"):
            load_model(tmp_path / name)
    assert not is_weights_file(tmp_path / "pipe.pt")


# ------------------------------------------------------------------------------------ weight interpolation
def test_interpolate_weights_is_the_straight_line_between_base_and_fine_tune(model):
    """t = 0 gives the base's shared tensors, t = 1 the fine-tune's, t = 0.3 the weighted mean; the front end
    (only in the fine-tune) and integer buffers stay the fine-tune's; the inputs are not modified."""
    from lowlight_matting.weights import interpolate_weights

    torch.manual_seed(1)
    ft = build_model("test_convnext", llie="zero_dce_pp").eval()
    for p in ft.parameters():  # a fine-tune that moved every weight (the LLIE's too)
        p.data.add_(0.1 * torch.randn_like(p))
    sb, sf = model.state_dict(), ft.state_dict()
    before = {k: v.clone() for k, v in sf.items()}
    shared = [k for k, v in sb.items() if v.is_floating_point()]
    assert any(k.startswith("llie.") for k in sf) and shared
    for t in (0.0, 0.3, 1.0):
        st = interpolate_weights(model, ft, t).state_dict()
        for k in shared:
            torch.testing.assert_close(st[k], (1 - t) * sb[k] + t * sf[k], rtol=0, atol=1e-6)
        assert all(
            torch.equal(st[k], sf[k]) for k in sf if k.startswith("llie.") or not sf[k].is_floating_point()
        )
    assert all(torch.equal(before[k], v) for k, v in ft.state_dict().items())
    base_net = interpolate_weights(model, ft, 0.0)
    base_net.llie = None  # t = 0 without the front end is the base itself
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(base_net(x), model(x))


def test_interpolate_weights_refuses_bad_t_and_unrelated_models(model):
    from lowlight_matting.weights import interpolate_weights

    with pytest.raises(ValueError, match=r"t must be in \[0, 1\], got 1.5"):
        interpolate_weights(model, model, 1.5)
    with pytest.raises(ValueError, match="share no floating-point tensor"):
        interpolate_weights(torch.nn.Linear(2, 2), model, 0.5)
