"""``caw-core``: the command line over caw_core.

Each subcommand lives in ``caw_core.commands.<name>`` and provides
``add_parser(subparsers)``, which registers its arguments and sets
``run=<function(args) -> exit code>``. Errors a user can fix (bad values,
missing data, unknown models, unreadable or malformed files, a run folder in
use) and failures of the machine (out of GPU or CPU memory, disk full, a path
that is a file where a folder is needed or the reverse, a name too long) print
one clear line and exit with status 2; anything else is a bug and keeps its
traceback. A training stopped by SIGINT/SIGTERM saves and exits 128 + signal
(130, 143).

Multi-GPU: ``torchrun --nproc-per-node N -m caw_core.cli train ...``.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
from typing import Optional, Sequence

from caw_core import __version__

COMMANDS = ("train", "data", "toy", "eval", "report", "bench", "demo")


def user_errors() -> tuple[type[BaseException], ...]:
    from caw_core.data import DatasetError
    from caw_core.models import ModelLoadError
    from caw_core.models.checkpoint import CheckpointError
    from caw_core.run_lock import RunLockedError
    from caw_core.train import TrainingDivergedError

    return (ValueError, FileNotFoundError, DatasetError, ModelLoadError, CheckpointError, TrainingDivergedError,
            RunLockedError)


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
        print(f"caw-core {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        message = _environment_error(exc)
        if message is None:
            raise  # a bug: keep the traceback
        print(f"caw-core {args.command}: error: {_one_line(message)}", file=sys.stderr)
        return 2


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


_OUT_OF_MEMORY_HINT = ("out of GPU memory: {detail}. Use a smaller --batch-size (training and evaluation), "
                       "fewer --attack-steps, or --precision bf16 for training; under torchrun the batch is split "
                       "across GPUs, so more GPUs also help.")
_CPU_MEMORY_HINT = ("out of memory on this machine{detail}. Use a smaller --batch-size (training and evaluation), "
                    "fewer --n images or --num-workers, or a smaller model.")


def _environment_error(exc: BaseException) -> Optional[str]:
    """A one-line message for failures of the machine rather than of caw (memory, disk, paths), else None."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        detail = str(exc).splitlines()[0] if str(exc) else "CUDA out of memory"
        return _OUT_OF_MEMORY_HINT.format(detail=detail)
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and "not enough memory" in str(exc)):
        detail = str(exc).splitlines()[0] if str(exc) else ""
        return _CPU_MEMORY_HINT.format(detail=f" ({detail})" if detail else "")
    if isinstance(exc, OSError):
        from caw_core.io import StorageError, describe_os_error

        if isinstance(exc, StorageError):
            return exc.strerror
        where = f"{exc.filename}: " if exc.filename else ""
        reason = describe_os_error(exc) if exc.errno is not None else str(exc)
        return f"{where}{reason}" + (_PATH_HINTS.get(exc.errno, "") if exc.errno is not None else "")
    return None


_PATH_HINTS = {
    errno.ENOTDIR: " (a file stands where a folder is needed)",
    errno.EISDIR: " (a folder stands where a file is needed)",
    errno.ENAMETOOLONG: " (use a shorter path or name)",
    errno.ELOOP: " (a symlink loop)",
}


if __name__ == "__main__":
    sys.exit(main())
