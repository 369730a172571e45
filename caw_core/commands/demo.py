"""``caw-core demo``: vanilla vs TeCoA vs CAW on the embedded toy world, offline, on the CPU."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from caw_core.commands.progress import Progress, add_quiet_flag
from caw_core.io import atomic_write


def add_parser(subparsers) -> None:
    from caw_core.demo import DEMO_EPS, DemoConfig

    defaults = DemoConfig()
    parser = subparsers.add_parser(
        "demo", help="the CAW experiment in miniature on the embedded toy world (offline, CPU, ~10 min)",
        description="Fine-tune the embedded toy CLIP on the toy training task with TeCoA (CE only) and CAW, "
                    "evaluate vanilla/TeCoA/CAW zero-shot on every toy task (clean, PGD, AutoAttack) and print "
                    "the paper-style table. Reruns reuse finished runs and results.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=defaults.out, help="folder for runs, results and RESULTS.md")
    parser.add_argument("--eps", type=float, default=DEMO_EPS, help="attack radius in /255 (training and evaluation)")
    parser.add_argument("--train-steps", type=int, default=defaults.train_steps, help="optimizer steps per method")
    parser.add_argument("--n", type=int, default=defaults.n, help="evaluation images per task")
    parser.add_argument("--device", default=defaults.device, help="cpu, cuda, auto")
    parser.add_argument("--quick", action="store_true", help="a 1-2 minute smoke run of the same pipeline")
    add_quiet_flag(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from caw_core.demo import DemoConfig, run_demo

    if args.train_steps < 1 or args.n < 1 or args.eps <= 0:
        raise ValueError("--train-steps and --n must be >= 1 and --eps > 0")
    config = DemoConfig(out=args.out, eps=args.eps, train_steps=args.train_steps, n=args.n, device=args.device,
                        quick=args.quick)
    started, stage, table = time.perf_counter(), None, None
    log = Progress(None, quiet=args.quiet)  # side lines only
    bar = None
    for record in run_demo(config):
        if "stage" in record and record["stage"] != stage:
            stage = record.get("stage")
            if bar is not None:
                bar.close()
                bar = None
            log.message(f"[{time.perf_counter() - started:6.0f}s] {stage}")
        event = record["event"]
        if event == "step":
            if bar is None:
                bar = Progress(record["total_steps"], "    train", "step", quiet=args.quiet)
            bar.update(record["step"], **{k: record[k] for k in ("loss", "robust_acc") if record.get(k) is not None})
        elif event == "result":
            log.message(f"    {record['model']:>14}  {record['dataset']:<14} {record['attack']:<6} "
                        f"acc {record['accuracy']:.3f}  worst-case {record['robust_accuracy']:.3f}"
                        f"{'  (reused)' if record['reused'] else ''}")
        elif event == "table":
            table = record
    if bar is not None:
        bar.close()
    wall = time.perf_counter() - started
    text = (f"# caw demo\n\nCommand: `caw-core demo{' --quick' if args.quick else ''}` "
            f"(eps {config.scaled().eps:g}/255, {config.scaled().n} images per task), wall time {wall:.0f} s.\n\n"
            + table["markdown"])
    atomic_write(Path(args.out) / "RESULTS.md", lambda handle: handle.write(text))
    print(text)
    log.message(f"(also written to {Path(args.out) / 'RESULTS.md'})")
    return 0
