"""The main job (lowlight_matting.experiment + the ``demo`` command): the FAST pipeline end to end on the CPU,
the report/table writing, the fine-tune recipe and its ablation variants, and the output-folder policy."""

import json
import math

import numpy as np
import pytest
import torch

from lowlight_matting import experiment as ex
from lowlight_matting.commands import demo

METRIC_KEYS = {"sad", "mse", "grad", "conn"}


# ------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    """One FAST demo through the command line (the path ``make demo`` takes), shared by the tests below."""
    from lowlight_matting.cli import main

    out = tmp_path_factory.mktemp("demo") / "run"
    threads = torch.get_num_threads()
    try:
        rc = main(
            ["demo", "--preset", "fast", "--out", str(out), "--device", "cpu", "--threads", "1", "--quiet"]
        )
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    return out


def test_fast_demo_writes_every_output(fast_run):
    for name in (
        "report.md",
        "results.json",
        "baseline.pt",
        "finetuned.pt",
        "comparison.png",
        "loss_curves.png",
        "contact_sheet.png",
        demo.MARKER,
    ):
        assert (fast_run / name).is_file(), name
        assert (fast_run / name).stat().st_size > 0, name
    assert not list(fast_run.parent.glob(".run.partial-*")), "staging folder left behind"
    manifest = json.loads((fast_run / demo.MARKER).read_text())
    assert "report.md" in manifest["files"] and manifest["preset"] == "fast"


def test_results_json_has_the_issue_shape_with_finite_numbers(fast_run):
    r = json.loads((fast_run / "results.json").read_text())
    for light in ("lowlight", "normal"):
        for model in ("baseline", "finetuned"):
            assert set(r[light][model]) == METRIC_KEYS
            assert all(math.isfinite(v) and v >= 0 for v in r[light][model].values())
            assert set(r["unknown_region"][light][model]) == METRIC_KEYS
            assert all(math.isfinite(v) for v in r["unknown_region"][light][model].values())
            # per-image values kept, one per test image, so the report can give intervals
            assert all(len(r["per_image"][light][model][k]) == r["n_test"] for k in METRIC_KEYS)
        assert set(r["verdict"][f"{light}_ci"]) == METRIC_KEYS
    assert r["preset"] == "fast"
    assert r["device"].startswith("cpu")
    assert r["seconds"] > 0
    # the low-light test set is darker than the normal one (same images through the simulator)
    assert r["lowlight_by_brightness"] and sum(b["n"] for b in r["lowlight_by_brightness"]) == r["n_test"]


def test_checkpoints_load_and_predict(fast_run):
    from lowlight_matting.checkpoint import load_checkpoint, model_from_checkpoint

    x = torch.rand(1, 3, 40, 56)
    for name, has_llie in (("baseline.pt", False), ("finetuned.pt", True)):
        model = model_from_checkpoint(fast_run / name)
        assert (getattr(model, "llie", None) is not None) == has_llie
        with torch.inference_mode():
            a = model(x)
        assert a.shape == (1, 1, 40, 56) and float(a.min()) >= 0 and float(a.max()) <= 1
        ckpt = load_checkpoint(fast_run / name)
        assert ckpt["config"]["preset"]["name"] == "fast"
        assert set(ckpt["metrics"]["lowlight"]) == METRIC_KEYS


def test_report_shows_both_test_sets_and_the_article(fast_run):
    text = (fast_run / "report.md").read_text()
    assert "## Low light" in text and "## Normal light" in text and "Unknown region" in text
    assert "48.70" in text and "31.40" in text  # the article's SAD column beside ours
    r = json.loads((fast_run / "results.json").read_text())
    ch = ex.relative_change(r["lowlight"]["baseline"]["sad"], r["lowlight"]["finetuned"]["sad"])
    assert ex.format_change(ch) in text


def test_rerun_refuses_a_foreign_folder_without_touching_it(tmp_path, capsys):
    from lowlight_matting.cli import main

    (tmp_path / "thesis.txt").write_text("precious")
    assert main(["demo", "--preset", "fast", "--out", str(tmp_path)]) == 2
    assert "refusing" in capsys.readouterr().err
    assert (tmp_path / "thesis.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.txt"]


# ------------------------------------------------------------------------------------- output folder
def _fake_run(folder, names, text="new"):
    folder.mkdir(parents=True)
    for n in names:
        (folder / n).write_text(text)
    return folder


def test_folder_states(tmp_path):
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
    out = tmp_path / "demo"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("outside")
    (out / demo.MARKER).write_text(json.dumps({"files": ["../victim.txt", "/etc/hostname"]}))
    demo.install_run(_fake_run(tmp_path / "s", ["report.md"]), out)
    assert victim.read_text() == "outside"


# --------------------------------------------------------------------------------------- report writing
def test_relative_change_sign_and_degenerate_cases():
    assert ex.relative_change(0.032, 0.018) == pytest.approx(-0.4375)
    assert ex.relative_change(10, 12) == pytest.approx(0.2)
    assert math.isnan(ex.relative_change(0, 1)) and math.isnan(ex.relative_change(1, float("nan")))


def test_format_change_and_metric():
    assert ex.format_change(-0.4375) == "-44%"
    assert ex.format_change(0.021) == "+2%"
    assert ex.format_change(0.0001) == "0%"
    assert ex.format_change(-0.0123, 1) == "-1.2%"
    assert ex.format_change(float("nan")) == "n/a"
    assert ex.format_metric("mse", 0.0321) == "0.0321" and ex.format_metric("sad", 48.7) == "48.70"


def test_article_changes_are_the_claimed_ones():
    ch = ex.comparison_rows(ex.ARTICLE["baseline"], ex.ARTICLE["finetuned"])
    assert {k: ex.format_change(v) for k, v in ch.items()} == {
        "mse": "-44%",
        "sad": "-36%",
        "grad": "-32%",
        "conn": "-32%",
    }


def _results(low_ft_sad=5.0, normal_ft_sad=10.2):
    m = {"sad": 10.0, "mse": 0.02, "grad": 4.0, "conn": 9.0}
    return {
        "lowlight": {
            "baseline": dict(m, sad=20.0),
            "finetuned": {"sad": low_ft_sad, "mse": 0.01, "grad": 3.0, "conn": 5.0},
        },
        "normal": {"baseline": m, "finetuned": dict(m, sad=normal_ft_sad)},
        "preset": "unit",
        "device": "cpu",
        "seconds": 1.0,
    }


def test_verdict_and_report_say_what_the_numbers_say():
    good = ex.verdict(_results())
    assert good["lowlight_all_better"] and good["normal_within_tolerance"]
    assert good["lowlight_change"]["sad"] == pytest.approx(-0.75)
    bad = ex.verdict(_results(low_ft_sad=25.0, normal_ft_sad=11.0))
    assert not bad["lowlight_all_better"] and not bad["normal_within_tolerance"]
    assert bad["normal_worst_change"] == pytest.approx(0.1)
    text = ex.render_report(_results(low_ft_sad=25.0, normal_ft_sad=11.0))
    assert "+25%" in text and "+10%" in text
    assert "all four metrics: **no**" in text
    assert "| **ours: relative change** | -50% | +25% | -25% | -44% |" in text


def test_headroom_uses_the_normal_light_baseline_as_reference():
    v = ex.verdict(_results())
    # SAD: baseline 20 in the dark, 10 in daylight, fine-tuned 5 in the dark
    assert v["lowlight_penalty"]["sad"] == pytest.approx(1.0)
    assert v["reference_change"]["sad"] == pytest.approx(-0.5)
    assert v["gap_closed"]["sad"] == pytest.approx(1.5)
    # MSE: low light does not hurt the baseline (0.02 both): no gap to close
    assert math.isnan(v["gap_closed"]["mse"])
    text = ex.render_report(_results())
    assert "| share of the gap closed | n/a | 150% |" in text
    assert "| change that would reach the normal-light reference | 0% | -50% |" in text


def test_report_gives_bootstrap_intervals_when_per_image_values_are_kept():
    r = _results()
    assert "lowlight_ci" not in ex.verdict(r) and "95 % interval of our change" not in ex.render_report(r)
    g = np.random.default_rng(1)
    base = g.gamma(2.0, 0.1, 40)
    r["per_image"] = {
        light: {
            "baseline": {k: base.tolist() for k in ex.METRICS},
            "finetuned": {k: (base * f).tolist() for k in ex.METRICS},
        }
        for light, f in (("lowlight", 0.5), ("normal", 1.0))
    }
    v = ex.verdict(r)
    assert v["lowlight_ci"]["sad"] == pytest.approx([-0.5, -0.5])
    assert v["normal_ci"]["mse"] == pytest.approx([0.0, 0.0])
    text = ex.render_report(r)
    assert "| 95 % interval of our change (paired bootstrap over the ? test images) | [-50%, -50%] |" in text


def test_seed_summary_gives_mean_and_sd_of_every_change():
    a, b = _results(low_ft_sad=5.0), _results(low_ft_sad=15.0, normal_ft_sad=11.0)
    a["config"], b["config"] = {"seed": 0}, {"seed": 1}
    s = ex.summarize_seeds([a, b])
    assert s["seeds"] == [0, 1] and s["n"] == 2
    assert s["lowlight_change"]["sad"]["values"] == pytest.approx([-0.75, -0.25])
    assert s["lowlight_change"]["sad"]["mean"] == pytest.approx(-0.5)
    assert s["lowlight_change"]["sad"]["sd"] == pytest.approx(np.std([-0.75, -0.25], ddof=1))
    assert s["lowlight_all_better"] == 2 and s["normal_within_tolerance"] == 1
    text = ex.render_seeds(s)
    assert "| **mean ± sd** | -50% ± 0 | -50% ± 35 |" in text
    assert "in 1 of 2 runs" in text
    # written as JSON (NaN -> null) and rendered again, as tools/record_results.py does
    from lowlight_matting.evaluate import to_jsonable

    again = ex.render_seeds(json.loads(json.dumps(to_jsonable(s))))
    assert again == text and "| **mean ± sd** | n/a |" in again
    single = ex.summarize_seeds([a])
    assert math.isnan(single["lowlight_change"]["sad"]["sd"])
    with pytest.raises(ValueError, match="runs"):
        ex.summarize_seeds([])


def test_demo_with_several_seeds_runs_each_and_summarizes(tmp_path):
    from lowlight_matting.cli import main

    out = tmp_path / "seeds"
    threads = torch.get_num_threads()
    try:
        args = ["demo", "--preset", "fast", "--out", str(out), "--device", "cpu", "--threads", "1", "--quiet"]
        assert main([*args, "--seed", "5", "5"]) == 2  # repeated seed refused before any work
        assert not out.exists()
        assert main([*args, "--seed", "5", "6"]) == 0
    finally:
        torch.set_num_threads(threads)
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["seeds"] == [5, 6] and "mean ± sd" in (out / "seeds.md").read_text()
    runs = [json.loads((out / f"seed{k}" / "results.json").read_text()) for k in (5, 6)]
    assert [r["config"]["seed"] for r in runs] == [5, 6]
    assert (out / "seed5" / "finetuned.pt").is_file()
    # the seed reaches the training: the two baselines differ, the test sets are the same
    assert runs[0]["lowlight"]["baseline"] != runs[1]["lowlight"]["baseline"]
    assert runs[0]["config"]["test_seed"] == runs[1]["config"]["test_seed"]
    manifest = json.loads((out / demo.MARKER).read_text())
    assert "seed6/report.md" in manifest["files"] and "seeds.md" in manifest["files"]


def test_ablation_end_to_end_its_full_recipe_is_the_main_fine_tune(tmp_path):
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


def test_ablation_table_lists_every_variant_with_changes():
    base = {
        "lowlight": {"sad": 20.0, "mse": 0.02, "grad": 4.0, "conn": 10.0},
        "normal": {"sad": 10.0, "mse": 0.01, "grad": 2.0, "conn": 5.0},
    }
    rows = [
        {
            "variant": "full recipe",
            "lowlight": {k: v / 2 for k, v in base["lowlight"].items()},
            "normal": base["normal"],
        }
    ]
    text = ex.render_ablation(rows, base)
    assert "| full recipe | 0.0100 | 10.00 | 2.00 | 5.00 | -50% | -50% | -50% | -50% |" in text
    assert "against the full recipe" not in text  # no per-image values: no intervals
    # with per-image values: each variant against the full recipe, paired over the same images
    g = np.random.default_rng(0)
    imgs = g.gamma(2.0, 1.0, 30)
    per = {light: {k: imgs.tolist() for k in ex.METRICS} for light in ("lowlight", "normal")}
    worse = {light: {k: (1.2 * imgs).tolist() for k in ex.METRICS} for light in ("lowlight", "normal")}
    rows = [dict(rows[0], per_image=per), dict(rows[0], variant="no LLIE", per_image=worse)]
    text = ex.render_ablation(rows, base)
    assert "## Each variant against the full recipe" in text
    assert "| no LLIE | +20% [+20%, +20%] | +20% [+20%, +20%] |" in text


def test_loss_curve_and_comparison_figures(tmp_path):
    hist = [{"step": i, "loss": 1.0 / (i + 1), "stage": "1" if i < 30 else "2"} for i in range(60)]
    hist[-1]["val_normal"] = 0.1
    ex.plot_loss_curves({"a": hist, "b": []}, tmp_path / "c.png")
    g = np.random.default_rng(0)
    row = {
        "normal": g.integers(0, 255, (16, 16, 3), dtype=np.uint8),
        "lowlight": np.zeros((16, 16, 3), np.uint8),
        "gt": g.random((16, 16)),
        "baseline": g.random((16, 16)),
        "finetuned": g.random((16, 16)),
    }
    ex.plot_comparison_grid([row, row], tmp_path / "g.png", ["x", "y"])
    assert (tmp_path / "c.png").stat().st_size > 1000 and (tmp_path / "g.png").stat().st_size > 1000


# ----------------------------------------------------------------------------------- recipe, stages
def test_presets_and_overrides():
    assert {"quick", "gpu", "full", "fast"} <= set(ex.PRESETS)
    assert (
        ex.PRESETS["gpu"].size >= 384 and ex.PRESETS["full"].size == 512 and ex.PRESETS["full"].n_test == 200
    )
    full = ex.PRESETS["full"].stages
    assert [s.lr for s in full] == [1e-4, 5e-5, 1e-5] and full[1].steps == 2 * full[0].steps
    assert ex.get_preset("fast", size=32).size == 32
    with pytest.raises(ValueError, match="unknown preset"):
        ex.get_preset("huge")
    with pytest.raises(ValueError, match="unknown preset fields"):
        ex.get_preset("fast", sise=32)


def test_gpu_presets_run_end_to_end_when_shrunk(tmp_path):
    """The GPU presets' own encoder, LLIE, stage specs and channels-last path, at toy size on the CPU.

    Nothing here needs a GPU: a preset whose freeze spec does not fit its encoder, or whose model cannot be
    built, fails now instead of minutes into a GPU run. ``full`` differs from ``gpu`` only in sizes and
    learning rates.
    """
    name = "gpu"
    gpu, full = ex.PRESETS["gpu"], ex.PRESETS["full"]
    assert (full.encoder, full.llie) == (gpu.encoder, gpu.llie)
    assert [s.freeze for s in full.stages] == [s.freeze for s in gpu.stages]
    p = ex.get_preset(
        name,
        size=64,
        n_train=4,
        n_val=2,
        n_test=2,
        batch_size=2,
        eval_batch=2,
        baseline_steps=1,
        warmup_steps=1,
        stages=ex.article_stages(3, lrs=[s.lr for s in ex.PRESETS[name].stages]),
        workers=0,
        n_vis=1,
    )
    assert p.encoder == ex.PRESETS[name].encoder and p.channels_last and p.amp
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        r = ex.run_experiment(p, tmp_path / name, device="cpu", progress=False, log=None)
    finally:
        torch.set_num_threads(threads)
    assert r["config"]["encoder"] == ex.PRESETS[name].encoder
    assert [h["stage"] for h in r["history"]["finetune"]] == [s.name for s in p.stages]
    assert all(math.isfinite(v) for v in r["lowlight"]["finetuned"].values())


def test_article_stages_keep_the_10_20_30_ratio():
    s = ex.article_stages(600)
    assert [x.steps for x in s] == [100, 200, 300]
    assert s[0].freeze == ("encoder", "decoder") and "llie" in s[2].freeze
    assert sum(x.steps for x in ex.article_stages(7)) == 7


def test_ablation_recipes_remove_one_ingredient_each():
    p = ex.PRESETS["quick"]
    full = ex.recipe(p)
    assert (
        full["llie"] and full["loss"]["dynamic"] and 0 < full["p_lowlight"] < 1 and len(full["stages"]) == 3
    )
    by_name = {name: ex.recipe(p, ing) for name, ing in ex.ABLATIONS}
    assert len(by_name) == len(ex.ABLATIONS) >= 7
    assert not by_name["no LLIE"]["llie"]
    assert all("llie" not in s.freeze for s in by_name["no LLIE"]["stages"])
    assert not by_name["no dynamic weight"]["loss"]["dynamic"]
    mse_only = by_name["no SSIM/edge terms (MSE only)"]["loss"]
    assert mse_only["ssim"] == 0 and mse_only["edge"] == 0
    single = by_name["single stage instead of three"]["stages"]
    assert len(single) == 1 and single[0].freeze == () and single[0].steps == p.finetune_steps
    assert by_name["low-light data only (no normal mix)"]["p_lowlight"] == 1.0
    assert by_name["control: same steps, normal light only"]["p_lowlight"] == 0.0


def _tiny_data(n=4, size=32):
    g = torch.Generator().manual_seed(0)
    imgs = (torch.rand(n, 3, size, size, generator=g) * 255).to(torch.uint8)
    alphas = torch.rand(n, 1, size, size, generator=g).half()
    return ex.ExperimentData(imgs, alphas, imgs[:2], imgs[:2], alphas[:2], [], [], [], [], [])


def test_fit_stage_one_trains_only_the_head_and_the_llie():
    from lowlight_matting.models import build_model

    torch.manual_seed(0)
    model = build_model("test_convnext", llie="zero_dce_pp", **ex.PRESETS["fast"].model_kwargs)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stage = ex.Stage("1", ("encoder", "decoder"), 1e-2, 2)
    hist = ex.fit(
        model,
        _tiny_data(),
        [stage],
        loss={"mse": 1.0, "dynamic": True},
        p_lowlight=0.5,
        device="cpu",
        seed=0,
        batch_size=2,
        progress=False,
    )
    changed = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"llie", "head"}
    assert [h["step"] for h in hist] == [0, 1] and all(math.isfinite(h["loss"]) for h in hist)
    assert "val_lowlight" in hist[-1] and "val_normal" in hist[-1]


def test_fit_is_deterministic_on_cpu():
    from lowlight_matting.models import build_model

    losses = []
    for _ in range(2):
        torch.manual_seed(1)
        model = build_model("test_convnext", **ex.PRESETS["fast"].model_kwargs)
        hist = ex.fit(
            model,
            _tiny_data(),
            [ex.Stage("s", (), 1e-3, 2)],
            loss={"mse": 1.0, "dynamic": False},
            p_lowlight=1.0,
            device="cpu",
            seed=5,
            batch_size=2,
            progress=False,
        )
        losses.append([h["loss"] for h in hist])
    assert losses[0] == losses[1]


def test_finetune_model_starts_from_the_baseline_with_an_identity_llie():
    base = ex.build_baseline(ex.PRESETS["fast"])
    model = ex.build_finetune_model(ex.PRESETS["fast"], base.state_dict(), llie=True)
    ex.identity_llie_(model)
    x = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.allclose(model.eval()(x), base.eval()(x), atol=1e-5)


def test_models_are_built_from_the_preset_seed_whatever_ran_before():
    p = ex.PRESETS["fast"]
    base = ex.build_baseline(p)
    a = ex.build_finetune_model(p, base.state_dict(), llie=True)
    torch.rand(1000)  # other work consuming the global generator must not change the next model
    b = ex.build_finetune_model(p, base.state_dict(), llie=True)
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    assert all(
        torch.equal(x, y)
        for x, y in zip(base.state_dict().values(), ex.build_baseline(p).state_dict().values(), strict=True)
    )
    other = ex.build_baseline(ex.get_preset("fast", seed=1))
    assert not torch.equal(other.head.coarse.weight, base.head.coarse.weight)  # the seed matters


def test_parallel_data_generation_gives_the_same_items_in_order():
    from lowlight_matting.data import SyntheticMattingDataset

    ds = SyntheticMattingDataset(4, size=32, seed=3)
    serial = list(ex._generate(ds, 0))
    parallel = list(ex._generate(ds, 2))
    assert len(parallel) == 4
    for a, b in zip(serial, parallel, strict=True):
        assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["alpha"], b["alpha"])


def test_stale_staging_folders_of_dead_runs_are_removed(tmp_path):
    import os

    out = tmp_path / "demo"
    dead = tmp_path / ".demo.partial-999999999"
    alive = tmp_path / f".demo.partial-{os.getpid()}"
    other = tmp_path / ".other.partial-999999999"
    for p in (dead, alive, other):
        p.mkdir()
    assert demo.remove_stale_staging(out) == [dead]
    assert alive.is_dir() and other.is_dir() and not dead.exists()
