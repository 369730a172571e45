"""Naming code by import path, imported on first use: how registries stay free of torch.

A registry entry (a dataset's loader, an attack's function) that lives in a
module importing torch or torchvision is named as ``"package.module:name"``
and wrapped by :func:`imported`; reading the registry (``caw-core data check``,
``caw-core report``, ``--help``) then imports none of it, and the first call
imports the module once (Python caches it in ``sys.modules``).
"""

from __future__ import annotations

import importlib
from typing import Callable


def imported(path: str) -> Callable:
    """A callable standing for the function or class at ``"package.module:name"``, imported on its first call."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"expected 'package.module:name', got {path!r}")

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__qualname__ = call.__name__ = path
    return call
