"""Training objectives: CAW and the baselines, behind one interface (:mod:`.base`).

Adding a method: one module declaring its ``Options`` dataclass, its ``Recipe`` and its
:class:`Objective` subclass, plus its entry in ``METHODS`` below; ``TrainConfig``, the CLI flags and
the GUI form are generated from those declarations.
"""

from __future__ import annotations

import difflib
from typing import Any

from caw_core.methods.base import (  # noqa: F401
    AttackTarget,
    LossTerms,
    MethodOptions,
    Objective,
    Recipe,
    StepInputs,
    option_fields,
    options_from_dict,
)
from caw_core.methods.caw import CAW, confidence_aware_loss, feature_alignment_loss  # noqa: F401
from caw_core.methods.fare import FARE
from caw_core.methods.ft_adv import FTAdv
from caw_core.methods.pmg_aft import PMGAFT
from caw_core.methods.tecoa import TeCoA
from caw_core.methods.tga_zsr import TGAZSR

METHODS: dict[str, type[Objective]] = {cls.name: cls for cls in (CAW, FTAdv, TeCoA, PMGAFT, TGAZSR, FARE)}


def method_class(name: str) -> type[Objective]:
    """The objective class of ``name`` (``pmg_aft`` and ``PMG-AFT`` are accepted); ValueError when unknown."""
    key = name.strip().lower().replace("_", "-")
    if key not in METHODS:
        close = difflib.get_close_matches(key, list(METHODS), n=2)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ValueError(f"unknown method {name!r}.{hint} Choose from: {', '.join(METHODS)}")
    return METHODS[key]


def build_objective(name: str, **options: Any) -> Objective:
    """Instantiate the objective ``name`` with its options (missing ones take their defaults)."""
    cls = method_class(name)
    return cls(options_from_dict(cls.Options, options, cls.name))
