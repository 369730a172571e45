"""CAW: Confidence-Aware Weighting (arXiv 2510.02913, NeurIPS 2025 workshop).

With P = softmax(100 * cos(f, text head)), T the fine-tuned and O the frozen
original image tower, x clean and x' adversarial::

    L_total = CE(z_T(x'), y) + alpha * L_CA + beta * L_Reg
    L_CA    = mean_i KL(P_T(x')_i || P_O(x)_i) * (1 - P_T(x')_{i, y_i})
    L_Reg   = mean_i || f_T(x')_i - f_O(x')_i ||_2           (not squared)

The (1 - P_adv[y]) factor up-weights the hard adversarial examples (low
confidence in the true class); the KL direction puts the adversarial
distribution first (``kl="adv_clean"``; the ARoW-style ``"clean_adv"`` is the
paper's ablation). L_Reg keeps T's adversarial embeddings near O's, in the raw
embedding space by default (``reg_space="normalized"`` compares unit vectors).

Weight gradient: by default the gradient flows through (1 - P_adv[y]), the
formula as written (and as ARoW's code, which CAW builds on, computes it).
``detach_weight=True`` (``--detach-weight``) treats the weight as a constant
per-example importance factor instead; on a CAW-trained toy model the two
total gradients differ by 44-51% (relative L2, issue 12), so runs must say
which they used (config.json records it).

No reference code exists; the recipe is the paper's (SGD, lr 5e-5, PGD-2 at
1/255, TinyImageNet, 10 epochs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from caw_core.losses import kl_divergence_per_example
from caw_core.methods.base import LossTerms, MethodOptions, Objective, Recipe, StepInputs, option

KL_DIRECTIONS = ("adv_clean", "clean_adv")
REG_SPACES = ("raw", "normalized")
ABLATIONS = {"full": (True, True), "ce": (False, False), "ce+ca": (True, False), "ce+reg": (False, True)}


@dataclass(frozen=True)
class Options(MethodOptions):
    BEFORE_OPTIONS: ClassVar[dict] = {"detach_weight": True}

    alpha: float = option(1.0, "weight of the confidence-aware KL term L_CA", minimum=0.0)
    beta: float = option(1.0, "weight of the feature-alignment term L_Reg", minimum=0.0)
    kl: str = option("adv_clean", "KL direction of L_CA: adv_clean = KL(P_T(x')||P_O(x)) (paper), "
                     "clean_adv = the ablation", choices=KL_DIRECTIONS)
    detach_weight: bool = option(False, "stop gradients through the (1 - P_adv[y]) weight (a variant; the "
                                 "paper's formula lets them flow)")
    reg_space: str = option("raw", "L_Reg on raw or unit-normalized embeddings", choices=REG_SPACES)
    ablation: str = option("full", "which terms to use", choices=tuple(ABLATIONS))


def confidence_aware_loss(
    logits_adv: torch.Tensor,
    logits_clean: torch.Tensor,
    labels: torch.Tensor,
    kl: str = "adv_clean",
    detach_weight: bool = False,
) -> torch.Tensor:
    """``mean_i KL(P_adv_i || P_clean_i) * (1 - P_adv[i, y_i])``, P = softmax(logits).

    ``kl="clean_adv"`` gives ``KL(P_clean || P_adv)`` (the ablation direction).
    """
    if kl not in KL_DIRECTIONS:
        raise ValueError(f"kl must be one of {KL_DIRECTIONS}, got {kl!r}")
    if kl == "adv_clean":
        divergence = kl_divergence_per_example(logits_adv, logits_clean)
    else:
        divergence = kl_divergence_per_example(logits_clean, logits_adv)
    p_true = F.softmax(logits_adv.float(), dim=-1).gather(1, labels.view(-1, 1)).squeeze(1)
    weight = 1.0 - (p_true.detach() if detach_weight else p_true)
    return (divergence * weight).mean()


NORM_SMOOTHING = 1e-4


def feature_alignment_loss(feat_target: torch.Tensor, feat_original: torch.Tensor,
                           smoothing: float = NORM_SMOOTHING) -> torch.Tensor:
    """``mean_i || feat_target_i - feat_original_i ||_2`` (the Euclidean norm, not squared).

    Computed as ``sqrt(||d||^2 + s^2) - s`` with s = ``smoothing`` (1e-4, far
    below the distances training produces): the plain norm's gradient is a unit
    vector however small d is, so while T still equals O (the first steps from
    pretrained weights) float round-off of order 1e-7 in d would set a random
    gradient direction of full size. The smoothed norm's gradient fades to 0 there.
    """
    if feat_target.shape != feat_original.shape:
        raise ValueError(f"feature shapes differ: {tuple(feat_target.shape)} vs {tuple(feat_original.shape)}")
    squared = (feat_target.float() - feat_original.float()).pow(2).sum(dim=-1)
    return ((squared + smoothing ** 2).sqrt() - smoothing).mean()


class CAW(Objective):
    name: ClassVar[str] = "caw"
    Options: ClassVar[type] = Options
    recipe: ClassVar[Recipe] = Recipe(lr=5e-5, source="CAW paper (arXiv 2510.02913): SGD lr 5e-5, PGD-2 at 1/255, "
                                                      "TinyImageNet, 10 epochs")

    def losses(self, batch: StepInputs) -> LossTerms:
        o = self.options
        use_ca, use_reg = ABLATIONS[o.ablation]
        feat_adv = batch.encode(batch.adv)
        logits_adv = batch.logits(feat_adv)
        ce = F.cross_entropy(logits_adv.float(), batch.labels)
        total, parts = ce, {"ce": ce.detach()}
        needed = [x for x, used in ((batch.images, use_ca), (batch.adv, use_reg)) if used]
        if needed:
            with torch.no_grad():  # one batched pass of the frozen tower over what the terms need
                orig = batch.original(torch.cat(needed)).float().split(len(batch.images))
            if use_ca:
                ca = confidence_aware_loss(logits_adv, batch.logits(orig[0]), batch.labels, o.kl, o.detach_weight)
                total = total + o.alpha * ca
                parts["ca"] = ca.detach()
            if use_reg:
                target, reference = feat_adv, orig[-1]
                if o.reg_space == "normalized":
                    target, reference = F.normalize(target, dim=-1), F.normalize(reference, dim=-1)
                reg = feature_alignment_loss(target, reference)
                total = total + o.beta * reg
                parts["reg"] = reg.detach()
        return LossTerms(total, parts, logits_adv=logits_adv.detach())
