"""FARE: unsupervised adversarial fine-tuning of the image embedding (Schlarmann et al., ICML 2024).

No labels and no text: T is trained so that its embedding of an adversarial
image stays where the original tower put the clean image::

    L = mean_i || f_T(x'_i) - f_O(x_i) ||_2^2     (unnormalised embeddings, summed over dims)

and the inner PGD maximises the same distance, x' = argmax_{||x'-x||<=eps}
||f_T(x') - f_O(x)||^2. Labels are only used for the logged train accuracy.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from caw_core.methods.base import AttackTarget, LossTerms, Objective, StepInputs
from caw_core.models.zero_shot import ImageEncoder


def squared_distance_per_example(features: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return (features.float() - reference.float()).pow(2).sum(dim=-1)


class FARE(Objective):
    name: ClassVar[str] = "fare"
    summary: ClassVar[str] = "||f_T(x') - f_O(x)||^2, unsupervised; PGD maximises the same distance"
    default_lr: ClassVar[float] = 1e-5
    uses_labels: ClassVar[bool] = False

    def attack_target(self, target_encoder: ImageEncoder, original: ImageEncoder, text_head: torch.Tensor,
                      images: torch.Tensor, labels: torch.Tensor) -> AttackTarget:
        with torch.no_grad():
            reference = original(images)
        return AttackTarget(forward=target_encoder, labels=reference, loss_fn=squared_distance_per_example)

    def losses(self, batch: StepInputs) -> LossTerms:
        feat_adv = batch.encode(batch.adv)
        with torch.no_grad():
            reference = batch.original(batch.images)
        loss = squared_distance_per_example(feat_adv, reference).mean()
        return LossTerms(loss, {"fare": loss.detach()}, logits_adv=batch.logits(feat_adv.detach()))
