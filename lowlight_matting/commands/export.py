"""Export a trained model: an ONNX graph with dynamic batch/height/width and/or a safetensors weights file.

CKPT is a training checkpoint (.pt), exported weights (.safetensors) or a shipped model name
(``cvunet-base``, ``cvunet-lowlight``); it is read as data (validated config, nothing executed).

The ONNX graph takes ``image`` (B, 3, H, W) float32 RGB in [0, 1] and returns ``alpha`` (B, 1, H, W); it pads
to the encoder stride internally (reflect padding), so any H and W of at least stride / 2 + 1 work — 17 px
for the usual stride 32 (stored as ``min_side`` in the graph's metadata). ``lowlight_matting.deploy.Matter``
pads smaller photos itself and takes any size. ``--check`` runs the graph with onnxruntime at two sizes and
compares with PyTorch (exit status 1 when they disagree by more than ``--tolerance``).

The weights file holds only tensors plus the model config in its header (safe to load, no pickle); it can
be given to ``lowlight-matting matte --checkpoint`` like a training checkpoint. ``--dtype float16`` halves it
(loading casts back to float32).

Exit status: 0 done, 1 export or check failed, 2 usage error (bad option, unreadable CKPT, an output that is
a folder or exists without ``--overwrite``, an output that is the input).

Example: ``lowlight-matting export runs/demo/finetuned.pt --onnx finetuned.onnx --weights finetuned.safetensors``
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

NAME = "export"
HELP = "export a checkpoint to ONNX (dynamic shapes) and/or safetensors weights"


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0.0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        metavar="CKPT",
        help="training checkpoint (.pt), weights (.safetensors) or a shipped model name (cvunet-base, cvunet-lowlight)",
    )
    parser.add_argument("--onnx", type=Path, help="write an ONNX graph here")
    parser.add_argument("--weights", type=Path, help="write a .safetensors weights file here")
    parser.add_argument(
        "--dtype", choices=("float32", "float16", "bfloat16"), default="float32", help="weights file dtype"
    )
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    parser.add_argument(
        "--legacy",
        action="store_true",
        help="use the TorchScript ONNX exporter (about a second; deprecated) instead of torch.export (a minute)",
    )
    parser.add_argument(
        "--check", action="store_true", help="compare ONNX and PyTorch outputs with onnxruntime"
    )
    parser.add_argument(
        "--tolerance",
        type=_tolerance,
        default=1e-4,
        help="max abs alpha difference for --check (a finite number >= 0; default 1e-4)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _error(msg: str, code: int = 2) -> int:
    print(f"export: {msg}", file=sys.stderr)
    return code


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def run(args: argparse.Namespace) -> int:
    if not args.onnx and not args.weights:
        return _error("nothing to do; pass --onnx FILE and/or --weights FILE")
    outputs = [p for p in (args.onnx, args.weights) if p]
    real = {p: Path(os.path.realpath(p)) for p in outputs}  # realpath: never raises on a symlink loop
    if args.onnx and args.weights and real[args.onnx] == real[args.weights]:
        return _error("--onnx and --weights name the same file")
    if Path(os.path.realpath(args.checkpoint)) in real.values():
        return _error("refusing to write over the input checkpoint")
    for flag, p in (("--onnx", args.onnx), ("--weights", args.weights)):
        if p is not None and p.is_dir():
            return _error(f"{flag} {p}: is a folder; give a file name")
        if p is not None and os.path.lexists(p) and not args.overwrite:
            return _error(f"{flag} {p}: exists already (pass --overwrite to replace it)")

    from lowlight_matting.checkpoint import CheckpointError
    from lowlight_matting.export import ExportError, compare_onnx, export_onnx, save_weights
    from lowlight_matting.weights import load_model

    try:
        model = load_model(args.checkpoint)
    except (CheckpointError, ExportError, FileNotFoundError, ValueError, OSError) as e:
        msg = _first_line(e)
        return _error(msg if str(args.checkpoint) in msg else f"cannot load {args.checkpoint}: {msg}")
    if args.weights:
        try:
            p = save_weights(model, args.weights, dtype=args.dtype, overwrite=args.overwrite)
        except (ExportError, OSError) as e:
            return _error(f"--weights {args.weights}: {_first_line(e)}", 1)
        print(f"export: wrote weights {p} ({p.stat().st_size / 1e6:.1f} MB, {args.dtype})", file=sys.stderr)
    if args.onnx:
        if not args.legacy:
            print(
                "export: exporting with torch.export (dynamic shapes); this can take a minute ...",
                file=sys.stderr,
            )
        try:
            p = export_onnx(model, args.onnx, opset=args.opset, legacy=args.legacy, overwrite=args.overwrite)
        except (ExportError, RuntimeError, OSError, ValueError) as e:
            return _error(f"ONNX export failed: {_first_line(e)}", 1)
        print(f"export: wrote ONNX {p} ({p.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
        if args.check:
            try:
                rows = compare_onnx(model, p)
            except (ExportError, RuntimeError, ValueError) as e:
                return _error(f"--check: {_first_line(e)}", 1)
            worst = max(r["max_abs_diff"] for r in rows)
            for r in rows:
                print(
                    f"export: check {r['input']}: max |onnx - torch| = {r['max_abs_diff']:.2e}",
                    file=sys.stderr,
                )
            if not worst <= args.tolerance:  # a NaN difference fails too
                return _error(f"ONNX and PyTorch disagree ({worst:.2e} > {args.tolerance:g})", 1)
    return 0
