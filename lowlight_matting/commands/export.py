"""Export a trained model: an ONNX graph with dynamic batch/height/width and/or a safetensors weights file.

The ONNX graph takes ``image`` (B, 3, H, W) float32 RGB in [0, 1] and returns ``alpha`` (B, 1, H, W); it pads
to the encoder stride internally, so any size works. ``--check`` runs it with onnxruntime at two sizes and
compares with PyTorch (exit status 1 when they disagree by more than ``--tolerance``).

The weights file holds only tensors plus the model config in its header (safe to load, no pickle); it can
be given to ``lowlight-matting matte --checkpoint`` like a training checkpoint.

Example: ``lowlight-matting export runs/demo/finetuned.pt --onnx finetuned.onnx --weights finetuned.safetensors``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "export"
HELP = "export a checkpoint to ONNX (dynamic shapes) and/or safetensors weights"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", metavar="CKPT", help="training checkpoint (.pt) or weights (.safetensors)"
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
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max abs alpha difference for --check")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def run(args: argparse.Namespace) -> int:
    if not args.onnx and not args.weights:
        print("export: nothing to do; pass --onnx FILE and/or --weights FILE", file=sys.stderr)
        return 2
    outputs = [p for p in (args.onnx, args.weights) if p]
    if args.onnx and args.weights and args.onnx.resolve() == args.weights.resolve():
        print("export: --onnx and --weights name the same file", file=sys.stderr)
        return 2
    if Path(args.checkpoint).resolve() in {p.resolve() for p in outputs}:
        print("export: refusing to write over the input checkpoint", file=sys.stderr)
        return 2
    if not args.overwrite:
        existing = [p for p in outputs if p.exists()]
        if existing:
            print(f"export: {existing[0]} exists already (pass --overwrite to replace it)", file=sys.stderr)
            return 2

    from lowlight_matting.checkpoint import CheckpointError
    from lowlight_matting.deploy import load_model
    from lowlight_matting.export import ExportError, compare_onnx, export_onnx, save_weights

    try:
        model = load_model(args.checkpoint)
    except (CheckpointError, ExportError, FileNotFoundError, ValueError, OSError) as e:
        print(f"export: cannot load {args.checkpoint}: {e}", file=sys.stderr)
        return 2
    if args.weights:
        p = save_weights(model, args.weights, dtype=args.dtype, overwrite=args.overwrite)
        print(f"export: wrote weights {p} ({p.stat().st_size / 1e6:.1f} MB, {args.dtype})", file=sys.stderr)
    if args.onnx:
        if not args.legacy:
            print(
                "export: exporting with torch.export (dynamic shapes); this can take a minute ...",
                file=sys.stderr,
            )
        try:
            p = export_onnx(model, args.onnx, opset=args.opset, legacy=args.legacy, overwrite=args.overwrite)
        except (ExportError, RuntimeError) as e:
            print(f"export: ONNX export failed: {e}", file=sys.stderr)
            return 1
        print(f"export: wrote ONNX {p} ({p.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
        if args.check:
            rows = compare_onnx(model, p)
            worst = max(r["max_abs_diff"] for r in rows)
            for r in rows:
                print(
                    f"export: check {r['input']}: max |onnx - torch| = {r['max_abs_diff']:.2e}",
                    file=sys.stderr,
                )
            if worst > args.tolerance:
                print(
                    f"export: ONNX and PyTorch disagree ({worst:.2e} > {args.tolerance:g})", file=sys.stderr
                )
                return 1
    return 0
