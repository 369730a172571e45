"""The threat model's norms and the one step-size rule of every caw attack (pure Python: no torch).

Kept apart from :mod:`caw_core.attacks.pgd` so the attack registry, and what
only reads attack names (``caw-core report``), import no torch.
"""

from __future__ import annotations

NORMS = ("linf", "l2")
ONE_GREY_LEVEL = 1.0 / 255


def default_step_size(eps: float, steps: int, norm: str = "linf") -> float:
    """The step size every caw attack, training loop and GUI uses when none is given (pixel units).

    ``step = 2 * eps / steps``, floored at one grey level (1/255) under linf.

    Why: ``steps * step >= 2 * eps`` lets the iterate cross the whole ball (its
    diameter) from any random start, so a large eps is never under-attacked
    for lack of reach; and the floor reproduces every reference recipe exactly:
    PGD-2 training at eps 1/255 (TeCoA, PMG-AFT, TGA-ZSR, CAW) and PGD-10/100
    evaluation at 1/255 all step 1/255, FARE's PGD-10 at 2 or 4/255 steps
    1/255, and torchattacks' l2 PGD default (eps 1.0, 10 steps) steps 0.2.
    """
    if steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    step = 2.0 * eps / steps
    return max(ONE_GREY_LEVEL, step) if norm == "linf" else step
