"""The main job (lowlight_matting.experiment + the ``demo`` command): the FAST pipeline end to end on the CPU
through the one training engine, the recipe's ingredients, the test sets, and the output-folder policy."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from lowlight_matting import experiment as ex
from lowlight_matting.commands import demo
from lowlight_matting.experiment.run import TRADEOFF_T
from lowlight_matting.train.presets import RECIPE_DISTILL

METRIC_KEYS = {"sad", "mse", "grad", "conn"}


def _cpu_main(args):
    from lowlight_matting.cli import main

    threads = torch.get_num_threads()
    try:
        return main([*args, "--device", "cpu", "--threads", "1", "--quiet"])
    finally:
        torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    """One FAST demo through the command line (the path ``make demo`` takes), shared by the tests below."""
    out = tmp_path_factory.mktemp("demo") / "run"
    assert _cpu_main(["demo", "--preset", "fast", "--out", str(out)]) == 0
    return out


def test_fast_demo_writes_every_output_and_its_run_folders(fast_run):
    """The outputs README promises exist, the figures are images, and each training left a rerunnable config."""
    import cv2

    for name in ("comparison.png", "loss_curves.png", "contact_sheet.png"):
        img = cv2.imread(str(fast_run / name))
        assert img is not None and min(img.shape[:2]) >= 96, name
    for name in ("report.md", "results.json", "baseline.pt", "finetuned.pt", demo.MARKER):
        assert (fast_run / name).is_file(), name
    assert not list(fast_run.parent.glob(".run.partial-*")), "staging folder left behind"
    manifest = json.loads((fast_run / demo.MARKER).read_text())
    assert "report.md" in manifest["files"] and manifest["preset"] == "fast"
    from lowlight_matting.train import load_config, preset

    for run, name in (("base", "fast_base"), ("finetune", "fast_lowlight")):
        cfg = load_config(fast_run / "runs" / run / "config.yaml")
        assert cfg.stages == preset(name).stages  # the demo ran the registry's recipe, not a variant of it


def test_results_json_has_the_issue_shape(fast_run):
    """Four metrics for both models on both test sets, per-image values for the intervals, the base's source."""
    r = json.loads((fast_run / "results.json").read_text())
    for light in ("lowlight", "normal"):
        for model in ("baseline", "finetuned"):
            assert set(r[light][model]) == METRIC_KEYS
            assert set(r["unknown_region"][light][model]) == METRIC_KEYS
            per = r["per_image"][light][model]
            assert all(len(per[k]) == r["n_test"] for k in METRIC_KEYS)
            assert r[light][model]["sad"] == pytest.approx(np.mean(per["sad"]))
        assert set(r["verdict"][f"{light}_ci"]) == METRIC_KEYS
    assert r["preset"] == "fast" and r["device"].startswith("cpu")
    assert r["base"]["source"] == "trained here"
    assert sum(b["n"] for b in r["lowlight_by_brightness"]) == r["n_test"]
    # every test input's brightness, so that the report can switch the two models as deployed
    from lowlight_matting.color import DARK_THRESHOLD

    assert all(len(r["brightness"][light]) == r["n_test"] for light in ("lowlight", "normal"))
    n_dark = sum(y < DARK_THRESHOLD for y in r["brightness"]["lowlight"])
    assert sum(b["n"] for b in r["lowlight_by_brightness"] if b["dark"] == "yes") == n_dark
    assert "switch_normal_change" in r["verdict"] and "As deployed" in (fast_run / "report.md").read_text()
    # the weight line between base and fine-tune, measured on both test sets
    assert [p["t"] for p in r["tradeoff"]] == list(TRADEOFF_T)
    assert all(set(p[light]) == METRIC_KEYS for p in r["tradeoff"] for light in ("lowlight", "normal"))


def test_checkpoints_load_by_the_one_loader_and_predict(fast_run):
    """baseline.pt has no LLIE, finetuned.pt has one; both rebuild from their own model config."""
    from lowlight_matting.weights import load_model

    x = torch.rand(1, 3, 40, 56)
    for name, has_llie in (("baseline.pt", False), ("finetuned.pt", True)):
        model = load_model(fast_run / name)
        assert (getattr(model, "llie", None) is not None) == has_llie
        with torch.inference_mode():
            a = model(x)
        assert a.shape == (1, 1, 40, 56) and float(a.min()) >= 0 and float(a.max()) <= 1


def test_report_quotes_its_own_numbers(fast_run):
    """report.md shows both test sets, the article's SAD beside ours, and our SAD change as computed."""
    from lowlight_matting.evaluation import format_change, relative_change

    text = (fast_run / "report.md").read_text()
    assert "## Low light" in text and "## Normal light" in text and "Unknown region" in text
    assert "48.70" in text and "31.40" in text
    r = json.loads((fast_run / "results.json").read_text())
    assert (
        format_change(relative_change(r["lowlight"]["baseline"]["sad"], r["lowlight"]["finetuned"]["sad"]))
        in text
    )


def test_rerun_refuses_a_foreign_folder_without_touching_it(tmp_path, capsys):
    """A non-empty folder that is not a demo run is refused (exit 2) and left as it was."""
    from lowlight_matting.cli import main

    (tmp_path / "thesis.txt").write_text("precious")
    assert main(["demo", "--preset", "fast", "--out", str(tmp_path)]) == 2
    assert "refusing" in capsys.readouterr().err
    assert (tmp_path / "thesis.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.txt"]


def test_bad_base_and_device_are_one_line_usage_errors(tmp_path, capsys):
    """--base pointing at garbage or --device banana: exit 2, one line, nothing written."""
    from lowlight_matting.cli import main

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    for args in (["--base", str(junk)], ["--device", "banana"], ["--from-scratch", "--base", str(junk)]):
        assert main(["demo", "--preset", "fast", "--out", str(tmp_path / "o"), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------- output folder
def _fake_run(folder, names, text="new"):
    folder.mkdir(parents=True)
    for n in names:
        (folder / n).write_text(text)
    return folder


def test_folder_states(tmp_path):
    """absent / empty / foreign / previous, and a file given as the folder."""
    assert demo.folder_state(tmp_path / "nope") == "absent"
    assert demo.folder_state(tmp_path) == "empty"
    (tmp_path / "x").write_text("1")
    assert demo.folder_state(tmp_path) == "foreign"
    with pytest.raises(demo.OutputFolderError, match="refusing"):
        demo.check_output_folder(tmp_path)
    assert demo.check_output_folder(tmp_path, overwrite=True) == "foreign"
    (tmp_path / demo.MARKER).write_text("{}")
    assert demo.folder_state(tmp_path) == "previous"
    with pytest.raises(demo.OutputFolderError, match="not a folder"):
        demo.folder_state(tmp_path / "x")


def test_install_replaces_only_the_previous_runs_files(tmp_path):
    """The previous run's files go, the user's own files stay, the marker lists the new files."""
    out = tmp_path / "demo"
    demo.install_run(
        _fake_run(tmp_path / "s1", ["report.md", "ablation.md"], "old"), out, {"preset": "quick"}
    )
    (out / "my_notes.txt").write_text("keep me")
    (out / "sub").mkdir()
    names = demo.install_run(_fake_run(tmp_path / "s2", ["report.md"], "new"), out)
    assert names == ["report.md"]
    assert (out / "report.md").read_text() == "new"
    assert not (out / "ablation.md").exists(), "a stale file of the previous run would pass for the new run's"
    assert (out / "my_notes.txt").read_text() == "keep me" and (out / "sub").is_dir()
    assert not (tmp_path / "s2").exists()
    assert json.loads((out / demo.MARKER).read_text())["files"] == ["report.md"]


def test_install_never_deletes_outside_the_folder(tmp_path):
    """A marker listing paths outside the folder deletes nothing there."""
    out = tmp_path / "demo"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("outside")
    (out / demo.MARKER).write_text(json.dumps({"files": ["../victim.txt", "/etc/hostname"]}))
    demo.install_run(_fake_run(tmp_path / "s", ["report.md"]), out)
    assert victim.read_text() == "outside"


def test_stale_staging_folders_of_dead_runs_are_removed(tmp_path):
    """Only staging folders of this --out whose process is gone are removed."""
    import os

    out = tmp_path / "demo"
    dead = tmp_path / ".demo.partial-999999999"
    alive = tmp_path / f".demo.partial-{os.getpid()}"
    other = tmp_path / ".other.partial-999999999"
    for p in (dead, alive, other):
        p.mkdir()
    assert demo.remove_stale_staging(out) == [dead]
    assert alive.is_dir() and other.is_dir() and not dead.exists()


# --------------------------------------------------------------------------------------- seeds, ablation
@pytest.mark.slow
def test_demo_with_several_seeds_runs_each_and_summarizes(tmp_path):
    """--seed 5 6 runs twice into seed5/ and seed6/ with different training, the same test sets."""
    out = tmp_path / "seeds"
    args = ["demo", "--preset", "fast", "--out", str(out)]
    assert _cpu_main([*args, "--seed", "5", "5"]) == 2  # repeated seed refused before any work
    assert not out.exists()
    assert _cpu_main([*args, "--seed", "5", "6"]) == 0
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["seeds"] == [5, 6] and "mean ± sd" in (out / "seeds.md").read_text()
    runs = [json.loads((out / f"seed{k}" / "results.json").read_text()) for k in (5, 6)]
    assert [r["config"]["seed"] for r in runs] == [5, 6]
    assert runs[0]["lowlight"]["baseline"] != runs[1]["lowlight"]["baseline"]  # the seed reaches training
    manifest = json.loads((out / demo.MARKER).read_text())
    assert "seed6/report.md" in manifest["files"] and "seeds.md" in manifest["files"]


@pytest.mark.slow
def test_ablation_end_to_end_its_full_recipe_is_the_main_fine_tune(tmp_path):
    """The ablation's first variant is the main fine-tune itself (the same config is not trained twice); every
    other variant is a run of its own."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        r = ex.run_experiment("fast", tmp_path, ablation=True, device="cpu", progress=False, log=None)
    finally:
        torch.set_num_threads(threads)
    a = json.loads((tmp_path / "ablation.json").read_text())
    assert [v["variant"] for v in a["variants"]] == [name for name, _ in ex.ABLATIONS]
    full = a["variants"][0]
    for light in ("lowlight", "normal"):
        assert full[light] == pytest.approx(r[light]["finetuned"], rel=1e-6), light
        assert a["baseline"][light] == pytest.approx(r[light]["baseline"], rel=1e-6)
    text = (tmp_path / "ablation.md").read_text()
    assert all(f"| {name} |" in text for name, _ in ex.ABLATIONS)
    assert not list((tmp_path / "runs").glob("ablation-*/*.pt")), "variant weights are not kept"
    variant_runs = sorted(p.name for p in (tmp_path / "runs").glob("ablation-*"))
    assert variant_runs == [f"ablation-{k}" for k in range(1, len(ex.ABLATIONS))]


# ----------------------------------------------------------------------------------- recipe, test sets
def test_demo_sizes_point_into_the_one_preset_registry():
    """Every demo size names presets of lowlight_matting.train.PRESETS (or a shipped model)."""
    from lowlight_matting.train import PRESETS

    for name, d in ex.DEMOS.items():
        assert d.finetune in PRESETS, name
        assert d.base in PRESETS or d.base.startswith("cvunet-"), name
    assert ex.DEMOS["quick"].base == "cvunet-base" and ex.DEMOS["quick"].n_test == 200


def test_ablation_variants_remove_one_ingredient_each():
    """Each variant's config differs from the recipe in exactly what its name says."""
    cfg = ex.finetune_config("quick", seed=0, out_dir="/tmp/x")
    v = {name: ex.apply_ingredients(cfg, ing) for name, ing in ex.ABLATIONS}
    assert len(v) == len(ex.ABLATIONS) == 10
    assert v["full recipe"].to_dict() == cfg.to_dict()
    noll = v["no LLIE"]
    assert noll.model.llie is None and [s.objective for s in noll.stages] == ["matting"] * 3
    notp = v["LLIE not pre-trained"]
    assert notp.model.llie == "zero_dce_pp" and "llie" not in [s.objective for s in notp.stages]
    assert not v["no dynamic weight"].loss.dynamic and cfg.loss.dynamic
    mse = v["no SSIM/edge terms (MSE only)"].loss
    assert (mse.ssim, mse.edge, mse.dynamic, mse.mse) == (0.0, 0.0, False, 1.0)
    single = v["single stage instead of three"].stages
    assert [s.objective for s in single] == ["llie", "matting"] and single[1].freeze == ["norm_stats"]
    assert single[1].steps == sum(s.steps for s in cfg.stages if s.objective == "matting")
    assert v["low-light data only (no normal mix)"].data.p_lowlight == 1.0
    assert v["control: same steps, normal light only"].data.p_lowlight == 0.0
    assert 0 < cfg.data.p_lowlight < 1
    bn = v["BatchNorm statistics updated (as in the article)"]
    assert (
        [s.freeze for s in bn.stages]
        == [[f for f in s.freeze if f != "norm_stats"] for s in cfg.stages]
        != [s.freeze for s in cfg.stages]
    )
    nod = v["no distillation on normal light (as in the article)"]
    assert nod.loss.distill == 0.0 < cfg.loss.distill
    assert dataclasses.replace(nod.loss, distill=cfg.loss.distill) == cfg.loss


def test_quick_fine_tune_is_the_articles_recipe_from_the_shipped_base():
    """make demo's fine-tune: shipped base, Zero-DCE++ pre-trained first, the article's stages 10:20:30."""
    cfg = ex.finetune_config("quick", seed=0, out_dir="/tmp/x")
    assert cfg.model.init_checkpoint == "cvunet-base" and cfg.model.llie == "zero_dce_pp"
    llie, head, partial, full = cfg.stages
    assert (llie.objective, llie.freeze, llie.p_lowlight) == ("llie", ["all_but_llie"], 1.0)
    assert head.freeze == ["all_but_head", "norm_stats"] and partial.freeze == [
        "encoder.stages[:3]",
        "norm_stats",
    ]
    assert full.freeze == ["norm_stats"]  # our addition: BatchNorm statistics stay the base's
    assert full.freeze_llie_after == 0.5
    assert head.steps * 2 == pytest.approx(partial.steps, abs=1) and head.steps * 3 == pytest.approx(
        full.steps, abs=1
    )
    assert cfg.loss.dynamic and (cfg.loss.edge, cfg.loss.dark_edge) == (1.5, 3.0)
    assert cfg.loss.distill == RECIPE_DISTILL > 0  # our addition: normal light learns the base's prediction


def test_test_sets_are_fixed_and_darkened_by_the_simulator():
    """The same images under both lights; a prefix of a larger set; darker in the low-light set."""
    from lowlight_matting.color import mean_luminance

    a = ex.make_test_sets(3, 32)
    b = ex.make_test_sets(5, 32)
    for i in range(3):
        assert np.array_equal(a.normal[i], b.normal[i]) and np.array_equal(a.lowlight[i], b.lowlight[i])
    ratios = [mean_luminance(lo) / mean_luminance(no) for lo, no in zip(b.lowlight, b.normal, strict=True)]
    assert np.median(ratios) < 0.5, ratios
    assert a.params[0] == b.params[0] and "ratio" in a.params[0]
