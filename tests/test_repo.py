"""The repository's own conventions: dependency lists agree, notebooks are output-free and follow the course
format, the chapter map in README lists every notebook in order."""

import json
import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    py = tomllib.loads((REPO / "pyproject.toml").read_text())
    deps = {_name(d) for d in py["project"]["dependencies"]}
    deps |= {_name(d) for d in py["project"]["optional-dependencies"]["dev"]}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_deps = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    assert conda == set(), f"environment.yml: put packages under pip:, found conda packages {conda}"
    assert {_name(d) for d in pip_deps} == deps


def test_constraints_pin_the_torch_pair():
    text = (REPO / "constraints.txt").read_text()
    assert "torch==2.14.1" in text and "torchvision==0.29.1" in text


def test_ci_runs_make_test():
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_notebooks_exist_and_are_numbered_in_order():
    names = [p.name for p in NOTEBOOKS]
    assert names, "no notebooks"
    numbers = [int(n[:2]) for n in names]
    assert all(re.match(r"^\d\d_[a-z0-9_]+\.ipynb$", n) for n in names), names
    assert numbers == list(range(len(numbers))), (
        f"chapters must be numbered 00, 01, ... without gaps: {names}"
    )


def test_readme_chapter_map_lists_every_notebook_in_order():
    readme = (REPO / "README.md").read_text()
    positions = [readme.find(p.name) for p in NOTEBOOKS]
    missing = [p.name for p, pos in zip(NOTEBOOKS, positions, strict=True) if pos < 0]
    assert not missing, f"README chapter map misses {missing}"
    assert positions == sorted(positions), "README lists the chapters out of order"


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_notebooks_are_committed_without_outputs():
    dirty = [
        p.name
        for p in NOTEBOOKS
        for c in _cells(p)
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"strip outputs before committing: {sorted(set(dirty))}"


def test_every_notebook_follows_the_course_format():
    for p in NOTEBOOKS:
        cells = _cells(p)
        first_md = next(c for c in cells if c["cell_type"] == "markdown")
        assert "learning goals" in "".join(first_md["source"]).lower(), (
            f"{p.name}: no learning goals at the top"
        )
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{p.name}: needs exactly one cell tagged 'parameters'"
        tail = "".join("".join(c["source"]) for c in cells[-3:] if c["cell_type"] == "markdown").lower()
        assert "summary" in tail and "exercises" in tail, f"{p.name}: must end with a summary and exercises"
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        assert any(re.search(r"^\s*assert ", src, re.M) for src in code), f"{p.name}: no assert cell"
        defs = [src for src in code if re.search(r"^\s*(def|class) ", src, re.M)]
        assert not defs, f"{p.name}: library code belongs in the package, not the notebook"


# ------------------------------------------------------------------- the measured results kept in the repo
RECORDS = sorted(p for p in (REPO / "docs" / "results").glob("*") if p.is_dir())


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
    """README's results table is the quick-cpu record's seeds summary, cell for cell."""
    from lowlight_matting import experiment as ex

    s = json.loads((REPO / "docs" / "results" / "quick-cpu" / "seeds.json").read_text())
    readme = (REPO / "README.md").read_text()
    rows = {
        "low light: fine-tuned vs baseline": ("lowlight_change", False),
        "normal light: fine-tuned vs baseline": ("normal_change", False),
        "share of the low-light gap closed": ("gap_closed", True),
    }
    for label, (key, share) in rows.items():
        line = next((ln for ln in readme.splitlines() if ln.startswith(f"| {label}")), None)
        assert line, f"README: no results row '{label}'"
        cells = [c.strip() for c in line.strip().strip("|").split("|")][1:]
        want = [ex.format_mean_sd(s[key][k], share) for k in ex.METRICS]
        assert cells == want, f"README row '{label}': {cells} != record {want}"
