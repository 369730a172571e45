"""TGA-ZSR: text-guided attention for zero-shot robustness (Yu et al., NeurIPS 2024).

The text-guided attention map of image x for class y is the similarity of
every projected patch token p_k(x) with the class's text embedding t_y,
min-max normalised per image and bilinearly upsampled to the input size::

    A(x)_k = (p_k(x) . t_y - min_j p_j . t_y) / (max_j p_j . t_y - min_j p_j . t_y)

    L = CE(z_T(x'), y) + 0.08 * mean_i ||A_T(x')_i - A_O(x)_i||_2
                       + 0.05 * mean_i ||A_T(x)_i  - A_O(x)_i||_2

(the attention-refinement and attention-constraint terms, weights of the
reference, commit 5f2b31c). T runs once on [x; x'] with tokens, O once on x.
Needs a ViT image tower (patch tokens).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F

from caw_core.methods.base import LossTerms, Objective, StepInputs


def text_guided_attention(tokens: torch.Tensor, text_head: torch.Tensor, labels: torch.Tensor, size: int) -> torch.Tensor:
    """(B, N, D) projected patch tokens -> (B, size, size) min-max normalised attention maps."""
    scores = torch.einsum("bnd,bd->bn", tokens.float(), text_head[labels].float())
    low = scores.min(dim=1, keepdim=True).values
    high = scores.max(dim=1, keepdim=True).values
    scores = (scores - low) / (high - low).clamp_min(1e-8)
    grid = int(math.isqrt(scores.shape[1]))
    if grid * grid != scores.shape[1]:
        raise ValueError(f"{scores.shape[1]} patch tokens do not form a square grid")
    maps = scores.view(-1, 1, grid, grid)
    return F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=False).squeeze(1)


def map_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean_i ||a_i - b_i||_2 over flattened maps."""
    return (a - b).flatten(1).norm(dim=1).mean()


class TGAZSR(Objective):
    name: ClassVar[str] = "tga-zsr"
    summary: ClassVar[str] = "CE(adv) + 0.08 ||A_T(x') - A_O(x)|| + 0.05 ||A_T(x) - A_O(x)|| (text-guided attention)"
    default_lr: ClassVar[float] = 1e-4

    def __init__(self, weight_refine: float = 0.08, weight_constrain: float = 0.05):
        if weight_refine < 0 or weight_constrain < 0:
            raise ValueError("TGA-ZSR weights must be >= 0")
        self.weight_refine, self.weight_constrain = weight_refine, weight_constrain

    def options(self) -> dict:
        return {"weight_refine": self.weight_refine, "weight_constrain": self.weight_constrain}

    def losses(self, batch: StepInputs) -> LossTerms:
        size = batch.original.image_size
        features, tokens = batch.encode(torch.cat([batch.images, batch.adv]), return_tokens=True)
        logits_clean, logits_adv = batch.logits(features).chunk(2)
        labels2 = torch.cat([batch.labels, batch.labels])
        attn_clean, attn_adv = text_guided_attention(tokens, batch.text_head, labels2, size).chunk(2)
        with torch.no_grad():
            _, tokens_orig = batch.original(batch.images, return_tokens=True)
            attn_orig = text_guided_attention(tokens_orig, batch.text_head, batch.labels, size)
        ce = F.cross_entropy(logits_adv.float(), batch.labels)
        refine = map_distance(attn_adv, attn_orig)
        constrain = map_distance(attn_clean, attn_orig)
        total = ce + self.weight_refine * refine + self.weight_constrain * constrain
        parts = {"ce": ce.detach(), "attn_adv": refine.detach(), "attn_clean": constrain.detach()}
        return LossTerms(total, parts, logits_adv=logits_adv.detach(), logits_clean=logits_clean.detach())
