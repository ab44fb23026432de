"""The ``lowlight-matting`` command line.

Each subcommand lives in its own module under :mod:`lowlight_matting.commands` and defines ``NAME``,
``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; this file only discovers and dispatches them.
Module ``make_data`` gives the subcommand ``make-data``.

Exit status: what the subcommand returns (0 success, 1 some work failed, 2 usage error; argparse's own usage
errors exit 2 too); 130 on Ctrl-C. An unexpected exception — a bug, never bad input, which every command
reports itself — is printed as one line naming the command and the exception, exit 1; set
``LOWLIGHT_MATTING_DEBUG=1`` to get the full traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from lowlight_matting import commands as _commands

DEBUG_ENV = "LOWLIGHT_MATTING_DEBUG"


def _command_modules():
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{_commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lowlight-matting",
        description="Adapt a CV-UNet matting model to low-light photos: simulate, train, evaluate, deploy.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "__doc__", None) or mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Pillow logs decoder complaints about broken files ("More samples per pixel than can be decoded") to
    # stderr; the commands report each bad file themselves, in one line that names it.
    logging.getLogger("PIL").setLevel(logging.CRITICAL)
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"lowlight-matting {args.command}: out of memory", file=sys.stderr)
        return 1
    except Exception as e:
        if os.environ.get(DEBUG_ENV):
            raise
        lines = str(e).strip().splitlines()
        print(
            f"lowlight-matting {args.command}: internal error: {type(e).__name__}: {lines[0] if lines else ''} "
            f"(set {DEBUG_ENV}=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
