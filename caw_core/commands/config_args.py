"""Turn a config dataclass into argparse options and back (one source of truth).

Every field ``some_name`` becomes ``--some-name``; the type comes from the
default (bools get ``--x/--no-x``); the help text from ``help_texts``.
"""

from __future__ import annotations

import argparse
import math
import dataclasses
import typing
from typing import Any, Mapping


def _field_type(field: dataclasses.Field, owner: type) -> Any:
    hint = typing.get_type_hints(owner)[field.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def add_dataclass_options(parser: argparse.ArgumentParser, config_cls: type, help_texts: Mapping[str, str],
                          choices: Mapping[str, Any] = (), skip: tuple[str, ...] = ()) -> None:
    defaults = config_cls()
    for field in dataclasses.fields(config_cls):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        kind = _field_type(field, config_cls)
        help_text = help_texts.get(field.name, "")
        if kind is bool:
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=default,
                                help=help_text)
        else:
            parser.add_argument(flag, dest=field.name, type=kind, default=default, help=help_text or " ",
                                choices=dict(choices).get(field.name), metavar=None if field.name in dict(choices)
                                else field.name.upper())


def config_from_args(config_cls: type, args: argparse.Namespace, **overrides) -> Any:
    names = {f.name for f in dataclasses.fields(config_cls)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values.update(overrides)
    return config_cls(**values)


def _number(kind: type, low: float, inclusive: bool, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        ok = value >= low if inclusive else value > low
        if not ok or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = _number(int, 1, True, "a positive integer")
non_negative_int = _number(int, 0, True, "an integer >= 0")
positive_float = _number(float, 0.0, False, "a positive number")
