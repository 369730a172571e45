"""FT-Adv: adversarial fine-tuning with CLIP's own symmetric image-text contrastive loss.

As TGA-ZSR's ``FT.py --Method FT-Standard`` defines it (zhyblue424/TGA-ZSR, ``FT.py`` at commit
9c6412b8fb1f72256be529b01a543d8c6e176a48, run by ``main.sh`` as ``FT.py --Method FT-Standard
--VPbaseline False``). Each image's caption is its class prompt, so the caption text feature of
image j is the text-head row of its label, t_{y_j}. With the in-batch similarity matrix

    S_ij = 100 * cos(f_T(x'_i), t_{y_j})          (B x B; ``output[:, target]`` in FT.py)

the loss is CLIP's symmetric InfoNCE with the diagonal as the positives::

    L = ( CE(S, [0..B-1]) + CE(S^T, [0..B-1]) ) / 2

(``loss_img`` over the rows, ``loss_txt`` over ``text_logits[target, :]`` = S^T). As in the reference,
two images of the same class in a batch count as each other's negatives. The inner PGD maximises the
usual cross-entropy over the class prompts (FT.py's ``attack_pgd``). Recipe: FT.py's argparse --
SGD momentum 0.9, lr 1e-4, no weight decay, 1000 warm-up steps, 10 epochs, batch 128, PGD-2 at 1/255.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from caw_core.methods.base import LossTerms, Objective, Recipe, StepInputs


def contrastive_loss(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric in-batch loss from (B, C) class logits: S = class_logits[:, labels], diagonal positive."""
    pairs = class_logits[:, labels].float()
    positives = torch.arange(len(labels), device=labels.device)
    return (F.cross_entropy(pairs, positives) + F.cross_entropy(pairs.t(), positives)) / 2


class FTAdv(Objective):
    name: ClassVar[str] = "ft-adv"
    recipe: ClassVar[Recipe] = Recipe(lr=1e-4, source="TGA-ZSR FT.py --Method FT-Standard (argparse: SGD lr 1e-4, "
                                                      "PGD-2 at 1/255, 10 epochs)")

    def losses(self, batch: StepInputs) -> LossTerms:
        logits_adv = batch.logits(batch.encode(batch.adv))
        loss = contrastive_loss(logits_adv, batch.labels)
        return LossTerms(loss, {"contrastive": loss.detach()}, logits_adv=logits_adv.detach())
