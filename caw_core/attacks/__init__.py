"""Attacks in pixel space on [0, 1] images: PGD (linf, l2), CW-PGD, AutoAttack, by name in the registry."""

from caw_core.attacks.pgd import NORMS, cross_entropy_per_example, eval_mode, pgd, project  # noqa: F401
from caw_core.attacks.cw import cw_margin_per_example, cw_pgd  # noqa: F401,E402
from caw_core.attacks.autoattack import autoattack  # noqa: F401,E402
from caw_core.attacks.control import AttackCancelled, ControlledModel  # noqa: F401,E402
from caw_core.attacks.registry import ATTACKS, Attack, AttackSpec, attack_images, attack_key, parse_attack  # noqa: F401,E402
