"""Ship a trained model: its weights in the package, its record in docs/results/, its model card.

Usage (after ``lowlight-matting train --config configs/cvunet_base.yaml`` finished in ``runs/cvunet_base``)::

    python tools/record_training.py runs/cvunet_base --name cvunet-base --commit 9f34d9e \\
        --time-log runs/base-train.err

1. the run's final model (``last.pt``) is written to ``lowlight_matting/weights/<file>.safetensors`` in float16
   with its model config in the metadata (:func:`lowlight_matting.export.save_weights`);
2. the *shipped* file is loaded back and measured on the course's test composites (normal and simulated low
   light; whole image and unknown region), and on the first 32 of them for ``tests/test_weights.py``;
3. ``docs/results/<name>/`` receives ``record.json`` (command, commit, seeds, steps, wall time, hardware,
   metrics), its rendered ``README.md``, and the run's ``metrics.csv``, ``curves.png`` and ``config.yaml``;
   the model card ``lowlight_matting/weights/<file>.md`` is rendered from the same JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

MODELS = {
    "cvunet-base": {
        "title": "the original CV-UNet, trained by the project",
        "summary": "The course's base matting model: a CV-UNet with the article's light encoder "
        "(MobileNetV2), trained from scratch under normal light on the course's synthetic composites at 128², "
        "on a 2-core CPU. It is the starting point of the article's low-light fine-tune (`make demo`).",
        "commands": ["lowlight-matting train --config configs/cvunet_base.yaml"],
        "limits": [
            "Trained on synthetic composites (procedural foregrounds on photos and textures) at 128², never "
            "on photographs of people: expect rough mattes on real photos.",
            "Trained from random initialisation (no ImageNet weights can be downloaded here).",
            "Normal light only: it has not seen dark or noisy images (that is what `cvunet-lowlight` adds).",
        ],
    },
    "cvunet-lowlight": {
        "title": "the article's low-light fine-tune of cvunet-base",
        "summary": "`cvunet-base` fine-tuned with the article's recipe: a Zero-DCE++ front end pre-trained on "
        "darkened training images with its non-reference losses, half of each batch darkened by the "
        "simulator, MSE + SSIM + Sobel edge loss with the brightness-dependent weight, and the article's three "
        "stages of unfreezing, at 128² on a 2-core CPU.",
        "commands": ["lowlight-matting train --config configs/cvunet_lowlight.yaml"],
        "limits": [
            "Trained on synthetic composites at 128² darkened by the course's simulator, not on real night "
            "photos: the low-light numbers measure adaptation to that simulator.",
            "Under normal light it is no better than `cvunet-base` and blurs edges a little more (a higher "
            "gradient error on the normal-light test set): use it for dark photos; `lowlight-matting matte` "
            "without `--checkpoint` routes each photo to `cvunet-base` or this model by its brightness.",
        ],
    },
}


def _time_log(path: Path | None) -> tuple[float, float, str]:
    """Wall and CPU seconds summed over the ``/usr/bin/time -v`` blocks of ``path``, and a note."""
    if path is None or not path.is_file():
        return float("nan"), float("nan"), "not measured"
    text = path.read_text(errors="replace")
    wall = cpu = 0.0
    n = 0
    for m in re.finditer(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text):
        parts = [float(x) for x in m.group(1).split(":")]
        wall += sum(p * 60**i for i, p in enumerate(reversed(parts)))
        n += 1
    for m in re.finditer(r"(User|System) time \(seconds\): ([\d.]+)", text):
        cpu += float(m.group(2))
    note = "one launch" if n == 1 else f"{n} launches (--resume)"
    return wall, cpu, f"{note}, measured by /usr/bin/time; the machine was shared with other work"


def _loop_seconds(hist: list[dict], cfg) -> float:
    """Seconds spent in the training loop, summed from the history: per pass, images / ``img_per_s``, where a
    pass of stage k holds ``steps_k / passes_k`` batches (validation and checkpoints not counted)."""
    total = 0.0
    for k, stage in enumerate(cfg.stages, start=1):
        rows = [r for r in hist if int(r["stage"]) == k]
        if not rows or stage.steps is None:
            continue
        images = stage.steps / len(rows) * cfg.data.batch_size
        total += sum(images / float(r["img_per_s"]) for r in rows if float(r["img_per_s"]) > 0)
    return total


def _hardware(run_dir: Path, describe_device) -> str:
    """Where the run trained: its ``environment.json`` (written by ``train()``); runs made before that file
    existed get this machine's description, said to be the recorder's."""
    try:
        env = json.loads((run_dir / "environment.json").read_text(encoding="utf-8"))
        procs = int(env.get("processes", 1))
        return str(env["device"]) + (f", {procs} processes" if procs > 1 else "")
    except (OSError, ValueError, KeyError, TypeError):
        return describe_device("cpu") + " (the recorder's machine: the run folder has no environment.json)"


def record(
    run_dir: Path,
    name: str,
    commit: str,
    time_log: Path | None,
    out_root: Path,
    weights_dir: Path | None = None,
    n_test: int = 200,
    note: str | None = None,
) -> list[Path]:
    import torch
    import yaml

    from lowlight_matting.device import describe_device
    from lowlight_matting.experiment import evaluate_on, make_test_sets
    from lowlight_matting.experiment.run import TEST_SEED, TEST_SIM_SEED
    from lowlight_matting.export import save_weights
    from lowlight_matting.io import atomic_write, write_json
    from lowlight_matting.train import load_config, load_history
    from lowlight_matting.weights import SHIPPED, load_model
    from lowlight_matting.weights.card import render_card, render_record

    info = MODELS[name]
    cfg = load_config(run_dir / "config.yaml")
    model = load_model(run_dir / "last.pt")
    weights = (weights_dir or REPO / "lowlight_matting" / "weights") / SHIPPED[name]
    meta = {"name": name, "commit": commit, "command": info["commands"][-1]}
    save_weights(model, weights, dtype="float16", overwrite=True, metadata=meta)
    shipped = load_model(weights)  # measure what users get: the float16-stored file, back in float32
    tests = make_test_sets(n_test, cfg.data.size, progress=True)
    ev = evaluate_on(shipped, tests, "cpu", progress=True)
    n_sub = min(32, n_test)
    metrics = {
        light: {region: ev[light][region]["mean"] for region in ("whole", "unknown")}
        for light in ("normal", "lowlight")
    }
    subset = {
        light: {
            region: {k: float(np.mean(v[:n_sub])) for k, v in ev[light][region]["per_image"].items()}
            for region in ("whole", "unknown")
        }
        for light in ("normal", "lowlight")
    }
    hist = load_history(run_dir)
    wall, cpu, wall_note = _time_log(time_log)
    if note:
        wall_note = f"{wall_note}; {note}"
    steps = int(torch.load(run_dir / "last.pt", weights_only=True)["step"])
    rec = {
        "name": name,
        "file": SHIPPED[name],
        "file_mb": round(weights.stat().st_size / 2**20, 2),
        "dtype": "float16",
        "title": info["title"],
        "summary": info["summary"],
        "commands": info["commands"],
        "commit": commit,
        "hardware": _hardware(run_dir, describe_device),
        "versions": f"torch {torch.__version__}, Python {platform.python_version()}",
        "model_config": dict(model.config),
        "parameters": sum(p.numel() for p in model.parameters()),
        "training": {
            "seed": cfg.seed,
            "data_seed": cfg.seed if cfg.data.seed is None else cfg.data.seed,
            "samples": cfg.data.length,
            "size": cfg.data.size,
            "batch_size": cfg.data.batch_size,
            "p_lowlight": cfg.data.p_lowlight if cfg.data.lowlight != "off" else 0.0,
            "steps": steps,
            "passes": len(hist),
            "stages": [
                f"{s.name} {s.steps if s.steps is not None else s.epochs} steps, lr {s.lr:g}"
                for s in cfg.stages
            ],
            "wall_seconds": round(wall, 1),
            "cpu_seconds": round(cpu, 1),
            "wall_note": wall_note,
            "loop_seconds": round(_loop_seconds(hist, cfg), 1),
            "final": {
                k: hist[-1].get(k) for k in ("train_total", "val_mse", "val_normal_mse") if k in hist[-1]
            },
        },
        "test": {
            "n": len(tests.normal),
            "size": cfg.data.size,
            "data_seed": TEST_SEED,
            "sim_seed": TEST_SIM_SEED,
            "metrics": metrics,
        },
        "subset": {"n": n_sub, "metrics": subset},
        "limits": info["limits"],
    }
    out = out_root / name
    out.mkdir(parents=True, exist_ok=True)
    written = [write_json(out / "record.json", rec)]
    written.append(atomic_write(out / "README.md", render_record(rec)))
    written.append(atomic_write(weights.with_suffix(".md"), render_card(rec)))
    for f in ("metrics.csv", "curves.png"):
        shutil.copyfile(run_dir / f, out / f)
        written.append(out / f)
    atomic_write(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    written += [out / "config.yaml", weights]
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "run", type=Path, help="the training run folder (holds config.yaml, metrics.csv, last.pt)"
    )
    ap.add_argument("--name", required=True, choices=sorted(MODELS))
    ap.add_argument("--commit", required=True, help="the commit the run was trained at")
    ap.add_argument("--time-log", type=Path, help="the /usr/bin/time -v output of the run's launches")
    ap.add_argument("--note", help="said after the wall time (e.g. a launch the time log does not cover)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "results")
    ap.add_argument(
        "--weights-dir", type=Path, help="where the weights go (default: lowlight_matting/weights)"
    )
    ap.add_argument("--n-test", type=int, default=200, help="test composites (default: the course's 200)")
    args = ap.parse_args(argv)
    if not (args.run / "last.pt").is_file():
        print(f"record_training: {args.run}: no last.pt (is the run finished?)", file=sys.stderr)
        return 2
    for p in record(
        args.run, args.name, args.commit, args.time_log, args.out, args.weights_dir, args.n_test, args.note
    ):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
