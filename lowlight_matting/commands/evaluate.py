"""Evaluate one or more models on a test set and write the article's table, per-image metrics and figures.

Writes into OUT: ``metrics.csv`` (one row per model × image), ``summary.md`` (the conventions, one table per
test set in the article's shape with relative changes against the first model, results by input
brightness, the figures), ``brightness.md``, ``results.json`` and ``figures/`` (input / ground truth / each
model's alpha / error maps for the hardest images, zoomed on hair and edges; SAD by brightness).

A model is anything ``lowlight-matting matte`` takes: a training checkpoint (``.pt``), exported weights
(``.safetensors``), an exported ONNX graph (``.onnx``, run with onnxruntime on the CPU at each image's own
size), or a shipped model name (``cvunet-base``, ``cvunet-lowlight``). A bad model, ``--device`` or data
folder is reported in one line and exits with status 2.

Examples::

    lowlight-matting evaluate --checkpoint runs/demo/baseline.pt --checkpoint runs/demo/finetuned.pt \\
        --data synthetic --lowlight --n 50 --size 256 --out runs/eval
    lowlight-matting evaluate --checkpoint base=a.pt --checkpoint ft=b.onnx --data path/to/test \\
        --trimap auto --out ev
    lowlight-matting evaluate --checkpoint cvunet-base --checkpoint cvunet-lowlight --lowlight-only --out ev
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "evaluate"
HELP = "score models (SAD, MSE, Grad, Conn) on a test set; write the table, per-image CSV and figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        metavar="[NAME=]MODEL",
        help="a model: training checkpoint (.pt), exported weights (.safetensors), ONNX graph (.onnx) or a "
        "shipped model name (cvunet-base, cvunet-lowlight). Repeat for several; the first is the baseline of "
        "the relative changes. NAME= sets the model's name in the tables (default: the file's stem)",
    )
    parser.add_argument(
        "--data",
        default="synthetic",
        metavar="DIR|synthetic|samples",
        help="test images: procedural 'synthetic' ones (default), the committed 'samples', or a folder with "
        "image/ + alpha/ (or fg/ + alpha/ + bg/)",
    )
    parser.add_argument(
        "--layout",
        default="auto",
        choices=["auto", "image_alpha", "fg_alpha_bg"],
        help="how to read a DIR: auto (default: a foreground folder means fg/ + alpha/ + bg/), image_alpha "
        "(photos + mattes, e.g. AM-2k's train/, which also holds fg/) or fg_alpha_bg",
    )
    parser.add_argument(
        "--lowlight",
        action="store_true",
        help="also evaluate the same images through the low-light simulator (fixed --seed)",
    )
    parser.add_argument(
        "--lowlight-only", action="store_true", help="evaluate only the simulated low-light version"
    )
    parser.add_argument(
        "--trimap",
        default="none",
        metavar="auto|none|DIR",
        help="none: count the whole image (default, trimap-free convention); auto: the unknown band of a "
        "trimap derived from the ground truth; DIR: trimap PNGs named like the images",
    )
    parser.add_argument(
        "--n", type=int, default=16, help="number of test images (default 16; all of DIR if 0)"
    )
    parser.add_argument("--size", type=int, default=256, help="side of the synthetic images (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data and the simulation")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (default), cpu, cuda, cuda:N or mps (ONNX graphs run on the CPU)",
    )
    parser.add_argument("--batch-size", type=int, default=4, help="images per forward pass (default 4)")
    parser.add_argument(
        "--figures",
        type=int,
        default=4,
        metavar="K",
        help="hardest images per figure (default 4; 0: no figures)",
    )
    parser.add_argument(
        "--mse-scale",
        type=float,
        default=1.0,
        choices=[1.0, 1000.0],
        help="show MSE raw (1, default) or ×10³ (1000); the table says which",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_checkpoints(specs: list[str]) -> dict[str, str]:
    """``["a.pt", "ft=b.pt", "cvunet-base"]`` → ``{"a": "a.pt", "ft": "b.pt", "cvunet-base": "cvunet-base"}``
    (names made unique as :func:`lowlight_matting.evaluation.unique_names` does)."""
    from lowlight_matting.evaluation import unique_names

    labels, sources = [], []
    for spec in specs:
        name, sep, source = spec.partition("=")
        if not sep or not name or Path(spec).exists():
            name, source = Path(spec).stem or "model", spec
        labels.append(name)
        sources.append(source)
    return dict(zip(unique_names(labels), sources, strict=True))


def _error(msg: str) -> int:
    print(f"evaluate: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from lowlight_matting.checkpoint import CheckpointError
    from lowlight_matting.device import resolve_device
    from lowlight_matting.evaluation import evaluate_checkpoints, is_model_path, load_models, make_test_sets
    from lowlight_matting.export import ExportError

    try:
        device = resolve_device(args.device)
    except ValueError as e:
        return _error(str(e))
    sources = parse_checkpoints(args.checkpoint)
    missing = [s for s in sources.values() if is_model_path(s) and not Path(s).is_file()]
    if missing:
        return _error(f"model file not found: {', '.join(missing)}")
    try:
        models = load_models(sources, device)
    except (CheckpointError, ExportError, FileNotFoundError, ValueError, KeyError, OSError) as e:
        return _error(f"cannot load the model: {e}")
    trimap = None if args.trimap in ("none", "") else args.trimap
    try:
        sets = make_test_sets(
            args.data,
            lowlight=args.lowlight or args.lowlight_only,
            normal=not args.lowlight_only,
            n=None if args.n == 0 and args.data not in ("synthetic",) else args.n,
            size=args.size,
            seed=args.seed,
            layout=args.layout,
        )
        results = evaluate_checkpoints(
            models,
            sets,
            out_dir=args.out,
            device=device,
            trimap=trimap,
            mse_scale=args.mse_scale,
            n_figure=args.figures,
            batch_size=args.batch_size,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as e:
        return _error(str(e))
    for ts, table in results["tables"].items():
        print(f"\n{ts}:\n{table}")
    print(f"\n{results['conventions']}\n")
    print(
        f"wrote {results['files']['summary']}, {results['files']['csv']} and {len(results['files']['figures'])} figures"
    )
    return 0
