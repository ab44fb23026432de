"""Run the main job end to end: the shipped base model ("the original CV-UNet") → evaluation in normal and
simulated low light → the article's low-light fine-tune → evaluation → report, JSON, figures and checkpoints
in one folder (``runs/demo`` by default; ``make demo`` runs exactly this). ``--from-scratch`` first trains a
toy base model here instead; ``--base FILE`` starts from your own.

Output folder policy (re-running never silently destroys results you may care about):

- a missing or empty folder is used as is;
- a folder holding a previous demo run (it has the marker file ``.lowlight-matting-demo.json``) is updated:
  the files that run wrote (listed in its marker) are replaced, anything else you put there is kept;
- any other non-empty folder is refused unless ``--overwrite`` is given, and even then only files with the
  demo's own names are replaced.

The new run is written to a hidden sibling folder first and moved in only when it has finished, so an
interrupted or failed run leaves the previous results untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

NAME = "demo"
HELP = "run the article's experiment end to end (baseline, low-light fine-tune, evaluation, report)"

MARKER = ".lowlight-matting-demo.json"  # same as lowlight_matting.experiment.MARKER (kept import-free here)


class OutputFolderError(RuntimeError):
    """The output folder cannot be used (the message says why and what to do)."""


def add_arguments(parser) -> None:
    parser.add_argument(
        "--preset",
        default="quick",
        choices=["quick", "gpu", "full", "fast"],
        help="quick: the shipped base fine-tuned at 128² in minutes on a 2-core CPU (default); gpu: the same "
        "at 384² on one GPU; full: the article's scale (512², its stage lengths); fast: seconds, for tests",
    )
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="train a toy base model here first (test_convnext, 64², about 10 minutes on a CPU) instead of "
        "starting from the shipped cvunet-base",
    )
    parser.add_argument(
        "--base",
        metavar="MODEL",
        help="start from this model instead: a shipped name, a training checkpoint (.pt) or weights "
        "(.safetensors) with the architecture the preset fine-tunes",
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also fine-tune with each ingredient removed in turn (7 fine-tunes; the gpu preset is recommended)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="training seed (default: the preset's, 0). Several seeds run the experiment once each into "
        "OUT/seed<N>/ and write OUT/seeds.md with the mean and standard deviation of the changes",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (default: cuda when available), cpu, cuda, cuda:1 ..."
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="CPU threads for torch when running on the CPU (default: 2)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty folder that does not hold a previous demo run (files with the demo's "
        "names are replaced, others kept)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def folder_state(out: Path) -> str:
    """``"absent"``, ``"empty"``, ``"previous"`` (holds a demo marker) or ``"foreign"`` (anything else)."""
    if not out.exists():
        return "absent"
    if not out.is_dir():
        raise OutputFolderError(f"--out {out}: exists and is not a folder")
    if (out / MARKER).is_file():
        return "previous"
    return "foreign" if any(out.iterdir()) else "empty"


def check_output_folder(out: Path, overwrite: bool = False) -> str:
    """Decide whether the demo may write into ``out``; returns its :func:`folder_state`, raises if refused."""
    state = folder_state(out)
    if state == "foreign" and not overwrite:
        raise OutputFolderError(
            f"--out {out}: the folder is not empty and does not hold a previous demo run; refusing to write "
            "into it. Choose another --out, empty it, or pass --overwrite (replaces only files with the "
            "demo's names)."
        )
    return state


def _previous_files(out: Path) -> list[Path]:
    try:
        manifest = json.loads((out / MARKER).read_text(encoding="utf-8"))
        names = manifest.get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    root = out.resolve()
    files = []
    for name in names:
        p = (out / str(name)).resolve()
        if root in p.parents and p.is_file():  # never leave the folder, never touch folders
            files.append(p)
    return files


def install_run(staging: Path, out: Path, info: dict | None = None) -> list[str]:
    """Move a finished run from ``staging`` into ``out``.

    Files the previous demo run in ``out`` listed in its marker are removed first (a file the new run does not
    write again must not linger as if it belonged to it); every other file in ``out`` is kept. Then the new
    files are moved in and a new marker lists them. Returns the relative names of the files installed.
    """
    out.mkdir(parents=True, exist_ok=True)
    for p in _previous_files(out):
        p.unlink()
    names = []
    for src in sorted(staging.rglob("*")):
        if src.is_file() and src.name != MARKER:
            rel = src.relative_to(staging)
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            names.append(rel.as_posix())
    manifest = {"written_by": "lowlight-matting demo", **(info or {}), "files": names}
    from lowlight_matting.io import write_json

    write_json(out / MARKER, manifest)
    shutil.rmtree(staging, ignore_errors=True)
    return names


def _terminate(signum, frame):  # SIGTERM -> SystemExit, so the staging folder is cleaned up like on Ctrl-C
    raise SystemExit(128 + signum)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_staging(out: Path) -> list[Path]:
    """Remove staging folders of ``out`` left by demo runs whose process no longer exists (killed hard)."""
    removed = []
    for p in out.parent.glob(f".{out.name}.partial-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if p.is_dir() and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def run(args) -> int:
    out = Path(args.out)
    seeds = args.seed or []
    if len(set(seeds)) != len(seeds):
        print(f"lowlight-matting demo: --seed: repeated seed in {seeds}", file=sys.stderr)
        return 2
    try:
        state = check_output_folder(out, args.overwrite)
    except OutputFolderError as e:
        print(f"lowlight-matting demo: {e}", file=sys.stderr)
        return 2

    if args.from_scratch and args.base:
        print("lowlight-matting demo: --from-scratch and --base exclude each other", file=sys.stderr)
        return 2
    if args.from_scratch and args.preset not in ("quick", "fast"):
        print("lowlight-matting demo: --from-scratch goes with --preset quick (or fast)", file=sys.stderr)
        return 2
    preset = "scratch" if args.from_scratch and args.preset == "quick" else args.preset

    import torch

    from lowlight_matting.device import resolve_device
    from lowlight_matting.experiment import format_mean_sd, run_experiment, run_seeds

    try:
        device = str(resolve_device(args.device))
        if args.base:
            from lowlight_matting.weights import read_model_file

            read_model_file(args.base)  # a clear error now rather than after the test sets are made
    except Exception as e:  # ValueError (device), CheckpointError (--base)
        print(f"lowlight-matting demo: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    if device == "cpu":
        torch.set_num_threads(max(1, args.threads))
        if preset in ("gpu", "full"):
            print(f"warning: preset {preset!r} on the CPU will take hours; --preset quick is sized for it")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        previous_handler = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals alone
        previous_handler = None
    try:
        kw = {"base": args.base, "ablation": args.ablation, "device": device, "progress": not args.quiet}
        if len(seeds) > 1:
            summary = run_seeds(preset, seeds, staging, **kw)
        else:
            results = run_experiment(preset, staging, seed=seeds[0] if seeds else 0, **kw)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if state == "previous":
            print(
                f"lowlight-matting demo: run failed; the previous results in {out} are untouched",
                file=sys.stderr,
            )
        raise
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
    if state == "previous":
        print(f"replacing the previous demo run in {out}")
    if len(seeds) > 1:
        install_run(
            staging, out, {"preset": summary["preset"], "seeds": seeds, "seconds": summary["seconds"]}
        )
        print(f"\nwrote {out}/seeds.md, seeds.json and one run per seed in {out}/seed<N>/")
        for light in ("lowlight", "normal"):
            ch = summary[f"{light}_change"]
            text = ", ".join(f"{k.upper()} {format_mean_sd(ch[k])}" for k in ch)
            print(f"{'low' if light == 'lowlight' else 'normal'} light, fine-tuned vs baseline: {text}")
        return 0
    install_run(staging, out, {"preset": results["preset"], "seconds": results["seconds"]})
    v = results["verdict"]
    print(f"\nwrote {out}/report.md, results.json, figures and checkpoints in {results['seconds']:.0f} s")
    low = ", ".join(
        f"{k.upper()} {v['lowlight_change'][k] * 100:+.0f}%" for k in ("mse", "sad", "grad", "conn")
    )
    nor = ", ".join(
        f"{k.upper()} {v['normal_change'][k] * 100:+.0f}%" for k in ("mse", "sad", "grad", "conn")
    )
    print(f"low light, fine-tuned vs baseline: {low}")
    print(f"normal light, fine-tuned vs baseline: {nor}")
    return 0
