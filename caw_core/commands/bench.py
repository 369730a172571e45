"""``caw-core bench``: training-step time and memory per method: caw's optimized step vs caw's naive mode, or vs
the PMG-AFT and TGA-ZSR reference steps."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from caw_core.commands.config_args import (DefaultsHelpFormatter, add_dataclass_options, config_from_args,
                                           non_negative_int, positive_int)
from caw_core.commands.progress import Progress, add_quiet_flag
from caw_core.io import atomic_write


HELP = {
    "model": "open_clip architecture, caw-test-tiny, or toy",
    "pretrained": "pretrained tag or weights file (default: random weights; speed does not depend on them)",
    "methods": "comma-separated methods (default: caw,ft-adv,pmg-aft,tga-zsr,fare; with --mode reference "
               "pmg-aft,tga-zsr, the methods with a ported reference step)",
    "mode": "optimized, naive, both (optimized + naive), reference (pmg-aft,tga-zsr against their ported reference "
            "steps, caw's CAW step timed beside each), or cache (optimized without/with the original-feature cache)",
    "batch_size": "images per step",
    "classes": "class names in the text head",
    "steps": "timed steps per job",
    "warmup": "untimed steps first",
    "device": "auto, cpu, cuda, cuda:1",
    "precision": "bf16 autocasts the step on CUDA",
    "channels_last": "optimized mode: channels_last weights and images (CUDA)",
    "compile": "optimized mode: torch.compile the image towers",
    "eval": "also measure PGD-10 evaluation time against the 11-pass floor",
    "eval_repeats": "timed repeats of the evaluation measurement",
    "isolate": "one fresh process per job (keeps CPU memory numbers apart)",
    "threads": "torch CPU threads per job (default: the thread policy -- 1 for the toy and test models, every core "
               "for others)",
    "seed": "seeds the synthetic batches and weights",
}


def add_parser(subparsers) -> None:
    from caw_core.benchmarks.bench import MODE_CHOICES, BenchConfig

    parser = subparsers.add_parser(
        "bench", help="time and measure the memory of a training step per method",
        description="Median training-step time (PGD-2 included, warm-up excluded), images/s and peak memory per "
                    "method on synthetic batches. --mode both adds caw's naive mode (caw's losses computed in the "
                    "references' habits) and the ratios; --mode reference times the PMG-AFT and TGA-ZSR "
                    "repositories' own training steps (ported) against caw's optimized steps. Each job runs in a "
                    "fresh process unless --no-isolate.",
        formatter_class=DefaultsHelpFormatter)
    add_dataclass_options(parser, BenchConfig, HELP,
                          choices={"mode": list(MODE_CHOICES), "precision": ["fp32", "bf16"]},
                          types={"batch_size": positive_int, "classes": positive_int, "steps": positive_int,
                                 "warmup": non_negative_int, "eval_repeats": positive_int, "threads": positive_int})
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON report to this file")
    add_quiet_flag(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from caw_core.benchmarks.bench import BenchConfig, bench_report, format_table, run_bench

    config = config_from_args(BenchConfig, args)
    if config.threads is None:  # the global caw-core --threads, else the thread policy in each job
        config.threads = getattr(args, "global_threads", None)
    records = []
    beside = sum(m != "caw" for m in config.methods) if config.mode == "reference" else 0  # caw timed beside each
    jobs = sum(len(config.modes_of(method)) for method in config.methods) + beside + bool(config.eval)  # records
    with Progress(jobs, "bench", "job", quiet=args.quiet) as progress:
        for record in run_bench(config):
            records.append(record)
            label = record.get("method", "eval") + " " + record.get("mode", "")
            progress.update(len(records), last=label.strip())
    report = bench_report(config, records)
    if args.out is not None:
        atomic_write(args.out, lambda handle: handle.write(json.dumps(report, indent=2) + "\n"))
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0
