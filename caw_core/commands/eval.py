"""``caw-core eval``: zero-shot robustness on the benchmark datasets, resumable, sharded under torchrun."""

from __future__ import annotations

import argparse
import sys

from caw_core.commands.config_args import (add_dataclass_options, config_from_args, csv_list, non_negative_int,
                                           positive_int)

EPILOG = """\
models: --model/--pretrained name the base CLIP; each --checkpoint adds one fine-tuned
model on that base, and '--checkpoint none' the base itself. Without --checkpoint the
base alone is evaluated. Models on other bases: --models NAME:PRETRAINED[:CHECKPOINT] ...

The paper's table (vanilla CLIP and a CAW run, AutoAttack at eps 1/255, 1000 images):
  caw-core eval --model ViT-B-32 --pretrained openai --checkpoint none --checkpoint runs/caw \\
      --datasets all --attacks clean,pgd,aa --eps 1 --n 1000 --out results/ --data-root data/
  caw-core report results/

Rerunning the same command skips finished work and resumes an interrupted run.

Several GPUs (images sharded across processes; torchrun's own parser mistakes --n
for its options, so write --images there):
  torchrun --nproc-per-node 8 -m caw_core.cli eval --images 1000 ...
"""


def _n(text: str):
    if text.strip().lower() == "all":
        return "all"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}") from None


_n.__name__ = "a positive integer or 'all'"

HELP = {
    "datasets": "comma-separated dataset names, or 'all' for the 16 of the protocol",
    "attacks": "comma-separated from clean,pgd,cw,aa, optionally with steps (pgd100); pgd/cw default to 10 steps, "
               "aa to 100 iterations",
    "eps": "radius in units of 1/255",
    "norm": "threat model",
    "n": "images per dataset (a fixed seeded subset, the same for every model) or 'all'; under torchrun spell it "
         "--images",
    "batch_size": "images per batch per process",
    "seed": "seeds the subset and the attacks",
    "data_root": "folder holding the datasets",
    "out": "results folder",
    "device": "auto, cpu, cuda, cuda:1, mps",
    "num_workers": "DataLoader workers",
    "skip_existing": "reuse finished per-image results in --out (resume); --no-skip-existing recomputes",
}


def add_parser(subparsers) -> None:
    from caw_core.evaluate import EvalConfig

    parser = subparsers.add_parser(
        "eval", help="zero-shot clean and robust accuracy (PGD, CW, AutoAttack) on the benchmark datasets",
        description="Zero-shot clean and robust accuracy of CLIP models on the benchmark datasets. Attacks run in "
                    "fp32, cheapest first, each only on the images still correct; robust accuracy is the worst "
                    "case per image. One results file per model/dataset/attack in --out.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-32",
                        help="open_clip architecture of the base model, or 'toy' (default: %(default)s)")
    parser.add_argument("--pretrained", default="openai",
                        help="open_clip pretrained tag, local weights file, or 'none' for random init (default: %(default)s)")
    parser.add_argument("--checkpoint", action="append", default=None, metavar="PATH|none",
                        help="a caw run or checkpoint folder fine-tuned from the base; repeat for several; "
                             "'none' = the base model itself")
    parser.add_argument("--models", nargs="+", default=None, metavar="NAME:PRETRAINED[:CHECKPOINT]",
                        help="models given in full (instead of --model/--pretrained/--checkpoint)")
    add_dataclass_options(parser, EvalConfig, HELP, choices={"norm": ["linf", "l2"]}, skip=("models",),
                          types={"n": _n, "datasets": csv_list, "batch_size": positive_int,
                                 "num_workers": non_negative_int},
                          aliases={"n": ("--images",)})
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def eval_config(args: argparse.Namespace):
    """The EvalConfig of the parsed flags (models from --models, or --model/--pretrained/--checkpoint)."""
    from caw_core.evaluate import EvalConfig, optional
    from caw_core.models import ModelSpec

    if args.models:
        if args.checkpoint:
            raise ValueError("--models names every model in full (NAME:PRETRAINED:CHECKPOINT); --checkpoint cannot "
                             "be combined with it")
        models = list(args.models)
    else:
        pretrained = optional(args.pretrained)
        models = [ModelSpec(args.model, pretrained, optional(c)) for c in args.checkpoint or ["none"]]
    return config_from_args(EvalConfig, args, models=models)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from caw_core.evaluate import evaluate
    from caw_core.report import render_report

    bar = None
    for record in evaluate(eval_config(args)):
        event = record["event"]
        if event == "progress" and not args.quiet:
            if bar is None:
                bar = tqdm(total=record["total"], unit="img", dynamic_ncols=True, file=sys.stderr,
                           desc=f"{record['dataset']} {record['attack']}")
            bar.update(record["done"] - bar.n)
            if record["accuracy"] is not None:
                bar.set_postfix(acc=f"{100 * record['accuracy']:.1f}%", refresh=False)
        elif event == "result":
            if bar is not None:
                bar.close()
                bar = None
            note = " (reused)" if record["reused"] else ""
            print(f"{record['model']} | {record['dataset']} | {record['attack']}: "
                  f"{100 * record['accuracy']:.2f}% (worst case so far {100 * record['robust_accuracy']:.2f}%)"
                  f"{note}", file=sys.stderr)
        elif event == "done":
            print(render_report(record["out"]))
    return 0
