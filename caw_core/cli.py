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

COMMANDS = ("train", "data", "toy", "eval", "attack", "report", "bench", "demo", "export")
# One line per command for ``caw-core --help``: only the chosen command's module builds its full parser, so the
# others (and their torch/open_clip imports) are never loaded. A command missing here gets its full parser.
SUMMARIES = {
    "train": "adversarially fine-tune CLIP's image tower (CAW or a baseline)",
    "data": "check or download the evaluation datasets",
    "toy": "the embedded toy world and its tiny CLIP",
    "eval": "zero-shot clean and robust accuracy of models on datasets",
    "attack": "attack one image: vanilla vs fine-tuned top-5 on clean and adversarial, with a verdict",
    "report": "merge a results folder into the paper's table (with sanity checks)",
    "bench": "time and measure the memory of a training step per method",
    "demo": "the CAW experiment in miniature on the embedded toy world (offline, CPU)",
    "export": "write a checkpoint as a full open_clip model (safetensors + config + model card)",
}
# Commands that run no model: the thread policy (which imports torch) is not applied for them.
NO_MODEL = ("data", "report")


# The errors a user can fix, besides ValueError and FileNotFoundError, as (module, class). An exception can only be
# an instance of a class whose module is imported, so only the modules already imported are looked in: a command
# that never loaded torch (report, data) reports its errors without importing it.
USER_ERRORS = (
    ("caw_core.data.registry", "DatasetError"),
    ("caw_core.models.loading", "ModelLoadError"),
    ("caw_core.models.checkpoint", "CheckpointError"),
    ("caw_core.train", "TrainingDivergedError"),
    ("caw_core.run_lock", "RunLockedError"),
)


def user_errors() -> tuple[type[BaseException], ...]:
    loaded = [getattr(sys.modules[module], name) for module, name in USER_ERRORS if module in sys.modules]
    return (ValueError, FileNotFoundError, *loaded)


def _positive_threads(text: str) -> int:
    from caw_core.commands.config_args import positive_int

    return positive_int(text)


def chosen_command(argv: Optional[Sequence[str]]) -> Optional[str]:
    """The subcommand named in ``argv`` (None for ``--help``/``--version`` or none given)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--threads")
    pre.add_argument("command", nargs="?")
    known, _ = pre.parse_known_args(argv)
    return known.command if known.command in COMMANDS else None


def build_parser(argv: Optional[Sequence[str]] = None, full: bool = True) -> argparse.ArgumentParser:
    """The ``caw-core`` parser; with ``full=False`` only the command chosen in ``argv`` gets its own options."""
    parser = argparse.ArgumentParser(
        prog="caw-core",
        description="Adversarially robust zero-shot CLIP with Confidence-Aware Weighting (CAW) and its baselines.",
    )
    parser.add_argument("--version", action="version", version=f"caw {__version__}")
    parser.add_argument("--threads", dest="global_threads", type=_positive_threads, default=None, metavar="N",
                        help="torch CPU threads (default: 1 for the toy and test models, every core for others; "
                             "or $CAW_THREADS, $OMP_NUM_THREADS)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = chosen_command(argv)
    for name in COMMANDS:
        if full or name == chosen or name not in SUMMARIES:
            importlib.import_module(f"caw_core.commands.{name}").add_parser(sub)
        else:
            sub.add_parser(name, help=SUMMARIES[name])
    return parser


def workload_model(args: argparse.Namespace) -> Optional[str]:
    """The model a command will run, for the thread policy: the toy CLIP for demo/toy, else ``--model``."""
    if args.command in ("demo", "toy"):
        return "toy"
    models = getattr(args, "models", None)
    if models:  # NAME:PRETRAINED[:CHECKPOINT]
        return str(models[0]).split(":")[0]
    return getattr(args, "model", None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv, full=False).parse_args(argv)
    try:
        if args.command not in NO_MODEL:
            from caw_core.threads import apply_thread_policy

            apply_thread_policy(workload_model(args), args.global_threads)
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
    torch = sys.modules.get("torch")  # out of GPU memory needs torch loaded: never import it here
    if torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError):
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
