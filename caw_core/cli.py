"""``caw-core``: the command line over caw_core.

Each subcommand lives in ``caw_core.commands.<name>`` and provides
``add_parser(subparsers)``, which registers its arguments and sets
``run=<function(args) -> exit code>``. Errors a user can fix (bad values,
missing data, unknown models, unreadable checkpoints) print one clear line and
exit with status 2; anything else is a bug and keeps its traceback.

Multi-GPU: ``torchrun --nproc-per-node N -m caw_core.cli train ...``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from caw_core import __version__

COMMANDS = ("train", "data", "toy", "eval", "report")


def user_errors() -> tuple[type[BaseException], ...]:
    from caw_core.data import DatasetError
    from caw_core.models import ModelLoadError
    from caw_core.models.checkpoint import CheckpointError
    from caw_core.train import TrainingDivergedError

    return (ValueError, FileNotFoundError, DatasetError, ModelLoadError, CheckpointError, TrainingDivergedError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caw-core",
        description="Adversarially robust zero-shot CLIP with Confidence-Aware Weighting (CAW) and its baselines.",
    )
    parser.add_argument("--version", action="version", version=f"caw {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"caw_core.commands.{name}").add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("caw-core: interrupted", file=sys.stderr)
        return 130
    except user_errors() as exc:
        print(f"caw-core {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
