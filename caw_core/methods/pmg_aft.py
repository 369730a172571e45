"""PMG-AFT: pre-trained-model-guided adversarial fine-tuning (Wang et al., CVPR 2024).

With P = softmax(logits) and KL(P || Q) = sum_c P_c log(P_c / Q_c)::

    L = CE(z_T(x'), y) + w_o * KL(P_O(x') || P_T(x')) + w_c * KL(P_T(x) || P_T(x'))

The first KL pulls T's adversarial prediction towards the original model's
prediction on the same adversarial image (generalisation); the second towards
T's own clean prediction (robustness). Weights default to 1 as in the reference.

Departures from the reference code, on purpose (see ANCHORS.md): all terms use
the model's 100 * cos logits and CLIP's own mean/std (the reference code uses
raw cosine logits and ImageNet statistics); the KL terms are averaged over the
batch by default (``kl_reduction="mean"``) so that their scale matches the
mean cross-entropy -- ``kl_reduction="sum"`` reproduces the reference's sum.
T runs once on [x; x'] and O once on x', under no_grad.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from caw_core.methods.base import LossTerms, Objective, StepInputs

KL_REDUCTIONS = ("mean", "sum")


def kl_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """KL(P || Q) per example, reduced over the batch by mean or sum."""
    log_p = F.log_softmax(logits_p.float(), dim=-1)
    log_q = F.log_softmax(logits_q.float(), dim=-1)
    per_example = (log_p.exp() * (log_p - log_q)).sum(dim=-1)
    return per_example.sum() if reduction == "sum" else per_example.mean()


class PMGAFT(Objective):
    name: ClassVar[str] = "pmg-aft"
    summary: ClassVar[str] = "CE(adv) + KL(P_O(x') || P_T(x')) + KL(P_T(x) || P_T(x'))"
    default_lr: ClassVar[float] = 5e-5

    def __init__(self, weight_original: float = 1.0, weight_clean: float = 1.0, kl_reduction: str = "mean"):
        if weight_original < 0 or weight_clean < 0:
            raise ValueError("PMG-AFT weights must be >= 0")
        if kl_reduction not in KL_REDUCTIONS:
            raise ValueError(f"kl_reduction must be one of {KL_REDUCTIONS}, got {kl_reduction!r}")
        self.weight_original, self.weight_clean, self.kl_reduction = weight_original, weight_clean, kl_reduction

    def options(self) -> dict:
        return {"weight_original": self.weight_original, "weight_clean": self.weight_clean,
                "kl_reduction": self.kl_reduction}

    def losses(self, batch: StepInputs) -> LossTerms:
        features = batch.encode(torch.cat([batch.images, batch.adv]))
        logits_clean, logits_adv = batch.logits(features).chunk(2)
        with torch.no_grad():
            logits_orig_adv = batch.logits(batch.original(batch.adv))
        ce = F.cross_entropy(logits_adv.float(), batch.labels)
        kl_orig = kl_divergence(logits_orig_adv, logits_adv, self.kl_reduction)
        kl_clean = kl_divergence(logits_clean, logits_adv, self.kl_reduction)
        total = ce + self.weight_original * kl_orig + self.weight_clean * kl_clean
        parts = {"ce": ce.detach(), "kl_original": kl_orig.detach(), "kl_clean": kl_clean.detach()}
        return LossTerms(total, parts, logits_adv=logits_adv.detach(), logits_clean=logits_clean.detach())
