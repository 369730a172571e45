"""``caw-core bench``: training-step time and memory per method: caw's optimized step vs caw's naive mode, or vs
the PMG-AFT and TGA-ZSR reference steps."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    from caw_core.benchmarks.bench import METHODS_BENCHED, MODE_CHOICES, BenchConfig

    defaults = BenchConfig()
    parser = subparsers.add_parser(
        "bench", help="time and measure the memory of a training step per method",
        description="Median training-step time (PGD-2 included, warm-up excluded), images/s and peak memory per "
                    "method on synthetic batches. --mode both adds caw's naive mode (caw's losses computed in the "
                    "references' habits) and the ratios; --mode reference times the PMG-AFT and TGA-ZSR "
                    "repositories' own training steps (ported) against caw's optimized steps. Each job runs in a "
                    "fresh process unless --no-isolate.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default=defaults.model, help="open_clip architecture, caw-test-tiny, or toy")
    parser.add_argument("--pretrained", default=defaults.pretrained,
                        help="pretrained tag or weights file (default: random weights; speed does not depend on them)")
    parser.add_argument("--methods", default=",".join(METHODS_BENCHED), help="comma-separated methods")
    parser.add_argument("--mode", choices=MODE_CHOICES, default=defaults.mode,
                        help="optimized, naive, both (optimized + naive), or reference (methods pmg-aft,tga-zsr)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--classes", type=int, default=defaults.classes, help="class names in the text head")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="timed steps per job")
    parser.add_argument("--warmup", type=int, default=defaults.warmup, help="untimed steps first")
    parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda, cuda:1")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default=defaults.precision,
                        help="bf16 autocasts the step on CUDA")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=defaults.channels_last,
                        help="optimized mode: channels_last weights and images (CUDA)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=defaults.compile,
                        help="optimized mode: torch.compile the image towers")
    parser.add_argument("--eval", action=argparse.BooleanOptionalAction, default=defaults.eval,
                        help="also measure PGD-10 evaluation time against the 11-pass floor")
    parser.add_argument("--eval-repeats", type=int, default=defaults.eval_repeats)
    parser.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=defaults.isolate,
                        help="one fresh process per job (keeps CPU memory numbers apart)")
    parser.add_argument("--threads", type=int, default=defaults.threads,
                        help="torch CPU threads per job (default: the thread policy -- 1 for the toy and test models, "
                             "every core for others)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON report to this file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from caw_core.benchmarks.bench import BenchConfig, bench_report, format_table, run_bench

    config = BenchConfig(
        model=args.model, pretrained=args.pretrained, methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
        mode=args.mode, batch_size=args.batch_size, classes=args.classes, steps=args.steps, warmup=args.warmup,
        device=args.device, precision=args.precision, channels_last=args.channels_last, compile=args.compile,
        eval=args.eval, eval_repeats=args.eval_repeats, isolate=args.isolate, threads=args.threads,
        seed=args.seed)
    records = []
    for record in run_bench(config):
        records.append(record)
        label = record.get("method", "eval") + " " + record.get("mode", "")
        print(f"bench: {label.strip()} done", file=sys.stderr)
    report = bench_report(config, records)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0
