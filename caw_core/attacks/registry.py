"""Every attack by name, so callers (the evaluation, the GUI) pick one with a string.

Names: ``clean`` (no attack), ``pgd`` (PGD on cross-entropy), ``cw`` (PGD on
the CW margin) and ``aa`` (AutoAttack APGD-CE + APGD-T). A name may carry its
iteration count, ``"pgd100"`` == ``("pgd", 100)``; without one the attack's
default is used (PGD/CW 10, AutoAttack 100).

PGD and CW stop per image once it is misclassified (the fooling iterate is
kept, later steps skip it). Budgets, as the evaluation protocol fixes them: eps in pixel units (1/255 is one
grey level); PGD and CW start at a uniform random point of the ball and step
:func:`caw_core.attacks.pgd.default_step_size` (2 * eps / steps, floored at
1/255 under linf: exactly the protocol's 1/255 at eps = 1/255).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from caw_core.attacks.autoattack import autoattack
from caw_core.attacks.cw import cw_pgd
from caw_core.attacks.pgd import NORMS, default_step_size, pgd


@dataclass(frozen=True)
class AttackInfo:
    name: str
    description: str
    default_steps: Optional[int]  # None: the attack has no iterations (clean)


ATTACKS = {
    "clean": AttackInfo("clean", "no attack: the clean images", None),
    "pgd": AttackInfo("pgd", "PGD on the cross-entropy, random start", 10),
    "cw": AttackInfo("cw", "PGD on the Carlini-Wagner margin, random start", 10),
    "aa": AttackInfo("aa", "AutoAttack: APGD-CE + APGD-T (APGD-CE alone under 4 classes)", 100),
}


def parse_attack(token: str, steps: Optional[int] = None) -> tuple[str, Optional[int]]:
    """``"pgd100"`` -> ``("pgd", 100)``; ``"pgd"`` -> ``("pgd", steps or 10)``; ``"clean"`` -> ``("clean", None)``."""
    match = re.fullmatch(r"([a-z]+)(\d*)", token.strip().lower())
    if match is None or match.group(1) not in ATTACKS:
        raise ValueError(f"unknown attack {token!r}; known: {', '.join(ATTACKS)} (optionally with a step "
                         "count, e.g. pgd100)")
    name, digits = match.group(1), match.group(2)
    info = ATTACKS[name]
    if info.default_steps is None:
        if digits or steps is not None:
            raise ValueError(f"attack {name!r} takes no step count")
        return name, None
    chosen = int(digits) if digits else (steps if steps is not None else info.default_steps)
    if chosen < 1:
        raise ValueError(f"attack {token!r}: the step count must be >= 1")
    return name, chosen


def attack_key(name: str, steps: Optional[int]) -> str:
    """Canonical short name of an attack and its steps: ``pgd10``, ``aa100``, ``clean``."""
    return name if steps is None else f"{name}{steps}"


def attack_sort_key(token: str) -> tuple[int, int]:
    """Order attacks cheapest first: clean, pgd, cw, aa; fewer steps first."""
    name, steps = parse_attack(token)
    return list(ATTACKS).index(name), steps or 0


def attack_images(
    name: str,
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    norm: str = "linf",
    steps: Optional[int] = None,
    seed: int = 0,
) -> torch.Tensor:
    """Attack ``images`` ([0, 1], with true ``labels``) with the attack called ``name``; return the adversarials.

    ``eps`` in pixel units; ``seed`` fixes the random start (PGD, CW) or
    AutoAttack's seed, so the same call gives the same images.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    name, steps = parse_attack(name, steps)
    if name == "clean":
        return images.detach().clone()
    if name == "aa":
        return autoattack(model, images, labels, eps, norm=norm, steps=steps, seed=seed)
    generator = torch.Generator(device=images.device).manual_seed(seed)
    attack = pgd if name == "pgd" else cw_pgd
    with torch.autocast(images.device.type, enabled=False):
        return attack(model, images.float(), labels, eps, default_step_size(eps, steps, norm), steps, norm=norm,
                      random_start=True, generator=generator, stop_when_fooled=True)
