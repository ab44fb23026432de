"""Keep the measured results of demo runs in the repository, as text, with their provenance.

``runs/`` is git-ignored and its checkpoints and figures are megabytes; the numbers that README and the
notebooks quote are kept in ``docs/results/<name>/`` instead, as the JSON the runs wrote (training histories
dropped) and the Markdown rendered from it by the package's own renderers. ``tests/test_repo.py`` re-renders
every Markdown file from its JSON and fails if they differ, and checks README's numbers against them.

Usage::

    lowlight-matting demo --preset quick --seed 0 1 2 --out runs/seeds     # or separate runs, one per seed
    lowlight-matting demo --preset quick --ablation --out runs/ablation
    python tools/record_results.py runs/ablation runs/seeds/seed1 runs/seeds/seed2 --out docs/results/quick-cpu

The first run folder gives ``report.md`` / ``results.json`` (and ``ablation.md`` / ``ablation.json`` when it
was run with ``--ablation``); with several run folders (same preset, different seeds) ``seeds.md`` /
``seeds.json`` summarise them all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lowlight_matting import experiment as ex
from lowlight_matting.io import write_json


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SystemExit(f"record_results: cannot read {path}: {e}") from e


def record(run_dirs: list[Path], out: Path) -> list[Path]:
    """Write the record of ``run_dirs`` into ``out``; returns the files written."""
    runs = [_load(d / "results.json") for d in run_dirs]
    presets = {r["preset"] for r in runs}
    if len(presets) != 1:
        raise SystemExit(f"record_results: runs of different presets {sorted(presets)}: {run_dirs}")
    seeds = [r["config"]["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"record_results: repeated seeds {seeds}: {run_dirs}")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    main = {k: v for k, v in runs[0].items() if k not in ("history", "ablation")}
    main["verdict"] = ex.verdict(main)
    written.append(write_json(out / "results.json", main))
    (out / "report.md").write_text(ex.render_report(_load(out / "results.json")), encoding="utf-8")
    written.append(out / "report.md")
    abl = run_dirs[0] / "ablation.json"
    if abl.is_file():
        written.append(write_json(out / "ablation.json", _load(abl)))
        a = _load(out / "ablation.json")
        (out / "ablation.md").write_text(ex.render_ablation(a["variants"], a["baseline"]), encoding="utf-8")
        written.append(out / "ablation.md")
    if len(runs) > 1:
        ex.write_seeds(runs, out)
        written += [out / "seeds.json", out / "seeds.md"]
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "runs", nargs="+", type=Path, help="demo output folders (the first gives report/ablation)"
    )
    ap.add_argument("--out", type=Path, required=True, help="record folder, e.g. docs/results/quick-cpu")
    args = ap.parse_args(argv)
    for p in record(args.runs, args.out):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
