"""TGA-ZSR: text-guided attention for zero-shot robustness (Yu et al., NeurIPS 2024).

Reference: zhyblue424/TGA-ZSR, ``attention_map.py`` (commit 014b5da32f713c4f2ea38dd88d5fe4e39bee1f82) and
``TGA-ZSR.py`` (``criterion``; commit 035eaad97002baae6bf92e4c99faf0d34d5870ee -- its ``train`` has a
``logis_scale`` typo, the loss itself is the one of commit 5f2b31c that ANCHORS.md points to).

The text-guided attention map of image x for class y: the projected token features h_0 (CLS), h_1..h_N
(patches) are divided by their norm across the tokens, CLS included
(``image_features / image_features.norm(dim=1)`` on the (B, 1+N, D) tensor), every patch is scored
against the class's unit text embedding t_y, min-max normalised per image and bilinearly upsampled to
the input size::

    h'_k = h_k / sqrt(sum_{j=0..N} h_j^2)          (per embedding dimension)
    a_k  = h'_k . t_y,   A(x) = upsample((a - min a) / (max a - min a))

    L = CE(z_T(x'), y) + 0.08 * mean_i ||A_T(x')_i - A_O(x)_i||_2 + 0.05 * mean_i ||A_T(x)_i - A_O(x)_i||_2

(attention refinement, ``--Alpha``, and attention-based model constraint, ``--Beta``; the reference's
default ``--Distance_metric l2``). T runs once on [x; x'] with tokens, O once on x. Needs a ViT image tower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from caw_core.methods.base import LossTerms, MethodOptions, Objective, Recipe, StepInputs, option


@dataclass(frozen=True)
class Options(MethodOptions):
    refine_weight: float = option(0.08, "weight of the attention-refinement term ||A_T(x') - A_O(x)|| "
                                  "(the reference's --Alpha)", minimum=0.0)
    constraint_weight: float = option(0.05, "weight of the attention-constraint term ||A_T(x) - A_O(x)|| "
                                      "(the reference's --Beta)", minimum=0.0)


def text_guided_attention(cls_token: torch.Tensor, tokens: torch.Tensor, text_head: torch.Tensor,
                          labels: torch.Tensor, size: int) -> torch.Tensor:
    """(B, D) projected CLS + (B, N, D) projected patch tokens -> (B, size, size) attention maps in [0, 1]."""
    features = torch.cat([cls_token.unsqueeze(1), tokens], dim=1).float()
    features = features / features.norm(dim=1, keepdim=True)  # across the tokens, CLS included
    scores = torch.einsum("bnd,bd->bn", features[:, 1:], text_head[labels].float())
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


def tga_zsr_loss(logits_adv: torch.Tensor, attn_adv: torch.Tensor, attn_clean: torch.Tensor,
                 attn_orig: torch.Tensor, labels: torch.Tensor, options: Options) -> tuple[torch.Tensor, dict]:
    """The total and its named parts from T's logits on x' and the three attention maps."""
    ce = F.cross_entropy(logits_adv.float(), labels)
    refine = map_distance(attn_adv, attn_orig)
    constrain = map_distance(attn_clean, attn_orig)
    total = ce + options.refine_weight * refine + options.constraint_weight * constrain
    return total, {"ce": ce.detach(), "attn_adv": refine.detach(), "attn_clean": constrain.detach()}


class TGAZSR(Objective):
    name: ClassVar[str] = "tga-zsr"
    Options: ClassVar[type] = Options
    recipe: ClassVar[Recipe] = Recipe(lr=1e-4, source="TGA-ZSR.py argparse (SGD lr 1e-4, PGD-2 at 1/255, 10 epochs)")

    def losses(self, batch: StepInputs) -> LossTerms:
        size = batch.original.image_size
        features, tokens = batch.encode(torch.cat([batch.images, batch.adv]), return_tokens=True)
        logits_clean, logits_adv = batch.logits(features).chunk(2)
        labels2 = torch.cat([batch.labels, batch.labels])
        attn_clean, attn_adv = text_guided_attention(features, tokens, batch.text_head, labels2, size).chunk(2)
        with torch.no_grad():
            cls_orig, tokens_orig = batch.original(batch.images, return_tokens=True)
            attn_orig = text_guided_attention(cls_orig, tokens_orig, batch.text_head, batch.labels, size)
        total, parts = tga_zsr_loss(logits_adv, attn_adv, attn_clean, attn_orig, batch.labels, self.options)
        return LossTerms(total, parts, logits_adv=logits_adv.detach(), logits_clean=logits_clean.detach())
