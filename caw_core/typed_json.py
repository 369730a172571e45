"""Read the JSON files caw trusts (run configs, checkpoint pointers, trainer state) against a schema.

A file that is not a regular file, is over a size bound, is not JSON, holds
``NaN``/``Infinity``, nests absurdly deep, or has a missing key or a value of
the wrong type raises :class:`caw_core.io.BadFileError` with one line naming the
file, the key and what was expected -- never a ``KeyError``/``TypeError`` later.

Why a small loader of our own rather than pydantic or msgspec: the schemas are
a handful of flat objects plus the config dataclasses (whose type hints *are*
the schema), the checks needed (finite numbers, integers within JSON's exact
range, non-negative steps, plain folder names) fit in a page, and a new
runtime dependency in the core is not worth that page.

Numbers: integers must lie within +-2**53 (exact in JSON and float64); other
numbers must be finite and within float32's range (the precision tensors use),
so ``"lr": 1e308`` is refused when read rather than overflowing in a step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from caw_core.io import BadFileError, read_regular

MAX_JSON_BYTES = 16 * 2**20
INT_LIMIT = 2**53
FLOAT_LIMIT = 3.4028234e38  # float32's largest finite value


@dataclass(frozen=True)
class Field:
    """One key of a JSON object: its type, whether it may be null or absent, and bounds."""

    kind: type
    nullable: bool = False
    required: bool = True
    minimum: Optional[float] = None
    pattern: Optional[str] = None  # full match, for strings


Schema = Mapping[str, Field]

_NAMES = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string",
          dict: "a JSON object", list: "a JSON list"}


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(text: str | bytes, where: str) -> Any:
    """``json.loads`` refusing NaN/Infinity and absurd nesting; errors name ``where``."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadFileError(f"{where}: nested too deeply to be a caw file") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadFileError(f"{where}: not valid JSON ({exc})") from None


def read_json(path: str | Path, what: str = "JSON file", max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The parsed JSON of the regular file ``path`` (at most ``max_bytes``)."""
    return parse_json(read_regular(path, max_bytes, what), f"{what} {path}")


def read_object(path: str | Path, schema: Schema, what: str = "JSON file") -> dict:
    """``read_json`` + :func:`check_object`."""
    return check_object(read_json(path, what), schema, f"{what} {path}")


def _type_ok(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, int) and abs(value) <= INT_LIMIT
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value) and abs(value) <= FLOAT_LIMIT
    return isinstance(value, kind)


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_value(value: Any, field: Field, where: str) -> Any:
    """``value`` if it satisfies ``field``; else :class:`BadFileError` naming ``where``."""
    if value is None and field.nullable:
        return value
    if not _type_ok(value, field.kind):
        expected = _NAMES.get(field.kind, field.kind.__name__) + (" or null" if field.nullable else "")
        raise BadFileError(f"{where}: expected {expected}, got {_shown(value)}")
    if field.minimum is not None and value < field.minimum:
        raise BadFileError(f"{where}: expected a value >= {field.minimum:g}, got {_shown(value)}")
    if field.pattern is not None and not re.fullmatch(field.pattern, value):
        raise BadFileError(f"{where}: expected a string matching {field.pattern}, got {_shown(value)}")
    return value


def check_object(payload: Any, schema: Schema, where: str) -> dict:
    """``payload`` if it is an object whose keys satisfy ``schema`` (other keys are allowed)."""
    if not isinstance(payload, dict):
        raise BadFileError(f"{where}: expected a JSON object, got {_shown(payload)}")
    for key, field in schema.items():
        if key not in payload:
            if field.required:
                raise BadFileError(f"{where}: the key {key!r} is missing")
            continue
        check_value(payload[key], field, f"{where}: {key!r}")
    return payload


def _hint_check(value: Any, hint: Any, where: str) -> None:
    origin = typing.get_origin(hint)
    if origin is Union:
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return
        concrete = [o for o in options if o is not type(None)]
        if len(concrete) == 1:
            _hint_check(value, concrete[0], where)
        return  # a union of several types: any of them
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        check_dataclass_payload(hint, value, where)
        return
    kind = origin or hint
    if kind is tuple:
        kind = list  # JSON stores tuples as lists
    if kind in _NAMES:
        check_value(value, Field(kind), where)


def check_dataclass_payload(cls: type, payload: Any, where: str) -> dict:
    """Check a stored config against the dataclass ``cls``: every known key has its field's type.

    The type hints are the schema (``Optional[int]`` = an integer or null, ``float`` accepts
    integers, a nested dataclass is an object checked the same way). Unknown keys are left to
    the caller (older or newer files may carry some); missing keys take the field defaults.
    """
    if not isinstance(payload, dict):
        raise BadFileError(f"{where}: expected a JSON object, got {_shown(payload)}")
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in payload:
            _hint_check(payload[field.name], hints[field.name], f"{where}: {field.name!r}")
    return payload
