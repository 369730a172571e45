"""TeCoA: text-guided contrastive adversarial training (Mao et al., ICLR 2023).

The cross-entropy of T's zero-shot logits on the adversarial image, over the class prompts::

    L = CE(z_T(x'), y),   z = 100 * cos(f_T(x'), text head)

Recipe: the TeCoA row that TGA-ZSR and the CAW line of papers compare against, TGA-ZSR's
``main.sh`` (zhyblue424/TGA-ZSR, commit b34d46f3670cf35aa48f59d62653dd750ad349a1):
``TGA-ZSR.py --Method TeCoA --Alpha 0.0 --Beta 0.0 --learning_rate 1e-5`` -- SGD momentum 0.9, lr 1e-5,
PGD-2 at 1/255, TinyImageNet, 10 epochs. (1e-7 is only the TeCoA repository's argparse default; at 1e-7
the 10-epoch recipe barely moves the tower.)
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F

from caw_core.methods.base import LossTerms, Objective, Recipe, StepInputs


class TeCoA(Objective):
    name: ClassVar[str] = "tecoa"
    recipe: ClassVar[Recipe] = Recipe(lr=1e-5, source="TGA-ZSR main.sh (TGA-ZSR.py --Method TeCoA --Alpha 0 "
                                                      "--Beta 0 --learning_rate 1e-5)")

    def losses(self, batch: StepInputs) -> LossTerms:
        logits_adv = batch.logits(batch.encode(batch.adv))
        ce = F.cross_entropy(logits_adv.float(), batch.labels)
        return LossTerms(ce, {"ce": ce.detach()}, logits_adv=logits_adv.detach())
