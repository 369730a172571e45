"""``caw-core eval``: zero-shot robustness on the benchmark datasets, resumable, sharded under torchrun."""

from __future__ import annotations

import argparse
import sys

from caw_core.commands.progress import Progress, add_quiet_flag

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
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("n must be a positive integer or 'all'")
    return value


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_parser(subparsers) -> None:
    from caw_core.evaluate import EvalConfig

    defaults = EvalConfig()
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
    parser.add_argument("--datasets", type=_csv, default=["all"],
                        help="comma-separated dataset names, or 'all' for the 16 of the protocol (default: all)")
    parser.add_argument("--attacks", type=_csv, default=defaults.attacks,
                        help="comma-separated from clean,pgd,cw,aa, optionally with steps (pgd100); pgd/cw default "
                             "to 10 steps of 1/255, aa to 100 iterations (default: clean,pgd,aa)")
    parser.add_argument("--eps", type=float, default=defaults.eps, help="radius in units of 1/255 (default: 1)")
    parser.add_argument("--norm", choices=["linf", "l2"], default=defaults.norm)
    parser.add_argument("--n", "--images", dest="n", type=_n, default=defaults.n,
                        help="images per dataset (a fixed seeded subset, the same for every model) or 'all' "
                             "(default: %(default)s); under torchrun spell it --images")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="images per batch per process")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seeds the subset and the attacks")
    parser.add_argument("--data-root", default=defaults.data_root, help="folder holding the datasets")
    parser.add_argument("--out", default=defaults.out, help="results folder (default: %(default)s)")
    parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--num-workers", type=int, default=defaults.num_workers, help="DataLoader workers")
    parser.add_argument("--skip-existing", action=argparse.BooleanOptionalAction, default=defaults.skip_existing,
                        help="reuse finished per-image results in --out (resume); --no-skip-existing recomputes")
    add_quiet_flag(parser)
    parser.set_defaults(run=run)


def config_from_args(args: argparse.Namespace):
    from caw_core.evaluate import EvalConfig, optional
    from caw_core.models import ModelSpec

    if args.models:
        models = list(args.models)
    else:
        pretrained = optional(args.pretrained)
        models = [ModelSpec(args.model, pretrained, optional(c)) for c in args.checkpoint or ["none"]]
    return EvalConfig(models=models, datasets=args.datasets, attacks=args.attacks, eps=args.eps, norm=args.norm,
                      n=args.n, batch_size=args.batch_size, seed=args.seed, data_root=args.data_root, out=args.out,
                      device=args.device, num_workers=args.num_workers, skip_existing=args.skip_existing)


def run(args: argparse.Namespace) -> int:
    from caw_core.evaluate import evaluate
    from caw_core.report import render_report

    bar = None
    for record in evaluate(config_from_args(args)):
        event = record["event"]
        if event == "progress":
            if bar is None:
                bar = Progress(record["total"], f"{record['dataset']} {record['attack']}", "img", quiet=args.quiet)
            bar.update(record["done"], **({} if record["accuracy"] is None
                                          else {"acc": f"{100 * record['accuracy']:.1f}%"}))
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
