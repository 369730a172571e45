"""Turn class names as datasets store them into words a text encoder reads well."""

from __future__ import annotations

import re


def clean_classname(raw: str) -> str:
    """``"aquarium_fish"`` -> ``"aquarium fish"``; ``"apartment_building/outdoor"`` ->
    ``"apartment building outdoor"``: underscores and slashes become spaces,
    runs of whitespace collapse. Case and hyphens are kept ("Boeing 737-200")."""
    return re.sub(r"\s+", " ", re.sub(r"[_/]", " ", raw)).strip()


def strip_model_year(name: str) -> str:
    """``"AM General Hummer SUV 2000"`` -> ``"AM General Hummer SUV"``: Stanford Cars names end in the model
    year, which the reference prompts drop (the class is the make and model)."""
    return re.sub(r"\s+(19|20)\d\d$", "", name.strip())
