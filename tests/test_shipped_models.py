"""The shipped models (``cvunet-base``, ``cvunet-lowlight``): each loads by name from the package and
reproduces the test metrics its record states; each record's README and model card are rendered from its JSON."""

import json
from pathlib import Path

import pytest

from lowlight_matting.weights import SHIPPED

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
WEIGHTS = REPO / "lowlight_matting" / "weights"


def _record(name: str) -> dict:
    return json.loads((RESULTS / name / "record.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_file_and_record_exist_within_size(name):
    """Both shipped files are in the package (each <= 12 MB) with a record and a model card."""
    f = WEIGHTS / SHIPPED[name]
    assert f.is_file(), f"{f} is not shipped"
    assert f.stat().st_size <= 12 * 2**20
    rec = _record(name)
    assert rec["file"] == SHIPPED[name] and rec["name"] == name
    assert f.with_suffix(".md").is_file()


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_record_and_card_are_rendered_from_the_json(name):
    """README.md of the record and the card beside the weights are exactly what record.json renders."""
    from lowlight_matting.weights.card import render_card, render_record

    rec = _record(name)
    assert (RESULTS / name / "README.md").read_text(encoding="utf-8") == render_record(rec)
    assert (WEIGHTS / SHIPPED[name]).with_suffix(".md").read_text(encoding="utf-8") == render_card(rec)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_reproduces_its_recorded_metrics(name):
    """Loaded by name, the shipped model scores the recorded means on the first 32 test composites (1e-4)."""
    import torch

    from lowlight_matting.experiment import evaluate_on, make_test_sets
    from lowlight_matting.weights import load_model

    rec = _record(name)
    model = load_model(name)
    assert model.config == rec["model_config"]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ev = evaluate_on(model, make_test_sets(rec["subset"]["n"], rec["test"]["size"]), "cpu")
    finally:
        torch.set_num_threads(threads)
    for light in ("normal", "lowlight"):
        for region in ("whole", "unknown"):
            got = ev[light][region]["mean"]
            want = rec["subset"]["metrics"][light][region]
            for k, v in want.items():
                assert got[k] == pytest.approx(v, rel=1e-4, abs=1e-7), (light, region, k)


def test_base_meets_the_issue_target_and_low_light_hurts_it():
    """The shipped base: normal-light MSE <= 0.015 on the 200 test composites; worse in simulated low light."""
    m = _record("cvunet-base")["test"]["metrics"]
    assert m["normal"]["whole"]["mse"] <= 0.015
    assert all(m["lowlight"]["whole"][k] > m["normal"]["whole"][k] for k in ("mse", "sad", "grad", "conn"))


def test_lowlight_model_starts_from_the_base():
    """cvunet-lowlight is the base's architecture plus the Zero-DCE++ front end, trained from cvunet-base."""
    base, low = _record("cvunet-base"), _record("cvunet-lowlight")
    cfg = dict(low["model_config"])
    assert cfg.pop("llie") == "zero_dce_pp"
    assert {k: v for k, v in cfg.items() if k not in ("llie_scale_factor",)} == {
        k: v for k, v in base["model_config"].items() if k not in ("llie", "llie_scale_factor")
    }
    from lowlight_matting.train import load_config

    assert load_config(RESULTS / "cvunet-lowlight" / "config.yaml").model.init_checkpoint == "cvunet-base"
