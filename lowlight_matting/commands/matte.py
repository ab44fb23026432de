"""Cut out photos with a trained model: files, folders or globs in, one RGBA PNG per photo in OUT_DIR.

For every input ``OUT_DIR/<name>.png`` is written: RGBA with estimated foreground colours (``--no-foreground``
keeps the photo's colours), or with ``--alpha-only`` the grey alpha matte alone; ``--save-alpha`` adds the
grey matte as ``<name>_alpha.png``. Files found in a folder keep their sub-folder under OUT_DIR. When two
inputs would get the same output name (``a/cat.jpg`` and ``b/cat.png``), the later ones get the source
suffix or a number appended (``cat_png.png``, ``cat_2.png``) and the renaming is reported: nothing is
silently overwritten.

Safety: OUT_DIR may not be an input folder or inside one (nor the folder of an input file) unless
``--allow-inside-input``; an output is never written over an input file; existing outputs are not replaced
without ``--overwrite`` (the run stops before doing any work and lists them). Unreadable or unsupported
files are reported and skipped; the exit status is 1 when any file failed, 2 for a usage error.

Grey, RGBA (its alpha is ignored), 16-bit and EXIF-rotated inputs are accepted; outputs have the photo's
displayed (EXIF-rotated) size.

With ``--auto --lowlight-checkpoint CKPT2`` each photo is routed by its brightness (mean linear-light
luminance, see ``lowlight_matting.deploy.AutoMatter``): darker than ``--threshold`` goes to CKPT2.

Examples:
    ``lowlight-matting matte photos/ -o cutouts/ --checkpoint runs/demo/finetuned.pt``
    ``lowlight-matting matte "shoot/*.jpg" -o out/ --checkpoint base.pt --lowlight-checkpoint ll.pt --auto``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

NAME = "matte"
HELP = "cut out photos (files, folders, globs) into RGBA PNGs with a trained model"
ENV_CHECKPOINT = "LOWLIGHT_MATTING_CHECKPOINT"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", metavar="INPUT", nargs="+", help="image files, folders or glob patterns")
    parser.add_argument("-o", "--output", dest="out_dir", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--checkpoint",
        default=os.environ.get(ENV_CHECKPOINT),
        help=f"model: training checkpoint (.pt), exported weights (.safetensors) or ONNX graph (default: ${ENV_CHECKPOINT})",
    )
    parser.add_argument("--lowlight-checkpoint", help="the low-light model used with --auto for dark photos")
    parser.add_argument(
        "--auto", action="store_true", help="route each photo by brightness (needs --lowlight-checkpoint)"
    )
    parser.add_argument(
        "--threshold", type=float, default=None, help="brightness threshold for --auto (default: calibrated)"
    )
    parser.add_argument(
        "--alpha-only", action="store_true", help="write only the grey alpha matte as <name>.png"
    )
    parser.add_argument(
        "--save-alpha", action="store_true", help="also write the grey alpha matte as <name>_alpha.png"
    )
    parser.add_argument(
        "--no-foreground", action="store_true", help="skip foreground colour estimation (faster)"
    )
    parser.add_argument(
        "--long-side", type=int, default=512, help="working resolution's long side (default 512)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="inference precision (default auto: bf16 on GPUs that support it)",
    )
    parser.add_argument("--recursive", action="store_true", help="also look in sub-folders of input folders")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument(
        "--allow-inside-input", action="store_true", help="allow OUT_DIR inside an input folder"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _relative_name(path: Path, folders: list[Path]) -> Path:
    """Output-relative name of an input: its path below the input folder it was found in, else its name."""
    rp = path.resolve()
    for folder in folders:
        if rp.is_relative_to(folder):
            return rp.relative_to(folder)
    return Path(path.name)


def plan_outputs(
    files: list[Path], folders: list[Path], out_dir: Path, save_alpha: bool
) -> tuple[list[tuple[Path, Path, Path | None]], list[str]]:
    """(input, main output, alpha output or None) per file, with collisions resolved; plus rename notes.

    Names are compared case-insensitively (as on macOS/Windows file systems) and never equal an input path.
    """
    taken = {str(f.resolve()).lower() for f in files}
    plan, notes = [], []
    for f in files:
        rel = _relative_name(f, folders)
        stem = rel.stem
        candidates = [stem, f"{stem}_{rel.suffix.lstrip('.').lower()}"] if rel.suffix else [stem]
        candidates += [f"{stem}_{k}" for k in range(2, 10_000)]
        for base in candidates:
            main = out_dir / rel.parent / f"{base}.png"
            alpha = out_dir / rel.parent / f"{base}_alpha.png" if save_alpha else None
            keys = [str(main.resolve()).lower()] + ([str(alpha.resolve()).lower()] if alpha else [])
            if not any(k in taken for k in keys):
                taken.update(keys)
                break
        if base != stem:
            notes.append(f"{f} -> {main.relative_to(out_dir)} (name already used)")
        plan.append((f, main, alpha))
    return plan, notes


def _error(msg: str) -> int:
    print(f"matte: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from lowlight_matting.io import list_images, read_image, write_image

    if not args.checkpoint:
        return _error(f"no model: pass --checkpoint CKPT (or set ${ENV_CHECKPOINT})")
    if args.auto and not args.lowlight_checkpoint:
        return _error("--auto needs --lowlight-checkpoint (the model for dark photos)")
    if args.lowlight_checkpoint and not args.auto:
        return _error("--lowlight-checkpoint is used only with --auto (switch by brightness)")
    if args.alpha_only and args.save_alpha:
        return _error("--alpha-only and --save-alpha exclude each other")
    if args.long_side < 32:
        return _error(f"--long-side must be at least 32, got {args.long_side}")

    out_dir = args.out_dir.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        return _error(f"OUTPUT {args.out_dir} exists and is not a folder")
    folders = [Path(s).resolve() for s in args.inputs if Path(s).is_dir()]
    files = list_images(args.inputs, recursive=args.recursive)
    if not files:
        return _error(f"no images found in {' '.join(args.inputs)}")
    if not args.allow_inside_input:
        input_dirs = set(folders) | {f.resolve().parent for f in files if f.exists()}
        clash = [d for d in folders if out_dir.is_relative_to(d)] + [d for d in input_dirs if out_dir == d]
        if clash:
            return _error(
                f"OUTPUT {args.out_dir} is an input folder or inside one ({clash[0]}); refusing to write into the "
                "input folder (choose another folder or pass --allow-inside-input)"
            )

    plan, notes = plan_outputs(files, folders, out_dir, args.save_alpha)
    if not args.overwrite:
        existing = [p for _, main, alpha in plan for p in (main, alpha) if p is not None and p.exists()]
        if existing:
            shown = "\n".join(f"  {p}" for p in existing[:10]) + ("\n  ..." if len(existing) > 10 else "")
            return _error(
                f"{len(existing)} output file(s) exist already; nothing was written (pass --overwrite to "
                f"replace them):\n{shown}"
            )

    from lowlight_matting.checkpoint import CheckpointError
    from lowlight_matting.deploy import DEFAULT_THRESHOLD, AutoMatter, load_matter
    from lowlight_matting.export import ExportError

    fg = "none" if (args.no_foreground or args.alpha_only) else "ml"
    opts = {"device": args.device, "long_side": args.long_side, "precision": args.precision, "foreground": fg}
    try:
        normal = load_matter(args.checkpoint, name="normal", **opts)
        if args.auto:
            low = load_matter(args.lowlight_checkpoint, name="lowlight", **opts)
            threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
            matter = AutoMatter(normal, low, threshold=threshold)
        else:
            matter = normal
    except (CheckpointError, ExportError, FileNotFoundError, ValueError, OSError) as e:
        return _error(f"cannot load the model: {e}")

    failed: list[str] = []
    written = 0
    t0 = time.perf_counter()
    bar = tqdm(plan, desc="matte", unit="img", disable=args.quiet, file=sys.stderr)
    for src, main, alpha_path in bar:
        try:
            image = read_image(src)
            alpha = matter.predict(image)
            a8 = np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8)
            if args.alpha_only:
                write_image(main, a8, overwrite=args.overwrite)
            else:
                engine = (
                    matter if not args.auto else (low if matter.last_route.name == "lowlight" else normal)
                )
                write_image(main, engine.cutout(image, alpha=alpha), overwrite=args.overwrite)
                if alpha_path is not None:
                    write_image(alpha_path, a8, overwrite=args.overwrite)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # keep going: report every failure at the end
            failed.append(f"{src}: {e}")
            continue
        written += 1
    elapsed = time.perf_counter() - t0

    what = "alpha matte(s)" if args.alpha_only else "cut-out(s)"
    per = f", {elapsed / max(written, 1):.2f} s/image" if written else ""
    print(f"matte: wrote {written} {what} to {args.out_dir} in {elapsed:.1f} s{per}", file=sys.stderr)
    if args.auto:
        c = matter.counts
        print(
            f"matte: routes: normal {c.get('normal', 0)}, lowlight {c.get('lowlight', 0)} "
            f"(threshold {matter.threshold:.4f} mean linear luminance)",
            file=sys.stderr,
        )
    for line in notes:
        print(f"matte: renamed {line}", file=sys.stderr)
    if failed:
        print(f"matte: {len(failed)} file(s) failed:", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0
