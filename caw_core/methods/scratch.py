"""Throwaway: CE scaled by a weight (measuring what a new method touches)."""

from dataclasses import dataclass
from typing import ClassVar

import torch.nn.functional as F

from caw_core.methods.base import LossTerms, MethodOptions, Objective, Recipe, StepInputs, option


@dataclass(frozen=True)
class Options(MethodOptions):
    weight: float = option(1.0, "scale of the CE", minimum=0.0)
    mode: str = option("a", "a mode", choices=("a", "b"))


class Scratch(Objective):
    name: ClassVar[str] = "scratch"
    Options: ClassVar[type] = Options
    recipe: ClassVar[Recipe] = Recipe(lr=3e-5, source="none")

    def losses(self, batch: StepInputs) -> LossTerms:
        logits = batch.logits(batch.encode(batch.adv))
        ce = self.options.weight * F.cross_entropy(logits.float(), batch.labels)
        return LossTerms(ce, {"ce": ce.detach()}, logits_adv=logits.detach())
