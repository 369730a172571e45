"""Every attack by name: one :class:`AttackSpec` per attack holds its function and its defaults.

Callers (evaluation, the GUI playground, training) pick attacks with a string
parsed once by :func:`parse_attack`: ``"pgd100"`` is PGD with 100 steps,
``"pgd"`` takes the attack's default steps, ``"clean"`` has none. Attacks:

- ``clean``: no attack (the clean images);
- ``pgd``: PGD on the cross-entropy (:mod:`caw_core.attacks.pgd`), 10 steps;
- ``cw``: PGD on the Carlini-Wagner margin (:mod:`caw_core.attacks.cw`), 10 steps;
- ``aa``, ``aafare``, ``aastd``, ``aadlr``: AutoAttack configurations
  (:mod:`caw_core.attacks.autoattack`), 100 iterations.

Every attack function takes ``(model, images, labels, *, eps, norm, steps,
step_size, seed)`` with eps and step_size in pixel units (1/255 is one grey
level) and returns the adversarial images; ``seed`` fixes the random start
(PGD, CW) or AutoAttack's seed, so the same call gives the same images. The
step size, where the attack uses one, comes from the spec's ``step_rule``:
:func:`caw_core.attacks.budget.default_step_size` (2 * eps / steps, floored at
1/255 under linf), the one rule training and the GUI use too. PGD and CW stop
per image once it is misclassified (the fooling iterate is kept).

Adding an attack: one module with its function, one entry in ``ATTACKS``
naming it by import path (:func:`caw_core.imports.imported`): this module
imports no torch, so reading attack names and keys (``caw-core report``,
``--help``, menus) does not load torch, pyautoattack or the attack code; the
function's module is imported on the attack's first run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple, Optional

from caw_core.attacks.autoattack_configs import CONFIGS, autoattack_forwards
from caw_core.attacks.budget import NORMS, default_step_size
from caw_core.imports import imported

if TYPE_CHECKING:
    import torch

    from caw_core.attacks.control import StopFn

Model = Callable[["torch.Tensor"], "torch.Tensor"]
AttackFn = Callable[..., "torch.Tensor"]  # (model, images, labels, *, eps, norm, steps, step_size, seed)
StepRule = Callable[[float, int, str], float]  # (eps, steps, norm) -> step size, pixel units


@dataclass(frozen=True)
class AttackSpec:
    """One attack: ``fn`` with the calling convention above, its default steps (None: no iterations),
    the norms it supports, a one-line label, its step-size rule (None: the attack sets its own), and
    ``forwards(steps, num_classes)``: forward passes per image at most (for progress bars)."""

    fn: AttackFn
    default_steps: Optional[int]
    norms: tuple[str, ...]
    label: str
    step_rule: Optional[StepRule]
    forwards: Callable[[Optional[int], int], int]


def no_attack(model: Model, images: torch.Tensor, labels: torch.Tensor, **budget) -> torch.Tensor:
    """The clean images themselves."""
    return images.detach().clone()


def _autoattack_entry(name: str) -> AttackSpec:
    config = CONFIGS[name]
    autoattack = imported("caw_core.attacks.autoattack:autoattack")

    def run(model, images, labels, *, eps, norm, steps, step_size, seed):
        return autoattack(model, images, labels, eps, norm=norm, steps=steps, seed=seed, config=config)

    return AttackSpec(run, 100, NORMS, f"AutoAttack: {config.describe()}", None,
                      lambda steps, classes: autoattack_forwards(config, steps, classes))


ATTACKS: dict[str, AttackSpec] = {
    "clean": AttackSpec(no_attack, None, NORMS, "no attack: the clean images", None, lambda steps, classes: 1),
    "pgd": AttackSpec(imported("caw_core.attacks.pgd:pgd_attack"), 10, NORMS, "PGD on the cross-entropy, random start",
                      default_step_size, lambda steps, classes: steps + 1),
    "cw": AttackSpec(imported("caw_core.attacks.cw:cw_attack"), 10, NORMS,
                     "PGD on the Carlini-Wagner margin, random start", default_step_size,
                     lambda steps, classes: steps + 1),
    **{name: _autoattack_entry(name) for name in CONFIGS},
}


class Attack(NamedTuple):
    """A parsed attack choice: registry name and step count (None for ``clean``)."""

    name: str
    steps: Optional[int]

    @property
    def spec(self) -> AttackSpec:
        return ATTACKS[self.name]

    @property
    def key(self) -> str:
        """Canonical short name: ``pgd10``, ``aa100``, ``clean``."""
        return attack_key(self.name, self.steps)

    def step_size(self, eps: float, norm: str) -> Optional[float]:
        rule = self.spec.step_rule
        return rule(eps, self.steps, norm) if rule is not None and self.steps else None

    def run(self, model: Model, images: torch.Tensor, labels: torch.Tensor, eps: float, norm: str = "linf",
            seed: int = 0, should_stop: Optional[StopFn] = None,
            on_forward: Optional[Callable[[int], None]] = None) -> torch.Tensor:
        """The adversarial images; see :func:`attack_images`."""
        if norm not in self.spec.norms:
            raise ValueError(f"attack {self.name!r} supports norms {self.spec.norms}, got {norm!r}")
        if should_stop is not None or on_forward is not None:
            from caw_core.attacks.control import ControlledModel

            model = ControlledModel(model, should_stop, on_forward)
            model.check()
        return self.spec.fn(model, images, labels, eps=eps, norm=norm, steps=self.steps,
                            step_size=self.step_size(eps, norm), seed=seed)


def parse_attack(token: str, steps: Optional[int] = None) -> Attack:
    """``"pgd100"`` -> ``Attack("pgd", 100)``; ``"pgd"`` -> ``("pgd", steps or 10)``; ``"clean"`` -> ``("clean", None)``."""
    if isinstance(token, Attack):
        return token
    match = re.fullmatch(r"([a-z]+)(\d*)", str(token).strip().lower())
    if match is None or match.group(1) not in ATTACKS:
        raise ValueError(f"unknown attack {token!r}; known: {', '.join(ATTACKS)} (optionally with a step "
                         "count, e.g. pgd100)")
    name, digits = match.group(1), match.group(2)
    spec = ATTACKS[name]
    if spec.default_steps is None:
        if digits or steps is not None:
            raise ValueError(f"attack {name!r} takes no step count")
        return Attack(name, None)
    chosen = int(digits) if digits else (steps if steps is not None else spec.default_steps)
    if chosen < 1:
        raise ValueError(f"attack {token!r}: the step count must be >= 1")
    return Attack(name, chosen)


def attack_key(name: str, steps: Optional[int]) -> str:
    """Canonical short name of an attack and its steps: ``pgd10``, ``aa100``, ``clean``."""
    return name if steps is None else f"{name}{steps}"


def attack_sort_key(token: str) -> tuple[int, int]:
    """Order attacks cheapest first, in registry order (clean, pgd, cw, AutoAttacks); fewer steps first."""
    name, steps = parse_attack(token)
    return list(ATTACKS).index(name), steps or 0


def attack_choices() -> dict[str, str]:
    """``{name: label}`` of every registered attack, for menus (the GUI) and help texts."""
    return {name: spec.label for name, spec in ATTACKS.items()}


def attack_images(
    name: str,
    model: Model,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    norm: str = "linf",
    steps: Optional[int] = None,
    seed: int = 0,
    should_stop: Optional[StopFn] = None,
    on_forward: Optional[Callable[[int], None]] = None,
) -> torch.Tensor:
    """Attack ``images`` ([0, 1], with true ``labels``) with the attack called ``name``; return the adversarials.

    ``eps`` in pixel units. ``should_stop()``: checked before every forward
    pass; when True the attack raises
    :class:`caw_core.attacks.control.AttackCancelled`. ``on_forward(k)``:
    called after the k-th forward pass (progress; compare with
    ``spec.forwards(steps, classes) * len(images)``-ish totals, see :class:`AttackSpec`).
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return parse_attack(name, steps).run(model, images, labels, eps, norm, seed, should_stop, on_forward)
