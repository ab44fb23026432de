"""Write a synthetic matting dataset to disk (``image/`` + ``alpha/`` PNGs, optionally ``fg/`` + ``bg/``).

Sample ``i`` is ``SyntheticMattingDataset(n, size, seed)[i]``, saved as ``NNNNN.png`` in every folder, so a
folder written here reads back with ``FolderMattingDataset(OUT_DIR)`` (layout ``image_alpha``) to the same
pixels. Existing files are never replaced unless ``--overwrite`` is given.

Example:
    lowlight-matting make-data runs/synthetic --n 100 --size 256 --seed 0 --with-fg-bg
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "make-data"
HELP = "write a synthetic matting dataset (image/ + alpha/ PNGs) to a folder"


def _positive(text: str) -> int:
    v = int(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "out_dir", metavar="OUT_DIR", type=Path, help="folder to write into (created if missing)"
    )
    parser.add_argument("--n", type=_positive, default=100, help="number of samples (default 100)")
    parser.add_argument("--size", type=_positive, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument(
        "--with-fg-bg", action="store_true", help="also write fg/ and bg/ (Composition-1k layout)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace files that exist already")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def file_name(index: int) -> str:
    """The file name of sample ``index`` (same in every folder)."""
    return f"{index:05d}.png"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lowlight_matting.data import SyntheticMattingDataset
    from lowlight_matting.io import write_image

    if args.size < 8:
        print(f"make-data: --size must be at least 8, got {args.size}", file=sys.stderr)
        return 2
    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        print(f"make-data: {out} exists and is not a folder", file=sys.stderr)
        return 2
    folders = ["image", "alpha"] + (["fg", "bg"] if args.with_fg_bg else [])
    targets = [out / f / file_name(i) for i in range(args.n) for f in folders]
    existing = [p for p in targets if p.exists()]
    if existing and not args.overwrite:
        print(
            f"make-data: {len(existing)} file(s) exist already, e.g. {existing[0]}; "
            "pass --overwrite to replace them or choose another OUT_DIR",
            file=sys.stderr,
        )
        return 1

    ds = SyntheticMattingDataset(args.n, size=args.size, seed=args.seed)
    for i in tqdm(range(args.n), desc=f"make-data {out}", unit="sample", disable=args.quiet, file=sys.stderr):
        item = ds[i]
        for f in folders:
            write_image(out / f / file_name(i), item[f], overwrite=args.overwrite)
    print(
        f"wrote {args.n} samples ({', '.join(f + '/' for f in folders)}) of {args.size}x{args.size} to {out}"
    )
    return 0
