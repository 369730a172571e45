"""Training objectives: CAW and the baselines, behind one interface (:mod:`.base`)."""

from __future__ import annotations

import difflib

from caw_core.methods.base import AttackTarget, LossTerms, Objective, StepInputs  # noqa: F401
from caw_core.methods.caw import CAW, confidence_aware_loss, feature_alignment_loss  # noqa: F401
from caw_core.methods.fare import FARE
from caw_core.methods.ft_adv import FTAdv, TeCoA
from caw_core.methods.pmg_aft import PMGAFT
from caw_core.methods.tga_zsr import TGAZSR

METHODS: dict[str, type[Objective]] = {cls.name: cls for cls in (CAW, FTAdv, TeCoA, PMGAFT, TGAZSR, FARE)}


def build_objective(name: str, **options) -> Objective:
    """Instantiate the objective ``name`` with its keyword options."""
    key = name.strip().lower().replace("_", "-")
    if key not in METHODS:
        close = difflib.get_close_matches(key, list(METHODS), n=2)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ValueError(f"unknown method {name!r}.{hint} Choose from: {', '.join(METHODS)}")
    return METHODS[key](**options)
