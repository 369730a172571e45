"""CW-PGD: projected gradient ascent on the Carlini–Wagner margin (Carlini & Wagner, 2017).

Threat model: white-box, the same ball as :func:`caw_core.attacks.pgd.pgd`:
``{x' : ||x' - x|| <= eps, x' in [0, 1]^d}`` for ``norm`` ``"linf"`` or ``"l2"``
(eps in pixel units), inputs in [0, 1], fp32.

Loss, per example with logits z and true class y: the margin
``m(z, y) = max_{j != y} z_j - z_y``, positive exactly when the image is
misclassified. PGD ascends m instead of the cross-entropy; unlike CE it does
not saturate once the true class is far behind, and it ignores the softmax
temperature, so it checks that robustness is not an artefact of the loss scale.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from caw_core.attacks.pgd import pgd, pgd_attack


def cw_margin_per_example(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``max_{j != y} z_j - z_y`` for each row of ``logits`` (B, C) and class ids ``labels`` (B,)."""
    true = logits.gather(1, labels.view(-1, 1)).squeeze(1)
    others = logits.masked_fill(torch.nn.functional.one_hot(labels, logits.shape[1]).bool(), float("-inf"))
    return others.max(dim=1).values - true


def cw_pgd(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    step_size: float,
    steps: int,
    norm: str = "linf",
    random_start: bool = True,
    generator: Optional[torch.Generator] = None,
    stop_when_fooled: bool = False,
) -> torch.Tensor:
    """Adversarial images maximising the CW margin, in the ``norm`` eps ball and in [0, 1]."""
    return pgd(model, images, labels, eps, step_size, steps, norm=norm, random_start=random_start,
               loss_fn=cw_margin_per_example, generator=generator, stop_when_fooled=stop_when_fooled)


def cw_attack(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
              **budget) -> torch.Tensor:
    """CW-PGD as evaluation runs it (see :func:`caw_core.attacks.pgd.pgd_attack`; ``budget``: eps, norm, steps,
    step_size, seed)."""
    return pgd_attack(model, images, labels, loss_fn=cw_margin_per_example, **budget)
