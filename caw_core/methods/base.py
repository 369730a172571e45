"""The shared interface of the training objectives (CAW and the baselines).

Every method fine-tunes the image tower T of CLIP (text tower frozen) against
a frozen copy O of the original tower, on adversarial images x' found by an
inner-loop attack (PGD-2, linf, eps = 1/255 in the shared recipe).

A method answers two questions per batch:

* :meth:`Objective.attack_target` -- what the inner attack maximises: by
  default the cross-entropy of T's zero-shot logits (FARE: an embedding distance);
* :meth:`Objective.losses` -- the training loss on (x, x', y), returned as named
  terms plus the total.

Efficiency rules every method follows (the reference code breaks them): T is
run once per step, on the concatenation of every input that needs gradients
(one forward, one backward, DDP-friendly); O runs under ``torch.no_grad`` and
also once per step on a concatenated batch; the text head is cached.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Optional

import torch
import torch.nn.functional as F

from caw_core.models.zero_shot import ImageEncoder, logits_from_features


@dataclass
class StepInputs:
    """One training batch as the objectives see it.

    encode: the trainable image tower (possibly DDP-wrapped); call it ONCE.
    original: the frozen original tower O.
    text_head: (C, D) unit-norm class embeddings.
    """

    encode: Callable[..., object]
    original: ImageEncoder
    text_head: torch.Tensor
    images: torch.Tensor
    adv: torch.Tensor
    labels: torch.Tensor

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return logits_from_features(features, self.text_head)


@dataclass
class LossTerms:
    """A step's loss: ``total`` (to backpropagate) and named detached parts.

    ``logits_adv`` are T's logits on x' (for the train robust accuracy) when
    the method computed them; ``logits_clean`` likewise for x.
    """

    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    logits_adv: Optional[torch.Tensor] = None
    logits_clean: Optional[torch.Tensor] = None


@dataclass
class AttackTarget:
    """What PGD maximises: ``loss_fn(forward(x'), labels)`` per example."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    labels: torch.Tensor
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy_per_example(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(outputs, labels, reduction="none")


class Objective(ABC):
    """Base class: a training objective with its recipe defaults."""

    name: ClassVar[str]
    summary: ClassVar[str]
    default_lr: ClassVar[float] = 5e-5
    uses_labels: ClassVar[bool] = True

    def attack_target(self, target_encoder: ImageEncoder, original: ImageEncoder, text_head: torch.Tensor,
                      images: torch.Tensor, labels: torch.Tensor) -> AttackTarget:
        """Default: maximise the cross-entropy of T's zero-shot logits."""
        return AttackTarget(
            forward=lambda x: logits_from_features(target_encoder(x), text_head),
            labels=labels,
            loss_fn=cross_entropy_per_example,
        )

    @abstractmethod
    def losses(self, batch: StepInputs) -> LossTerms:
        """The training loss on one batch."""

    def options(self) -> dict:
        """The hyper-parameters of this objective, for run configs and reports."""
        return {}
