"""Evaluation integrity: checks that a robust-accuracy number is not an artefact of gradient masking.

A model can look robust because its gradients are useless (shattered,
vanishing, stochastic) rather than because it is (Athalye, Carlini & Wagner,
2018; Carlini et al., "On Evaluating Adversarial Robustness", 2019). Cheap
necessary conditions that an honest evaluation passes:

1. **more attack effort never helps the model**: robust accuracy under PGD
   with more steps and random restarts (an image counts as robust only if it
   survives every restart) is not higher than under fewer steps, up to a
   small tolerance for the randomness of the start point;
2. **robust <= clean**: an attack never makes a model more accurate;
3. **an unbounded attack wins**: with a radius covering the whole pixel range
   the attacker can draw any image, so PGD started at the clean image (no
   random start, so noise alone cannot win) must bring accuracy to about
   chance or below; if it does not, the gradients are not pointing anywhere
   useful (zero, saturated or shattered).

:func:`check_gradient_masking` runs all three and returns an
:class:`IntegrityReport`; :func:`assert_no_gradient_masking` raises
:class:`GradientMaskingError` with the failed checks. The thresholds are in
the report, so results can cite them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch

from caw_core.attacks.pgd import default_step_size, eval_mode, pgd

Attack = Callable[..., torch.Tensor]  # pgd's signature


class GradientMaskingError(AssertionError):
    """An evaluation failed an integrity check; the message lists which and by how much."""


@dataclass
class IntegrityReport:
    clean_acc: float
    weak_robust_acc: float  # fewer steps, one start
    strong_robust_acc: float  # more steps, several restarts (worst case per image)
    unbounded_acc: Optional[float]  # accuracy under an attack with eps covering [0, 1]
    weak: dict
    strong: dict
    tolerance: float
    chance: float
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def robust_accuracy(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
                    eps: float, steps: int, restarts: int = 1, step_size: Optional[float] = None,
                    norm: str = "linf", seed: int = 0, attack: Attack = pgd, random_start: bool = True) -> float:
    """Share of images classified correctly clean *and* after each of ``restarts`` random-start PGD runs.

    eps/step_size in pixel units (1/255 = one grey level); step_size defaults to the attacks' one rule,
    :func:`caw_core.attacks.pgd.default_step_size`.
    """
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    if step_size is None:
        step_size = default_step_size(eps, steps, norm) if eps > 0 else 1e-3
    generator = torch.Generator(device=images.device).manual_seed(seed)
    with torch.no_grad(), eval_mode(model):
        survived = model(images).argmax(dim=1) == labels
    for _ in range(restarts):
        if eps == 0:
            break
        adversarial = attack(model, images, labels, eps=eps, step_size=step_size, steps=steps, norm=norm,
                             random_start=random_start, generator=generator)
        with torch.no_grad(), eval_mode(model):
            survived &= model(adversarial).argmax(dim=1) == labels
    return survived.float().mean().item()


def check_gradient_masking(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                           labels: torch.Tensor, eps: float, *, weak_steps: int = 10, strong_steps: int = 50,
                           strong_restarts: int = 2, tolerance: Optional[float] = None, unbounded: bool = True,
                           norm: str = "linf", seed: int = 0, attack: Attack = pgd) -> IntegrityReport:
    """Run the three checks of the module docstring on one batch; eps in pixel units (4/255, ...).

    tolerance defaults to max(0.02, 2 / n): one or two images may flip on the random start alone.
    """
    n = len(labels)
    if n == 0:
        raise ValueError("check_gradient_masking needs at least one image")
    tolerance = max(0.02, 2.0 / n) if tolerance is None else tolerance
    with torch.no_grad(), eval_mode(model):
        logits = model(images)
    classes = logits.shape[1]
    clean = (logits.argmax(dim=1) == labels).float().mean().item()
    weak = dict(steps=weak_steps, restarts=1)
    strong = dict(steps=strong_steps, restarts=strong_restarts)
    weak_acc = robust_accuracy(model, images, labels, eps, norm=norm, seed=seed, attack=attack, **weak)
    strong_acc = robust_accuracy(model, images, labels, eps, norm=norm, seed=seed + 1, attack=attack, **strong)
    unbounded_acc = None
    if unbounded:
        radius = 1.0 if norm == "linf" else float(images[0].numel()) ** 0.5
        unbounded_acc = robust_accuracy(model, images, labels, radius, steps=weak_steps, step_size=radius / 8,
                                        norm=norm, seed=seed + 2, attack=attack, random_start=False)
    failures = []
    if strong_acc > weak_acc + tolerance:
        failures.append(f"more attack effort helped the model: robust accuracy {strong_acc:.3f} with "
                        f"{strong_steps} steps x {strong_restarts} restarts > {weak_acc:.3f} with {weak_steps} steps "
                        f"(+ tolerance {tolerance:.3f}); the attack is not converging (gradient masking?)")
    if weak_acc > clean + 1e-9 or strong_acc > clean + 1e-9:
        failures.append(f"robust accuracy ({max(weak_acc, strong_acc):.3f}) above clean accuracy ({clean:.3f})")
    chance = 1.0 / classes
    if unbounded_acc is not None and unbounded_acc > chance + tolerance:
        failures.append(f"an unbounded attack (eps covering the whole pixel range) leaves accuracy at "
                        f"{unbounded_acc:.3f} > chance {chance:.3f} + {tolerance:.3f}: the gradients do not lead the "
                        "attack anywhere (masked, shattered or zero gradients)")
    return IntegrityReport(clean, weak_acc, strong_acc, unbounded_acc, weak, strong, tolerance, chance, failures)


def assert_no_gradient_masking(model, images, labels, eps, **kwargs) -> IntegrityReport:
    """:func:`check_gradient_masking`, raising :class:`GradientMaskingError` if any check fails."""
    report = check_gradient_masking(model, images, labels, eps, **kwargs)
    if not report.ok:
        raise GradientMaskingError("evaluation integrity check failed: " + "; ".join(report.failures))
    return report
