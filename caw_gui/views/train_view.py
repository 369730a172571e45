"""Train tab: a form for a TrainConfig, Start/Pause/Stop, live curves, progress and a log."""

from __future__ import annotations

import logging
import time
from typing import Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from caw_core.data.toyworld import TOY_TASKS, TOY_TRAIN_TASK
from caw_core.demo import TOY_RECIPE
from caw_core.methods import METHODS
from caw_core.models import ModelSpec
from caw_core.train import PRECISIONS, TrainConfig, resume_config
from caw_gui.settings import DEVICES, AppSettings
from caw_gui.widgets.banner import MessageBanner
from caw_gui.widgets.view_layout import banner_over_split
from caw_gui.widgets.curve_plot import CurvePlot
from caw_gui.widgets.options_form import OptionsForm
from caw_gui.workers.jobs import TrainJob
from caw_gui.workers.task import Task

log = logging.getLogger("caw_gui")

REFRESH_MS = 50  # plots redraw at most 20 times a second
NOT_LOSSES = {"event", "step", "epoch", "total_steps", "lr", "robust_acc", "clean_acc", "grad_norm", "images_per_s",
              "step_time_s", "elapsed_s", "checkpoint"}
TRAIN_DATASETS = (TOY_TRAIN_TASK, *[t for t in TOY_TASKS if t != TOY_TRAIN_TASK], "tinyimagenet")


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _spin(low: float, high: float, value: float, decimals: int = 0, step: float = 1.0):
    box = QDoubleSpinBox() if decimals else QSpinBox()
    if decimals:
        box.setDecimals(decimals)
        box.setSingleStep(step)
    box.setRange(low, high)
    box.setValue(value)
    return box


class TrainView(QWidget):
    """Fine-tune the base model with one of the methods and watch it learn."""

    running_changed = Signal(bool)
    run_finished = Signal(str)  # the run folder

    def __init__(self, settings: AppSettings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.base_model = settings.model_spec
        self.task: Optional[Task] = None
        self.run_dir = ""
        self._latest: dict = {}
        self._started_at = 0.0
        self._first_step: Optional[int] = None
        self._end_event = ""
        self.banner = MessageBanner()

        banner_over_split(self, self.banner, self._build_form(), self._build_monitor(), (320, 900))

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._refresh)
        self._update_buttons()

    # -- layout ------------------------------------------------------------------------------------------------
    def _build_form(self) -> QWidget:
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.method = QComboBox()
        self.method.addItems(list(METHODS))
        self.method_options = OptionsForm()
        # Start from the toy recipe (the app opens on the toy model); the paper's is eps 1, lr blank, batch 128.
        self.eps = _spin(0, 64, TOY_RECIPE.eps, 2, 0.5)
        self.attack_steps = _spin(1, 100, 2)
        self.lr = QLineEdit(f"{TOY_RECIPE.lr:g}")
        self.epochs = _spin(1, 1000, 1)
        self.max_steps = _spin(0, 10_000_000, TOY_RECIPE.train_steps)
        self.max_steps.setSpecialValueText("no limit")
        self.batch = _spin(1, 4096, TOY_RECIPE.batch_size)
        self.dataset = QComboBox()
        self.dataset.addItems(TRAIN_DATASETS)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText(self.settings.device)
        self.precision = QComboBox()
        self.precision.addItems(PRECISIONS)
        self.method.currentTextChanged.connect(self._method_changed)
        self._method_changed(self.method.currentText())

        form = QFormLayout()
        form.addRow("Base model", self.model_label)
        form.addRow("Method", self.method)
        form.addRow("Method options", self.method_options)
        form.addRow("ε (/255)", self.eps)
        form.addRow("PGD steps", self.attack_steps)
        form.addRow("Learning rate", self.lr)
        form.addRow("Epochs", self.epochs)
        form.addRow("Max steps", self.max_steps)
        form.addRow("Batch size", self.batch)
        form.addRow("Dataset", self.dataset)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)

        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.resume_run_button = QPushButton("Resume run…")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        self.resume_run_button.clicked.connect(lambda: self.resume_run())
        self.stop_button.setToolTip("Stop after the current step and save a checkpoint")
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)

        box = QGroupBox("Run")
        column = QVBoxLayout(box)
        column.addLayout(form)
        column.addLayout(buttons)
        column.addWidget(self.resume_run_button)
        column.addStretch(1)
        self.set_base_model(self.base_model)
        return box

    def _build_monitor(self) -> QWidget:
        self.loss_plot = CurvePlot("Losses", "loss")
        self.acc_plot = CurvePlot("Training accuracy", "accuracy (%)")
        self.smoothing = QSlider(Qt.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(60)
        self.smoothing.setMaximumWidth(160)
        self.smoothing.valueChanged.connect(self._smoothing_changed)
        self.smoothing_label = QLabel("0.60")
        self.log_y = QCheckBox("log y")
        self.log_y.toggled.connect(self.loss_plot.set_log_y)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Smoothing"))
        controls.addWidget(self.smoothing)
        controls.addWidget(self.smoothing_label)
        controls.addWidget(self.log_y)
        controls.addStretch(1)

        self.progress = QProgressBar()
        self.progress.setFormat("no run yet")  # the step count is known once the run has its data
        self.progress.setValue(0)
        self.eta_label = QLabel("idle")
        self.speed_label = QLabel("")
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.eta_label)
        progress_row.addWidget(self.speed_label)

        self.log_panel = QPlainTextEdit()
        self.log_panel.setReadOnly(True)
        self.log_panel.setMaximumBlockCount(2000)
        self.log_panel.setPlaceholderText("Run log")

        plots = QSplitter(Qt.Vertical)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.acc_plot)
        plots.addWidget(self.log_panel)
        plots.setSizes([400, 260, 120])
        panel = QWidget()
        column = QVBoxLayout(panel)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(controls)
        column.addWidget(plots, 1)
        column.addLayout(progress_row)
        return panel

    # -- form --------------------------------------------------------------------------------------------------
    def set_base_model(self, spec: ModelSpec) -> None:
        self.base_model = spec
        self.model_label.setText(spec.label())

    def _method_changed(self, method: str) -> None:
        self.method_options.set_options_class(METHODS[method].Options)
        self.lr.setPlaceholderText(f"method default ({METHODS[method].recipe.lr:g})")

    def _smoothing_changed(self, value: int) -> None:
        self.smoothing_label.setText(f"{value / 100:.2f}")
        for plot in (self.loss_plot, self.acc_plot):
            plot.set_smoothing(value / 100)

    def build_config(self) -> TrainConfig:
        """The TrainConfig the form describes (ValueError with a message when a field is bad)."""
        text = self.lr.text().strip()
        try:
            lr = float(text) if text else None
        except ValueError:
            raise ValueError(f"learning rate {text!r} is not a number (leave it blank for the method default)")
        data = self.dataset.currentText()
        config = TrainConfig(
            method=self.method.currentText(), model=self.base_model.name, pretrained=self.base_model.pretrained,
            checkpoint=self.base_model.checkpoint, data=data, data_root=self.settings.data_root,
            method_options=self.method_options.values(), eps=self.eps.value(),
            attack_steps=self.attack_steps.value(), lr=lr, epochs=self.epochs.value(),
            max_steps=self.max_steps.value() or None, batch_size=self.batch.value(),
            device=self.device.currentText(), precision=self.precision.currentText(),
            num_workers=0 if data.startswith("toy-") else 2, runs_dir=self.settings.runs_dir)
        config.validate()
        return config

    def _show_config(self, config: TrainConfig) -> None:
        self.method.setCurrentText(config.method)
        self.method_options.set_values(config.method_options)
        self.eps.setValue(config.eps)
        self.attack_steps.setValue(config.attack_steps)
        self.lr.setText("" if config.lr is None else f"{config.lr:g}")
        self.epochs.setValue(config.epochs)
        self.max_steps.setValue(config.max_steps or 0)
        self.batch.setValue(config.batch_size)
        self.dataset.setCurrentText(config.data)
        self.device.setCurrentText(config.device)
        self.precision.setCurrentText(config.precision)

    # -- control -----------------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.task is not None

    def start(self) -> None:
        if self.is_running():
            return
        try:
            config = self.build_config()
        except ValueError as exc:
            self.banner.show_message(str(exc), "error")
            return
        self._launch(TrainJob(config), f"starting {config.method} on {config.data} ({config.model_spec().label()})")

    def resume_run(self, run_dir: str = "") -> None:
        """Continue a run (GUI- or CLI-made) from its latest checkpoint."""
        if self.is_running():
            return
        run_dir = run_dir or QFileDialog.getExistingDirectory(self, "Resume which run?", self.settings.runs_dir)
        if not run_dir:
            return
        try:
            config = resume_config(run_dir)
        except (FileNotFoundError, ValueError) as exc:
            self.banner.show_message(f"Cannot resume {run_dir}: {exc}", "error")
            return
        self._show_config(config)
        self._launch(TrainJob(config, resume=True), f"resuming {run_dir}")

    def _launch(self, job: TrainJob, message: str) -> None:
        self.banner.clear()
        for plot in (self.loss_plot, self.acc_plot):
            plot.clear_data()
        self._latest, self._first_step, self._end_event = {}, None, ""
        self._started_at = time.perf_counter()
        self.progress.setValue(0)
        self.eta_label.setText("loading model and data…")
        self.append_log(message)
        self.task = Task(job, self)
        self.task.record.connect(self._on_record)
        self.task.failed.connect(self._on_failed)
        self.task.finished.connect(self._on_finished)
        self.task.start()
        self.timer.start()
        self._update_buttons()
        self.running_changed.emit(True)

    def toggle_pause(self) -> None:
        if not self.task:
            return
        if self.task.is_paused():
            self.task.resume()
            self.append_log("resumed")
        else:
            self.task.pause()
            self.append_log("paused (between steps)")
        self._update_buttons()

    def stop(self) -> None:
        if self.task:
            self.task.stop()
            self.append_log("stopping after the current step; saving a checkpoint…")
            self.stop_button.setEnabled(False)

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Stop a running job and wait for its checkpoint (window closing)."""
        if self.task:
            self.task.stop()
            self.task.wait(timeout_ms)

    def _update_buttons(self) -> None:
        running = self.is_running()
        self.start_button.setEnabled(not running)
        self.resume_run_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.pause_button.setText("Resume" if running and self.task.is_paused() else "Pause")

    # -- records -----------------------------------------------------------------------------------------------
    def _on_record(self, record: dict) -> None:
        event = record.get("event")
        if event == "started":
            self.run_dir = record["run_dir"]
            self.progress.setMaximum(max(record["total_steps"], 1))
            self.progress.setFormat("step %v / %m")
            self.append_log(f"run folder {self.run_dir} (device {record['device']}, {record['total_steps']} steps)")
        elif event == "step":
            if self._first_step is None:
                self._first_step = record["step"] - 1
            step = record["step"]
            losses = {("total" if k == "loss" else k): v for k, v in record.items()
                      if k not in NOT_LOSSES and isinstance(v, (int, float))}
            self.loss_plot.add(step, losses)
            self.acc_plot.add(step, {name: None if value is None else 100 * value for name, value in
                                     (("robust", record.get("robust_acc")), ("clean", record.get("clean_acc")))})
            self._latest = record
            if "checkpoint" in record:
                self.append_log(f"step {step}: checkpoint {record['checkpoint']}")
        elif event in ("done", "stopped"):
            self._end_event = event
            self.append_log(f"{event} at step {record['step']} of {record['total_steps']}")

    def _on_failed(self, message: str, details: str) -> None:
        self.banner.show_message(f"Training failed: {message}", "error")
        self.append_log(f"error: {message}")
        log.error("training failed: %s\n%s", message, details)

    def _on_finished(self, status: str) -> None:
        self._refresh()
        self.timer.stop()
        self.task = None
        ended = {"done": "finished", "stopped": "stopped; checkpoint saved"}.get(self._end_event, "ended")
        self.eta_label.setText("failed" if status == "failed" else ended)
        self._update_buttons()
        self.running_changed.emit(False)
        if self.run_dir:
            self.run_finished.emit(self.run_dir)

    def _refresh(self) -> None:
        """Timer tick: redraw curves and progress from the buffered records."""
        self.loss_plot.refresh()
        self.acc_plot.refresh()
        record = self._latest
        if not record:
            return
        step, total = record["step"], record["total_steps"]
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(step)
        done_here = step - (self._first_step or 0)
        per_step = (time.perf_counter() - self._started_at) / max(done_here, 1)
        paused = " (paused)" if self.task and self.task.is_paused() else ""
        self.eta_label.setText(f"ETA {format_duration(per_step * (total - step))}{paused}")
        self.speed_label.setText(f"{record['images_per_s']:.0f} img/s")

    def append_log(self, text: str) -> None:
        self.log_panel.appendPlainText(f"[{time.strftime('%H:%M:%S')}] {text}")
