"""FT-Adv and TeCoA: adversarial fine-tuning with the zero-shot cross-entropy.

Loss (TeCoA, Mao et al. 2023, "text-guided contrastive adversarial training")::

    L = CE(z_T(x'), y),   z = 100 * cos(f_T(x'), text head)

FT-Adv and TeCoA share this loss; the CAW paper reports them separately
because of the recipe: TeCoA's code default learning rate (1e-7) against the
re-tuned 1e-5 of FT-Adv. Only the default learning rate differs here.
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F

from caw_core.methods.base import LossTerms, Objective, StepInputs


class FTAdv(Objective):
    name: ClassVar[str] = "ft-adv"
    summary: ClassVar[str] = "CE(z_T(x'), y): plain adversarial fine-tuning (lr 1e-5)"
    default_lr: ClassVar[float] = 1e-5

    def losses(self, batch: StepInputs) -> LossTerms:
        logits_adv = batch.logits(batch.encode(batch.adv))
        ce = F.cross_entropy(logits_adv.float(), batch.labels)
        return LossTerms(ce, {"ce": ce.detach()}, logits_adv=logits_adv.detach())


class TeCoA(FTAdv):
    name: ClassVar[str] = "tecoa"
    summary: ClassVar[str] = "CE(z_T(x'), y) with TeCoA's code-default recipe (lr 1e-7)"
    default_lr: ClassVar[float] = 1e-7
