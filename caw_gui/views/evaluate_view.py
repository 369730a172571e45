"""Evaluate tab: models x datasets x attacks with caw_core.evaluate, shown as the paper's table."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from caw_core.data import check_dataset, get_spec
from caw_core.data.paper import PAPER_DATASETS
from caw_core.data.toyworld import TOY_TASKS, TOY_TRAIN_TASK
from caw_core.demo import TOY_RECIPE
from caw_core.evaluate import EvalConfig
from caw_core.models import ModelSpec
from caw_core.models.checkpoint import CheckpointError
from caw_core.report import RENDERERS, Report, Table, build_report
from caw_core.results import load_results, model_id
from caw_gui.views.train_view import format_duration
from caw_gui.widgets.banner import MessageBanner
from caw_gui.widgets.view_layout import banner_over_split
from caw_gui.widgets.model_picker import browse_run_folder, list_runs, spec_from_checkpoint
from caw_gui.widgets.results_view import ResultsChart, ResultsTable
from caw_gui.workers.jobs import EvalJob
from caw_gui.workers.task import Task

log = logging.getLogger("caw_gui")

ATTACK_CHOICES = {"PGD": "pgd", "CW": "cw", "AutoAttack": "aa"}
EXPORTS = {"Markdown": "md", "CSV": "csv", "JSON": "json"}


def _checked_items(tree: QTreeWidget) -> list[QTreeWidgetItem]:
    items = []
    for i in range(tree.topLevelItemCount()):
        top = tree.topLevelItem(i)
        children = [top.child(j) for j in range(top.childCount())] or [top]
        items += [c for c in children if c.checkState(0) == Qt.Checked and c.data(0, Qt.UserRole) is not None]
    return items


class EvaluateView(QWidget):
    """Pick models, datasets and attacks; run the benchmark in a worker; read the table; export it."""

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.base_model: ModelSpec = settings.model_spec
        self.task: Optional[Task] = None
        self.config: Optional[EvalConfig] = None
        self.table: Optional[Table] = None
        self.report: Optional[Report] = None
        self._where, self._started = "", 0.0
        self._datasets_seen = self._datasets_total = 0
        self._unticked: set[str] = set()  # model entries the user unticked stay unticked on refresh
        self.banner = MessageBanner()
        banner_over_split(self, self.banner, self._build_form(), self._build_results(), (380, 900))
        self.refresh_sources()
        self._update_buttons()

    # -- layout ------------------------------------------------------------------------------------------------
    def _build_form(self) -> QWidget:
        self.models = QTreeWidget()
        self.models.setHeaderHidden(True)
        self.models.setRootIsDecorated(False)
        add_checkpoint = QPushButton("Add checkpoint…")
        add_checkpoint.clicked.connect(lambda: self.add_checkpoint())
        self.datasets = QTreeWidget()
        self.datasets.setHeaderLabels(["Dataset", "Status"])
        self.datasets.setColumnWidth(0, 210)
        self.attacks = {label: QCheckBox(label) for label in ATTACK_CHOICES}
        self.attacks["PGD"].setChecked(True)
        attack_row = QHBoxLayout()
        attack_row.addWidget(QLabel("clean +"))
        for box in self.attacks.values():
            attack_row.addWidget(box)
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(10)
        self.steps.setToolTip("Iterations of PGD and CW (AutoAttack uses its own default of 100)")
        self.eps = QDoubleSpinBox()
        self.eps.setRange(0, 64)
        self.eps.setValue(TOY_RECIPE.eps)  # the toy world's; the paper evaluates at 1/255
        self.eps.setSingleStep(0.5)
        self.norm = QComboBox()
        self.norm.addItems(["linf", "l2"])
        self.n = QSpinBox()
        self.n.setRange(1, 1_000_000)
        self.n.setValue(100)
        self.batch = QSpinBox()
        self.batch.setRange(1, 4096)
        self.batch.setValue(50)
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        self.results_label = QLabel()
        self.results_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Attacks", attack_row)
        form.addRow("Steps", self.steps)
        form.addRow("ε (/255)", self.eps)
        form.addRow("Norm", self.norm)
        form.addRow("Images per dataset", self.n)
        form.addRow("Batch size", self.batch)
        box = QGroupBox("Benchmark")
        column = QVBoxLayout(box)
        column.addWidget(QLabel("<b>Models</b>"))
        column.addWidget(self.models, 1)
        column.addWidget(add_checkpoint)
        column.addWidget(QLabel("<b>Datasets</b> (status under the data root)"))
        column.addWidget(self.datasets, 2)
        column.addLayout(form)
        column.addWidget(self.results_label)
        column.addLayout(buttons)
        return box

    def _build_results(self) -> QWidget:
        self.progress_label = QLabel("idle")
        self.progress = QProgressBar()
        self.table_view = ResultsTable()
        self.chart = ResultsChart()
        self.flags_label = QLabel()
        self.flags_label.setWordWrap(True)
        export_row = QHBoxLayout()
        export_row.addWidget(QLabel("Export:"))
        self.export_buttons = {}
        for label, fmt in EXPORTS.items():
            button = QPushButton(label)
            button.clicked.connect(lambda _=False, f=fmt: self.export(f))
            self.export_buttons[fmt] = button
            export_row.addWidget(button)
        export_row.addStretch(1)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.table_view)
        split.addWidget(self.chart)
        panel = QWidget()
        column = QVBoxLayout(panel)
        column.addWidget(self.progress_label)
        column.addWidget(self.progress)
        column.addWidget(split, 1)
        column.addWidget(self.flags_label)
        column.addLayout(export_row)
        return panel

    # -- sources -----------------------------------------------------------------------------------------------
    def set_base_model(self, spec: ModelSpec) -> None:
        self.base_model = spec
        self.refresh_sources()

    def refresh_sources(self) -> None:
        """Re-list models (base + runs) and datasets (with found/missing at the data root)."""
        self._unticked |= {self.models.topLevelItem(i).text(0) for i in range(self.models.topLevelItemCount())
                           if self.models.topLevelItem(i).checkState(0) != Qt.Checked}
        self.models.clear()
        vanilla = f"Vanilla: {self.base_model.label()}"
        self._add_model(vanilla, self.base_model, vanilla not in self._unticked)
        for run in list_runs(self.settings.runs_dir):
            self._add_run(str(run))
        self._fill_datasets()
        self.results_label.setText(f"Results folder: {self.settings.results_dir}")

    def _add_model(self, text: str, spec: ModelSpec, checked: bool) -> QTreeWidgetItem:
        item = QTreeWidgetItem([text])
        item.setData(0, Qt.UserRole, spec)
        item.setCheckState(0, Qt.Checked if checked else Qt.Unchecked)
        item.setToolTip(0, spec.checkpoint or spec.label())
        self.models.addTopLevelItem(item)
        return item

    def _add_run(self, path: str) -> bool:
        try:
            spec = spec_from_checkpoint(path)
        except CheckpointError as exc:
            self.banner.show_message(f"Skipping checkpoint {path}: {exc}", "warning")
            return False
        text = f"Fine-tuned: {Path(path).name}"
        self._add_model(text, spec, text not in self._unticked)
        return True

    def add_checkpoint(self, path: str = "") -> bool:
        path = path or browse_run_folder(self, self.settings.runs_dir)
        if not path:
            return False
        self._unticked.discard(f"Fine-tuned: {Path(path).name}")
        return self._add_run(path)

    def _fill_datasets(self) -> None:
        checked = {item.data(0, Qt.UserRole) for item in _checked_items(self.datasets)} or {
            t for t in TOY_TASKS if t != TOY_TRAIN_TASK}
        self.datasets.clear()
        root = Path(self.settings.data_root)
        for title, names in (("Toy world (generated)", TOY_TASKS), ("Paper benchmark (16)", PAPER_DATASETS)):
            group = QTreeWidgetItem([title])
            group.setFlags(group.flags() | Qt.ItemIsAutoTristate | Qt.ItemIsUserCheckable)
            self.datasets.addTopLevelItem(group)
            for name in names:
                status = check_dataset(name, root)
                item = QTreeWidgetItem([get_spec(name).display_name, "found" if status.found else "missing"])
                item.setData(0, Qt.UserRole, name)
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(0, Qt.Checked if name in checked else Qt.Unchecked)
                item.setToolTip(0, status.describe())
                item.setToolTip(1, status.describe())
                item.setForeground(1, QBrush(QColor("#2e7d32" if status.found else "#b71c1c")))
                group.addChild(item)
            group.setExpanded(True)

    # -- running -----------------------------------------------------------------------------------------------
    def build_config(self) -> EvalConfig:
        """The EvalConfig the form describes; ValueError with a message when something is missing."""
        models = [item.data(0, Qt.UserRole) for item in _checked_items(self.models)]
        datasets = [item.data(0, Qt.UserRole) for item in _checked_items(self.datasets)]
        if not models:
            raise ValueError("tick at least one model")
        if not datasets:
            raise ValueError("tick at least one dataset")
        missing = [check_dataset(d, Path(self.settings.data_root)) for d in datasets]
        missing = [status for status in missing if not status.found]
        if missing:
            raise ValueError(f"{len(missing)} ticked dataset(s) are missing under the data root "
                             f"{self.settings.data_root} (Settings → Data root…):\n\n"
                             + "\n".join(status.describe() for status in missing))
        steps = self.steps.value()
        attacks = [f"{name}{steps}" if name != "aa" else name
                   for label, name in ATTACK_CHOICES.items() if self.attacks[label].isChecked()]
        config = EvalConfig(models=models, datasets=datasets, attacks=attacks, eps=self.eps.value(),
                            norm=self.norm.currentText(), n=self.n.value(), batch_size=self.batch.value(),
                            data_root=self.settings.data_root, out=self.settings.results_dir,
                            device=self.settings.device)
        config.validate()
        return config

    def run(self) -> None:
        if self.task is not None:
            return
        try:
            config = self.build_config()
        except ValueError as exc:
            self.banner.show_message(str(exc), "error")
            return
        self.banner.clear()
        self.config = config
        self._datasets_total = len(config.datasets) * len(config.models)
        self._datasets_seen = 0
        self._started = time.perf_counter()
        self.progress.setValue(0)
        self.progress_label.setText("loading…")
        self.refresh_table()
        self.task = Task(EvalJob(config), self)
        self.task.record.connect(self._on_record)
        self.task.failed.connect(self._on_failed)
        self.task.finished.connect(self._on_finished)
        self.task.start()
        self._update_buttons()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.progress_label.setText("cancelling after the current batch… (finished batches are saved; "
                                        "Run again resumes)")

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task.wait(timeout_ms)

    def is_running(self) -> bool:
        return self.task is not None

    def _update_buttons(self) -> None:
        self.run_button.setEnabled(self.task is None)
        self.cancel_button.setEnabled(self.task is not None)
        for button in self.export_buttons.values():
            button.setEnabled(self.table is not None)

    def _on_record(self, record: dict) -> None:
        event = record["event"]
        if event == "dataset":
            self._datasets_seen += 1
            self._where = (f"{record['model']} · {get_spec(record['dataset']).display_name} "
                           f"({self._datasets_seen}/{self._datasets_total}, {record['n']} images)")
            self.progress_label.setText(self._where)
        elif event == "progress":
            self.progress.setMaximum(max(record["total"], 1))
            self.progress.setValue(record["done"])
            eta = record.get("eta_s")
            self.progress_label.setText(f"{self._where} · {record['attack']} {record['done']}/{record['total']}"
                                        + (f" · ETA {format_duration(eta)} for this attack" if eta else ""))
        elif event == "result":
            self.refresh_table()

    def _on_failed(self, message: str, details: str) -> None:
        self.banner.show_message(f"Evaluation failed: {message}", "error")
        log.error("evaluation failed: %s\n%s", message, details)

    def _on_finished(self, status: str) -> None:
        self.task = None
        elapsed = format_duration(time.perf_counter() - self._started)
        self.progress_label.setText({"done": f"finished in {elapsed}",
                                     "cancelled": "cancelled: Run again to resume where it stopped",
                                     "failed": "failed"}[status])
        self.refresh_table()
        self._update_buttons()

    # -- results -----------------------------------------------------------------------------------------------
    def refresh_table(self) -> None:
        """Rebuild the table and chart from the results folder, for the current run's models and setting."""
        if self.config is None:
            return
        c = self.config
        ids = {model_id(spec) for spec in c.model_specs()}
        setting = (c.norm, float(c.eps), c.n, c.seed)
        results = [r for r in load_results(c.out) if r.key.model_id in ids and r.key.dataset in c.datasets
                   and r.key.setting() == setting]
        report = build_report(results)
        self.table = report.tables[0] if report.tables else None
        self.table_view.set_table(self.table)
        self.chart.set_table(self.table)
        self.flags_label.setText("<br>".join(f"<b>{f['level']}</b>: {f['message']}" for f in report.flags))
        self.report = report
        self._update_buttons()

    def export(self, fmt: str, path: str = "") -> Optional[Path]:
        """Write the shown report as Markdown, CSV or JSON (the same renderers as ``caw-core report``)."""
        if self.report is None or self.table is None:
            return None
        if not path:
            suffix = {"md": "Markdown (*.md)", "csv": "CSV (*.csv)", "json": "JSON (*.json)"}[fmt]
            start = str(Path(self.settings.results_dir) / f"results.{fmt}")
            path, _ = QFileDialog.getSaveFileName(self, "Export results", start, suffix)
        if not path:
            return None
        try:
            Path(path).write_text(RENDERERS[fmt](self.report), encoding="utf-8")
        except OSError as exc:
            self.banner.show_message(f"Could not write {path}: {exc}", "error")
            return None
        self.banner.show_message(f"Exported {path}", "info")
        return Path(path)
