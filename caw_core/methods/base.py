"""The shared interface of the training objectives (CAW and the baselines).

Every method fine-tunes the image tower T of CLIP (text tower frozen) against
a frozen copy O of the original tower, on adversarial images x' found by an
inner-loop attack (PGD-2, linf, eps = 1/255 in the shared recipe).

A method is one module that declares

* ``Options`` -- a dataclass of the loss's own hyper-parameters, each field with
  a default and ``metadata={"help": ..., "choices": ..., "min": ...}``; the
  CLI flags and the GUI form are generated from it (:func:`option_fields`);
* a :class:`Recipe` -- the outer/inner-loop settings its reference trains with
  (learning rate, optimizer, weight decay, attack); ``TrainConfig`` fields left
  as None take these values;
* an :class:`Objective` subclass answering two questions per batch:
  :meth:`Objective.attack_target` (what the inner attack maximises: by default
  the cross-entropy of T's zero-shot logits) and :meth:`Objective.losses` (the
  training loss on (x, x', y) as named terms plus the total).

Efficiency rules every method follows (the reference code breaks them): T is
run once per step, on the concatenation of every input that needs gradients
(one forward, one backward, DDP-friendly); O runs under ``torch.no_grad`` and
also once per step on a concatenated batch; the text head is cached.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Optional

import torch

from caw_core.losses import cross_entropy_per_example
from caw_core.models.zero_shot import ImageEncoder, logits_from_features


@dataclass
class StepInputs:
    """One training batch as the objectives see it.

    encode: the trainable image tower (possibly DDP-wrapped); call it ONCE.
    original: the frozen original tower O.
    text_head: (C, D) unit-norm class embeddings.
    """

    encode: Callable[..., object]
    original: ImageEncoder
    text_head: torch.Tensor
    images: torch.Tensor
    adv: torch.Tensor
    labels: torch.Tensor

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return logits_from_features(features, self.text_head)


@dataclass
class LossTerms:
    """A step's loss: ``total`` (to backpropagate) and named detached parts.

    ``logits_adv`` are T's logits on x' (for the train robust accuracy) when
    the method computed them; ``logits_clean`` likewise for x.
    """

    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    logits_adv: Optional[torch.Tensor] = None
    logits_clean: Optional[torch.Tensor] = None


@dataclass
class AttackTarget:
    """What PGD maximises: ``loss_fn(forward(x'), labels)`` per example."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    labels: torch.Tensor
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Recipe:
    """The training settings a method's reference uses, where caw's ``TrainConfig`` leaves them unset (None).

    Defaults are the shared TinyImageNet recipe of PMG-AFT / TGA-ZSR / CAW (see ANCHORS.md):
    SGD (momentum 0.9), no weight decay, PGD-2 at eps 1/255 (units of 1/255 here), step by the attacks'
    default rule. ``source`` names the reference script each value comes from (README's recipes table).
    """

    lr: float = 5e-5
    optimizer: str = "sgd"
    weight_decay: float = 0.0
    eps: float = 1.0
    attack_steps: int = 2
    source: str = ""


def option(default: Any, help: str, choices: Optional[tuple] = None, minimum: Optional[float] = None) -> Any:
    """A field of a method's ``Options`` dataclass with its help text, allowed values and lower bound."""
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if minimum is not None:
        metadata["min"] = minimum
    return field(default=default, metadata=metadata)


def option_fields(options_cls: type) -> list[tuple[dataclasses.Field, type]]:
    """Every field of an ``Options`` dataclass with its plain type (bool, int, float or str)."""
    hints = typing.get_type_hints(options_cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(options_cls)]


class MethodOptions:
    """Base of every method's ``Options`` dataclass: checks types, choices and bounds on construction.

    ``BEFORE_OPTIONS`` holds the option values that reproduce what the method computed before run
    configs recorded ``method_options``; ``TrainConfig.from_run`` applies them to such old runs so a
    resumed run keeps its loss.
    """

    BEFORE_OPTIONS: ClassVar[dict] = {}

    def __post_init__(self) -> None:
        for spec, kind in option_fields(type(self)):
            value = getattr(self, spec.name)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                object.__setattr__(self, spec.name, value)
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                raise ValueError(f"{spec.name} must be a {kind.__name__}, got {value!r}")
            if kind is float and not math.isfinite(value):
                raise ValueError(f"{spec.name} must be a finite number, got {value}")
            choices = spec.metadata.get("choices")
            if choices is not None and value not in choices:
                raise ValueError(f"{spec.name} must be one of {', '.join(map(str, choices))}, got {value!r}")
            low = spec.metadata.get("min")
            if low is not None and value < low:
                raise ValueError(f"{spec.name} must be >= {low}, got {value}")


@dataclass(frozen=True)
class NoOptions(MethodOptions):
    """The options of a method that has none."""


def options_from_dict(options_cls: type, values: Mapping[str, Any], method: str = "") -> Any:
    """``options_cls(**values)``; an unknown key is a ValueError naming the method's options."""
    names = [f.name for f, _ in option_fields(options_cls)]
    unknown = [k for k in values if k not in names]
    if unknown:
        valid = ", ".join(names) if names else "none"
        raise ValueError(f"{', '.join(map(repr, unknown))} is not an option of method {method!r} "
                         f"(its options: {valid})")
    return options_cls(**values)


class Objective(ABC):
    """Base class: a training objective, its ``Options`` and its reference :class:`Recipe`."""

    name: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    recipe: ClassVar[Recipe] = Recipe()

    def __init__(self, options: Optional[MethodOptions] = None):
        self.options = self.Options() if options is None else options
        if not isinstance(self.options, self.Options):
            raise TypeError(f"{self.name} takes {self.Options.__name__}, got {type(self.options).__name__}")

    def attack_target(self, target_encoder: ImageEncoder, original: ImageEncoder, text_head: torch.Tensor,
                      images: torch.Tensor, labels: torch.Tensor) -> AttackTarget:
        """Default: maximise the cross-entropy of T's zero-shot logits."""
        return AttackTarget(
            forward=lambda x: logits_from_features(target_encoder(x), text_head),
            labels=labels,
            loss_fn=cross_entropy_per_example,
        )

    @abstractmethod
    def losses(self, batch: StepInputs) -> LossTerms:
        """The training loss on one batch."""
