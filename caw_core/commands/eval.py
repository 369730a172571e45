"""``caw-core eval``: zero-shot robustness on the benchmark datasets, resumable, sharded under torchrun."""

from __future__ import annotations

import argparse
import sys

from caw_core.commands.config_args import (add_dataclass_options, csv_list, given_options, non_negative_float,
                                           non_negative_int, positive_int)
from caw_core.commands.progress import Progress, add_quiet_flag

EPILOG = """\
models: --model/--pretrained name the base CLIP; each --checkpoint adds one fine-tuned
model on that base, and '--checkpoint none' the base itself. Without --checkpoint the
base alone is evaluated. Models on other bases: --models NAME:PRETRAINED[:CHECKPOINT] ...

The paper's table (vanilla CLIP and a CAW run, AutoAttack at eps 1/255, 1000 images):
  caw-core eval --model ViT-B-32 --pretrained openai --checkpoint none --checkpoint runs/caw \\
      --datasets all --attacks clean,pgd,aa --eps 1 --n 1000 --out results/ --data-root data/
  caw-core report results/

Rerunning the same command skips finished work and resumes an interrupted run; a result
is reused only for the same weights (content hash) and attack/protocol configuration, so
a continued or overwritten run is evaluated again.

Protocols (--protocol) fix preprocessing, attack chain and n as a paper measured them:
{protocols}
--attacks and --n given explicitly override the protocol's.

--check-masking runs the gradient-masking checks (caw_core.integrity) on one batch per
model and dataset instead of the benchmark: more PGD steps and restarts must not help
the model, and an unbounded attack must reach chance. Exit 1 when a check fails.

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


def _eps(text: str) -> float:
    try:
        return non_negative_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0 (units of 1/255), got {text!r}") from None


_n.__name__ = "a positive integer or 'all'"
_eps.__name__ = "a number of 1/255 units"

HELP = {
    "datasets": "comma-separated dataset names, or 'all' for the 16 of the protocol",
    "protocol": "evaluation protocol: preprocessing, attack chain and n (see below)",
    "eps": "radius in units of 1/255",
    "norm": "threat model",
    "n": "images per dataset (a fixed seeded subset, the same for every model) or 'all' (default: the protocol's; "
         "caw: 1000); under torchrun spell it --images",
    "batch_size": "images per batch per process",
    "seed": "seeds the subset and the attacks",
    "data_root": "folder holding the datasets",
    "out": "results folder",
    "device": "auto, cpu, cuda, cuda:1, mps",
    "num_workers": "DataLoader workers",
    "skip_existing": "reuse finished per-image results in --out (resume); --no-skip-existing recomputes",
}


def add_parser(subparsers) -> None:
    from caw_core.attacks.registry import attack_choices
    from caw_core.evaluate import EvalConfig
    from caw_core.protocols import PROTOCOLS

    protocols = "\n".join(f"  {name}: {p.description}" for name, p in PROTOCOLS.items())
    attacks = ", ".join(attack_choices())
    parser = subparsers.add_parser(
        "eval", help="zero-shot clean and robust accuracy (PGD, CW, AutoAttack) on the benchmark datasets",
        description="Zero-shot clean and robust accuracy of CLIP models on the benchmark datasets. Attacks run in "
                    "fp32, cheapest first, each only on the images still correct; robust accuracy is the worst "
                    "case per image. One results file per model/dataset/attack in --out.",
        epilog=EPILOG.format(protocols=protocols), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="open_clip architecture of the base model, or 'toy' (default: ViT-B-32)")
    parser.add_argument("--pretrained", default=None,
                        help="open_clip pretrained tag, local weights file, or 'none' for random init (default: openai)")
    parser.add_argument("--checkpoint", action="append", default=None, metavar="PATH|none",
                        help="a caw run or checkpoint folder fine-tuned from the base; repeat for several; "
                             "'none' = the base model itself")
    parser.add_argument("--models", nargs="+", default=None, metavar="NAME:PRETRAINED[:CHECKPOINT]",
                        help="models given in full (instead of --model/--pretrained/--checkpoint, which it cannot be "
                             "combined with)")
    help_texts = {**HELP, "attacks": f"comma-separated from {attacks}, optionally with steps (pgd100); pgd/cw default "
                                     "to 10 steps, AutoAttacks to 100 iterations (default: the protocol's; caw: "
                                     "clean,pgd,aa)"}
    add_dataclass_options(parser, EvalConfig, help_texts, choices={"norm": ["linf", "l2"], "protocol": list(PROTOCOLS)},
                          skip=("models",), aliases={"n": ("--images",)},
                          types={"n": _n, "eps": _eps, "datasets": csv_list, "batch_size": positive_int,
                                 "num_workers": non_negative_int})
    parser.add_argument("--check-masking", action="store_true",
                        help="run the gradient-masking checks instead of the benchmark (see below)")
    add_quiet_flag(parser)
    parser.set_defaults(run=run)


def eval_config(args: argparse.Namespace):
    """The EvalConfig of the flags given: EvalConfig's defaults, the protocol's attacks and n, then the flags."""
    from caw_core.evaluate import EvalConfig, optional
    from caw_core.models import ModelSpec
    from caw_core.protocols import get_protocol

    if args.models:
        clash = [flag for flag, value in (("--model", args.model), ("--pretrained", args.pretrained),
                                          ("--checkpoint", args.checkpoint)) if value is not None]
        if clash:
            raise ValueError(f"--models names every model in full; it cannot be combined with {', '.join(clash)} "
                             "(write NAME:PRETRAINED:CHECKPOINT entries instead)")
        models = list(args.models)
    else:
        pretrained = optional(args.pretrained if args.pretrained is not None else "openai")
        models = [ModelSpec(args.model or "ViT-B-32", pretrained, optional(c)) for c in args.checkpoint or ["none"]]
    given = given_options(EvalConfig, args)
    protocol = get_protocol(given.get("protocol", EvalConfig.protocol))
    given.setdefault("attacks", list(protocol.attacks))
    given.setdefault("n", protocol.n)
    return EvalConfig(**{**given, "models": models, "protocol": protocol.name})


def run(args: argparse.Namespace) -> int:
    from caw_core.evaluate import evaluate
    from caw_core.report import render_report

    config = eval_config(args)
    if args.check_masking:
        return check_masking(config)
    bar = None
    for record in evaluate(config):
        event = record["event"]
        if event == "progress":
            if bar is None:
                bar = Progress(record["total"], f"[{record['item']}/{record['items']}] {record['dataset']} "
                               f"{record['attack']}", "img", quiet=args.quiet)
            values = {"all": f"{100 * record['overall']:.0f}%"}
            if record["overall_eta_s"] is not None:
                values["all ETA"] = f"{record['overall_eta_s'] / 60:.1f} min"
            if record["accuracy"] is not None:
                values["acc"] = f"{100 * record['accuracy']:.1f}%"
            bar.update(record["done"], **values)
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


def check_masking(config) -> int:
    """Print one line per model and dataset; 1 if any gradient-masking check failed."""
    from caw_core.evaluate import check_gradient_masking_per_dataset

    failed = False
    for record in check_gradient_masking_per_dataset(config):
        report = record["report"]
        failed |= not report.ok
        verdict = "ok" if report.ok else "FAILED: " + "; ".join(report.failures)
        print(f"{record['model']} | {record['dataset']} | {record['n']} images: clean {100 * report.clean_acc:.1f}%, "
              f"PGD-{report.weak['steps']} {100 * report.weak_robust_acc:.1f}%, PGD-{report.strong['steps']} x "
              f"{report.strong['restarts']} {100 * report.strong_robust_acc:.1f}%, unbounded "
              f"{100 * report.unbounded_acc:.1f}% (chance {100 * report.chance:.1f}%): {verdict}")
    return 1 if failed else 0
