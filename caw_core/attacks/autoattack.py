"""AutoAttack (Croce & Hein, 2020) through pyautoattack, in the configurations the CLIP papers evaluate with.

Threat model: white-box, ``{x' : ||x' - x|| <= eps, x' in [0, 1]^d}`` for
``norm`` ``"linf"`` or ``"l2"`` (eps in pixel units), inputs in [0, 1].

The attacks of a configuration run one after the other, each on the images
the earlier ones did not break ('custom' version of pyautoattack):

- ``apgd-ce``: step-size-free PGD on the cross-entropy, ``steps`` iterations,
  ``restarts`` random restarts;
- ``apgd-t``: targeted APGD on the DLR loss
  ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`` against each of the
  ``min(9, C - 1)`` most likely wrong classes t, one restart each;
- ``apgd-dlr``: untargeted APGD on the DLR loss, ``restarts`` restarts;
- ``fab-t``, ``square``: AutoAttack's own (standard-version) settings.

The DLR ratio needs the 3rd and 4th largest logits, so with fewer than 4
classes (PCAM has 2) the DLR attacks are dropped and only APGD-CE runs.

Configurations (``CONFIGS``), checked against the reference code:

- ``aa`` (caw's default; CAW line of papers): APGD-CE with 1 restart + APGD-T;
- ``aafare``: what FARE's evaluation runs (chs20/RobustVLM,
  ``CLIP_benchmark/clip_benchmark/metrics/zeroshot_classification.py`` at
  d257a53: ``AutoAttack(..., attacks_to_run=('apgd-ce', 'apgd-t'),
  version='custom')``, which keeps AutoAttack's constructor defaults,
  i.e. APGD-CE with **5 restarts** and APGD-T with 1 restart x 9 targets,
  100 iterations each; APGD-CE alone for 2-class tasks);
- ``aastd``: standard AutoAttack (APGD-CE 1 restart, APGD-T 9 targets, FAB-T,
  Square 5000 queries), as PMG-AFT reports;
- ``aadlr``: APGD-CE + APGD-DLR, 1 restart each.

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

from caw_core.attacks.autoattack_configs import CONFIGS, MAX_TARGET_CLASSES, AAConfig, autoattack_attacks
from caw_core.attacks.pgd import NORMS, eval_mode

LOGGER = logging.getLogger(__name__)
AA_NORMS = {"linf": "Linf", "l2": "L2"}


def build_autoattack(model: Callable[[torch.Tensor], torch.Tensor], num_classes: int, eps: float, norm: str,
                     steps: int, seed: int, device: torch.device, config: AAConfig = CONFIGS["aa"]) -> AutoAttack:
    """A pyautoattack ``AutoAttack`` configured as in the module docstring."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    aa_norm = AA_NORMS[norm]
    attack = AutoAttack(model, attacks=autoattack_attacks(num_classes, config), device=device, eps=eps,
                        norm=aa_norm, seed=seed, version="custom")
    attack.verbose = False
    attack.logger = LOGGER
    # Rebuilt rather than edited: APGD derives its step-size schedule from n_iter in __init__.
    common = dict(n_iter=int(steps), eps=eps, norm=aa_norm, seed=seed, device=device, eot_iter=1, rho=0.75,
                  verbose=False, logger=LOGGER)
    attack.apgd = APGDAttack(model, loss="ce", n_restarts=config.restarts, **common)
    attack.apgd_targeted = APGDAttack_targeted(
        model, n_restarts=1, n_target_classes=max(1, min(MAX_TARGET_CLASSES, num_classes - 1)), **common)
    attack.fab.n_restarts, attack.fab.n_target_classes = 1, max(1, min(MAX_TARGET_CLASSES, num_classes - 1))
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
    config: AAConfig = CONFIGS["aa"],
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
        attack = build_autoattack(model, num_classes, eps, norm, steps, seed, device, config)
        adv, _ = attack.run_standard_evaluation(images, labels.to(device), batch_size=images.shape[0],
                                                state_path=Path(state_path) if state_path is not None else None)
    return adv.detach()
