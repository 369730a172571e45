"""Attacks in pixel space on [0, 1] images, by name in :mod:`caw_core.attacks.registry`.

Modules: :mod:`~caw_core.attacks.registry` (names, parsing, running; no torch),
:mod:`~caw_core.attacks.budget` (norms, the step-size rule; no torch),
:mod:`~caw_core.attacks.autoattack_configs` (AutoAttack's configurations; no
torch), and the attacks themselves: :mod:`~caw_core.attacks.pgd` (PGD, linf
and l2), :mod:`~caw_core.attacks.cw` (CW-PGD), :mod:`~caw_core.attacks.autoattack`,
with :mod:`~caw_core.attacks.control` (cancellation, progress). This package
imports none of them, so reading attack names never loads torch.
"""
