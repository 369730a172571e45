"""Turn a config dataclass into argparse options and back (one source of truth).

Every field ``some_name`` becomes ``--some-name``; the type comes from the
default (bools get ``--x/--no-x``); the help text from ``help_texts``. A method's
own options (its ``Options`` dataclass) get flags the same way, with the help
text and choices declared on the fields (:func:`add_method_options`).
"""

from __future__ import annotations

import argparse
import math
import dataclasses
import typing
from typing import Any, Collection, Mapping


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to each help text, unless the text already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        return text if "default:" in text else super()._get_help_string(action)


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


# -- method options ----------------------------------------------------------------------------------------------
METHOD_OPTION_DEST = "method_option:{method}:{name}"


def method_option_flags(methods: Mapping[str, type], taken: Collection[str] = ()) -> dict[tuple[str, str], list[str]]:
    """The flags of every method option: ``(method, option) -> [flags]``.

    ``--<method>-<option>`` always exists (e.g. ``--pmg-aft-variant``); the short ``--<option>`` (e.g.
    ``--alpha``) too, as long as no other method has an option of that name and no flag in ``taken`` is
    spelled that way. Scripts that must survive new methods use the long form.
    """
    from caw_core.methods.base import option_fields

    owners: dict[str, int] = {}
    for cls in methods.values():
        for spec, _ in option_fields(cls.Options):
            owners[spec.name] = owners.get(spec.name, 0) + 1
    flags = {}
    for method, cls in methods.items():
        for spec, _ in option_fields(cls.Options):
            short = "--" + spec.name.replace("_", "-")
            long = f"--{method}-{spec.name.replace('_', '-')}"
            flags[(method, spec.name)] = ([short] if owners[spec.name] == 1 and short not in taken else []) + [long]
    return flags


def add_method_options(parser: argparse.ArgumentParser, methods: Mapping[str, type]) -> None:
    """One argument group per method, its flags generated from the method's ``Options`` dataclass."""
    from caw_core.methods.base import option_fields

    flags = method_option_flags(methods, taken=set(parser._option_string_actions))
    for method, cls in methods.items():
        fields = option_fields(cls.Options)
        if not fields:
            continue
        group = parser.add_argument_group(f"{method} options (only with --method {method})")
        defaults = cls.Options()
        for spec, kind in fields:
            dest = METHOD_OPTION_DEST.format(method=method, name=spec.name)
            help_text = f"{spec.metadata.get('help', '')} (default: {getattr(defaults, spec.name)})"
            names = flags[(method, spec.name)]
            if kind is bool:
                group.add_argument(*names, dest=dest, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                   help=help_text)
            else:
                choices = spec.metadata.get("choices")
                group.add_argument(*names, dest=dest, type=kind, default=argparse.SUPPRESS, help=help_text,
                                   choices=choices, metavar=None if choices else spec.name.upper())


def method_options_from_args(args: argparse.Namespace, method: str) -> dict:
    """The options given on the command line for ``method``; an option of another method is a ValueError."""
    options, foreign = {}, []
    for dest, value in vars(args).items():
        if not dest.startswith("method_option:"):
            continue
        _, owner, name = dest.split(":")
        if owner == method:
            options[name] = value
        else:
            foreign.append(f"--{owner}-{name.replace('_', '-')} (an option of {owner})")
    if foreign:
        raise ValueError(f"{', '.join(foreign)} given with --method {method}; each method takes only its own "
                         f"options ('caw-core train --help' lists them)")
    return options
