"""Main window and Train tab: opening, settings, live training with Stop, errors that leave the app usable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from gui_helpers import TINY, gui_settings, wait_for, window  # noqa: F401  (fixtures)
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from caw_core.models import ModelSpec

pytestmark = pytest.mark.gui


def test_window_opens_on_the_toy_model_by_default(qtbot, tmp_path):
    from caw_gui.main_window import MainWindow
    from caw_gui.settings import AppSettings

    settings = AppSettings(QSettings(str(tmp_path / "fresh.ini"), QSettings.IniFormat))
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    assert settings.model_spec == ModelSpec("toy", None)
    assert [win.tabs.tabText(i) for i in range(win.tabs.count())] == ["Train", "Attack playground", "Evaluate"]
    assert win.model_label.text().startswith("Model: toy")
    assert win.device_label.text() == "Device: CPU (auto)"
    wait_for(lambda: win.model_task is None, what="the toy model check")
    toy_weights = Path(__import__("caw_core").__file__).parent / "resources" / "toy_clip.safetensors"
    if toy_weights.exists():
        assert win.model_label.text() == "Model: toy (64 px)"
    else:  # weights not produced yet: the window says so instead of crashing
        assert "toy" in win.banner.text() and "not loaded" in win.model_label.text()
    win.close()


def test_settings_persist_between_sessions(window, gui_settings):
    window.set_device("cpu")
    window.resize(900, 700)
    window.close()
    again = type(gui_settings)(QSettings(gui_settings.store.fileName(), QSettings.IniFormat))
    assert again.device == "cpu"
    assert again.model_spec == TINY
    assert again.geometry() is not None and again.runs_dir == gui_settings.runs_dir


def test_training_fills_curves_and_stop_writes_a_checkpoint(window, monkeypatch):
    view = window.train_view
    view.batch.setValue(4)
    view.max_steps.setValue(500)
    assert view.dataset.currentText() == "toy-shape"
    view.start()
    assert view.is_running() and not view.start_button.isEnabled()
    wait_for(lambda: view.loss_plot.point_count("total") >= 2, what="two training steps")
    assert {"total", "ce", "ca", "reg"} <= view.loss_plot.metrics()
    assert view.acc_plot.point_count("robust") >= 2
    assert view.progress.maximum() == 500 and view.progress.value() >= 1
    assert "img/s" in view.speed_label.text()

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    window.close()  # asks first; "No" keeps the window and the run
    assert window.isVisible() and view.is_running()

    view.toggle_pause()
    assert view.pause_button.text() == "Resume"
    view.toggle_pause()
    view.stop()
    wait_for(lambda: not view.is_running(), what="the run to stop")
    latest = Path(view.run_dir) / "checkpoints" / "latest.json"
    assert latest.is_file()
    assert 1 <= json.loads(latest.read_text())["step"] < 500
    assert "stopped" in view.log_panel.toPlainText() and view.banner.text() == ""
    assert (Path(view.run_dir) / "config.json").is_file() and (Path(view.run_dir) / "metrics.jsonl").is_file()


def test_worker_failure_is_shown_and_the_app_stays_usable(window, tmp_path):
    window.set_model(ModelSpec(TINY.name, str(tmp_path / "missing.safetensors")))
    wait_for(lambda: window.model_task is None, what="the model check")
    assert "does not exist" in window.banner.text()
    view = window.train_view
    view.set_base_model(ModelSpec(TINY.name, str(tmp_path / "missing.safetensors")))
    view.batch.setValue(4)
    view.start()
    wait_for(lambda: not view.is_running(), what="the failing run to end")
    assert view.banner.text().startswith("Training failed:") and "does not exist" in view.banner.text()
    assert view.start_button.isEnabled() and view.eta_label.text() == "failed"


def test_bad_form_values_and_runs_are_refused_with_a_message(window, tmp_path):
    view = window.train_view
    view.lr.setText("fast")
    view.start()
    assert "not a number" in view.banner.text() and not view.is_running()
    view.lr.setText("")
    if not __import__("torch").cuda.is_available():
        view.precision.setCurrentText("bf16")
        view.start()
        assert "under Precision" in view.banner.text() and "--" not in view.banner.text() and not view.is_running()
        view.precision.setCurrentText("fp32")
    view.resume_run(str(tmp_path))
    assert "not a caw run" in view.banner.text() and not view.is_running()


def test_unexpected_exceptions_go_to_the_banner(window):
    from caw_gui.errors import install_excepthook

    previous = sys.excepthook
    install_excepthook(window.show_error)
    try:
        sys.excepthook(ZeroDivisionError, ZeroDivisionError("boom"), None)
    finally:
        sys.excepthook = previous
    assert "ZeroDivisionError: boom" in window.banner.text()
