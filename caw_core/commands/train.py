"""``caw-core train``: adversarial fine-tuning (CAW or a baseline), resumable, DDP under torchrun."""

from __future__ import annotations

import argparse

from caw_core.commands.config_args import add_dataclass_options, config_from_args
from caw_core.commands.progress import Progress, add_quiet_flag
from caw_core.train_logs import TrainingLogs, parse_log_kinds

HELP = {
    "method": "training objective",
    "model": "open_clip architecture (ViT-B-32), or 'toy' for the embedded tiny CLIP",
    "pretrained": "open_clip pretrained tag (openai) or a local weights file (.safetensors/.bin/.pt)",
    "checkpoint": "start from a caw checkpoint (run or step folder) instead of the base image tower",
    "data": "training dataset (registry name; 'caw-core data check' lists them)",
    "data_root": "folder holding the datasets (layout: 'caw-core data check --root DIR')",
    "alpha": "CAW: weight of the confidence-aware KL term L_CA",
    "beta": "CAW: weight of the feature-alignment term L_Reg",
    "kl": "CAW: KL direction; adv_clean = KL(P_T(x')||P_O(x)) (paper), clean_adv = ablation",
    "detach_weight": "CAW: stop gradients through the (1 - P_adv[y]) weight",
    "reg_space": "CAW: L_Reg on raw or unit-normalised embeddings",
    "ablation": "CAW: which terms to use",
    "eps": "inner-attack radius in units of 1/255",
    "attack_steps": "inner PGD steps",
    "attack_step_size": "inner PGD step size in units of 1/255",
    "attack_norm": "inner PGD norm",
    "optimizer": "outer optimizer",
    "lr": "learning rate (default: the method's recipe: caw/pmg-aft 5e-5, tga-zsr 1e-4, ft-adv/fare 1e-5, tecoa 1e-7)",
    "warmup_steps": "linear warm-up steps before the cosine decay (capped at 10%% of the run)",
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
    "runs_dir": "folder of run folders",
    "name": "run folder name (default: method-data-timestamp)",
    "save_every": "checkpoint every N steps (and at the end or on stop)",
    "keep_last": "keep this many recent checkpoints (plus the best)",
}


def add_parser(subparsers) -> None:
    from caw_core.methods import METHODS
    from caw_core.methods.caw import ABLATIONS, KL_DIRECTIONS, REG_SPACES
    from caw_core.train import OPTIMIZERS, PRECISIONS, TrainConfig

    parser = subparsers.add_parser(
        "train", help="adversarially fine-tune CLIP's image tower (CAW or a baseline)",
        description="Adversarially fine-tune CLIP's image tower with CAW or a baseline. The defaults are the CAW "
                    "paper's recipe: ViT-B-32/openai on TinyImageNet, PGD-2 at eps 1/255, SGD, 10 epochs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    choices = {"method": list(METHODS), "kl": list(KL_DIRECTIONS), "reg_space": list(REG_SPACES),
               "ablation": list(ABLATIONS), "attack_norm": ["linf", "l2"], "optimizer": list(OPTIMIZERS),
               "precision": list(PRECISIONS)}
    add_dataclass_options(parser, TrainConfig, HELP, choices)
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue the run in RUN_DIR from its latest checkpoint (its config is reused; "
                             "--epochs/--max-steps given here extend it)")
    parser.add_argument("--log", action="append", default=None, metavar="tensorboard|csv",
                        help="also write the per-step metrics as TensorBoard scalars + hparams (view with "
                             "'tensorboard --logdir RUNS_DIR') or as metrics.csv, in the run folder; repeat or "
                             "give a comma list")
    add_quiet_flag(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from caw_core.train import Trainer, resume_config, TrainConfig

    kinds = parse_log_kinds(args.log)
    if args.resume:
        defaults = TrainConfig()
        extend = {k: getattr(args, k) for k in ("epochs", "max_steps") if getattr(args, k) != getattr(defaults, k)}
        config = resume_config(args.resume, **extend)
        trainer = Trainer(config, resume=True)
    else:
        trainer = Trainer(config_from_args(TrainConfig, args))
    progress = Progress(trainer.total_steps, "train", "step", initial=trainer.progress.step,
                        quiet=args.quiet or not trainer.ctx.is_main)
    progress.message(f"run folder: {trainer.run_dir}")
    last = {}
    with progress, TrainingLogs(kinds if trainer.ctx.is_main else [], trainer.run_dir, trainer.config, trainer.progress.step) as logs:
        for record in trainer.run():
            last = record
            logs.write(record)
            if record["event"] == "step":
                progress.update(record["step"], **{k: record[k] for k in ("loss", "ce", "ca", "reg", "robust_acc")
                                                   if record.get(k) is not None})
    if trainer.ctx.is_main:
        print(f"{last.get('event', 'done')} at step {last.get('step')} of {last.get('total_steps')}; "
              f"checkpoints in {trainer.run_dir / 'checkpoints'}")
    return 0
