"""Persistent user settings (QSettings) with platformdirs defaults for folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from platformdirs import user_data_dir
from PySide6.QtCore import QByteArray, QSettings

from caw_core.models import ModelSpec

ORGANISATION = "caw"
APPLICATION = "caw-gui"
DEVICES = ("auto", "cpu", "cuda", "mps")


def device_problem(device: str) -> str:
    """Why ``device`` cannot be used on this machine ("" when it can). Imports torch on first use."""
    from caw_core.distributed import resolve_device

    try:
        resolve_device(device)
    except (ValueError, RuntimeError):
        return {"cuda": "this machine has no CUDA GPU",
                "mps": "Apple's MPS backend is not available on this machine"}.get(device, f"{device} is not available")
    return ""


def default_data_home() -> Path:
    return Path(user_data_dir(APPLICATION, ORGANISATION))


class AppSettings:
    """Typed access to the app's QSettings.

    ``store`` defaults to the per-user native store; tests pass an ini-file
    ``QSettings`` so they never touch the user's settings.
    """

    def __init__(self, store: Optional[QSettings] = None):
        self.store = store or QSettings(ORGANISATION, APPLICATION)

    def _text(self, key: str, default: str) -> str:
        """The stored text of ``key``; ``default`` when it is missing, empty or not text (a damaged store)."""
        try:
            value = self.store.value(key, default)
        except (RecursionError, ValueError, TypeError):
            return default
        return value if isinstance(value, str) and value else default

    def _set(self, key: str, value) -> None:
        self.store.setValue(key, value)
        self.store.sync()

    @property
    def data_root(self) -> str:
        return self._text("paths/data_root", str(Path.home() / "data"))

    @data_root.setter
    def data_root(self, value: str) -> None:
        self._set("paths/data_root", value)

    @property
    def runs_dir(self) -> str:
        return self._text("paths/runs", str(default_data_home() / "runs"))

    @runs_dir.setter
    def runs_dir(self, value: str) -> None:
        self._set("paths/runs", value)

    @property
    def results_dir(self) -> str:
        return self._text("paths/results", str(default_data_home() / "results"))

    @results_dir.setter
    def results_dir(self, value: str) -> None:
        self._set("paths/results", value)

    @property
    def device(self) -> str:
        value = self._text("compute/device", "auto")
        return value if value in DEVICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self._set("compute/device", value)

    @property
    def model_spec(self) -> ModelSpec:
        """The last base ("vanilla") model; the embedded toy CLIP by default."""
        try:
            fields = json.loads(self._text("model/spec", "{}"))
        except (ValueError, RecursionError):  # damaged (e.g. absurdly nested) JSON: back to the default
            return ModelSpec("toy", None)
        if not isinstance(fields, dict) or not isinstance(fields.get("name"), str) or not all(
                fields.get(key) is None or isinstance(fields[key], str) for key in ("pretrained", "checkpoint")):
            return ModelSpec("toy", None)
        return ModelSpec(fields["name"], fields.get("pretrained"), fields.get("checkpoint"))

    @model_spec.setter
    def model_spec(self, spec: ModelSpec) -> None:
        self._set("model/spec", json.dumps({"name": spec.name, "pretrained": spec.pretrained,
                                            "checkpoint": spec.checkpoint}))

    def geometry(self) -> Optional[QByteArray]:
        value = self.store.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def set_geometry(self, value: QByteArray) -> None:
        self._set("window/geometry", value)
