"""Projected gradient descent (Madry et al., 2018) in pixel space.

Threat model: white-box; the attacker sees the model's gradients and may move
each image anywhere in the ball ``{x' : ||x' - x|| <= eps, x' in [0, 1]^d}``
for ``norm`` ``"linf"`` or ``"l2"`` (eps in pixel units: 1/255 is one grey level
under linf).

Algorithm: start at x (or a uniform random point of the ball when
``random_start``), then ``steps`` times ascend the per-example loss
``L(model(x'), y)`` (cross-entropy unless ``loss_fn`` says otherwise):
linf ``x' <- x' + step_size * sign(grad)``, l2 ``x' <- x' + step_size * grad / ||grad||``,
projecting back onto the ball and into [0, 1] after every step.

The l2 direction ``grad / ||grad||`` is computed scale-free, as
``(g / max|g|) / ||g / max|g|||``: a confidently classified image (CE
saturated at CLIP's logit scale 100) has a gradient whose norm can fall far
below any fixed floor (1e-12 made the step collapse and the attack stall:
toy CLIP, toy-shape, 200 images, l2 eps 1.0, PGD-10 left 12.5% robust with
the floor, 3.0% without), yet its direction is as good as any. Only an exactly zero gradient gives a
zero step. This matches ``torchattacks.PGDL2`` (which divides by
``||g|| + 1e-10``) wherever that floor is negligible.

With ``stop_when_fooled`` (evaluation; ``labels`` must be class ids and the
model must return logits) an image leaves the batch as soon as the model
misclassifies it, frozen at the iterate that fooled it: later steps cost
nothing for it, and a lucky early success is never undone by a later step.

The attack differentiates with ``torch.autograd.grad`` with respect to the
perturbation only: the model's parameters and their ``.grad`` are untouched
(the reference implementations' ``loss.backward()`` leaks attack gradients
into the next training step). The model runs in eval mode during the attack
and its previous mode is restored afterwards.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional

import torch
from torch import nn

from caw_core.attacks.budget import NORMS, default_step_size  # noqa: F401  (re-exported: training takes it from here)
from caw_core.losses import cross_entropy_per_example

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
@contextlib.contextmanager
def eval_mode(model) -> Iterator[None]:
    """Put an ``nn.Module`` in eval mode for the block, then restore its mode."""
    if not isinstance(model, nn.Module):
        yield
        return
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _per_example_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def unit_l2(grad: torch.Tensor) -> torch.Tensor:
    """``grad / ||grad||_2`` per example, exact for any non-zero gradient however small; 0 where grad is 0."""
    flat = grad.flatten(1)
    tiny = torch.finfo(flat.dtype).tiny
    scaled = flat / flat.abs().amax(dim=1, keepdim=True).clamp_min(tiny)  # max |entry| is 1 (or all 0)
    return (scaled / scaled.norm(dim=1, keepdim=True).clamp_min(tiny)).view_as(grad)


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project perturbations onto the eps ball of ``norm``."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _per_example_norm(delta)).clamp(max=1.0)


def random_start_in_ball(images: torch.Tensor, eps: float, norm: str, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A uniform random perturbation inside the ball (linf: per pixel; l2: direction x radius)."""
    if norm == "linf":
        noise = torch.rand(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        return (noise * 2 - 1) * eps
    direction = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    direction = direction / _per_example_norm(direction)
    dims = images[0].numel()
    radius = torch.rand((images.shape[0],) + (1,) * (images.dim() - 1), generator=generator,
                        device=images.device, dtype=images.dtype) ** (1.0 / dims)
    return direction * radius * eps


def validate_budget(eps: float, step_size: float, steps: int, norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0 (in pixel units, e.g. 1/255), got {eps}")
    if not step_size > 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")


def pgd(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    step_size: float,
    steps: int,
    norm: str = "linf",
    random_start: bool = True,
    loss_fn: LossFn = cross_entropy_per_example,
    generator: Optional[torch.Generator] = None,
    stop_when_fooled: bool = False,
) -> torch.Tensor:
    """Return adversarial images in the ``norm`` eps ball around ``images`` and in [0, 1].

    ``model`` maps [0, 1] images to outputs (logits); ``loss_fn(outputs,
    labels)`` returns one loss per example, which PGD maximises. ``labels``
    may be any tensor the loss understands (class ids, target embeddings).
    """
    validate_budget(eps, step_size, steps, norm)
    images = images.detach()
    delta = random_start_in_ball(images, eps, norm, generator) if random_start else torch.zeros_like(images)
    delta = ((images + delta).clamp(0, 1) - images).detach()
    active = torch.arange(len(images), device=images.device)
    with eval_mode(model), torch.enable_grad():
        for _ in range(int(steps)):
            base, targets = images[active], labels[active]
            current = delta[active].requires_grad_(True)
            outputs = model(base + current)
            (grad,) = torch.autograd.grad(loss_fn(outputs, targets).sum(), current)
            with torch.no_grad():
                current = current.detach()
                if stop_when_fooled:
                    still_correct = outputs.argmax(dim=1) == targets
                    active, base, current, grad = (t[still_correct] for t in (active, base, current, grad))
                step = grad.sign() if norm == "linf" else unit_l2(grad)
                current = project(current + step_size * step, eps, norm)
                delta[active] = (base + current).clamp(0, 1) - base
            if len(active) == 0:
                break
    return (images + delta).detach()


def pgd_attack(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    norm: str,
    steps: int,
    step_size: float,
    seed: int,
    loss_fn: LossFn = cross_entropy_per_example,
) -> torch.Tensor:
    """PGD as evaluation runs it: fp32, a random start drawn from ``seed``, each image frozen once fooled.

    The registry's calling convention (:class:`caw_core.attacks.registry.AttackSpec`).
    """
    generator = torch.Generator(device=images.device).manual_seed(seed)
    with torch.autocast(images.device.type, enabled=False):
        return pgd(model, images.float(), labels, eps, step_size, steps, norm=norm, random_start=True,
                   loss_fn=loss_fn, generator=generator, stop_when_fooled=True)
