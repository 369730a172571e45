"""``caw-core demo``: vanilla vs TeCoA vs CAW on the embedded toy world, offline, on the CPU."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from caw_core.commands.config_args import (add_dataclass_options, config_from_args, non_negative_int, positive_float,
                                           positive_int)
from caw_core.commands.progress import Progress, add_quiet_flag
from caw_core.io import atomic_write


HELP = {
    "out": "folder for runs, results and RESULTS.md",
    "eps": "attack radius in /255 (training and evaluation)",
    "train_steps": "optimizer steps per method",
    "batch_size": "training batch size",
    "lr": "fine-tuning learning rate",
    "alpha": "CAW: weight of the confidence-aware KL term",
    "beta": "CAW: weight of the feature-alignment term",
    "n": "evaluation images per task",
    "attacks": "comma-separated evaluation attacks",
    "eval_batch_size": "evaluation batch size",
    "seed": "seeds the data order, the attacks and the image subsets",
    "device": "cpu, cuda, auto",
    "num_workers": "DataLoader workers",
    "methods": "comma-separated methods to fine-tune",
    "quick": "a 1-2 minute smoke run of the same pipeline",
}


def add_parser(subparsers) -> None:
    from caw_core.demo import DemoConfig

    parser = subparsers.add_parser(
        "demo", help="the CAW experiment in miniature on the embedded toy world (offline, CPU, ~10 min)",
        description="Fine-tune the embedded toy CLIP on the toy training task with TeCoA (CE only) and CAW, "
                    "evaluate vanilla/TeCoA/CAW zero-shot on every toy task (clean, PGD, AutoAttack) and print "
                    "the paper-style table. Reruns reuse finished runs and results.")
    add_dataclass_options(parser, DemoConfig, HELP,
                          types={"eps": positive_float, "train_steps": positive_int, "batch_size": positive_int,
                                 "lr": positive_float, "n": positive_int, "eval_batch_size": positive_int,
                                 "num_workers": non_negative_int})
    add_quiet_flag(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from caw_core.demo import DemoConfig, run_demo

    config = config_from_args(DemoConfig, args)
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
    text = (f"# caw demo\n\nCommand: `caw-core demo{' --quick' if config.quick else ''}` "
            f"(eps {config.scaled().eps:g}/255, {config.scaled().n} images per task), wall time {wall:.0f} s.\n\n"
            + table["markdown"])
    atomic_write(Path(config.out) / "RESULTS.md", lambda handle: handle.write(text))
    print(text)
    log.message(f"(also written to {Path(config.out) / 'RESULTS.md'})")
    return 0
