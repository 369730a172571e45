"""Evaluate tab: models x datasets x attacks with caw_core.evaluate, shown as the paper's table."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
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
from caw_core.toy.recipe import toy_eval_config
from caw_core.evaluate import EvalConfig
from caw_core.models import ModelSpec
from caw_core.models.checkpoint import CheckpointError
from caw_core.attacks.registry import attack_choices
from caw_core.report import RENDERERS, Report, Table, build_report
from caw_core.results import ResultsFileError, load_results
from caw_gui.views.train_view import format_duration
from caw_gui.widgets.banner import MessageBanner
from caw_gui.widgets.view_layout import banner_over_split
from caw_gui.widgets.model_picker import browse_run_folder, list_runs, spec_from_checkpoint
from caw_gui.widgets.results_view import ResultsChart, ResultsTable
from caw_gui.widgets.topk_chart import export_with_dialog
from caw_gui.workers.jobs import EvalJob
from caw_gui.workers.task import Task

log = logging.getLogger("caw_gui")

ATTACK_CHOICES = {name: label for name, label in attack_choices().items() if name != "clean"}  # the registry's
DEFAULT_ATTACKS = ("pgd",)
EXPORTS = {"Markdown": "md", "CSV": "csv", "JSON": "json"}
STEPS_TOOLTIP = ("Iterations of each attack: PGD/CW steps, or the iterations of each APGD run of AutoAttack. "
                 "'default' = each attack's own (PGD/CW 10, AutoAttack 100). Same meaning in the playground.")


def setting_text(table: Table) -> str:
    """'caw: linf ε 12/255, n 100' for a table's setting."""
    s = table.setting
    return f"{s['protocol']}: {s['norm']} ε {s['eps']:g}/255, n {s['n']}, seed {s['seed']}"


def _checked_items(tree: QTreeWidget) -> list[QTreeWidgetItem]:
    items = []
    for i in range(tree.topLevelItemCount()):
        top = tree.topLevelItem(i)
        children = [top.child(j) for j in range(top.childCount())] or [top]
        items += [c for c in children if c.checkState(0) == Qt.Checked and c.data(0, Qt.UserRole) is not None]
    return items


class EvaluateView(QWidget):
    """Pick models, datasets and attacks; run the benchmark in a worker; read the table; export it.

    The table shows the results folder (loaded on start, and after "Open results folder…"), one
    evaluation setting at a time; a running benchmark updates it as results land, its averages
    labelled partial until the run ends.
    """

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.base_model: ModelSpec = settings.model_spec
        self.task: Optional[Task] = None
        self.job: Optional[EvalJob] = None
        self.config: Optional[EvalConfig] = None
        self.table: Optional[Table] = None
        self.report: Optional[Report] = None
        self._started = 0.0
        self._unticked: set[str] = set()  # model entries the user unticked stay unticked on refresh
        self.banner = MessageBanner()
        banner_over_split(self, self.banner, self._build_form(), self._build_results(), (360, 660))
        self.refresh_sources()
        self._update_buttons()
        for keys, slot, what in (("Ctrl+Return", self.run, "Evaluate: run"), ("F5", self.run, "Evaluate: run"),
                                 ("Esc", self.cancel, "Evaluate: cancel")):
            QShortcut(QKeySequence(keys), self, slot).setWhatsThis(what)  # active while the tab is shown

    # -- layout ------------------------------------------------------------------------------------------------
    def _build_form(self) -> QWidget:
        self.models = QTreeWidget()
        self.models.setHeaderHidden(True)
        self.models.setRootIsDecorated(False)
        self.models.setMinimumHeight(60)
        self.models.setToolTip("The vanilla model and the fine-tuned runs in the runs folder; ticked ones are "
                               "evaluated")
        add_checkpoint = QPushButton("Add checkpoint…")
        add_checkpoint.setToolTip("Evaluate a caw run folder from elsewhere")
        add_checkpoint.clicked.connect(lambda: self.add_checkpoint())
        self.datasets = QTreeWidget()
        self.datasets.setHeaderLabels(["Dataset", "Status"])
        self.datasets.setColumnWidth(0, 190)
        self.datasets.setMinimumHeight(80)
        self.attacks = {name: QCheckBox(name) for name in ATTACK_CHOICES}
        attack_grid = QGridLayout()
        attack_grid.addWidget(QLabel("clean +"), 0, 0)
        for index, (name, box) in enumerate(self.attacks.items()):
            box.setToolTip(ATTACK_CHOICES[name])
            box.setChecked(name in DEFAULT_ATTACKS)
            attack_grid.addWidget(box, index // 3, 1 + index % 3)
        self.steps = QSpinBox()
        self.steps.setRange(0, 1000)
        self.steps.setSpecialValueText("default")
        self.steps.setValue(0)
        self.steps.setToolTip(STEPS_TOOLTIP)
        self.eps = QDoubleSpinBox()
        self.eps.setRange(0, 64)
        self.eps.setValue(toy_eval_config().eps)  # the toy world's; the paper evaluates at 1/255
        self.eps.setSingleStep(0.5)
        self.eps.setToolTip("ε: the attack radius in grey levels out of 255 (ℓ∞: the largest change per pixel); "
                            "the paper evaluates at 1/255, the toy world at 12/255")
        self.norm = QComboBox()
        self.norm.addItems(["linf", "l2"])
        self.norm.setToolTip("The threat model's norm: ℓ∞ (per-pixel bound, the paper's) or ℓ2")
        self.n = QSpinBox()
        self.n.setRange(1, 1_000_000)
        self.n.setValue(toy_eval_config().n)
        self.n.setToolTip("n: images per dataset, a fixed seeded subset (the same for every model); the paper "
                          "uses 1000")
        self.batch = QSpinBox()
        self.batch.setRange(1, 4096)
        self.batch.setValue(50)
        self.batch.setToolTip("Images attacked at once; lower it if memory runs out")
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Evaluate every ticked model on every ticked dataset (Ctrl+Enter or F5); finished "
                                   "results are reused")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop within one forward pass of the running attack (Esc); finished "
                                      "batches are kept and Run resumes")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)

        form = QFormLayout()
        form.addRow("Attacks", attack_grid)
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
        column.addLayout(buttons)
        return box

    def _build_results(self) -> QWidget:
        self.results_label = QLabel()
        self.results_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        open_folder = QPushButton("Open results folder…")
        open_folder.setToolTip("Choose a results folder and show its table")
        open_folder.clicked.connect(lambda: self.open_results_folder())
        show_folder = QPushButton("Show in file manager")
        show_folder.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(self.settings.results_dir)))
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.results_label, 1)
        folder_row.addWidget(open_folder)
        folder_row.addWidget(show_folder)
        self.setting_box = QComboBox()
        self.setting_box.setToolTip("Results are tabled per evaluation setting (protocol, norm, ε, n, seed)")
        self.setting_box.activated.connect(lambda _: self._show_table())
        self.per_attack = QCheckBox("Per-attack rows")
        self.per_attack.setToolTip("Also show the accuracy after each link of the attack chain "
                                   "(clean → pgd → aa), as the exports do")
        self.per_attack.toggled.connect(lambda _: self._show_table())
        setting_row = QHBoxLayout()
        setting_row.addWidget(QLabel("Setting:"))
        setting_row.addWidget(self.setting_box, 1)
        setting_row.addWidget(self.per_attack)
        self.progress_label = QLabel("idle")
        self.progress_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("%p% of the whole benchmark")
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
        chart_button = QPushButton("Chart…")
        chart_button.setToolTip("Save the bar chart as PNG or SVG")
        chart_button.clicked.connect(lambda: self.export_chart())
        self.export_buttons["chart"] = chart_button
        export_row.addWidget(chart_button)
        export_row.addStretch(1)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.table_view)
        split.addWidget(self.chart)
        panel = QWidget()
        column = QVBoxLayout(panel)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(folder_row)
        column.addLayout(setting_row)
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
        """Re-list models (base + runs) and datasets (with found/missing at the data root); reload the results."""
        self._unticked |= {self.models.topLevelItem(i).text(0) for i in range(self.models.topLevelItemCount())
                           if self.models.topLevelItem(i).checkState(0) != Qt.Checked}
        self.models.clear()
        vanilla = f"Vanilla: {self.base_model.label()}"
        self._add_model(vanilla, self.base_model, vanilla not in self._unticked)
        for run in list_runs(self.settings.runs_dir):
            self._add_run(str(run))
        self._fill_datasets()
        self.refresh_table()

    def open_results_folder(self, folder: str = "") -> bool:
        """Make ``folder`` (chosen in a dialog when empty) the results folder and show its tables."""
        folder = folder or QFileDialog.getExistingDirectory(self, "Open results folder", self.settings.results_dir)
        if not folder:
            return False
        self.settings.results_dir = folder
        self.refresh_table()
        return True

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
        attacks = [f"{name}{steps}" if steps else name for name, box in self.attacks.items() if box.isChecked()]
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
        self._started = time.perf_counter()
        self.progress.setValue(0)
        self.progress_label.setText("loading the model…")
        self.job = EvalJob(config)
        self.task = Task(self.job, self)
        self.task.record.connect(self._on_record)
        self.task.failed.connect(self._on_failed)
        self.task.finished.connect(self._on_finished)
        self.task.start()
        self.refresh_table()
        self._update_buttons()

    def _stop_job(self) -> None:
        self.job.stop()  # reaches inside the running attack: it ends at its next forward pass
        self.task.cancel()

    def cancel(self) -> None:
        if self.task is not None:
            self._stop_job()
            self.progress_label.setText("cancelling… (finished batches are saved; Run again resumes)")

    def shutdown(self, timeout_ms: int = 1_000) -> None:
        """Cancel a running evaluation (it ends at its next forward pass) and give its thread a moment (closing)."""
        if self.task is not None:
            self._stop_job()
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
        if "overall" in record:
            self.progress.setValue(round(1000 * record["overall"]))
            eta = record["overall_eta_s"]
            where = f"{record['model']} · {get_spec(record['dataset']).display_name}"
            current = {"dataset": f"{where}: preparing {record.get('n', '')} images",
                       "progress": f"{where} · {record.get('attack')} {record.get('done')}/{record.get('total')} "
                                   "images",
                       "result": f"{where} · {record.get('attack')} finished"}[event]
            self.progress_label.setText(f"item {record['item']} of {record['items']} (models × datasets × attacks):"
                                        f" {current} · elapsed {format_duration(time.perf_counter() - self._started)}"
                                        + (f" · about {format_duration(eta)} left in total" if eta else ""))
        if event == "result":
            self.refresh_table()

    def _on_failed(self, message: str, details: str) -> None:
        self.banner.show_message(f"Evaluation failed: {message}", "error")
        log.error("evaluation failed: %s\n%s", message, details)

    def _on_finished(self, status: str) -> None:
        self.task = self.job = None
        elapsed = format_duration(time.perf_counter() - self._started)
        self.progress_label.setText({"done": f"finished in {elapsed}",
                                     "cancelled": f"cancelled after {elapsed}: Run again to resume where it stopped",
                                     "failed": "failed"}[status])
        if status == "done":
            self.progress.setValue(self.progress.maximum())
        self.refresh_table()
        self._update_buttons()

    # -- results -----------------------------------------------------------------------------------------------
    def refresh_table(self) -> None:
        """Reload the results folder; show the running (or last run's) setting, else the one chosen."""
        self.results_label.setText(f"Results folder: {self.settings.results_dir}")
        try:
            results = load_results(self.settings.results_dir) if Path(self.settings.results_dir).is_dir() else []
        except ResultsFileError as exc:
            self.banner.show_message(f"Cannot read the results folder: {exc}", "error")
            results = []
        self.report = build_report(results)
        chosen = self.setting_box.currentText()
        if self.config is not None:
            c = self.config
            run = (c.protocol, c.norm, float(c.eps), c.n, c.seed)
            chosen = next((setting_text(t) for t in self.report.tables
                           if (t.setting["protocol"], t.setting["norm"], float(t.setting["eps"]), t.setting["n"],
                               t.setting["seed"]) == run), chosen)
        self.setting_box.clear()
        self.setting_box.addItems([setting_text(t) for t in self.report.tables])
        index = self.setting_box.findText(chosen)
        self.setting_box.setCurrentIndex(index if index >= 0 else self.setting_box.count() - 1)
        self._show_table()

    def _show_table(self) -> None:
        report = self.report or Report()
        index = self.setting_box.currentIndex()
        self.table = report.tables[index] if 0 <= index < len(report.tables) else None
        partial = self.task is not None and self.config is not None and self.table is not None and \
            self.setting_box.currentText() == self._run_setting_text()
        self.table_view.set_table(self.table, per_attack=self.per_attack.isChecked(), partial=partial)
        self.chart.set_table(self.table)
        flags = report.flags
        self.flags_label.setText("<br>".join(f"<b>{f['level']}</b>: {f['message']}" for f in flags[:6])
                                 + (f"<br>… and {len(flags) - 6} more (in the exports)" if len(flags) > 6 else ""))
        self._update_buttons()

    def _run_setting_text(self) -> str:
        c = self.config
        return f"{c.protocol}: {c.norm} ε {float(c.eps):g}/255, n {c.n}, seed {c.seed}"

    def export(self, fmt: str, path: str = "") -> Optional[Path]:
        """Write the shown setting's table as Markdown, CSV or JSON (the same renderers as ``caw-core report``)."""
        if self.table is None:
            return None
        if not path:
            suffix = {"md": "Markdown (*.md)", "csv": "CSV (*.csv)", "json": "JSON (*.json)"}[fmt]
            start = str(Path(self.settings.results_dir) / f"results.{fmt}")
            path, _ = QFileDialog.getSaveFileName(self, "Export results", start, suffix)
        if not path:
            return None
        shown = Report([self.table], list(self.report.flags))
        try:
            Path(path).write_text(RENDERERS[fmt](shown), encoding="utf-8")
        except OSError as exc:
            self.banner.show_message(f"Could not write {path}: {exc}", "error")
            return None
        self.banner.show_message(f"Exported {path}", "info")
        return Path(path)

    def export_chart(self, path: str = "") -> Optional[Path]:
        """Save the bar chart as PNG or SVG."""
        return export_with_dialog(self, self.chart, self.banner, str(Path(self.settings.results_dir) /
                                                                      "results_chart.png"), "chart", path)
