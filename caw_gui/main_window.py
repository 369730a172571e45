"""The main window: tabs, menus, status bar (device, model), drag-and-drop, settings persistence."""

from __future__ import annotations

import logging
from typing import Optional

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from caw_core.distributed import resolve_device
from caw_core.models import ModelSpec
from caw_gui.settings import DEVICES, AppSettings
from caw_gui.views.evaluate_view import EvaluateView
from caw_gui.views.playground_view import PlaygroundView
from caw_gui.views.train_view import TrainView
from caw_gui.widgets.banner import MessageBanner
from caw_gui.widgets.model_picker import ModelDialog
from caw_gui.workers.jobs import LoadModelJob, ModelCache
from caw_gui.workers.task import Task

log = logging.getLogger("caw_gui")


def device_name(preference: str) -> str:
    """'auto' -> what it resolves to here, upper-case (CPU / CUDA / MPS)."""
    try:
        device = resolve_device(preference)
    except (ValueError, RuntimeError) as exc:
        return f"{preference} (unavailable: {exc})"
    suffix = " (auto)" if preference == "auto" else ""
    return device.type.upper() + suffix


class MainWindow(QMainWindow):
    """caw-gui's window. ``settings`` is injectable so tests use a throwaway store."""

    def __init__(self, settings: Optional[AppSettings] = None):
        super().__init__()
        self.settings = settings or AppSettings()
        self.cache = ModelCache()
        self.model_task: Optional[Task] = None
        self.setWindowTitle("caw — robust CLIP with Confidence-Aware Weighting")
        self.setAcceptDrops(True)

        self.banner = MessageBanner()
        self.train_view = TrainView(self.settings)
        self.playground = PlaygroundView(self.settings, self.cache)
        self.evaluate_view = EvaluateView(self.settings)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.train_view, "Train")
        self.tabs.addTab(self.playground, "Attack playground")
        self.tabs.addTab(self.evaluate_view, "Evaluate")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.device_label = QLabel()
        self.model_label = QLabel()
        self.statusBar().addPermanentWidget(self.model_label)
        self.statusBar().addPermanentWidget(self.device_label)
        self.train_view.run_finished.connect(self._run_finished)
        self._build_menus()

        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1360, 860)
        self._show_device()
        self.set_model(self.settings.model_spec)

    # -- menus -------------------------------------------------------------------------------------------------
    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Open image…", self._open_image, QKeySequence.Open)
        self._action(file_menu, "&Paste image", self._paste_image, QKeySequence.Paste)
        self._action(file_menu, "&Save adversarial…", self._save_adversarial, QKeySequence.Save)
        file_menu.addSeparator()
        self._action(file_menu, "&Resume run…", self._resume_run)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.Quit)

        model_menu = bar.addMenu("&Model")
        self._action(model_menu, "&Choose model…", self.choose_model, "Ctrl+M")
        self._action(model_menu, "Use the embedded &toy model", lambda: self.set_model(ModelSpec("toy", None)))
        device_menu = model_menu.addMenu("&Device")
        group = QActionGroup(self)
        for device in DEVICES:
            action = QAction(device, self, checkable=True)
            action.setChecked(device == self.settings.device)
            action.triggered.connect(lambda _=False, d=device: self.set_device(d))
            group.addAction(action)
            device_menu.addAction(action)

        folders = bar.addMenu("&Settings")
        self._action(folders, "&Data root…", lambda: self._choose_folder("data_root", "Data root"))
        self._action(folders, "&Runs folder…", lambda: self._choose_folder("runs_dir", "Runs folder"))
        self._action(folders, "R&esults folder…", lambda: self._choose_folder("results_dir", "Results folder"))

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About caw", self._about)

    # -- model and device --------------------------------------------------------------------------------------
    def choose_model(self) -> None:
        dialog = ModelDialog(self.settings.model_spec, self.settings.runs_dir, self)
        if dialog.exec() and dialog.result_spec is not None:
            self.set_model(dialog.result_spec)

    def set_model(self, spec: ModelSpec) -> None:
        """Make ``spec`` the base (vanilla) model everywhere and check it loads, in the background."""
        self.settings.model_spec = spec
        self.train_view.set_base_model(spec)
        self.playground.set_vanilla(spec)
        self.evaluate_view.set_base_model(spec)
        self.model_label.setText(f"Model: {spec.label()} (loading…)")
        task = Task(LoadModelJob(self.cache, spec, self.settings.device), self)
        task.record.connect(lambda record: self.model_label.setText(
            f"Model: {spec.label()} ({record['image_size']} px)"))
        task.failed.connect(lambda message, _details: self._model_failed(spec, message))
        # only the latest check clears model_task: an earlier one finishing late must not hide this one
        task.finished.connect(lambda _status: self.model_task is task and setattr(self, "model_task", None))
        self.model_task = task
        task.start()

    def _model_failed(self, spec: ModelSpec, message: str) -> None:
        self.model_label.setText(f"Model: {spec.label()} (not loaded)")
        self.show_error(f"Model {spec.label()} could not be loaded: {message}  Choose another under Model → "
                        "Choose model….")

    def set_device(self, device: str) -> None:
        self.settings.device = device
        self.train_view.device.setCurrentText(device)
        self._show_device()
        self.set_model(self.settings.model_spec)

    def _show_device(self) -> None:
        self.device_label.setText(f"Device: {device_name(self.settings.device)}")

    # -- file actions ------------------------------------------------------------------------------------------
    def _open_image(self) -> None:
        self.tabs.setCurrentWidget(self.playground)
        self.playground.open_file_dialog()

    def _paste_image(self) -> None:
        self.tabs.setCurrentWidget(self.playground)
        self.playground.paste()

    def _save_adversarial(self) -> None:
        self.tabs.setCurrentWidget(self.playground)
        self.playground.save_adversarial()

    def _resume_run(self) -> None:
        self.tabs.setCurrentWidget(self.train_view)
        self.train_view.resume_run()

    def _choose_folder(self, key: str, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, getattr(self.settings, key))
        if folder:
            setattr(self.settings, key, folder)
            self.playground.set_runs_dir(self.settings.runs_dir)
            self.evaluate_view.refresh_sources()
            self.statusBar().showMessage(f"{title}: {folder}", 5000)

    def _run_finished(self, run_dir: str) -> None:
        self.playground.set_runs_dir(self.settings.runs_dir)
        self.evaluate_view.refresh_sources()
        self.statusBar().showMessage(f"Run saved in {run_dir}", 8000)

    def _about(self) -> None:
        QMessageBox.about(self, "About caw",
                          "<b>caw</b>: adversarially robust CLIP with Confidence-Aware Weighting.<br>"
                          "Train on the embedded toy world or real data, attack images in the playground, "
                          "and evaluate zero-shot robustness across datasets.")

    # -- errors ------------------------------------------------------------------------------------------------
    def show_error(self, message: str) -> None:
        """Show a message in the window-wide banner (unexpected errors, model failures)."""
        self.banner.show_message(message, "error")

    # -- drag and drop -----------------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.tabs.setCurrentWidget(self.playground)
        self.playground.open_mime(event.mimeData())
        event.acceptProposedAction()

    # -- closing -----------------------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self.train_view.is_running():
            answer = QMessageBox.question(
                self, "Training in progress",
                "A training run is in progress. Stop it (a checkpoint is saved first) and quit?",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
            if answer != QMessageBox.Yes:
                event.ignore()
                return
            self.statusBar().showMessage("Saving a checkpoint…")
            self.train_view.shutdown()
        self.playground.shutdown()
        self.evaluate_view.shutdown()
        if self.model_task is not None:
            self.model_task.wait(10_000)
        self.settings.set_geometry(self.saveGeometry())
        event.accept()
