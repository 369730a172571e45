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

COMMANDS = ("train", "data", "toy", "eval", "attack", "report", "bench", "demo")


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
    except Exception as exc:
        message = _environment_error(exc)
        if message is None:
            raise  # a bug: keep the traceback
        print(f"caw-core {args.command}: error: {message}", file=sys.stderr)
        return 2


_OUT_OF_MEMORY_HINT = ("out of GPU memory: {detail}. Use a smaller --batch-size (training and evaluation), "
                       "fewer --attack-steps, or --precision bf16 for training; under torchrun the batch is split "
                       "across GPUs, so more GPUs also help.")


def _environment_error(exc: BaseException) -> Optional[str]:
    """A one-line message for failures of the machine rather than of caw (GPU memory, disk, permissions), else None."""
    import errno

    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        detail = str(exc).splitlines()[0] if str(exc) else "CUDA out of memory"
        return _OUT_OF_MEMORY_HINT.format(detail=detail)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS):
        from caw_core.io import StorageError, describe_os_error

        if isinstance(exc, StorageError):
            return exc.strerror
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{describe_os_error(exc)}{where}: {exc.strerror or exc}"
    return None


if __name__ == "__main__":
    sys.exit(main())
