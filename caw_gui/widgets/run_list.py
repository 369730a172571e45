"""The run list of the Train tab: every run in the runs folder, with overlay check boxes and run actions.

Columns: name, method, dataset, ε, step / total, status (finished / partial /
broken, with the reason as a tooltip), date. Ticking a run overlays its curves
(``overlays_changed``); double-clicking or "Show curves" opens it
(``opened``); "Resume" continues a partial run (``resume_requested``); the
folder can be opened in the file manager, renamed or deleted. The run being
trained is marked and cannot be renamed or deleted.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from caw_core import runs
from caw_core.runs import RunInfo

COLUMNS = ("Run", "Method", "Dataset", "ε", "Step", "Status", "Date")
_STATUS_COLOURS = {runs.FINISHED: "#2e7d32", runs.PARTIAL: "#b26a00", runs.BROKEN: "#c62828"}


def open_folder(path: str | Path) -> None:
    """Open ``path`` in the system's file manager."""
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


class RunList(QWidget):
    """Runs under a folder, newest first (see the module docstring)."""

    opened = Signal(str)
    resume_requested = Signal(str)
    overlays_changed = Signal(list)  # run folders whose curves are overlaid
    changed = Signal()  # a run was renamed or deleted

    def __init__(self, runs_dir: str, parent=None):
        super().__init__(parent)
        self.runs_dir = runs_dir
        self.active = ""  # the run being trained
        self.infos: dict[str, RunInfo] = {}
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        header.setStretchLastSection(False)
        self.tree.headerItem().setToolTip(0, "Tick runs to overlay their curves on the plots")
        self.tree.headerItem().setToolTip(3, "Attack radius ε of the adversarial training, in units of 1/255")
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.itemDoubleClicked.connect(lambda item, _col: self.opened.emit(item.data(0, Qt.UserRole)))
        self.tree.currentItemChanged.connect(lambda *_: self._update_buttons())

        self.show_button = QPushButton("Show curves")
        self.show_button.setToolTip("Load this run's curves from its metrics.jsonl (double-click does the same)")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue this run from its latest checkpoint")
        self.folder_button = QPushButton("Open folder")
        self.folder_button.setToolTip("Open this run's folder in the file manager")
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Delete this run's folder (checkpoints, curves and settings)")
        refresh = QPushButton("Refresh")
        refresh.setToolTip("Read the runs folder again")
        self.show_button.clicked.connect(lambda: self.opened.emit(self.current()))
        self.resume_button.clicked.connect(lambda: self.resume_requested.emit(self.current()))
        self.folder_button.clicked.connect(lambda: open_folder(self.current()))
        self.rename_button.clicked.connect(self._ask_rename)
        self.delete_button.clicked.connect(self._ask_delete)
        refresh.clicked.connect(self.refresh)
        buttons = QHBoxLayout()
        for button in (self.show_button, self.resume_button, self.folder_button, self.rename_button,
                       self.delete_button, refresh):
            buttons.addWidget(button)
        buttons.addStretch(1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.tree, 1)
        column.addLayout(buttons)
        self.refresh()

    # -- contents ----------------------------------------------------------------------------------------------
    def set_runs_dir(self, runs_dir: str) -> None:
        self.runs_dir = runs_dir
        self.refresh()

    def set_active(self, run_dir: str) -> None:
        self.active = run_dir
        self.refresh()

    def refresh(self) -> None:
        checked = set(self.overlays())
        current = self.current()
        self.tree.blockSignals(True)
        self.tree.clear()
        self.infos = {}
        for info in runs.list_runs(self.runs_dir):
            path = str(info.path)
            self.infos[path] = info
            item = QTreeWidgetItem(self._cells(info))
            item.setData(0, Qt.UserRole, path)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(0, Qt.Checked if path in checked else Qt.Unchecked)
            if path == self.active:
                item.setToolTip(5, "being trained now")
            else:
                item.setForeground(5, QBrush(QColor(_STATUS_COLOURS[info.status])))
                item.setToolTip(5, info.problem or {runs.FINISHED: "trained to its last step",
                                                    runs.PARTIAL: "stopped early: it can be resumed"}[info.status])
            item.setToolTip(0, path)
            self.tree.addTopLevelItem(item)
            if path == current:
                self.tree.setCurrentItem(item)
        self.tree.blockSignals(False)
        self._update_buttons()
        if checked != set(self.overlays()):
            self.overlays_changed.emit(self.overlays())

    def _cells(self, info: RunInfo) -> list[str]:
        name = info.name + ("  (training)" if str(info.path) == self.active else "")
        step = f"{info.step} / {info.total_steps}" if info.total_steps else (str(info.step) if info.usable else "–")
        eps = f"{info.eps:g}" if info.eps is not None else ""
        date = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.modified)) if info.modified else ""
        status = "training" if str(info.path) == self.active else info.status
        return [name, info.method, info.data, eps, step, status, date]

    def current(self) -> str:
        item = self.tree.currentItem()
        return item.data(0, Qt.UserRole) if item is not None else ""

    def select(self, run_dir: str) -> None:
        for index in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(index)
            if item.data(0, Qt.UserRole) == run_dir:
                self.tree.setCurrentItem(item)

    def overlays(self) -> list[str]:
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item.data(0, Qt.UserRole) for item in items if item.checkState(0) == Qt.Checked]

    def set_overlay(self, run_dir: str, on: bool) -> None:
        for index in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(index)
            if item.data(0, Qt.UserRole) == run_dir:
                item.setCheckState(0, Qt.Checked if on else Qt.Unchecked)

    def _item_changed(self, _item, column: int) -> None:
        if column == 0:
            self.overlays_changed.emit(self.overlays())

    def _update_buttons(self) -> None:
        path = self.current()
        info = self.infos.get(path)
        selected = info is not None
        idle = selected and path != self.active
        self.show_button.setEnabled(selected)
        self.folder_button.setEnabled(selected)
        self.resume_button.setEnabled(idle and info.status == runs.PARTIAL and not self.active)
        self.rename_button.setEnabled(idle)
        self.delete_button.setEnabled(idle)
        self.rename_button.setToolTip("Rename this run's folder" if path != self.active
                                      else "The run being trained cannot be renamed")

    # -- actions -----------------------------------------------------------------------------------------------
    def rename(self, run_dir: str, new_name: str) -> str:
        """Rename a run (ValueError with a message when refused); returns the new folder."""
        if run_dir == self.active:
            raise ValueError("the run being trained cannot be renamed; stop it first")
        target = str(runs.rename_run(run_dir, new_name))
        self.refresh()
        self.select(target)
        self.changed.emit()
        return target

    def delete(self, run_dir: str) -> None:
        """Delete a run folder (ValueError with a message when refused)."""
        if run_dir == self.active:
            raise ValueError("the run being trained cannot be deleted; stop it first")
        runs.delete_run(run_dir)
        self.refresh()
        self.changed.emit()

    def _ask_rename(self) -> None:
        path = self.current()
        name, ok = QInputDialog.getText(self, "Rename run", "New name:", text=Path(path).name)
        if ok and name and name != Path(path).name:
            try:
                self.rename(path, name)
            except (ValueError, OSError) as exc:
                QMessageBox.warning(self, "Rename run", f"Cannot rename {Path(path).name}: {exc}")

    def _ask_delete(self) -> None:
        path = self.current()
        answer = QMessageBox.question(self, "Delete run",
                                      f"Delete the run {Path(path).name} and all its checkpoints?\n{path}",
                                      QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        if answer == QMessageBox.Yes:
            try:
                self.delete(path)
            except (ValueError, OSError) as exc:
                QMessageBox.warning(self, "Delete run", f"Cannot delete {Path(path).name}: {exc}")
