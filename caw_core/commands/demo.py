"""``caw-core demo``: every method vs vanilla on the embedded toy world, offline; ``--full`` adds sweep, seeds, ablation."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional

from caw_core.commands.config_args import add_dataclass_options, config_from_args, positive_float, positive_int


HELP = {
    "out": "folder for runs, results, tables and figures",
    "full": "learning-rate sweep on the validation split + 3 seeds + the ablation (hours on 2 CPU cores; resumable)",
    "quick": "a 1-2 minute smoke run of the same pipeline",
    "eps": "attack radius in /255 (training and evaluation)",
    "n": "test images per task (default: the size's: 64, --full 100, --quick 16)",
    "device": "cpu, cuda, auto",
    "workers": "processes running a stage's independent jobs at once (each on the thread policy's count: one torch "
               "thread for the toy CLIP unless --threads or CAW_THREADS say otherwise)",
}


def add_parser(subparsers) -> None:
    from caw_core.demo import DemoConfig

    parser = subparsers.add_parser(
        "demo", help="the CAW experiment in miniature on the embedded toy world (offline, CPU, ~10 min)",
        description="Fine-tune the embedded toy CLIP on toy-shape with every method (FT-Adv, TeCoA, PMG-AFT, "
                    "TGA-ZSR, FARE, CAW; same attack, budget and steps), evaluate vanilla and every fine-tune "
                    "zero-shot on every toy task (clean, PGD-10, AutoAttack) and write the tables (RESULTS.md) "
                    "and the clean-vs-robust plot into --out. --full also chooses each method's learning rate "
                    "on a validation split, runs 3 seeds and CAW's ablation. Reruns skip finished work.")
    add_dataclass_options(parser, DemoConfig, HELP,
                          types={"eps": positive_float, "n": positive_int, "workers": positive_int})
    parser.set_defaults(run=run)


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "ETA ?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"ETA {hours}h{minutes:02d}m" if hours else f"ETA {minutes}m{secs:02d}s"


def run(args: argparse.Namespace) -> int:
    from caw_core.demo import DemoConfig
    from caw_core.toy.experiment import Experiment
    from caw_core.toy.writeup import write_outputs

    config = config_from_args(DemoConfig, args)
    experiment = Experiment(config.experiment())
    started = time.perf_counter()
    for record in experiment.run(workers=config.workers):
        event = record["event"]
        clock = f"[{time.perf_counter() - started:6.0f}s]"
        if event in ("job", "finished"):
            print(f"{clock} {record['done']}/{record['total']} jobs done ({100 * record['done_fraction']:.0f}%, "
                  f"{_duration(record['eta_s'])}) {record['status']}: {record['name']}", file=sys.stderr)
        elif event == "step" and (record["step"] % 25 == 0 or record["step"] == record["total_steps"]):
            robust = record.get("robust_acc")
            print(f"    step {record['step']}/{record['total_steps']}  loss {record['loss']:.3f}  train robust acc "
                  f"{'–' if robust is None else f'{robust:.2f}'}", file=sys.stderr)
        elif event == "result":
            print(f"    {record['model']:>24}  {record['dataset']:<13} {record['attack']:<6} "
                  f"acc {record['accuracy']:.3f}  worst-case {record['robust_accuracy']:.3f}"
                  f"{'  (reused)' if record['reused'] else ''}", file=sys.stderr)
        elif event == "selection":
            print(f"    chosen learning rates: {record['chosen']}", file=sys.stderr)
    written = write_outputs(experiment, config.command(), time.perf_counter() - started)
    print(written["markdown"])
    print(f"table: {written['results_md']}", file=sys.stderr)
    for figure in written["figures"]:
        print(f"plot:  {figure}", file=sys.stderr)
    return 0
