"""Train or fine-tune a matting model from a YAML config (stages, AMP, checkpoints, resume, DDP).

Examples:
    lowlight-matting train --config configs/cvunet_base.yaml                  # the course's base model
    lowlight-matting train --config configs/cvunet_lowlight.yaml              # the article's fine-tune of it
    lowlight-matting train --config configs/cvunet_lowlight.yaml --resume     # continue an interrupted run
    lowlight-matting train --preset fast_lowlight --set stages.1.steps=20
    torchrun --nproc_per_node=4 -m lowlight_matting train --config configs/cvunet_lowlight.yaml
"""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "train / fine-tune a model from a YAML config (stages, AMP, checkpoints, --resume, torchrun DDP)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lowlight_matting.train.presets import PRESETS

    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", metavar="FILE", help="YAML training config (see configs/)")
    src.add_argument("--preset", metavar="NAME", help=f"a named preset: {', '.join(PRESETS)}")
    parser.add_argument("--resume", action="store_true", help="continue from last.pt in the run folder")
    parser.add_argument(
        "--allow-config-change",
        action="store_true",
        help="with --resume: continue even if the config differs from the run's (written beside config.yaml)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable), e.g. --set data.batch_size=8 --set stages.0.lr=1e-4",
    )
    parser.add_argument("--out", metavar="DIR", help="parent folder of the run folder (config key out_dir)")
    parser.add_argument("--name", help="run folder name (config key name)")
    parser.add_argument(
        "--data", metavar="DIR", help="train on a matting folder (data.source=folder, data.root=DIR)"
    )
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--amp", choices=["auto", "bf16", "fp16", "off"], help="mixed precision")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def _error(msg: str) -> int:
    import sys

    print(f"lowlight-matting train: error: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import yaml

    from lowlight_matting.checkpoint import CheckpointError
    from lowlight_matting.train import ConfigError, NonFiniteLossError, load_config, preset, train
    from lowlight_matting.train.distributed import launch_rank

    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"out_dir={args.out}")
    if args.name:
        overrides.append(f"name={args.name}")
    if args.data:
        if not Path(args.data).is_dir():
            return _error(f"--data {args.data}: not a folder")
        overrides += ["data.source=folder", f"data.root={args.data}", "data.in_memory=false"]
    if args.device:
        overrides.append(f"device={args.device}")
    if args.amp:
        overrides.append(f"amp.mode={args.amp}")
    if args.resume:
        overrides.append("checkpoint.resume=true")
    if args.allow_config_change:
        overrides.append("checkpoint.allow_config_change=true")
    try:
        cfg = load_config(args.config, overrides) if args.config else preset(args.preset, overrides)
        if args.print_config:
            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
            return 0
        run_dir = train(cfg)
    except NonFiniteLossError as e:  # the run itself failed: not a usage error
        import sys

        print(f"lowlight-matting train: error: {e}", file=sys.stderr)
        return 1
    except (ConfigError, CheckpointError, FileExistsError, ValueError, OSError) as e:
        return _error(str(e).splitlines()[0] if str(e) else type(e).__name__)
    if launch_rank() == 0:  # under torchrun, one line from rank 0, not one per process
        print(f"run folder: {run_dir}")
    return 0
