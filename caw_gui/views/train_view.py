"""Train tab: a form for a TrainConfig, Start/Pause/Stop, the run list, live and past curves, progress and a log.

The form edits a *base* config: the toy recipe when the app starts, or the
config of the run being resumed; fields the form does not show (warm-up,
epochs budget, save interval, ...) keep the base's values, so the GUI's
default run is exactly the demo's recipe.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
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
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from caw_core import runs
from caw_core.distributed import resolve_device
from caw_core.data.toyworld import TOY_TASKS, TOY_TRAIN_TASK
from caw_core.toy.recipe import toy_train_config
from caw_core.methods import METHODS
from caw_core.models import ModelSpec
from caw_core.train import PRECISIONS, TrainConfig, resume_config
from caw_gui.settings import DEVICES, AppSettings, device_problem
from caw_gui.widgets.banner import MessageBanner
from caw_gui.widgets.curve_plot import CurvePlot
from caw_gui.widgets.options_form import OptionsForm
from caw_gui.widgets.run_list import RunList, open_folder
from caw_gui.widgets.view_layout import banner_over_split
from caw_gui.workers.jobs import TrainJob
from caw_gui.workers.task import Task

log = logging.getLogger("caw_gui")

REFRESH_MS = 50  # plots redraw at most 20 times a second
NOT_LOSSES = {"event", "step", "epoch", "total_steps", "lr", "robust_acc", "clean_acc", "grad_norm", "images_per_s",
              "step_time_s", "elapsed_s", "checkpoint", "stage"}
TRAIN_DATASETS = (TOY_TRAIN_TASK, *[t for t in TOY_TASKS if t != TOY_TRAIN_TASK], "tinyimagenet")

TOOLTIPS = {
    "method": "The training objective. caw: Confidence-Aware Weighting (the paper); tecoa / ft-adv: adversarial "
              "cross-entropy; pmg-aft, tga-zsr: distillation baselines; fare: unsupervised feature alignment",
    "options": "The chosen method's own settings (for CAW: α, the confidence-aware weight, and β, the feature "
               "regularisation weight); hover over each for its meaning",
    "eps": "ε: radius of the L∞ ball the training attack may perturb each pixel within, in grey levels (/255)",
    "attack_steps": "Number of PGD steps of the inner attack that crafts each training batch "
                    "(step size: the attacks' default rule, 2ε/steps, at least 1/255)",
    "lr": "Learning rate of the outer SGD optimizer (warm-up, then cosine decay to 0)",
    "epochs": "Passes over the training set (Max steps stops earlier)",
    "max_steps": "Stop after this many optimizer steps (0 = no limit: run all the epochs)",
    "batch": "Images per optimizer step",
    "dataset": "Training images: a toy-world task (offline, embedded) or Tiny-ImageNet under the data root",
    "device": "Where training runs; devices this machine does not have are disabled",
    "precision": "fp32: full precision; bf16: bfloat16 autocast (CUDA only), faster and lighter",
}


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def default_train_config() -> TrainConfig:
    """The toy recipe the form starts from (the same fine-tune the demo runs)."""
    return toy_train_config("caw")


class EtaClock:
    """Time per step measured over training only: it starts at the first step and excludes paused time.

    ``now`` is injectable for tests. ETA = (training seconds so far / steps done so far) x steps left.
    """

    def __init__(self, now=time.perf_counter):
        self.now = now
        self.first_step: Optional[int] = None
        self.started = 0.0
        self.paused_total = 0.0
        self.paused_since: Optional[float] = None

    def step(self, step: int) -> None:
        if self.first_step is None:  # the first step record: model and data loading are behind us
            self.first_step, self.started = step, self.now()

    def pause(self, paused: bool) -> None:
        if paused and self.paused_since is None:
            self.paused_since = self.now()
        elif not paused and self.paused_since is not None:
            self.paused_total += self.now() - self.paused_since
            self.paused_since = None

    def eta(self, step: int, total: int) -> Optional[float]:
        """Seconds left, or None before two steps are known."""
        if self.first_step is None or step <= self.first_step:
            return None
        paused = self.paused_total + (self.now() - self.paused_since if self.paused_since is not None else 0.0)
        per_step = (self.now() - self.started - paused) / (step - self.first_step)
        return per_step * max(total - step, 0)


def _spin(low: float, high: float, value: float, decimals: int = 0, step: float = 1.0):
    box = QDoubleSpinBox() if decimals else QSpinBox()
    if decimals:
        box.setDecimals(decimals)
        box.setSingleStep(step)
    box.setRange(low, high)
    box.setValue(value)
    return box


class TrainView(QWidget):
    """Fine-tune the base model with one of the methods, watch it learn, browse and compare past runs."""

    running_changed = Signal(bool)
    run_finished = Signal(str)  # the run folder
    runs_changed = Signal()  # a run was created, renamed or deleted

    def __init__(self, settings: AppSettings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.base_model = settings.model_spec
        self.base_config = default_train_config()
        self.task: Optional[Task] = None
        self.run_dir = ""
        self.shown_run = ""  # the run whose curves are the plots' "current" series
        self._latest: dict = {}
        self._paused = False
        self._eta = EtaClock()
        self._end_event = ""
        self.banner = MessageBanner()

        banner_over_split(self, self.banner, self._build_form(), self._build_monitor(), (350, 670))
        self._show_config(self.base_config)

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._refresh)
        self._shortcut("F5", self.start, "Train: start a run")
        self._shortcut("F6", self.toggle_pause, "Train: pause / resume")
        self._shortcut("Shift+F5", self.stop, "Train: stop (saves a checkpoint)")
        self._update_buttons()

    def _shortcut(self, keys: str, slot, description: str) -> None:
        shortcut = QShortcut(QKeySequence(keys), self, slot)
        shortcut.setContext(Qt.WidgetWithChildrenShortcut)
        shortcut.setWhatsThis(description)

    # -- layout ------------------------------------------------------------------------------------------------
    def _build_form(self) -> QWidget:
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.method = QComboBox()
        self.method.addItems(list(METHODS))
        self.method_options = OptionsForm()  # fields from the method's Options dataclass
        self.eps = _spin(0, 64, 1.0, 2, 0.5)
        self.attack_steps = _spin(1, 100, 2)
        self.lr = QLineEdit()
        self.epochs = _spin(1, 1_000_000, 1)
        self.max_steps = _spin(0, 10_000_000, 0)
        self.max_steps.setSpecialValueText("no limit")
        self.batch = _spin(1, 4096, 64)
        self.dataset = QComboBox()
        self.dataset.addItems(TRAIN_DATASETS)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        for index, device in enumerate(DEVICES):
            problem = device_problem(device)
            if problem:  # not on this machine: shown, but cannot be chosen
                self.device.model().item(index).setEnabled(False)
                self.device.setItemData(index, problem, Qt.ToolTipRole)
        self.set_device(self.settings.device)
        self.precision = QComboBox()
        self.precision.addItems(PRECISIONS)
        self.method.currentTextChanged.connect(self._method_changed)

        form = QFormLayout()
        rows = [("Base model", self.model_label, ""), ("Method", self.method, "method"),
                ("Method options", self.method_options, "options"),
                ("ε (/255)", self.eps, "eps"), ("PGD steps", self.attack_steps, "attack_steps"),
                ("Learning rate", self.lr, "lr"), ("Epochs", self.epochs, "epochs"),
                ("Max steps", self.max_steps, "max_steps"), ("Batch size", self.batch, "batch"),
                ("Dataset", self.dataset, "dataset"), ("Device", self.device, "device"),
                ("Precision", self.precision, "precision")]
        for label, widget, tip in rows:
            form.addRow(label, widget)
            if tip:
                widget.setToolTip(TOOLTIPS[tip])
                form.labelForField(widget).setToolTip(TOOLTIPS[tip])
        self.model_label.setToolTip("The model being fine-tuned: change it under Model → Choose model…")

        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.resume_run_button = QPushButton("Resume run…")
        self.runs_folder_button = QPushButton("Open runs folder")
        self.start_button.setToolTip("Start a new run with these settings (F5)")
        self.pause_button.setToolTip("Pause between steps / resume (F6)")
        self.stop_button.setToolTip("Stop after the current step and save a checkpoint (Shift+F5)")
        self.resume_run_button.setToolTip("Continue a run from another folder from its latest checkpoint")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        self.resume_run_button.clicked.connect(lambda: self.resume_run())
        self.runs_folder_button.clicked.connect(self.open_runs_folder)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)
        self.runs_folder_label = QLabel()
        self.runs_folder_label.setWordWrap(True)
        self.runs_folder_label.setTextInteractionFlags(Qt.TextSelectableByMouse)

        box = QGroupBox("Run settings")
        fields = QVBoxLayout(box)
        fields.addLayout(form)
        fields.addStretch(1)
        self.set_base_model(self.base_model)
        scroll = QScrollArea()  # the form scrolls; the buttons below it always stay on screen
        scroll.setWidget(box)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        panel = QWidget()
        panel.setMinimumWidth(280)
        column = QVBoxLayout(panel)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(scroll, 1)
        column.addLayout(buttons)
        column.addWidget(self.resume_run_button)
        column.addWidget(self.runs_folder_button)
        column.addWidget(self.runs_folder_label)
        return panel

    def _build_monitor(self) -> QWidget:
        self.run_list = RunList(self.settings.runs_dir)
        self.run_list.opened.connect(self.show_run)
        self.run_list.resume_requested.connect(self.resume_run)
        self.run_list.overlays_changed.connect(self._overlays_changed)
        self.run_list.changed.connect(self.runs_changed)
        self._update_runs_folder_label()

        self.loss_plot = CurvePlot("Losses", "loss")
        self.acc_plot = CurvePlot("Training accuracy", "accuracy (%)")
        self.smoothing = QSlider(Qt.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(60)
        self.smoothing.setMaximumWidth(160)
        self.smoothing.setToolTip("Exponential moving average of the bold lines (TensorBoard's smoothing)")
        self.smoothing.valueChanged.connect(self._smoothing_changed)
        self.smoothing_label = QLabel("0.60")
        self.log_y = QCheckBox("log y")
        self.log_y.setToolTip("Logarithmic loss axis")
        self.log_y.toggled.connect(self.loss_plot.set_log_y)
        self.shown_label = QLabel("")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Smoothing"))
        controls.addWidget(self.smoothing)
        controls.addWidget(self.smoothing_label)
        controls.addWidget(self.log_y)
        controls.addWidget(self.shown_label, 1)

        self.progress = QProgressBar()
        self.progress.setFormat("no run yet")  # the step count is known once the run has its data
        self.progress.setValue(0)
        self.eta_label = QLabel("idle")
        self.eta_label.setToolTip("Time left, from the time per step so far (model loading and pauses excluded)")
        self.speed_label = QLabel("")
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.eta_label)
        progress_row.addWidget(self.speed_label)

        self.log_panel = QPlainTextEdit()
        self.log_panel.setReadOnly(True)
        self.log_panel.setMaximumBlockCount(2000)
        self.log_panel.setPlaceholderText("Run log")

        plots = QSplitter(Qt.Horizontal)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.acc_plot)
        plot_panel = QWidget()
        plot_column = QVBoxLayout(plot_panel)
        plot_column.setContentsMargins(0, 0, 0, 0)
        plot_column.addLayout(controls)
        plot_column.addWidget(plots, 1)
        rows = QSplitter(Qt.Vertical)
        rows.addWidget(self.run_list)
        rows.addWidget(plot_panel)
        rows.addWidget(self.log_panel)
        rows.setStretchFactor(1, 1)
        rows.setSizes([150, 330, 70])
        panel = QWidget()
        column = QVBoxLayout(panel)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(rows, 1)
        column.addLayout(progress_row)
        return panel

    # -- form --------------------------------------------------------------------------------------------------
    def set_base_model(self, spec: ModelSpec) -> None:
        self.base_model = spec
        self.model_label.setText(spec.label())

    def set_device(self, device: str) -> None:
        index = self.device.findText(device)
        if index >= 0 and self.device.model().item(index).isEnabled():
            self.device.setCurrentIndex(index)
        else:
            self.device.setCurrentText("auto")

    def set_runs_dir(self, runs_dir: str) -> None:
        self.run_list.set_runs_dir(runs_dir)
        self._update_runs_folder_label()

    def _update_runs_folder_label(self) -> None:
        self.runs_folder_label.setText(f"Runs are saved in {self.settings.runs_dir}")

    def open_runs_folder(self) -> None:
        folder = Path(self.settings.runs_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.banner.show_message(f"Cannot create the runs folder {folder}: {exc.strerror or exc}. Choose "
                                     "another under Settings → Runs folder….", "error")
            return
        open_folder(folder)

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
        if self.precision.currentText() == "bf16" and resolve_device(self.device.currentText()).type != "cuda":
            raise ValueError("bf16 precision needs a CUDA GPU: choose fp32 under Precision, or a CUDA device")
        config = dataclasses.replace(
            self.base_config,
            method=self.method.currentText(), model=self.base_model.name, pretrained=self.base_model.pretrained,
            checkpoint=self.base_model.checkpoint, data=data, data_root=self.settings.data_root,
            method_options=self.method_options.values(), eps=self.eps.value(),
            attack_steps=self.attack_steps.value(), lr=lr, epochs=self.epochs.value(),
            max_steps=self.max_steps.value() or None, batch_size=self.batch.value(),
            device=self.device.currentText(), precision=self.precision.currentText(),
            num_workers=0 if data.startswith("toy-") else 2, runs_dir=self.settings.runs_dir, name=None)
        config.validate()
        return config

    def _show_config(self, config: TrainConfig) -> None:
        self.method.setCurrentText(config.method)
        self._method_changed(self.method.currentText())
        self.method_options.set_values(config.method_options)
        self.eps.setValue(config.recipe_value("eps"))
        self.attack_steps.setValue(config.recipe_value("attack_steps"))
        self.lr.setText("" if config.lr is None else f"{config.lr:g}")
        self.epochs.setValue(config.epochs)
        self.max_steps.setValue(config.max_steps or 0)
        self.batch.setValue(config.batch_size)
        self.dataset.setCurrentText(config.data)
        self.set_device(config.device)
        self.precision.setCurrentText(config.precision)

    # -- past runs ---------------------------------------------------------------------------------------------
    def show_run(self, run_dir: str) -> None:
        """Show a run's curves (from its metrics.jsonl) as the plots' current series."""
        if self.is_running():
            self.banner.show_message("A run is being trained: its curves are shown. Tick other runs in the list "
                                     "to overlay theirs.", "info")
            return
        self.shown_run = run_dir
        self._load_current(run_dir)
        info = runs.inspect_run(run_dir)
        self.shown_label.setText(f"Showing {info.name} ({info.status})")
        if not info.usable:
            self.banner.show_message(f"Run {info.name} is broken: {info.problem}.", "warning")

    def _load_current(self, run_dir: str, up_to: Optional[float] = None) -> None:
        """The run's logged curves (up to step ``up_to``: a running trainer may already be writing more)."""
        for plot in (self.loss_plot, self.acc_plot):
            plot.remove_run("")
            plot.set_current_name(Path(run_dir).name)
        history = [r for r in runs.load_history(run_dir) if up_to is None or r["step"] <= up_to]
        for record in history:
            self._plot_record(record, "")
        self._refresh_plots()
        if history:
            last = history[-1]
            total = last.get("total_steps") or last["step"]
            self.progress.setMaximum(max(int(total), 1))
            self.progress.setValue(int(last["step"]))
            self.progress.setFormat("step %v / %m")

    def _overlays_changed(self, run_dirs: list) -> None:
        wanted = {Path(d).name: d for d in run_dirs if d != (self.run_dir if self.is_running() else self.shown_run)}
        for plot in (self.loss_plot, self.acc_plot):
            for run in plot.runs():
                if run and run not in wanted:
                    plot.remove_run(run)
        shown = set(self.loss_plot.runs()) | set(self.acc_plot.runs())
        for name, run_dir in wanted.items():
            if name not in shown:
                for record in runs.load_history(run_dir):
                    self._plot_record(record, name)
        self._refresh_plots()

    def _plot_record(self, record: dict, run: str) -> None:
        step = record["step"]
        losses = {("total" if k == "loss" else k): v for k, v in record.items()
                  if k not in NOT_LOSSES and isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.loss_plot.add(step, losses, run)
        self.acc_plot.add(step, {name: None if not isinstance(value, (int, float)) else 100 * value
                                 for name, value in (("robust", record.get("robust_acc")),
                                                     ("clean", record.get("clean_acc")))}, run)

    def _refresh_plots(self) -> None:
        self.loss_plot.refresh()
        self.acc_plot.refresh()

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
        """Continue a run (GUI- or CLI-made) from its latest checkpoint; its past curves are shown first."""
        if self.is_running():
            return
        run_dir = run_dir or QFileDialog.getExistingDirectory(self, "Resume which run?", self.settings.runs_dir)
        if not run_dir:
            return
        info = runs.inspect_run(run_dir)
        if not info.usable:
            self.banner.show_message(f"Cannot resume {info.name}: {info.problem}.", "error")
            return
        try:
            config = resume_config(run_dir)
        except (FileNotFoundError, ValueError, TypeError) as exc:
            self.banner.show_message(f"Cannot resume {Path(run_dir).name}: {exc}", "error")
            return
        self.base_config = config
        self._show_config(config)
        self._launch(TrainJob(config, resume=True), f"resuming {run_dir}")

    def _launch(self, job: TrainJob, message: str) -> None:
        self.banner.clear()
        for plot in (self.loss_plot, self.acc_plot):
            plot.remove_run("")
        self._latest, self._end_event, self._paused = {}, "", False
        self._eta = EtaClock()
        self.progress.setValue(0)
        self.eta_label.setText("loading model and data…")
        self.append_log(message)
        self.task = Task(job, self)
        self.task.record.connect(self._on_record)
        self.task.failed.connect(self._on_failed)
        self.task.paused.connect(self._on_paused)
        self.task.finished.connect(self._on_finished)
        self.task.start()
        self.timer.start()
        self._update_buttons()
        self.running_changed.emit(True)

    def toggle_pause(self) -> None:
        if not self.task:
            return
        if self._paused:
            self.task.resume()
            self.append_log("resumed")
        else:
            self.task.pause()
            self.append_log("pausing after the current step")
        self._paused = not self._paused
        self._update_buttons()

    def _on_paused(self, paused: bool) -> None:
        self._eta.pause(paused)
        if paused:
            self.eta_label.setText("paused")

    def stop(self) -> None:
        """Stop after the current step; the run saves a checkpoint and ``task.finished`` follows."""
        if self.task:
            self.task.stop()
            self._paused = False
            self.append_log("stopping after the current step; saving a checkpoint…")
            self._update_buttons()
            self.stop_button.setEnabled(False)
            self.pause_button.setEnabled(False)

    def _update_buttons(self) -> None:
        running = self.is_running()
        self.start_button.setEnabled(not running)
        self.resume_run_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.pause_button.setText("Resume" if running and self._paused else "Pause")

    # -- records -----------------------------------------------------------------------------------------------
    def _on_record(self, record: dict) -> None:
        event = record.get("event")
        if event == "started":
            self.run_dir = self.shown_run = record["run_dir"]
            self._load_current(self.run_dir, up_to=record["step"])  # a resumed run's past, to its checkpoint
            self.progress.setMaximum(max(record["total_steps"], 1))
            self.progress.setValue(record["step"])
            self.progress.setFormat("step %v / %m")
            self.shown_label.setText(f"Training {Path(self.run_dir).name}")
            self.run_list.set_active(self.run_dir)
            self.run_list.set_overlay(self.run_dir, False)
            self.runs_changed.emit()
            self.append_log(f"run folder {self.run_dir} (device {record['device']}, {record['total_steps']} steps)")
        elif event == "step":
            self._eta.step(record["step"])
            self._plot_record(record, "")
            self._latest = record
            if "checkpoint" in record:
                self.append_log(f"step {record['step']}: checkpoint {record['checkpoint']}")
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
        self._paused = False
        ended = {"done": "finished", "stopped": "stopped; checkpoint saved"}.get(self._end_event, "ended")
        self.eta_label.setText("failed" if status == "failed" else ended)
        self._update_buttons()
        self.run_list.set_active("")
        self.running_changed.emit(False)
        if self.run_dir:
            self.run_finished.emit(self.run_dir)

    def _refresh(self) -> None:
        """Timer tick: redraw curves and progress from the buffered records."""
        self._refresh_plots()
        record = self._latest
        if not record:
            return
        step, total = record["step"], record["total_steps"]
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(step)
        if self._eta.paused_since is None:
            eta = self._eta.eta(step, total)
            self.eta_label.setText("ETA …" if eta is None else f"ETA {format_duration(eta)}")
        self.speed_label.setText(f"{record['images_per_s']:.0f} img/s")

    def append_log(self, text: str) -> None:
        self.log_panel.appendPlainText(f"[{time.strftime('%H:%M:%S')}] {text}")
