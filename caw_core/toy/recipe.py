"""The toy world's presets, in one home: how the demo, the GUI and the tests fine-tune and evaluate the toy CLIP.

Training (every method the same, only the learning rate differs): the
embedded toy CLIP fine-tuned on the training task ``toy-shape`` with SGD
(momentum 0.9, no weight decay -- also for FARE, whose reference uses AdamW:
the miniature compares objectives under one optimizer and one lr grid),
PGD-2 inner attack at eps :data:`TOY_EPS` (/255) with the attacks' one step
rule (``attack_step_size=None`` -> :func:`caw_core.attacks.pgd.default_step_size`,
2*eps/steps = eps here), batch :data:`TOY_BATCH`, :data:`TOY_STEPS` steps
(sized so the full experiment fits two shared CPU cores), warm-up 10 steps
capped at a tenth of the run, then cosine.

Evaluation: zero-shot on every toy task (the training task and the held-out
ones), clean, PGD-10 and AutoAttack at the same eps, worst case per image.

Learning rates: each method's is :data:`TOY_LR` [method], chosen from
:data:`LR_GRID` on the validation split of the training task by the rule in
:mod:`caw_core.toy.selection` (see docs/RESULTS.md for the run that chose them).
The presets are returned fresh by functions (the configs are mutable dataclasses).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from caw_core.data.toyworld import TOY_TASKS, TOY_TRAIN_TASK
from caw_core.evaluate import EvalConfig
from caw_core.models import ModelSpec
from caw_core.train import TrainConfig

TOY_EPS = 12.0  # /255: at this radius the vanilla toy CLIP is broken on every task (docs/RESULTS.md)
TOY_BATCH = 32
TOY_STEPS = 50
TOY_ATTACK_STEPS = 2
TOY_ATTACKS = ("clean", "pgd", "aa")  # pgd = PGD-10, aa = AutoAttack APGD-CE + APGD-T
TOY_EVAL_N = 100

# The learning-rate grid every method is searched over, and each method's chosen value: the selection of
# `caw-core demo --full` (docs/RESULTS.md, "Learning-rate selection"; rule in caw_core.toy.selection).
LR_GRID = (3e-5, 1e-4, 3e-4)
TOY_LR: dict[str, float] = {
    "ft-adv": 3e-5,
    "tecoa": 3e-5,
    "pmg-aft": 1e-4,
    "tga-zsr": 3e-5,
    "fare": 3e-5,
    "caw": 1e-4,
}
DEFAULT_LR = 1e-4  # a method (or ablation variant) the selection has not covered


def toy_lr(method: str) -> float:
    """The chosen toy learning rate of ``method`` (``caw``, ``tecoa``, ...)."""
    return TOY_LR.get(method.replace("_", "-"), DEFAULT_LR)


def toy_train_config(method: str = "caw", *, lr: Optional[float] = None, options: Optional[dict] = None,
                     **changes) -> TrainConfig:
    """The toy fine-tune of ``method`` at its chosen lr (or ``lr``) with the method's ``options``.

    ``changes`` override any other ``TrainConfig`` field.
    """
    config = TrainConfig(
        method=method, method_options=dict(options or {}), model="toy", pretrained=None, data=TOY_TRAIN_TASK,
        eps=TOY_EPS, attack_steps=TOY_ATTACK_STEPS, attack_step_size=None, optimizer="sgd", weight_decay=0.0,
        lr=toy_lr(method) if lr is None else lr, warmup_steps=10, epochs=1_000, max_steps=TOY_STEPS,
        batch_size=TOY_BATCH, device="cpu", num_workers=0, save_every=TOY_STEPS)
    return dataclasses.replace(config, **changes)


def toy_eval_config(models: Optional[list] = None, **changes) -> EvalConfig:
    """Zero-shot evaluation on every toy task at the toy eps (clean, PGD-10, AutoAttack); vanilla by default."""
    config = EvalConfig(
        models=list(models) if models is not None else [ModelSpec("toy", None)], datasets=list(TOY_TASKS),
        attacks=list(TOY_ATTACKS), eps=TOY_EPS, n=TOY_EVAL_N, batch_size=100, seed=0, data_root=".",
        device="cpu")
    return dataclasses.replace(config, **changes)
