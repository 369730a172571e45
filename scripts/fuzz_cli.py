"""Fuzz every caw-core subcommand with hostile flag values; count tracebacks (the target is 0) and hangs.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/fuzz_cli.py [--timeout 60] [--only train,eval] [--quick]

Each subcommand runs from a cheap base command line (caw-test-tiny, the unit-blobs
test dataset, one step, a few images); then every option it has is given each
hostile value in turn (empty, negative, 1e308, inf, nan, huge integers, text,
a file where a folder is expected and the reverse, /dev/zero, a FIFO, a
5000-character name, a symlink loop, '..' paths, non-ASCII), and every boolean
flag is flipped. Calls run in this process (``caw_core.cli.main``), each under
an alarm. An outcome is:

- ok / refused: exit status 0, or 2 with an argparse usage error or a last
  line ``caw-core CMD: error: ...`` (progress notes may precede it);
- traceback: any exception escaping ``main`` (a bug by the CLI's contract);
- hang: the alarm fired (no progress within --timeout seconds);
- bad exit: any other status, or a status 2 whose last line is not one error line.

Prints one line per non-ok outcome and a summary; exits 1 if any call gave a traceback or hung.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the unit-blobs dataset: tiny, generated in memory


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def hostile_values(scratch: Path) -> list[str]:
    fifo = scratch / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    loop = scratch / "loop"
    if not loop.is_symlink():
        loop.symlink_to(scratch / "loop")
    plain = scratch / "plain.txt"
    plain.write_text("not what you expected\n")
    return ["", "-1", "0", "1e308", "-1e308", "inf", "nan", "99999999999999999999999", "abc", str(plain),
            str(scratch), "/dev/zero", str(fifo), "x" * 5000, str(loop / "x"), "../../escape",
            "ünï cödé"]


def _toy_checkpoint(scratch: Path) -> Path:
    """A caw checkpoint of the toy CLIP's image tower, for the export command to read."""
    from caw_core.models import load_model
    from caw_core.models.checkpoint import TrainerState, save_checkpoint

    state = TrainerState(step=1, epoch=0, optimizer={"state": {}, "param_groups": []}, rng={}, extra={})
    return save_checkpoint(scratch / "toy-run" / "checkpoints", load_model("toy").image_encoder,
                           {"name": "toy", "pretrained": None, "checkpoint": None}, state)


def _noise_png(path: Path) -> Path:
    import numpy as np
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


def base_commands(scratch: Path) -> dict[str, list[str]]:
    tiny = ["--model", "caw-test-tiny", "--pretrained", "none", "--device", "cpu"]
    return {
        "train": ["train", *tiny, "--data", "unit-blobs", "--batch-size", "16", "--max-steps", "1",
                  "--num-workers", "0", "--warmup-steps", "0", "--runs-dir", str(scratch / "runs"), "--quiet"],
        "eval": ["eval", *tiny, "--datasets", "unit-blobs", "--n", "4", "--attacks", "clean,pgd1",
                 "--batch-size", "4", "--out", str(scratch / "results"), "--quiet"],
        "report": ["report", str(scratch / "results")],
        "attack": ["attack", str(_noise_png(scratch / "image.png")), *tiny, "--classes", "red,green,blue",
                   "--steps", "1", "--out", str(scratch / "adversarial.png")],
        "bench": ["bench", "--model", "caw-test-tiny", "--device", "cpu", "--methods", "caw", "--batch-size", "2",
                  "--steps", "1", "--warmup", "0", "--classes", "3", "--no-isolate", "--threads", "1"],
        "toy pretrain": ["toy", "pretrain", "--steps", "1", "--batch-size", "4", "--eval-images", "4",
                         "--out", str(scratch / "toy")],
        "toy sample": ["toy", "sample", "--out", str(scratch / "grid.png"), "--n", "2"],
        "data check": ["data", "check", "unit-blobs", "--root", str(scratch / "data")],  # found: exit 0
        "export": ["export", str(_toy_checkpoint(scratch)), "--out", str(scratch / "export"), "--quiet"],
        "demo": ["demo", "--quick", "--out", str(scratch / "demo"), "--n", "2", "--workers", "1"],
    }


def _subparser(parser: argparse.ArgumentParser, words: list[str]) -> argparse.ArgumentParser:
    for word in words:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[word]
    return parser


def variants(parser: argparse.ArgumentParser, base: list[str], words: int, values: list[str]):
    """(label, argv) for every option x hostile value, every flag flipped, every positional x value."""
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
            continue
        if not action.option_strings:  # a positional: replace its value in the base line
            positional = [i for i, word in enumerate(base[words:], words) if not word.startswith("-")
                          and (i == words or not base[i - 1].startswith("--"))]
            for index in positional[:1]:
                for value in values:
                    yield f"{action.dest}={value[:40]!r}", base[:index] + [value] + base[index + 1:]
            continue
        flag = action.option_strings[0]
        if action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction):
            for option in action.option_strings:
                yield option, base + [option]
            continue
        for value in values:
            yield f"{flag} {value[:40]!r}", base + [f"{flag}={value}"]


def run_one(argv: list[str], timeout: int) -> tuple[str, str]:
    from caw_core import cli

    err = io.StringIO()
    signal.alarm(timeout)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    except Hang:
        return "hang", ""
    except BaseException:  # noqa: BLE001 - a traceback is what we count
        return "traceback", traceback.format_exc(limit=-3)
    finally:
        signal.alarm(0)
    text = err.getvalue()
    if code in (0, None):
        return "ok", ""
    last = text.strip().splitlines()[-1] if text.strip() else ""
    if code == 2 and ("usage:" in text or (last.startswith("caw-core ") and ": error: " in last)):
        return "refused", last  # progress notes may precede the one error line
    return "bad exit", f"status {code}: {text.strip()[-300:]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=int, default=60, help="seconds before a call counts as a hang")
    parser.add_argument("--only", default="", help="comma-separated subcommands (default: all)")
    parser.add_argument("--quick", action="store_true", help="only the first 6 hostile values")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    import blobs

    blobs.ensure_registered()
    from caw_core.cli import build_parser

    signal.signal(signal.SIGALRM, _alarm)
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="caw-fuzz-") as tmp:
        scratch = Path(tmp)
        work = scratch / "cwd" / "deep"  # relative hostile values ("-1", "../../escape") land in the scratch folder
        work.mkdir(parents=True)
        os.chdir(work)
        values = hostile_values(scratch)[: 6 if args.quick else None]
        bases = base_commands(scratch)
        chosen = [c for c in bases if not args.only or c in args.only.split(",")]
        root = build_parser()
        for name in chosen:
            words = name.split()
            outcome, detail = run_one(bases[name], args.timeout)  # the base line itself must work
            print(f"base {name}: {outcome} {detail}", flush=True)
            sub = _subparser(root, words)
            for label, argv in variants(sub, bases[name], len(words), values):
                outcome, detail = run_one(argv, args.timeout)
                counts[outcome] = counts.get(outcome, 0) + 1
                if outcome not in ("ok", "refused"):
                    print(f"{outcome.upper()}: {name} {label}\n    {detail.strip()}", flush=True)
    total = sum(counts.values())
    print(f"{total} fuzzed calls over {', '.join(chosen)}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return 1 if counts.get("traceback") or counts.get("hang") else 0


if __name__ == "__main__":
    sys.exit(main())
