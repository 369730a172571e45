"""The main window: tabs, menus, status bar (device, model), drag-and-drop, settings persistence, quitting.

A model or device choice is saved only once a model has loaded with it, so a
choice that fails is never retried at the next launch. Quitting never blocks
the GUI thread: running work is asked to stop (training saves a checkpoint,
the rest is cancelled), the window closes when the checkpoint is written, and
the process ends when every worker thread has (see :mod:`caw_gui.app`).
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from caw_core.distributed import resolve_device
from caw_core.models import ModelSpec
from caw_gui.errors import log_path
from caw_gui.settings import DEVICES, AppSettings, device_problem
from caw_gui.views.evaluate_view import EvaluateView
from caw_gui.views.playground_view import PlaygroundView
from caw_gui.views.train_view import TrainView
from caw_gui.widgets.banner import MessageBanner
from caw_gui.widgets.model_picker import TOY_SPEC, ModelDialog
from caw_gui.widgets.run_list import open_folder
from caw_gui.workers.jobs import LoadModelJob, ModelCache
from caw_gui.workers.task import Task

log = logging.getLogger("caw_gui")

DOCS_URL = "https://github.com/caw-clip/caw#readme"
LONG_PATH = 200  # characters: longer runs paths are flagged
HIDE_AFTER_MS = 1500  # quitting while a step is still running: the window goes, the checkpoint is saved after


def device_name(preference: str) -> str:
    """'auto' -> what it resolves to here, upper-case (CPU / CUDA / MPS)."""
    try:
        device = resolve_device(preference)
    except (ValueError, RuntimeError):
        return f"{preference} (unavailable)"
    suffix = " (auto)" if preference == "auto" else ""
    return device.type.upper() + suffix


def app_version() -> str:
    try:
        return metadata.version("caw")
    except metadata.PackageNotFoundError:
        return "development checkout"


class MainWindow(QMainWindow):
    """caw-gui's window. ``settings`` is injectable so tests use a throwaway store.

    ``closed`` is emitted when the window has really closed (after a running training saved its
    checkpoint); the app quits on it, also when the window was hidden while the checkpoint was written.
    """

    closed = Signal()

    def __init__(self, settings: Optional[AppSettings] = None):
        super().__init__()
        self.settings = settings or AppSettings()
        self.cache = ModelCache()
        self.model_task: Optional[Task] = None
        self.model_spec = self.settings.model_spec  # the model in use (saved once it has loaded)
        self.device = self.settings.device
        self._quitting = False
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
        self.train_view.runs_changed.connect(self._runs_changed)
        self._build_menus()

        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1360, 860)
        if device_problem(self.device):
            self.show_error(f"The saved device {self.device} cannot be used: {device_problem(self.device)}. "
                            "Using auto; choose another under Model → Device.", "warning")
            self.device = "auto"
        self._check_runs_folder()
        self._show_device()
        self._use_model(self.model_spec)  # the saved choice loaded last time; checked again below
        self.set_model(self.model_spec)

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
        self._action(file_menu, "Open r&uns folder", self.train_view.open_runs_folder)
        self._action(file_menu, "Open res&ults folder", lambda: self._open_folder(self.settings.results_dir))
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, "Ctrl+Q")

        model_menu = bar.addMenu("&Model")
        self._action(model_menu, "&Choose model…", self.choose_model, "Ctrl+M")
        self._action(model_menu, "Use the embedded &toy model", lambda: self.set_model(TOY_SPEC))
        device_menu = model_menu.addMenu("&Device")
        group = QActionGroup(self)
        self.device_actions: dict[str, QAction] = {}
        for device in DEVICES:
            action = QAction(device, self, checkable=True)
            problem = device_problem(device)
            action.setEnabled(not problem)
            action.setToolTip(problem or f"Run models on {device}")
            action.setStatusTip(problem)
            action.triggered.connect(lambda _=False, d=device: self.set_device(d))
            group.addAction(action)
            device_menu.addAction(action)
            self.device_actions[device] = action
        device_menu.setToolTipsVisible(True)

        folders = bar.addMenu("&Settings")
        self._action(folders, "&Data root…", lambda: self._choose_folder("data_root", "Data root"))
        self._action(folders, "&Runs folder…", lambda: self._choose_folder("runs_dir", "Runs folder"))
        self._action(folders, "R&esults folder…", lambda: self._choose_folder("results_dir", "Results folder"))

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, "F1")
        self._action(help_menu, "&About caw", self._about)

    # -- model and device --------------------------------------------------------------------------------------
    def choose_model(self) -> None:
        dialog = ModelDialog(self.model_spec, self.settings.runs_dir, self)
        if dialog.exec() and dialog.result_spec is not None:
            self.set_model(dialog.result_spec)

    def set_model(self, spec: ModelSpec, device: Optional[str] = None) -> None:
        """Load ``spec`` on ``device`` in the background; once it loads, it becomes the base model and is saved."""
        device = device or self.device
        self.model_label.setText(f"Model: {spec.label()} (loading…)")
        task = Task(LoadModelJob(self.cache, spec, device), self)
        # only the latest check counts: an earlier one finishing late must not override a newer choice
        task.record.connect(lambda record: self.model_task is task and self._model_loaded(spec, device, record))
        task.failed.connect(lambda message, _details: self.model_task is task
                            and self._model_failed(spec, device, message))
        task.finished.connect(lambda _status: self._task_ended(task))
        self.model_task = task
        task.start()

    def _task_ended(self, task: Task) -> None:
        if self.model_task is task:
            self.model_task = None
        self._continue_quit()

    def _use_model(self, spec: ModelSpec) -> None:
        """Make ``spec`` the base (vanilla) model of every tab."""
        self.train_view.set_base_model(spec)
        self.playground.set_vanilla(spec)
        self.evaluate_view.set_base_model(spec)

    def _model_loaded(self, spec: ModelSpec, device: str, record: dict) -> None:
        changed = spec != self.model_spec
        self.model_spec, self.device = spec, device
        self.settings.model_spec, self.settings.device = spec, device  # it worked: remember it
        if changed:
            self._use_model(spec)
        self.train_view.set_device(device)
        self.model_label.setText(f"Model: {spec.label()} ({record['image_size']} px)")
        self._show_device()

    def _model_failed(self, spec: ModelSpec, device: str, message: str) -> None:
        fallback = self.settings.model_spec
        if fallback == spec and device == self.settings.device and spec != TOY_SPEC:
            fallback = TOY_SPEC  # the saved choice itself no longer loads: forget it
            self.settings.model_spec = TOY_SPEC
        self.show_error(f"Model {spec.label()} could not be loaded on {device}: {message}  "
                        f"Using {fallback.label()}; choose another with Model → Choose model….")
        self.model_label.setText(f"Model: {self.model_spec.label()}")
        if fallback != self.model_spec or spec == self.model_spec:  # the model in use is not the one to keep
            self.set_model(fallback, self.settings.device)
        self._show_device()

    def set_device(self, device: str) -> None:
        """Use ``device``: the current model is loaded on it first; the choice is saved only if that works."""
        problem = device_problem(device)
        if problem:
            self.show_error(f"Device {device} cannot be used: {problem}. Choose another under Model → Device.",
                            "warning")
            self.device_actions[self.device].setChecked(True)
            return
        self.set_model(self.model_spec, device)

    def _show_device(self) -> None:
        self.device_label.setText(f"Device: {device_name(self.device)}")
        self.device_actions[self.device].setChecked(True)

    # -- folders -----------------------------------------------------------------------------------------------
    def _check_runs_folder(self) -> None:
        """Warn (without failing) when the runs folder cannot be listed or its path is unusually long."""
        folder = Path(self.settings.runs_dir)
        try:
            if folder.exists():
                next(iter(folder.iterdir()), None)
        except OSError as exc:
            self.show_error(f"The runs folder {folder} cannot be read ({exc.strerror or exc}); no past runs are "
                            "listed. Choose another under Settings → Runs folder….", "warning")
            return
        if len(str(folder)) > LONG_PATH:
            self.show_error(f"The runs folder path is {len(str(folder))} characters long; some systems cannot "
                            "create files that deep. If saving fails, choose a shorter one under Settings → "
                            "Runs folder….", "warning")

    def _open_folder(self, folder: str) -> None:
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.show_error(f"Cannot create {folder}: {exc.strerror or exc}. Choose another folder under "
                            "Settings.")
            return
        open_folder(folder)

    def _choose_folder(self, key: str, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, getattr(self.settings, key))
        if folder:
            setattr(self.settings, key, folder)
            self.train_view.set_runs_dir(self.settings.runs_dir)
            self._runs_changed()
            self.evaluate_view.refresh_sources()
            self.statusBar().showMessage(f"{title}: {folder}", 5000)

    def _runs_changed(self) -> None:
        self.playground.set_runs_dir(self.settings.runs_dir)
        self.evaluate_view.refresh_sources()

    def _run_finished(self, run_dir: str) -> None:
        self._runs_changed()
        self.statusBar().showMessage(f"Run saved in {run_dir}", 8000)

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

    # -- help --------------------------------------------------------------------------------------------------
    def shortcuts(self) -> list[tuple[str, str]]:
        """(keys, what) for every menu action and tab shortcut that has keys."""
        rows = []
        for action in self.findChildren(QAction):
            if not action.shortcut().isEmpty() and action.text():
                rows.append((action.shortcut().toString(QKeySequence.NativeText), action.text().replace("&", "")))
        for shortcut in self.findChildren(QShortcut):
            if not shortcut.key().isEmpty():
                tab = next((self.tabs.tabText(i) for i in range(self.tabs.count())
                            if self.tabs.widget(i).isAncestorOf(shortcut.parent())
                            or self.tabs.widget(i) is shortcut.parent()), "Window")
                rows.append((shortcut.key().toString(QKeySequence.NativeText), shortcut.whatsThis() or tab))
        return sorted(set(rows), key=lambda row: row[1])

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{keys}</b></td><td>{what}</td></tr>" for keys, what in self.shortcuts())
        QMessageBox.information(self, "Keyboard shortcuts", f"<table cellspacing=6>{rows}</table>")

    def about_text(self) -> str:
        folders = (("Runs", self.settings.runs_dir), ("Results", self.settings.results_dir),
                   ("Data root", self.settings.data_root), ("Settings", self.settings.store.fileName()),
                   ("Log", str(log_path() or "not written (the log folder could not be created)")))
        rows = "".join(f"<tr><td>{name}</td><td>{value}</td></tr>" for name, value in folders)
        return (f"<b>caw</b> {app_version()}: adversarially robust CLIP with Confidence-Aware Weighting.<br>"
                "Train on the embedded toy world or real data, attack images in the playground, and evaluate "
                f"zero-shot robustness across datasets.<br><br><table cellspacing=4>{rows}</table><br>"
                f'Documentation: <a href="{DOCS_URL}">{DOCS_URL}</a> (README.md and docs/ in the source).')

    def _about(self) -> None:
        QMessageBox.about(self, "About caw", self.about_text())

    # -- errors ------------------------------------------------------------------------------------------------
    def show_error(self, message: str, level: str = "error") -> None:
        """Show a message in the window-wide banner (unexpected errors, model failures)."""
        self.banner.show_message(message, level)

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
        if self._quitting:  # closing again: accepted once the checkpoint is written
            if self.train_view.is_running():
                event.ignore()
            else:
                event.accept()
                self.closed.emit()
            return
        if self.train_view.is_running():
            answer = QMessageBox.question(
                self, "Training in progress",
                "A training run is in progress. Stop it (a checkpoint is saved first) and quit?",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
            if answer != QMessageBox.Yes:
                event.ignore()
                return
        self._quitting = True
        self.settings.set_geometry(self.saveGeometry())
        if self.train_view.is_running():
            self.train_view.stop()
            self.statusBar().showMessage("Saving a checkpoint, then quitting…")
            self.train_view.task.finished.connect(lambda _status: self._continue_quit())
        self.playground.shutdown()
        self.evaluate_view.shutdown()
        if self.train_view.is_running():
            self.centralWidget().setEnabled(False)
            QTimer.singleShot(HIDE_AFTER_MS, self._hide_while_saving)
            event.ignore()
            return
        event.accept()  # model loads and cancelled attacks finish in the background (the app waits for them)
        self.closed.emit()

    def _hide_while_saving(self) -> None:
        """The current step takes long: close the window now; the checkpoint is saved before the app exits."""
        if self._quitting and self.train_view.is_running():
            self.hide()

    def _continue_quit(self) -> None:
        if self._quitting and not self.train_view.is_running():
            self.close()
