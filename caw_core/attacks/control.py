"""Cancellation and progress for any attack: a model wrapper every forward pass goes through.

Attacks are loops of forward/backward passes through the model; wrapping the
model is the one place that sees every iteration of every attack (PGD, CW,
each APGD restart and target inside pyautoattack) without touching their code.
:class:`ControlledModel` counts forward passes, reports each one to
``on_forward(count)``, and raises :class:`AttackCancelled` before the next
forward once ``should_stop()`` returns True, so a cancelled attack stops
within one forward/backward of the request.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

StopFn = Callable[[], bool]


class AttackCancelled(Exception):
    """The caller asked the attack to stop (its ``should_stop()`` returned True)."""


class ControlledModel(nn.Module):
    """``model`` with a cancel check and a forward counter in front of every call (eval/train mode propagate)."""

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor], should_stop: Optional[StopFn] = None,
                 on_forward: Optional[Callable[[int], None]] = None):
        super().__init__()
        self.model, self.should_stop, self.on_forward = model, should_stop, on_forward
        self.forwards = 0

    def check(self) -> None:
        """Raise :class:`AttackCancelled` if the caller asked to stop."""
        if self.should_stop is not None and self.should_stop():
            raise AttackCancelled("attack cancelled")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check()
        outputs = self.model(images)
        self.forwards += 1
        if self.on_forward is not None:
            self.on_forward(self.forwards)
        return outputs
