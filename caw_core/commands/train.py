"""``caw-core train``: adversarial fine-tuning (CAW or a baseline), resumable, DDP under torchrun.

The flags of the run come from :class:`caw_core.train.TrainConfig`; each method's own options (CAW's
``--alpha``, PMG-AFT's ``--pmg-aft-variant``, ...) come from that method's ``Options`` dataclass, so a
new method or option needs no edit here. Every option has the long form ``--<method>-<option>``; the
short ``--<option>`` exists while no other method has an option of the same name.
"""

from __future__ import annotations

import argparse
import signal

from caw_core.commands.config_args import (
    DefaultsHelpFormatter,
    add_dataclass_options,
    add_method_options,
    config_from_args,
    given_options,
    method_options_from_args,
)
from caw_core.commands.progress import Progress, add_quiet_flag
from caw_core.train_logs import TrainingLogs, parse_log_kinds

# What a resumed run may change: how long it runs and its bookkeeping, never the recipe.
RESUME_OVERRIDES = ("epochs", "max_steps", "save_every", "keep_last", "num_workers", "device", "clean_acc_every")

HELP = {
    "method": "training objective",
    "model": "open_clip architecture (ViT-B-32), or 'toy' for the embedded tiny CLIP",
    "pretrained": "open_clip pretrained tag (openai) or a local weights file (.safetensors/.bin/.pt)",
    "checkpoint": "start from a caw checkpoint (run or step folder) instead of the base image tower",
    "data": "training dataset (registry name; 'caw-core data check' lists them)",
    "data_root": "folder holding the datasets (layout: 'caw-core data check --root DIR')",
    "eps": "inner-attack radius in units of 1/255",
    "attack_steps": "inner PGD steps",
    "attack_step_size": "inner PGD step size in units of 1/255 (default: 2*eps/steps, at least 1/255 under linf)",
    "attack_norm": "inner PGD norm",
    "optimizer": "outer optimizer",
    "lr": "learning rate",
    "momentum": "SGD momentum",
    "weight_decay": "weight decay",
    "warmup_steps": "linear warm-up steps before the cosine decay; capped at a tenth of the run (10%% of its "
                    "optimizer steps)",
    "epochs": "passes over the training set",
    "max_steps": "stop after this many optimizer steps",
    "batch_size": "global batch size (split over torchrun processes)",
    "grad_clip": "clip the gradient norm to this value",
    "precision": "bf16 autocasts the training forward on CUDA; evaluation attacks always run in fp32",
    "channels_last": "channels_last memory format for the image tower (CUDA only)",
    "compile": "torch.compile the image towers (slower first steps, faster after)",
    "device": "auto, cpu, cuda, cuda:1, mps",
    "num_workers": "DataLoader worker processes",
    "clean_acc_every": "measure train clean accuracy every N steps (methods that don't compute it anyway)",
    "cache_original_features": "compute the frozen tower's features on each clean training image once and reuse "
                               "them across epochs and resumes (default: on unless the training transform is random)",
    "runs_dir": "folder of run folders",
    "name": "run folder name (default: method-data-timestamp)",
    "save_every": "checkpoint every N steps (and at the end or on stop)",
    "keep_last": "keep this many recent checkpoints (plus the best)",
}


def recipe_help(name: str, methods) -> str:
    """``(default: the method's recipe: 5e-05 for caw, pmg-aft; ...)`` from the methods' ``Recipe``s."""
    by_value: dict = {}
    for method, cls in methods.items():
        by_value.setdefault(getattr(cls.recipe, name), []).append(method)
    values = "; ".join(f"{value:g} for {', '.join(owners)}" if isinstance(value, float)
                       else f"{value} for {', '.join(owners)}" for value, owners in by_value.items())
    return f"{HELP[name]} (default: the method's recipe: {values})"


def add_parser(subparsers) -> None:
    from caw_core.methods import METHODS
    from caw_core.train import OPTIMIZERS, PRECISIONS, RECIPE_FIELDS, TrainConfig

    parser = subparsers.add_parser(
        "train", help="adversarially fine-tune CLIP's image tower (CAW or a baseline)",
        description="Adversarially fine-tune CLIP's image tower with CAW or a baseline. The defaults are the CAW "
                    "paper's recipe: ViT-B-32/openai on TinyImageNet, PGD-2 at eps 1/255, SGD, 10 epochs; each "
                    "method's learning rate, optimizer and attack default to its reference's recipe. The "
                    "warm-up never exceeds a tenth of the run. Ctrl-C or SIGTERM saves a checkpoint of the "
                    "current step and exits 130/143; --resume continues exactly.",
        formatter_class=DefaultsHelpFormatter)
    choices = {"method": list(METHODS), "attack_norm": ["linf", "l2"], "optimizer": list(OPTIMIZERS),
               "precision": list(PRECISIONS)}
    help_texts = {**HELP, **{name: recipe_help(name, METHODS) for name in RECIPE_FIELDS}}
    add_dataclass_options(parser, TrainConfig, help_texts, choices, skip=("method_options",))
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue the run in RUN_DIR from its latest checkpoint (its config is reused; "
                             f"only --{', --'.join(k.replace('_', '-') for k in RESUME_OVERRIDES)} may be given "
                             "with it)")
    parser.add_argument("--log", action="append", default=None, metavar="tensorboard|csv",
                        help="also write the per-step metrics as TensorBoard scalars + hparams (view with "
                             "'tensorboard --logdir RUNS_DIR') or as metrics.csv, in the run folder; repeat or "
                             "give a comma list")
    add_quiet_flag(parser)
    add_method_options(parser, METHODS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from caw_core.methods import method_class
    from caw_core.train import Trainer, resume_config, TrainConfig

    kinds = parse_log_kinds(args.log)
    if args.resume:
        if any(dest.startswith("method_option:") for dest in vars(args)):
            raise ValueError("a resumed run keeps the method options of its config.json; start a new run to change them")
        given = given_options(TrainConfig, args)
        fixed = sorted(set(given) - set(RESUME_OVERRIDES))
        if fixed:
            raise ValueError(f"--{fixed[0].replace('_', '-')} cannot be changed when resuming (the run's config.json "
                             f"is reused); only --{', --'.join(k.replace('_', '-') for k in RESUME_OVERRIDES)} can")
        config = resume_config(args.resume, **given)
        trainer = Trainer(config, resume=True)
    else:
        options = method_options_from_args(args, method_class(args.method or TrainConfig.method).name)
        trainer = Trainer(config_from_args(TrainConfig, args, method_options=options))
    progress = Progress(trainer.total_steps, "train", "step", initial=trainer.progress.step,
                        quiet=args.quiet or not trainer.ctx.is_main)
    progress.message(f"run folder: {trainer.run_dir}")
    last = {}
    logs = TrainingLogs(kinds if trainer.ctx.is_main else [], trainer.run_dir, trainer.config, trainer.progress.step)
    with progress, logs:
        for record in trainer.run():
            last = record
            logs.write(record)
            if record["event"] == "step":
                progress.update(record["step"], **{k: record[k] for k in ("loss", "ce", "ca", "reg", "robust_acc")
                                                   if record.get(k) is not None})
    if trainer.ctx.is_main:
        print(f"{last.get('event', 'done')} at step {last.get('step')} of {last.get('total_steps')}; "
              f"checkpoints in {trainer.run_dir / 'checkpoints'}")
    if last.get("signal"):  # stopped by SIGINT/SIGTERM after saving: the shell convention 128 + signal
        return 128 + int(signal.Signals[last["signal"]])
    return 0
