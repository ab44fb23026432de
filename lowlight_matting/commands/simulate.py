"""Simulate low-light versions of every image in IN_DIR and write them to OUT_DIR (same relative names, PNG).

Never writes into IN_DIR (OUT_DIR may not be IN_DIR or inside it). Unreadable files are reported and
skipped; the exit status is non-zero when any file failed. Each image's parameters go to OUT_DIR/params.jsonl.

Example: ``lowlight-matting simulate photos/ photos_dark/ --seed 0 --preset default``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "simulate"
HELP = "simulate low-light versions of the photos in a folder (physically based simulator)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lowlight_matting.simulate import SIMULATOR_PRESETS

    parser.add_argument("in_dir", metavar="IN_DIR", type=Path, help="folder of photos (read only)")
    parser.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="where the low-light PNGs go")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed (default 0); each file's draw depends only on the seed and its relative path",
    )
    parser.add_argument(
        "--preset", choices=sorted(SIMULATOR_PRESETS), default="default", help="simulator preset"
    )
    parser.add_argument("--recursive", action="store_true", help="also process sub-folders")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _file_seed(seed: int, rel: str) -> int:
    import zlib

    return (seed * 1_000_003 + zlib.crc32(rel.encode("utf-8"))) % 2**32


def run(args: argparse.Namespace) -> int:
    import json

    from tqdm import tqdm

    from lowlight_matting.io import ImageReadError, list_images, read_image, write_image
    from lowlight_matting.simulate import LowLightSimulator

    in_dir, out_dir = args.in_dir.resolve(), args.out_dir.resolve()
    if not in_dir.is_dir():
        print(f"simulate: IN_DIR {args.in_dir} is not a folder", file=sys.stderr)
        return 2
    if out_dir.is_relative_to(in_dir):
        print(
            f"simulate: OUT_DIR {args.out_dir} is IN_DIR or inside it; refusing to write into the input folder",
            file=sys.stderr,
        )
        return 2
    files = list_images([in_dir], recursive=args.recursive)
    if not files:
        print(f"simulate: no images found in {args.in_dir}", file=sys.stderr)
        return 1
    sim = LowLightSimulator.from_preset(args.preset)
    failed: list[str] = []
    written = 0
    records = []
    for path in tqdm(files, desc="simulate", unit="img", disable=args.quiet, file=sys.stderr):
        rel = path.relative_to(in_dir).as_posix()
        target = (out_dir / rel).with_suffix(".png")
        try:
            image = read_image(path)
            sim.reseed(_file_seed(args.seed, rel))
            dark = sim(image)
            write_image(target, dark, overwrite=args.overwrite)
        except (ImageReadError, FileExistsError, ValueError, OSError) as e:
            failed.append(f"{rel}: {e}")
            continue
        written += 1
        records.append(
            {"file": rel, "output": target.relative_to(out_dir).as_posix(), "params": sim.last_params}
        )
    if records:
        log = out_dir / "params.jsonl"
        mode = "w" if args.overwrite or not log.exists() else "a"
        with open(log, mode, encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
    print(f"simulate: wrote {written} image(s) to {args.out_dir}", file=sys.stderr)
    if failed:
        print(f"simulate: {len(failed)} file(s) failed:", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0
