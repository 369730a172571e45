"""The toy experiment's learning-rate choice, declared before any number: one rule, one grid, one split.

Rule (the same for every method; docs/RESULTS.md repeats it):

1. fine-tune each method with seed 0 at every learning rate of the grid
   (:data:`caw_core.toy.recipe.LR_GRID`), everything else the toy recipe;
2. measure each fine-tune on the first ``n`` images of the **validation split
   of the training task** (``toy-shape``, split ``val``: scenes no reported
   number uses) -- clean accuracy c and PGD-10 accuracy r at the recipe's eps
   (worst case per image: an image counts when it is clean-correct and
   PGD-correct);
3. a learning rate is *eligible* when c >= :data:`CLEAN_FLOOR` x c(vanilla)
   (the fine-tune keeps at least 60% of the vanilla model's clean accuracy);
4. the chosen learning rate is the eligible one with the highest r; equal r
   goes to the higher c, then to the smaller learning rate. When none is
   eligible, the one with the highest c is chosen and the record says so.

Held-out tasks and the test split are never loaded here: the only data this
module reads is ``load_dataset(SELECTION_TASK, split=SELECTION_SPLIT)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

import torch

from caw_core.attacks.registry import attack_images
from caw_core.data import load_dataset
from caw_core.data.toyworld import TOY_TRAIN_TASK

SELECTION_TASK = TOY_TRAIN_TASK
SELECTION_SPLIT = "val"
SELECTION_ATTACK = "pgd"  # PGD-10 (the registry's default steps)
CLEAN_FLOOR = 0.6
RULE = ("lr with the highest validation PGD-10 accuracy among those keeping validation clean accuracy >= "
        f"{CLEAN_FLOOR:g} x vanilla's (ties: higher clean, then smaller lr; none eligible: highest clean); "
        f"validation = split '{SELECTION_SPLIT}' of {SELECTION_TASK}, seed-0 fine-tunes")


@dataclass(frozen=True)
class ValidationScore:
    """Accuracy of one model on the validation split: clean and worst case over clean + PGD-10, fractions."""

    clean: float
    robust: float
    n: int


@dataclass(frozen=True)
class Choice:
    lr: float
    eligible: bool  # False: no grid value kept the clean floor; the highest-clean one was taken


def validation_score(model, eps: float, n: int, seed: int = 0) -> ValidationScore:
    """Clean and PGD-10 accuracy of ``model`` on the first ``n`` validation images of the training task.

    ``eps`` in /255. The attack's random start is seeded by ``seed``, so the
    same model gets the same score.
    """
    data = load_dataset(SELECTION_TASK, split=SELECTION_SPLIT, image_size=model.image_size)
    count = min(n, len(data))
    pairs = [data.data[i] for i in range(count)]
    images, labels = torch.stack([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])
    model.set_classes(data.classnames, data.templates)
    model.eval()
    with torch.no_grad():
        clean = model(images).argmax(dim=1) == labels
    adv = attack_images(SELECTION_ATTACK, model, images, labels, eps / 255, seed=seed)
    with torch.no_grad():
        robust = clean & (model(adv).argmax(dim=1) == labels)
    return ValidationScore(clean.float().mean().item(), robust.float().mean().item(), count)


def choose_lr(scores: Mapping[float, ValidationScore], vanilla: ValidationScore) -> Choice:
    """The rule of the module docstring applied to ``{lr: score}``."""
    if not scores:
        raise ValueError("no learning rate to choose from")
    eligible = {lr: s for lr, s in scores.items() if s.clean >= CLEAN_FLOOR * vanilla.clean}
    if eligible:
        return Choice(min(eligible, key=lambda lr: (-eligible[lr].robust, -eligible[lr].clean, lr)), True)
    return Choice(min(scores, key=lambda lr: (-scores[lr].clean, lr)), False)


def selection_record(grid, vanilla: ValidationScore, scores: Mapping[str, Mapping[float, ValidationScore]],
                     choices: Mapping[str, Choice]) -> dict:
    """The JSON record of a selection: rule, grid, split, vanilla's score, every score and every choice."""
    return {
        "rule": RULE, "task": SELECTION_TASK, "split": SELECTION_SPLIT, "clean_floor": CLEAN_FLOOR,
        "grid": list(grid), "vanilla": asdict(vanilla),
        "methods": {method: {"scores": {f"{lr:g}": asdict(s) for lr, s in per_lr.items()},
                             "chosen_lr": choices[method].lr, "eligible": choices[method].eligible}
                    for method, per_lr in scores.items()},
    }
