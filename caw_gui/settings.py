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
        value = self.store.value(key, default)
        return str(value) if value not in (None, "") else default

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
            return ModelSpec(**fields) if fields else ModelSpec("toy", None)
        except (TypeError, ValueError):
            return ModelSpec("toy", None)

    @model_spec.setter
    def model_spec(self, spec: ModelSpec) -> None:
        self._set("model/spec", json.dumps({"name": spec.name, "pretrained": spec.pretrained,
                                            "checkpoint": spec.checkpoint}))

    def geometry(self) -> Optional[QByteArray]:
        value = self.store.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def set_geometry(self, value: QByteArray) -> None:
        self._set("window/geometry", value)
