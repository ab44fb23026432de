"""Pre-training an LLIE alone (lowlight_matting.train.pretrain_llie): the one training loop with the Zero-DCE
objective, on a bare module or a CV-UNet's front end."""

import numpy as np
import pytest
import torch

from lowlight_matting.models import ZeroDCEPP, build_model
from lowlight_matting.train import pretrain_llie


def dark(n=2, h=32, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g) * 0.15


def test_pretraining_moves_the_exposure_towards_the_target():
    """Ten steps lower the exposure term and brighten the dark images (towards E = 0.6)."""
    torch.manual_seed(0)
    net = ZeroDCEPP()
    images = dark(n=8, h=32, w=32, seed=3)
    with torch.no_grad():
        before = float(net(images)[0].mean())
    history = pretrain_llie(net, images, steps=10, lr=3e-3, batch_size=4, seed=0)
    assert len(history) == 10 and not net.training
    assert history[-1]["exposure"] < history[0]["exposure"]
    assert sum(r["bad_steps"] for r in history) == 0
    with torch.no_grad():
        after = float(net(images)[0].mean())
    assert after > before + 0.05 and abs(after - 0.6) < abs(before - 0.6)


def test_pretraining_a_cvunet_trains_only_its_llie():
    """On a CV-UNet only ``llie.*`` changes; a model without an LLIE is refused."""
    model = build_model("test_convnext", llie="zero_dce_pp")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = pretrain_llie(model, dark(n=4, h=32, w=32, seed=1), steps=3, lr=1e-3, batch_size=2)
    assert len(history) == 3
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("llie.") for k in changed)
    with pytest.raises(ValueError, match="LLIE"):
        pretrain_llie(build_model("test_convnext"), dark(), steps=1)


def test_pretraining_accepts_uint8_arrays_and_rejects_mixed_sizes():
    """uint8 (H, W, 3) arrays train step for step like the same images as float tensors / 255."""
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 40, (24, 24, 3), dtype=np.uint8) for _ in range(3)]
    torch.manual_seed(0)
    history = pretrain_llie(ZeroDCEPP(), arrays, steps=2, batch_size=2)
    torch.manual_seed(0)
    as_float = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
    reference = pretrain_llie(ZeroDCEPP(), as_float, steps=2, batch_size=2)
    assert [pytest.approx(r, rel=1e-5) for r in reference] == history
    with pytest.raises(ValueError, match="one size"):
        pretrain_llie(ZeroDCEPP(), arrays + [np.zeros((16, 16, 3), np.uint8)], steps=1)
