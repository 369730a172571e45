"""PMG-AFT: pre-trained-model-guided adversarial fine-tuning (Wang et al., CVPR 2024).

Reference: serendipity1122/Pre-trained-Model-Guided-Fine-Tuning-for-Zero-Shot-Adversarial-Robustness,
``PMG_AFT.py`` at commit 4baf55d2b03085d13f4606f6ff60105dfd8320b4 (``train``, ``multiGPU_CLIP``).
With s_T(x) = cos(f_T(x), text head) -- raw cosines, no logit scale (``multiGPU_CLIP`` re-normalises the
scaled text embedding) -- P = softmax(s) and KL(P || Q) = sum_c P_c log(P_c / Q_c), the default
``variant="reference"`` is the reference's loss::

    L = CE(s_T(x'), y) + w_o * sum_i KL(P_T(x')_i || P_O(x')_i) + w_c * sum_i KL(P_T(x')_i || P_T(x)_i)

The reference calls ``nn.KLDivLoss(reduction="sum")(log_softmax(output_ori), softmax(output))``, which is
``sum target * (log target - input)`` = KL(P_T(x') || P_O(x')), summed over the batch (the adversarial
distribution of T comes first in both terms); the CE is the batch mean. Its inner PGD maximises the same
raw-cosine cross-entropy, so :meth:`PMGAFT.attack_target` does too. Weights w_o = w_c = 1 as in the reference.

``variant="caw-v1"`` is what caw trained before following the reference: CLIP's logit scale (100 * cos),
batch-mean KL terms, and the distillation direction KL(P_O(x') || P_T(x')) + KL(P_T(x) || P_T(x')) (teacher
first, as in Hinton-style distillation). Kept, named, for two reasons: runs made with it can be reproduced,
and its terms stay on the cross-entropy's scale (at the reference's raw-cosine scale the softmax over 200
classes is nearly uniform, so the CE gradient is ~100x weaker, and the batch sum multiplies the KL terms by
the batch size) -- a reasonable choice when PMG-AFT is run with other batch sizes. It is not the paper's
method; tables must say which variant they used.

Departure kept in both variants: CLIP's own mean/std inside the model (the reference normalises with
ImageNet statistics). T runs once on [x; x'] and O once on x', under no_grad.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from caw_core.losses import cross_entropy_per_example, kl_divergence_per_example
from caw_core.methods.base import AttackTarget, LossTerms, MethodOptions, Objective, Recipe, StepInputs, option
from caw_core.models.zero_shot import LOGIT_SCALE, ImageEncoder


@dataclass(frozen=True)
class Variant:
    """How the terms are computed: logit scale on the cosines, batch reduction of the KL terms, KL order."""

    logit_scale: float
    kl_reduction: str  # "sum" or "mean"
    adversarial_first: bool  # KL(P_T(x') || .) when True, KL(. || P_T(x')) when False


VARIANTS = {"reference": Variant(1.0, "sum", True), "caw-v1": Variant(LOGIT_SCALE, "mean", False)}


@dataclass(frozen=True)
class Options(MethodOptions):
    BEFORE_OPTIONS: ClassVar[dict] = {"variant": "caw-v1"}

    kl_original_weight: float = option(1.0, "weight of the KL term between T and the original model on x'",
                                       minimum=0.0)
    kl_clean_weight: float = option(1.0, "weight of the KL term between T on x' and T on x", minimum=0.0)
    variant: str = option("reference", "reference = PMG_AFT.py's loss (raw-cosine logits, batch-sum KL, "
                          "P_T(x') first); caw-v1 = caw's earlier variant (100*cos, batch mean, teacher first)",
                          choices=tuple(VARIANTS))


def scaled_logits(features: torch.Tensor, text_head: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale * cos(features, text_head)``: (B, D) x (C, D) -> (B, C)."""
    return scale * F.normalize(features.float(), dim=-1) @ text_head.float().t()


def pmg_aft_loss(feat_adv: torch.Tensor, feat_clean: torch.Tensor, feat_orig_adv: torch.Tensor,
                 text_head: torch.Tensor, labels: torch.Tensor, options: Options) -> LossTerms:
    """The PMG-AFT loss from the three embeddings f_T(x'), f_T(x) and f_O(x') (see the module docstring)."""
    variant = VARIANTS[options.variant]
    logits_adv, logits_clean, logits_orig_adv = (scaled_logits(f, text_head, variant.logit_scale)
                                                 for f in (feat_adv, feat_clean, feat_orig_adv))

    def kl_with_adv(other: torch.Tensor) -> torch.Tensor:
        per_example = (kl_divergence_per_example(logits_adv, other) if variant.adversarial_first
                       else kl_divergence_per_example(other, logits_adv))
        return per_example.sum() if variant.kl_reduction == "sum" else per_example.mean()

    ce = F.cross_entropy(logits_adv, labels)
    kl_orig, kl_clean = kl_with_adv(logits_orig_adv), kl_with_adv(logits_clean)
    total = ce + options.kl_original_weight * kl_orig + options.kl_clean_weight * kl_clean
    parts = {"ce": ce.detach(), "kl_original": kl_orig.detach(), "kl_clean": kl_clean.detach()}
    return LossTerms(total, parts, logits_adv=logits_adv.detach(), logits_clean=logits_clean.detach())


class PMGAFT(Objective):
    name: ClassVar[str] = "pmg-aft"
    Options: ClassVar[type] = Options
    recipe: ClassVar[Recipe] = Recipe(lr=5e-5, source="PMG_AFT.py argparse (SGD lr 5e-5, 10 epochs); attack as the "
                                                      "shared recipe, PGD-2 at 1/255")

    def attack_target(self, target_encoder: ImageEncoder, original: ImageEncoder, text_head: torch.Tensor,
                      images: torch.Tensor, labels: torch.Tensor) -> AttackTarget:
        """The cross-entropy of the variant's logits (raw cosines for the reference)."""
        scale = VARIANTS[self.options.variant].logit_scale
        return AttackTarget(forward=lambda x: scaled_logits(target_encoder(x), text_head, scale), labels=labels,
                            loss_fn=cross_entropy_per_example)

    def losses(self, batch: StepInputs) -> LossTerms:
        feat_clean, feat_adv = batch.encode(torch.cat([batch.images, batch.adv])).chunk(2)
        with torch.no_grad():
            feat_orig_adv = batch.original(batch.adv)
        return pmg_aft_loss(feat_adv, feat_clean, feat_orig_adv, batch.text_head, batch.labels, self.options)
