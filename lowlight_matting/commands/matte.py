"""Cut out photos with a trained model: files, folders or globs in, one RGBA PNG per photo in OUT_DIR.

For every input ``OUT_DIR/<name>.png`` is written: RGBA with estimated foreground colours (``--no-foreground``
keeps the photo's colours), or with ``--alpha-only`` the grey alpha matte alone; ``--save-alpha`` adds the
grey matte as ``<name>_alpha.png``. Files found in a folder keep their sub-folder under OUT_DIR. When two
inputs would get the same output name (``a/cat.jpg`` and ``b/cat.png``), the later ones get the source
suffix or a number appended (``cat_png.png``, ``cat_2.png``) and the renaming is reported: nothing is
silently overwritten.

Models: with no ``--checkpoint`` (and no ``$LOWLIGHT_MATTING_CHECKPOINT``), the two models shipped with the
package, routed by brightness: photos darker than ``--threshold`` (mean linear-light luminance, default
``lowlight_matting.color.DARK_THRESHOLD`` = 0.0732) go to ``cvunet-lowlight``, others to ``cvunet-base``.
``--checkpoint`` takes a shipped name, a training checkpoint (.pt), exported weights (.safetensors) or an
ONNX graph; ``--auto --lowlight-checkpoint CKPT2`` routes dark photos to CKPT2. Nothing in a model file is
executed (see README, "Reliability and safety").

Safety: OUT_DIR may not be an input folder or inside one (nor the folder of an input file) unless
``--allow-inside-input`` — real paths are compared, so a symlinked sub-folder of OUT_DIR that leads into an
input folder is refused too; an output is never written over an input file; existing outputs are not
replaced without ``--overwrite`` (the run stops before doing any work and lists them). Images over
``--max-pixels`` (read from the header, before decoding), unreadable, unsupported or non-regular files
(FIFOs, devices), symlink loops and symlinked sub-folders under ``--recursive`` are reported by name and
skipped. Exit status: 0 when every photo was written, 1 when any failed (the others are written), 2 for a
usage error (bad option, no model, no images, unsafe output folder) — then nothing is written.

Grey, RGBA (its alpha is ignored), 16-bit and EXIF-rotated inputs are accepted; outputs have the photo's
displayed (EXIF-rotated) size.

Examples:
    ``lowlight-matting matte photos/ -o cutouts/``  (the shipped models, routed by brightness)
    ``lowlight-matting matte photos/ -o cutouts/ --checkpoint runs/demo/finetuned.pt``
    ``lowlight-matting matte "shoot/*.jpg" -o out/ --checkpoint base.pt --lowlight-checkpoint ll.pt --auto``
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

NAME = "matte"
HELP = "cut out photos (files, folders, globs) into RGBA PNGs with a trained model"
ENV_CHECKPOINT = "LOWLIGHT_MATTING_CHECKPOINT"
DEFAULT_MAX_PIXELS = 100_000_000  # = lowlight_matting.io.DEFAULT_MAX_PIXELS (kept here: --help stays light)


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1) (mean linear luminance), got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", metavar="INPUT", nargs="+", help="image files, folders or glob patterns")
    parser.add_argument("-o", "--output", dest="out_dir", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--checkpoint",
        default=os.environ.get(ENV_CHECKPOINT),
        help="model: a shipped name (cvunet-base, cvunet-lowlight), a training checkpoint (.pt), exported "
        f"weights (.safetensors) or an ONNX graph (default: ${ENV_CHECKPOINT}; unset: the two shipped "
        "models routed by brightness)",
    )
    parser.add_argument("--lowlight-checkpoint", help="the low-light model used with --auto for dark photos")
    parser.add_argument(
        "--auto", action="store_true", help="route each photo by brightness (needs --lowlight-checkpoint)"
    )
    parser.add_argument(
        "--threshold",
        type=_threshold,
        default=None,
        help="brightness threshold for routing, mean linear luminance in (0, 1) (default: "
        "lowlight_matting.color.DARK_THRESHOLD, 0.0732)",
    )
    parser.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse photos larger than this many pixels, read from the file header (default {DEFAULT_MAX_PIXELS:_})",
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
    parser.add_argument(
        "--device", default=None, help="auto, cpu, cuda, cuda:1, mps (default auto: CUDA when available)"
    )
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


def _real(path: Path) -> Path:
    """``path`` with every symlink resolved; never raises (``Path.resolve`` raises on a symlink loop)."""
    return Path(os.path.realpath(path))


def _relative_name(path: Path, folders: list[Path]) -> Path:
    """Output-relative name of an input: its path below the input folder it was found in, else its name.

    Compared lexically (absolute, symlinks not resolved): a symlinked file is named after the link, not
    after its target."""
    ap = Path(os.path.abspath(path))
    for folder in folders:
        af = Path(os.path.abspath(folder))
        if ap.is_relative_to(af):
            return ap.relative_to(af)
    return Path(path.name)


def plan_outputs(
    files: list[Path], folders: list[Path], out_dir: Path, save_alpha: bool
) -> tuple[list[tuple[Path, Path, Path | None]], list[str]]:
    """(input, main output, alpha output or None) per file, with collisions resolved; plus rename notes.

    Names are compared case-insensitively (as on macOS/Windows file systems) by their real paths (symlinks
    resolved), and never equal an input path.
    """
    taken = {str(_real(f)).lower() for f in files}
    plan, notes = [], []
    for f in files:
        rel = _relative_name(f, folders)
        stem = rel.stem
        candidates = [stem, f"{stem}_{rel.suffix.lstrip('.').lower()}"] if rel.suffix else [stem]
        candidates += [f"{stem}_{k}" for k in range(2, 10_000)]
        for base in candidates:
            main = out_dir / rel.parent / f"{base}.png"
            alpha = out_dir / rel.parent / f"{base}_alpha.png" if save_alpha else None
            keys = [str(_real(main)).lower()] + ([str(_real(alpha)).lower()] if alpha else [])
            if not any(k in taken for k in keys):
                taken.update(keys)
                break
        if base != stem:
            notes.append(f"{f} -> {main.relative_to(out_dir)} (name already used)")
        plan.append((f, main, alpha))
    return plan, notes


def inside_inputs(path: Path, folders: list[Path], file_dirs: set[Path]) -> Path | None:
    """The input folder ``path`` would really land in (symlinks resolved), or None.

    ``folders``: real input folders (nothing may be written anywhere below them); ``file_dirs``: real
    folders of input files (nothing may be written directly in them).
    """
    real = _real(path)
    for d in folders:
        if real.is_relative_to(d):
            return d
    return real.parent if real.parent in file_dirs else None


def _error(msg: str) -> int:
    print(f"matte: {msg}", file=sys.stderr)
    return 2


def _one_line(src: Path, e: BaseException) -> str:
    """A failure as one line that names the file."""
    lines = str(e).strip().splitlines()
    msg = lines[0] if lines else type(e).__name__
    if isinstance(e, MemoryError):
        msg = "not enough memory for this photo (try a smaller --long-side or --max-pixels)"
    return msg if str(src) in msg else f"{src}: {msg}"


def _load_models(args: argparse.Namespace, device) -> tuple[object, str]:
    """The matter for this run and a description of it; raises with a one-line message."""
    from lowlight_matting.color import DARK_THRESHOLD
    from lowlight_matting.deploy import AutoMatter, load_auto_matter, load_matter

    fg = "none" if (args.no_foreground or args.alpha_only) else "ml"
    opts = {"device": device, "long_side": args.long_side, "precision": args.precision, "foreground": fg}
    threshold = DARK_THRESHOLD if args.threshold is None else args.threshold
    if not args.checkpoint:  # the shipped pair, routed by brightness (--auto or not)
        matter = load_auto_matter("cvunet-base", "cvunet-lowlight", threshold=threshold, **opts)
        return matter, "the shipped models cvunet-base / cvunet-lowlight"
    normal = load_matter(args.checkpoint, name="normal", **opts)
    if args.auto:
        low = load_matter(args.lowlight_checkpoint, name="lowlight", **opts)
        return AutoMatter(normal, low, threshold=threshold), f"{args.checkpoint} / {args.lowlight_checkpoint}"
    return normal, str(args.checkpoint)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from lowlight_matting.checkpoint import CheckpointError
    from lowlight_matting.deploy import AutoMatter
    from lowlight_matting.device import resolve_device
    from lowlight_matting.export import ExportError
    from lowlight_matting.io import read_image, scan_images, write_image

    if args.auto and args.checkpoint and not args.lowlight_checkpoint:
        return _error("--auto needs --lowlight-checkpoint (the model for dark photos)")
    if args.lowlight_checkpoint and not args.auto:
        return _error("--lowlight-checkpoint is used only with --auto (switch by brightness)")
    if args.lowlight_checkpoint and not args.checkpoint:
        return _error("--lowlight-checkpoint needs --checkpoint (the model for normal photos)")
    if args.alpha_only and args.save_alpha:
        return _error("--alpha-only and --save-alpha exclude each other")
    if args.long_side < 32:
        return _error(f"--long-side must be at least 32, got {args.long_side}")
    try:
        device = resolve_device(args.device)
    except ValueError as e:
        return _error(f"--device: {str(e).removeprefix('device: ')}")
    if args.precision == "fp16" and device.type != "cuda":
        return _error(f"--precision fp16 needs a CUDA GPU (this run uses {device}); use bf16 or fp32")

    out_dir = _real(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        return _error(f"OUTPUT {args.out_dir} exists and is not a folder")
    given_folders = [Path(s) for s in args.inputs if Path(s).is_dir()]
    folders = [_real(f) for f in given_folders]
    files, skipped = scan_images(args.inputs, recursive=args.recursive)
    for note in skipped:
        print(f"matte: {note}", file=sys.stderr)
    if not files:
        return _error(f"no images found in {' '.join(args.inputs)}")
    file_dirs = {_real(f).parent for f in files if os.path.lexists(f)}

    plan, notes = plan_outputs(files, given_folders, out_dir, args.save_alpha)
    if not args.allow_inside_input:
        for _, main, alpha in plan:
            for target in (main, alpha):
                clash = None if target is None else inside_inputs(target, folders, file_dirs)
                if clash is not None:
                    where = (
                        ""
                        if _real(target).parent == out_dir
                        else f" (through a symlink: {target} -> {_real(target)})"
                    )
                    return _error(
                        f"OUTPUT {args.out_dir} would write into the input folder {clash}{where}; refusing "
                        "(choose another folder or pass --allow-inside-input)"
                    )
    if not args.overwrite:
        existing = [
            p for _, main, alpha in plan for p in (main, alpha) if p is not None and os.path.lexists(p)
        ]
        if existing:
            shown = "\n".join(f"  {p}" for p in existing[:10]) + ("\n  ..." if len(existing) > 10 else "")
            return _error(
                f"{len(existing)} output file(s) exist already; nothing was written (pass --overwrite to "
                f"replace them):\n{shown}"
            )

    try:
        matter, described = _load_models(args, device)
    except (CheckpointError, ExportError, FileNotFoundError, ValueError, OSError) as e:
        lines = str(e).strip().splitlines()
        if not args.checkpoint:
            return _error(
                f"no --checkpoint given, and the shipped default models cannot be used "
                f"({lines[0] if lines else type(e).__name__}); pass --checkpoint FILE or set ${ENV_CHECKPOINT}"
            )
        return _error(f"cannot load the model: {lines[0] if lines else type(e).__name__}")
    auto = isinstance(matter, AutoMatter)

    failed: list[str] = []
    written = 0
    t0 = time.perf_counter()
    bar = tqdm(plan, desc="matte", unit="img", disable=args.quiet, file=sys.stderr)
    for src, main, alpha_path in bar:
        try:
            if not args.allow_inside_input:  # re-checked at write time: the folder may have changed
                for target in (main, alpha_path):
                    clash = None if target is None else inside_inputs(target, folders, file_dirs)
                    if clash is not None:
                        raise ValueError(f"{target} now leads into the input folder {clash}; not written")
            image = read_image(src, max_pixels=args.max_pixels)
            alpha = matter.predict(image)
            a8 = np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8)
            if args.alpha_only:
                write_image(main, a8, overwrite=args.overwrite)
            else:
                engine = matter if not auto else getattr(matter, matter.last_route.name)
                write_image(main, engine.cutout(image, alpha=alpha), overwrite=args.overwrite)
                if alpha_path is not None:
                    write_image(alpha_path, a8, overwrite=args.overwrite)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # keep going: report every failure at the end, one line each
            failed.append(_one_line(src, e))
            continue
        written += 1
    elapsed = time.perf_counter() - t0

    what = "alpha matte(s)" if args.alpha_only else "cut-out(s)"
    per = f", {elapsed / max(written, 1):.2f} s/image" if written else ""
    print(
        f"matte: wrote {written} {what} to {args.out_dir} in {elapsed:.1f} s{per} ({described})",
        file=sys.stderr,
    )
    if auto:
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
