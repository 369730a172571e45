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


class imported:  # lower case: used like a function, ``build=imported("pkg.module:name")``
    """A callable standing for the function or class at ``"package.module:name"``, imported on its first call."""

    def __init__(self, path: str) -> None:
        module, _, name = path.partition(":")
        if not module or not name:
            raise ValueError(f"expected 'package.module:name', got {path!r}")
        self.path, self._module, self._name = path, module, name

    def resolve(self) -> Callable:
        """The object named (importing its module once)."""
        return getattr(importlib.import_module(self._module), self._name)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"imported({self.path!r})"
