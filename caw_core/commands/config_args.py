"""Turn a config dataclass into argparse options and back (one source of truth for every subcommand).

Every field ``some_name`` becomes ``--some-name``; the value type comes from the
field's type hint (bools get ``--x/--no-x``, lists and tuples of strings take a
comma-separated value); the help text from ``help_texts``, with the field's
default appended. Options default to ``None`` in the namespace, so
:func:`given_options` knows exactly which flags the user typed -- resuming a run
with ``--epochs 10`` is honoured even when 10 is the default.

Numbers are parsed strictly: integers within +-2**53, other numbers finite and
within float32's range (``--lr 1e308`` or ``--eps inf`` fail at parse time with
exit status 2, not as an overflow deep in a training step).

A method's own options (its ``Options`` dataclass) get flags the same way, with
the help text and choices declared on the fields (:func:`add_method_options`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from typing import Any, Callable, Collection, Mapping, Optional

from caw_core.typed_json import FLOAT_LIMIT, INT_LIMIT


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to each help text, unless the text already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        return text if "default:" in text else super()._get_help_string(action)


def _number(kind: type, low: Optional[float], inclusive: bool, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        in_range = abs(value) <= (FLOAT_LIMIT if kind is float else INT_LIMIT)
        ok = low is None or (value >= low if inclusive else value > low)
        if not ok or not in_range or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


integer = _number(int, None, True, "an integer")
finite_float = _number(float, None, True, "a finite number (within float32's range)")
positive_int = _number(int, 1, True, "a positive integer")
non_negative_int = _number(int, 0, True, "an integer >= 0")
positive_float = _number(float, 0.0, False, "a positive number")
non_negative_float = _number(float, 0.0, True, "a number >= 0")


def probability(text: str) -> float:
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text!r}")
    return value


probability.__name__ = "a probability in [0, 1]"


def csv_list(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; an empty list is refused."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of names, got {text!r}")
    return items


def csv_tuple(text: str) -> tuple[str, ...]:
    return tuple(csv_list(text))


csv_list.__name__ = csv_tuple.__name__ = "a comma-separated list"


def _parser_for(hint: Any) -> Optional[Callable[[str], Any]]:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        return _parser_for(args[0]) if len(args) == 1 else None
    kind = origin or hint
    return {int: integer, float: finite_float, str: str, list: csv_list, tuple: csv_tuple}.get(kind)


def _shown(default: Any) -> str:
    if isinstance(default, (list, tuple)):
        return ",".join(map(str, default))
    return str(default)


def add_dataclass_options(parser: argparse.ArgumentParser, config_cls: type, help_texts: Mapping[str, str],
                          choices: Mapping[str, Any] = (), skip: tuple[str, ...] = (),
                          types: Mapping[str, Callable[[str], Any]] = (),
                          aliases: Mapping[str, tuple[str, ...]] = ()) -> None:
    """One ``--flag`` per field of ``config_cls`` (except ``skip``); ``types``/``aliases`` override per field.

    A field whose type has no parser (a nested dataclass, a dict) must be skipped or given in ``types``.
    """
    defaults, hints = config_cls(), typing.get_type_hints(config_cls)
    choices, types, aliases = dict(choices), dict(types), dict(aliases)
    for field in dataclasses.fields(config_cls):
        if field.name in skip:
            continue
        flags = ["--" + field.name.replace("_", "-"), *aliases.get(field.name, ())]
        default = getattr(defaults, field.name)
        help_text = help_texts.get(field.name, "")
        if "default:" not in help_text:
            help_text = f"{help_text} (default: {_shown(default).replace('%', '%%')})".strip()
        if bool in (hints[field.name], *typing.get_args(hints[field.name])):
            parser.add_argument(*flags, dest=field.name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
            continue
        kind = types.get(field.name) or _parser_for(hints[field.name])
        if kind is None:
            raise TypeError(f"{config_cls.__name__}.{field.name}: no command-line type for {hints[field.name]}")
        parser.add_argument(*flags, dest=field.name, type=kind, default=None, help=help_text,
                            choices=choices.get(field.name),
                            metavar=None if field.name in choices else field.name.upper())


def given_options(config_cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The fields of ``config_cls`` the user set on the command line."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def config_from_args(config_cls: type, args: argparse.Namespace, **overrides) -> Any:
    """``config_cls`` with its defaults, the flags given, then ``overrides``."""
    return config_cls(**{**given_options(config_cls, args), **overrides})


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
                group.add_argument(*names, dest=dest, type=_parser_for(kind) or kind, default=argparse.SUPPRESS,
                                   help=help_text,
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
