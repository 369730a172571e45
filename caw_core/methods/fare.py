"""FARE: unsupervised adversarial fine-tuning of the image embedding (Schlarmann et al., ICML 2024).

Reference: chs20/RobustVLM, ``train/adversarial_training_clip.py`` (commit
d257a534cbdf507a407193f55a2d64bb8d3a2de0; ``compute_loss``/``l2``) and its README's FARE command.
No labels and no text: T is trained so that its embedding of an adversarial image stays where the
original tower put the clean image::

    L = mean_i || f_T(x'_i) - f_O(x_i) ||_2^2     (unnormalised embeddings, summed over dims)

and the inner PGD maximises the same distance, x' = argmax_{||x'-x||<=eps} ||f_T(x') - f_O(x)||^2.
Labels are only used for the logged train accuracy. ``normalize_embeddings`` compares unit vectors
(the reference's ``--output_normalize True``, which its README uses for TeCoA, not FARE).

Recipe (README, FARE^2): AdamW, lr 1e-5, weight decay 1e-4, PGD-10 with step 1/255 at eps 2/255
(``--eps 4`` gives FARE^4). The reference trains ViT-L/14 on ImageNet for 20k steps of 128 (2 epochs);
caw keeps the shared TinyImageNet data, epochs and warm-up so the rows stay comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from caw_core.methods.base import AttackTarget, LossTerms, MethodOptions, Objective, Recipe, StepInputs, option
from caw_core.models.zero_shot import ImageEncoder


@dataclass(frozen=True)
class Options(MethodOptions):
    normalize_embeddings: bool = option(False, "compare unit-normalized embeddings (the reference's "
                                        "--output_normalize; FARE uses raw embeddings)")


def squared_distance_per_example(features: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return (features.float() - reference.float()).pow(2).sum(dim=-1)


class FARE(Objective):
    name: ClassVar[str] = "fare"
    Options: ClassVar[type] = Options
    recipe: ClassVar[Recipe] = Recipe(lr=1e-5, optimizer="adamw", weight_decay=1e-4, eps=2.0, attack_steps=10,
                                      source="RobustVLM README, FARE^2 (--opt adamw --lr 1e-5 --wd 1e-4 --attack pgd "
                                             "--iterations_adv 10 --stepsize_adv 1 --eps 2)")

    def _embed(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(features, dim=-1) if self.options.normalize_embeddings else features

    def embedding_loss(self, feat_adv: torch.Tensor, feat_orig_clean: torch.Tensor) -> torch.Tensor:
        """``mean_i ||f_T(x'_i) - f_O(x_i)||^2`` on the embeddings the options ask for (raw or unit)."""
        return squared_distance_per_example(self._embed(feat_adv), self._embed(feat_orig_clean)).mean()

    def attack_target(self, target_encoder: ImageEncoder, original: ImageEncoder, text_head: torch.Tensor,
                      images: torch.Tensor, labels: torch.Tensor) -> AttackTarget:
        with torch.no_grad():
            reference = self._embed(original(images))
        return AttackTarget(forward=lambda x: self._embed(target_encoder(x)), labels=reference,
                            loss_fn=squared_distance_per_example)

    def losses(self, batch: StepInputs) -> LossTerms:
        feat_adv = batch.encode(batch.adv)
        with torch.no_grad():
            reference = batch.original(batch.images)
        loss = self.embedding_loss(feat_adv, reference)
        return LossTerms(loss, {"fare": loss.detach()}, logits_adv=batch.logits(feat_adv.detach()))
