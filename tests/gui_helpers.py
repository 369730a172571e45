"""Shared helpers and fixtures of the GUI tests (offscreen Qt, throwaway settings, a tiny trained run).

Import the fixtures into a test module with ``from gui_helpers import ...``.
Waiting goes through :func:`caw_gui.waiting.wait_for` (a real event loop).
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

from caw_core.models import ModelSpec  # noqa: E402
from caw_gui.waiting import wait_for  # noqa: E402,F401  (re-exported for the tests)

TINY = ModelSpec("caw-test-tiny", None)


@pytest.fixture
def gui_settings(tmp_path):
    """Settings in a temporary ini file, folders under tmp_path, the random tiny CLIP as base model."""
    from caw_gui.settings import AppSettings

    settings = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    settings.runs_dir = str(tmp_path / "runs")
    settings.results_dir = str(tmp_path / "results")
    settings.data_root = str(tmp_path / "data")
    settings.device = "cpu"
    settings.model_spec = TINY
    return settings


@pytest.fixture
def window(qtbot, gui_settings, monkeypatch):
    """The main window on the tiny model; closing it never asks (tests that care patch the question)."""
    from PySide6.QtWidgets import QMessageBox

    from caw_gui.main_window import MainWindow

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    win = MainWindow(gui_settings)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A one-step caw run of the tiny model on the toy shape task: a real fine-tuned checkpoint."""
    from caw_core.train import TrainConfig, Trainer

    runs = tmp_path_factory.mktemp("runs")
    config = TrainConfig(model=TINY.name, pretrained=None, data="toy-shape", batch_size=4, max_steps=1,
                         num_workers=0, runs_dir=str(runs), name="tiny-caw", device="cpu", warmup_steps=0)
    records = list(Trainer(config).run())
    assert records[-1]["event"] == "done"
    return runs / "tiny-caw"
