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

Weight gradient (``detach_weight``, default True): the paper writes the weight
as a factor without saying whether gradients flow through it. We detach it by
default so that it acts as a pure per-example importance weight, the role the
paper gives it; letting gradients flow adds a second, KL-scaled push on
P_adv[y] (a CE-like term) whose effect would be confounded with L_CE.
``detach_weight=False`` is available for the comparison.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from caw_core.methods.base import LossTerms, Objective, StepInputs

KL_DIRECTIONS = ("adv_clean", "clean_adv")
REG_SPACES = ("raw", "normalized")
ABLATIONS = {"full": (True, True), "ce": (False, False), "ce+ca": (True, False), "ce+reg": (False, True)}


def confidence_aware_loss(
    logits_adv: torch.Tensor,
    logits_clean: torch.Tensor,
    labels: torch.Tensor,
    kl: str = "adv_clean",
    detach_weight: bool = True,
) -> torch.Tensor:
    """``mean_i KL(P_adv_i || P_clean_i) * (1 - P_adv[i, y_i])``, P = softmax(logits).

    ``kl="clean_adv"`` gives ``KL(P_clean || P_adv)`` (the ablation direction).
    """
    if kl not in KL_DIRECTIONS:
        raise ValueError(f"kl must be one of {KL_DIRECTIONS}, got {kl!r}")
    log_p_adv = F.log_softmax(logits_adv.float(), dim=-1)
    log_p_clean = F.log_softmax(logits_clean.float(), dim=-1)
    if kl == "adv_clean":
        divergence = (log_p_adv.exp() * (log_p_adv - log_p_clean)).sum(dim=-1)
    else:
        divergence = (log_p_clean.exp() * (log_p_clean - log_p_adv)).sum(dim=-1)
    p_true = log_p_adv.gather(1, labels.view(-1, 1)).squeeze(1).exp()
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
    summary: ClassVar[str] = "CE(adv) + alpha * confidence-weighted KL(P_T(x') || P_O(x)) + beta * ||f_T(x') - f_O(x')||"
    default_lr: ClassVar[float] = 5e-5

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, kl: str = "adv_clean",
                 detach_weight: bool = True, reg_space: str = "raw", ablation: str = "full"):
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0, got alpha={alpha}, beta={beta}")
        if kl not in KL_DIRECTIONS:
            raise ValueError(f"kl must be one of {KL_DIRECTIONS}, got {kl!r}")
        if reg_space not in REG_SPACES:
            raise ValueError(f"reg_space must be one of {REG_SPACES}, got {reg_space!r}")
        if ablation not in ABLATIONS:
            raise ValueError(f"ablation must be one of {', '.join(ABLATIONS)}, got {ablation!r}")
        self.alpha, self.beta, self.kl = alpha, beta, kl
        self.detach_weight, self.reg_space, self.ablation = detach_weight, reg_space, ablation
        self.use_ca, self.use_reg = ABLATIONS[ablation]

    def options(self) -> dict:
        return {"alpha": self.alpha, "beta": self.beta, "kl": self.kl, "detach_weight": self.detach_weight,
                "reg_space": self.reg_space, "ablation": self.ablation}

    def losses(self, batch: StepInputs) -> LossTerms:
        feat_adv = batch.encode(batch.adv)
        logits_adv = batch.logits(feat_adv)
        ce = F.cross_entropy(logits_adv.float(), batch.labels)
        total, parts = ce, {"ce": ce.detach()}
        needed = [x for x, used in ((batch.images, self.use_ca), (batch.adv, self.use_reg)) if used]
        if needed:
            with torch.no_grad():  # one batched pass of the frozen tower over what the terms need
                orig = batch.original(torch.cat(needed)).float().split(len(batch.images))
            if self.use_ca:
                ca = confidence_aware_loss(logits_adv, batch.logits(orig[0]), batch.labels, self.kl, self.detach_weight)
                total = total + self.alpha * ca
                parts["ca"] = ca.detach()
            if self.use_reg:
                target, reference = feat_adv, orig[-1]
                if self.reg_space == "normalized":
                    target, reference = F.normalize(target, dim=-1), F.normalize(reference, dim=-1)
                reg = feature_alignment_loss(target, reference)
                total = total + self.beta * reg
                parts["reg"] = reg.detach()
        return LossTerms(total, parts, logits_adv=logits_adv.detach())
