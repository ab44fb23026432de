"""The measured results kept in the repository (``docs/results/``) and README's numbers: derived artefacts,
re-rendered here from their JSON and compared (nbdev's habit), so a hand edit, a renderer change or a stale
README table cannot go unnoticed."""

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"

RECORDS = sorted(p.parent for p in RESULTS.glob("*/results.json"))
"""Records of demo runs (``tools/record_results.py``); the shipped models' records (``record.json``) are
checked in ``tests/test_shipped_models.py``."""


def test_results_records_are_rendered_from_their_json():
    """docs/results/<name>/*.md are derived from the JSON beside them (tools/record_results.py): re-render
    each and fail if the committed text differs, so a hand edit or a renderer change cannot go unnoticed."""
    from lowlight_matting import experiment as ex

    assert RECORDS, "docs/results/ holds no record of a measured run"
    for d in RECORDS:
        r = json.loads((d / "results.json").read_text())
        assert (d / "report.md").read_text() == ex.render_report(r), f"{d.name}/report.md"
        assert "history" not in r, f"{d.name}/results.json: training histories are not kept"
        if (d / "ablation.json").exists():
            a = json.loads((d / "ablation.json").read_text())
            assert (d / "ablation.md").read_text() == ex.render_ablation(a["variants"], a["baseline"])
            assert a["baseline"]["lowlight"] == r["lowlight"]["baseline"], (
                f"{d.name}: ablation of another run"
            )
        if (d / "seeds.json").exists():
            s = json.loads((d / "seeds.json").read_text())
            assert (d / "seeds.md").read_text() == ex.render_seeds(s), f"{d.name}/seeds.md"
            assert r["config"]["seed"] in s["seeds"]


def test_readme_quotes_the_recorded_numbers():
    """README's results table is the quick-cpu record's seeds summary (and, for the rows without
    distillation, the quick-cpu-no-distill record's), cell for cell."""
    from lowlight_matting import experiment as ex

    now, before = "quick-cpu", "quick-cpu-no-distill"
    s = {d: json.loads((RESULTS / d / "seeds.json").read_text()) for d in (now, before)}
    readme = (REPO / "README.md").read_text()
    rows = {
        "low light: fine-tuned vs baseline": (now, "lowlight_change", False),
        "normal light: fine-tuned vs baseline": (now, "normal_change", False),
        "share of the low-light gap closed": (now, "gap_closed", True),
        "switched by brightness: low light vs baseline": (now, "switch_lowlight_change", False),
        "switched by brightness: normal light vs baseline": (now, "switch_normal_change", False),
        "without distillation (previous recipe): low light": (before, "lowlight_change", False),
        "without distillation (previous recipe): normal light": (before, "normal_change", False),
    }
    for label, (record, key, share) in rows.items():
        line = next((ln for ln in readme.splitlines() if ln.startswith(f"| {label}")), None)
        assert line, f"README: no results row '{label}'"
        cells = [c.strip() for c in line.strip().strip("|").split("|")][1:]
        want = [ex.format_mean_sd(s[record][key][k], share) for k in ex.METRICS]
        assert cells == want, f"README row '{label}': {cells} != record {want}"


def test_readme_quotes_the_shipped_models_records():
    """README's table of the shipped models is their records' test metrics, cell for cell."""
    from lowlight_matting.weights import SHIPPED
    from lowlight_matting.weights.card import _fmt

    readme = (REPO / "README.md").read_text()
    for name in SHIPPED:
        rec = json.loads((RESULTS / name / "record.json").read_text())
        m = rec["test"]["metrics"]
        line = next((ln for ln in readme.splitlines() if ln.startswith(f"| `{name}` |")), None)
        assert line, f"README: no row for {name}"
        cells = [c.strip() for c in line.strip().strip("|").split("|")][1:]
        want = [
            _fmt(k, m[light]["whole"][k])
            for light in ("normal", "lowlight")
            for k in ("mse", "sad", "grad", "conn")
        ]
        assert cells[: len(want)] == want, f"README row {name}: {cells} != record {want}"


def test_training_record_quotes_the_run_folders_hardware(tmp_path):
    """tools/record_training.py takes the hardware line from the run folder's environment.json (written by
    train() where the run trained), and says so when it has to describe its own machine instead."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("record_training", REPO / "tools" / "record_training.py")
    rt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rt)
    here = lambda device: "this machine"  # noqa: E731
    (tmp_path / "environment.json").write_text(json.dumps({"device": "cuda:0 (A100)", "processes": 4}))
    assert rt._hardware(tmp_path, here) == "cuda:0 (A100), 4 processes"
    (tmp_path / "environment.json").unlink()
    assert (
        rt._hardware(tmp_path, here)
        == "this machine (the recorder's machine: the run folder has no environment.json)"
    )
