"""AutoAttack's configurations by name, which of its attacks run, and what they cost (pure Python: no torch).

See :mod:`caw_core.attacks.autoattack` for the attacks and where each
configuration comes from; kept apart so the attack registry imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_TARGET_CLASSES = 9
MIN_CLASSES_FOR_DLR = 4
DLR_ATTACKS = ("apgd-t", "apgd-dlr", "fab-t")


@dataclass(frozen=True)
class AAConfig:
    """Which of AutoAttack's attacks run, and APGD-CE/APGD-DLR's restarts."""

    attacks: tuple[str, ...] = ("apgd-ce", "apgd-t")
    restarts: int = 1

    def describe(self) -> str:
        names = {"apgd-ce": "APGD-CE", "apgd-t": "APGD-T", "apgd-dlr": "APGD-DLR", "fab-t": "FAB-T",
                 "square": "Square"}
        parts = [names[a] + (f" ({self.restarts} restarts)" if a in ("apgd-ce", "apgd-dlr") and self.restarts > 1
                             else "") for a in self.attacks]
        return " + ".join(parts)


CONFIGS = {
    "aa": AAConfig(("apgd-ce", "apgd-t"), 1),
    "aafare": AAConfig(("apgd-ce", "apgd-t"), 5),
    "aastd": AAConfig(("apgd-ce", "apgd-t", "fab-t", "square"), 1),
    "aadlr": AAConfig(("apgd-ce", "apgd-dlr"), 1),
}


def autoattack_attacks(num_classes: int, config: AAConfig = CONFIGS["aa"]) -> list[str]:
    """The attacks run for a task of ``num_classes``: the DLR-based ones only with >= 4 classes."""
    return [a for a in config.attacks if num_classes >= MIN_CLASSES_FOR_DLR or a not in DLR_ATTACKS]


def autoattack_forwards(config: AAConfig, steps: int, num_classes: int) -> int:
    """About how many forward passes per image one AutoAttack run costs at most (for progress bars)."""
    targets = max(1, min(MAX_TARGET_CLASSES, num_classes - 1))
    per_attack = {"apgd-ce": config.restarts * steps, "apgd-dlr": config.restarts * steps,
                  "apgd-t": targets * steps, "fab-t": targets * steps, "square": 5000}
    return 1 + sum(per_attack[a] for a in autoattack_attacks(num_classes, config))
