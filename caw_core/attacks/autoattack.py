"""AutoAttack (Croce & Hein, 2020) through pyautoattack, configured as FARE evaluates CLIP.

Threat model: white-box, ``{x' : ||x' - x|| <= eps, x' in [0, 1]^d}`` for
``norm`` ``"linf"`` or ``"l2"`` (eps in pixel units), inputs in [0, 1].

Configuration ('custom' version, the most careful reference's protocol):

- APGD-CE: step-size-free PGD on the cross-entropy, ``steps`` iterations
  (100), one restart (AutoAttack's own default is 5; FARE uses 1);
- APGD-T: targeted APGD on the DLR loss
  ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`` against each of the
  ``min(9, C - 1)`` most likely wrong classes t, one restart each. The DLR
  ratio needs the 3rd and 4th largest logits, so with fewer than 4 classes
  (PCAM has 2) only APGD-CE runs.

An image counts as broken as soon as one attack flips it; the returned batch
holds each broken image's successful adversarial and the clean image where
every attack failed. Everything runs in fp32 with autocast disabled (fp16
gradients understate the attack, the reference codes' trap). pyautoattack
reseeds torch's global RNG; the caller's RNG state is restored afterwards.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional

import torch
from pyautoattack import AutoAttack
from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

from caw_core.attacks.pgd import NORMS, eval_mode

LOGGER = logging.getLogger(__name__)
AA_NORMS = {"linf": "Linf", "l2": "L2"}
MAX_TARGET_CLASSES = 9
MIN_CLASSES_FOR_TARGETED = 4


def autoattack_attacks(num_classes: int) -> list[str]:
    """The attacks run for a task of ``num_classes``: apgd-ce, plus apgd-t when DLR can run."""
    return ["apgd-ce", "apgd-t"] if num_classes >= MIN_CLASSES_FOR_TARGETED else ["apgd-ce"]


def build_autoattack(model: Callable[[torch.Tensor], torch.Tensor], num_classes: int, eps: float, norm: str,
                     steps: int, seed: int, device: torch.device) -> AutoAttack:
    """A pyautoattack ``AutoAttack`` with APGD-CE / APGD-T configured as in the module docstring."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    aa_norm = AA_NORMS[norm]
    attack = AutoAttack(model, attacks=autoattack_attacks(num_classes), device=device, eps=eps, norm=aa_norm,
                        seed=seed, version="custom")
    attack.verbose = False
    attack.logger = LOGGER
    # Rebuilt rather than edited: APGD derives its step-size schedule from n_iter in __init__.
    common = dict(n_restarts=1, n_iter=int(steps), eps=eps, norm=aa_norm, seed=seed, device=device,
                  eot_iter=1, rho=0.75, verbose=False, logger=LOGGER)
    attack.apgd = APGDAttack(model, loss="ce", **common)
    attack.apgd_targeted = APGDAttack_targeted(
        model, n_target_classes=max(1, min(MAX_TARGET_CLASSES, num_classes - 1)), **common)
    return attack


def autoattack(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    norm: str = "linf",
    steps: int = 100,
    seed: int = 0,
    state_path: Optional[str | Path] = None,
) -> torch.Tensor:
    """Adversarial images (B, 3, H, W) in the ``norm`` eps ball around ``images`` and in [0, 1].

    ``state_path``: pyautoattack's progress file; an interrupted call with the
    same images and path resumes after the attacks it had finished.
    """
    images = images.detach().float()
    if images.shape[0] == 0:
        return images.clone()
    device = images.device
    fork_devices = [device] if device.type == "cuda" else []
    with eval_mode(model), torch.autocast(device.type, enabled=False), torch.random.fork_rng(fork_devices):
        with torch.no_grad():
            num_classes = int(model(images[:1]).shape[1])
        attack = build_autoattack(model, num_classes, eps, norm, steps, seed, device)
        adv, _ = attack.run_standard_evaluation(images, labels.to(device), batch_size=images.shape[0],
                                                state_path=Path(state_path) if state_path is not None else None)
    return adv.detach()
