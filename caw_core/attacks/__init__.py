"""Attacks in pixel space on [0, 1] images: PGD (linf, l2) and friends."""

from caw_core.attacks.pgd import NORMS, cross_entropy_per_example, eval_mode, pgd, project  # noqa: F401
