"""Evaluate one or more checkpoints on a test set and write the article's table, per-image metrics and figures.

Writes into OUT: ``metrics.csv`` (one row per model × image), ``summary.md`` (the conventions, one table per
test set in the article's shape with relative changes against the first checkpoint, results by input
brightness, the figures), ``brightness.md``, ``results.json`` and ``figures/`` (input / ground truth / each
model's alpha / error maps for the hardest images, zoomed on hair and edges; SAD by brightness).

Examples::

    lowlight-matting evaluate --checkpoint runs/demo/baseline.pt --checkpoint runs/demo/finetuned.pt \\
        --data synthetic --lowlight --n 50 --size 256 --out runs/eval
    lowlight-matting evaluate --checkpoint base=a.pt --checkpoint ft=b.pt --data path/to/test --trimap auto --out ev
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "evaluate"
HELP = "score checkpoints (SAD, MSE, Grad, Conn) on a test set; write the table, per-image CSV and figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        metavar="[NAME=]CKPT",
        help="a checkpoint file (repeat for several; the first is the baseline of the relative changes). "
        "NAME= sets the model's name in the tables (default: the file's stem)",
    )
    parser.add_argument(
        "--data",
        default="synthetic",
        metavar="DIR|synthetic|samples",
        help="test images: procedural 'synthetic' ones (default), the committed 'samples', or a folder with "
        "image/ + alpha/ (or fg/ + alpha/ + bg/)",
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
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1 ...")
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
    """``["a.pt", "ft=b.pt"]`` → ``{"a": "a.pt", "ft": "b.pt"}`` (stems made unique)."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or Path(spec).exists():
            name, path = Path(spec).stem or "model", spec
        base, k = name, 2
        while name in out:
            name, k = f"{base}_{k}", k + 1
        out[name] = path
    return out


def run(args: argparse.Namespace) -> int:
    from lowlight_matting.checkpoint import CheckpointError
    from lowlight_matting.evaluate import evaluate_checkpoints, make_test_sets

    ckpts = parse_checkpoints(args.checkpoint)
    missing = [p for p in ckpts.values() if not Path(p).is_file()]
    if missing:
        print(f"evaluate: checkpoint not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    trimap = None if args.trimap in ("none", "") else args.trimap
    try:
        sets = make_test_sets(
            args.data,
            lowlight=args.lowlight or args.lowlight_only,
            normal=not args.lowlight_only,
            n=None if args.n == 0 and args.data not in ("synthetic",) else args.n,
            size=args.size,
            seed=args.seed,
        )
        results = evaluate_checkpoints(
            ckpts,
            sets,
            out_dir=args.out,
            device=args.device,
            trimap=trimap,
            mse_scale=args.mse_scale,
            n_figure=args.figures,
            batch_size=args.batch_size,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
    except (CheckpointError, FileNotFoundError, FileExistsError, ValueError, KeyError) as e:
        print(f"evaluate: {e}", file=sys.stderr)
        return 2
    for ts, table in results["tables"].items():
        print(f"\n{ts}:\n{table}")
    print(f"\n{results['conventions']}\n")
    print(
        f"wrote {results['files']['summary']}, {results['files']['csv']} and {len(results['files']['figures'])} figures"
    )
    return 0
