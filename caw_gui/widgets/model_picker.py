"""Choosing models: the base-model dialog and the fine-tuned checkpoint combo box."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from caw_core import runs
from caw_core.models import ModelSpec
from caw_core.models.checkpoint import CheckpointError, read_base_model

TOY_SPEC = ModelSpec("toy", None)


def spec_from_checkpoint(path: str) -> ModelSpec:
    """The model a caw checkpoint (run folder, step folder or model file) describes.

    Raises CheckpointError with a message in the user's words when it is not usable.
    """
    if not path:
        raise CheckpointError("choose a run folder")
    folder = Path(path)
    if folder.is_dir() and ((folder / "config.json").exists() or (folder / "checkpoints").is_dir()):
        info = runs.inspect_run(path)
        if not info.usable:
            raise CheckpointError(f"the run {info.name} cannot be used: {info.problem}")
    try:
        base = read_base_model(path)
    except CheckpointError:
        raise
    except Exception as exc:  # corrupt safetensors headers, permissions, damaged pointers, ...
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "it is damaged or unreadable"
        raise CheckpointError(f"cannot read the checkpoint at {path}: {reason}") from exc
    if not base.get("name"):
        raise CheckpointError(f"the checkpoint at {path} does not name its base model")
    return ModelSpec(base["name"], base.get("pretrained"), str(path))


def list_runs(runs_dir: str) -> list[Path]:
    """Usable run folders under ``runs_dir`` (broken ones left out), newest first."""
    return [run.path for run in runs.list_runs(runs_dir) if run.usable]


def browse_run_folder(parent: QWidget, start: str) -> str:
    return QFileDialog.getExistingDirectory(parent, "Choose a caw run folder", start)


class ModelDialog(QDialog):
    """Pick the base ("vanilla") model: the toy CLIP, an open_clip model, a local weights file or a caw checkpoint."""

    SOURCES = ("Embedded toy CLIP (offline, CPU-friendly)", "open_clip model + pretrained tag",
               "open_clip architecture + local weights file", "caw checkpoint (run folder)")

    def __init__(self, current: ModelSpec, runs_dir: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Choose model")
        self.runs_dir = runs_dir
        self.result_spec: Optional[ModelSpec] = None
        self.group = QButtonGroup(self)
        radios = QVBoxLayout()
        for index, text in enumerate(self.SOURCES):
            button = QRadioButton(text)
            self.group.addButton(button, index)
            radios.addWidget(button)
        self.arch = QComboBox()
        self.arch.setEditable(True)
        self.tag = QComboBox()
        self.tag.setEditable(True)
        self.weights = QLineEdit()
        self.checkpoint = QLineEdit()
        browse_weights = QPushButton("Browse…")
        browse_weights.clicked.connect(self._browse_weights)
        browse_run = QPushButton("Browse…")
        browse_run.clicked.connect(self._browse_run)
        form = QFormLayout()
        form.addRow("Architecture", self.arch)
        form.addRow("Pretrained tag", self.tag)
        form.addRow("Weights file", _row(self.weights, browse_weights))
        form.addRow("Run folder", _row(self.checkpoint, browse_run))
        self.error = QLabel()
        self.error.setStyleSheet("color: #8a1c14")
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(radios)
        layout.addLayout(form)
        layout.addWidget(QLabel("open_clip downloads weights on first use; without internet, use a local "
                                "weights file."))
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self._fill_architectures()
        self.arch.currentTextChanged.connect(self._fill_tags)
        self.group.idToggled.connect(lambda *_: self._enable_fields())
        self._show(current)

    def _fill_architectures(self) -> None:
        try:
            import open_clip

            names = open_clip.list_models()
        except Exception:  # open_clip missing or broken: the field stays free text
            names = []
        self.arch.addItems([n for n in names if not n.startswith("caw-")])

    def _fill_tags(self, arch: str) -> None:
        try:
            import open_clip

            tags = open_clip.list_pretrained_tags_by_model(arch)
        except Exception:
            tags = []
        text = self.tag.currentText()
        self.tag.clear()
        self.tag.addItems(tags)
        if text in tags:
            self.tag.setCurrentText(text)

    def _show(self, spec: ModelSpec) -> None:
        if spec.checkpoint:
            source = 3
            self.checkpoint.setText(spec.checkpoint)
        elif spec.name == "toy":
            source = 0
        elif spec.pretrained and (Path(spec.pretrained).suffix or "/" in spec.pretrained):
            source = 2
            self.weights.setText(spec.pretrained)
        else:
            source = 1
        if spec.name != "toy":
            self.arch.setCurrentText(spec.name)
            self._fill_tags(spec.name)
            if source == 1:
                self.tag.setCurrentText(spec.pretrained or "")
        else:
            self.arch.setCurrentText("ViT-B-32")
            self._fill_tags("ViT-B-32")
        self.group.button(source).setChecked(True)
        self._enable_fields()

    def _enable_fields(self) -> None:
        source = self.group.checkedId()
        self.arch.setEnabled(source in (1, 2))
        self.tag.setEnabled(source == 1)
        self.weights.setEnabled(source == 2)
        self.checkpoint.setEnabled(source == 3)

    def _browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Weights file", "", "Weights (*.safetensors *.pt *.bin *.pth)")
        if path:
            self.weights.setText(path)

    def _browse_run(self) -> None:
        path = browse_run_folder(self, self.runs_dir)
        if path:
            self.checkpoint.setText(path)

    def chosen_spec(self) -> ModelSpec:
        """The spec the form describes; raises ValueError/CheckpointError with a message."""
        source = self.group.checkedId()
        arch = self.arch.currentText().strip()
        if source == 0:
            return TOY_SPEC
        if source in (1, 2) and not arch:
            raise ValueError("enter an open_clip architecture, e.g. ViT-B-32")
        if source == 1:
            return ModelSpec(arch, self.tag.currentText().strip() or None)
        if source == 2:
            path = self.weights.text().strip()
            if not Path(path).is_file():
                raise ValueError(f"weights file {path!r} does not exist")
            return ModelSpec(arch, path)
        return spec_from_checkpoint(self.checkpoint.text().strip())

    def accept(self) -> None:
        try:
            self.result_spec = self.chosen_spec()
        except (ValueError, CheckpointError) as exc:
            self.error.setText(str(exc))
            return
        super().accept()


def _row(*widgets: QWidget) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget, 1 if isinstance(widget, QLineEdit) else 0)
    return box


class CheckpointCombo(QComboBox):
    """The runs under the runs folder plus "(none)" and "Browse…"; emits ``chosen`` with a path or ""."""

    chosen = Signal(str)
    _BROWSE = "Browse…"

    def __init__(self, runs_dir: str, parent=None):
        super().__init__(parent)
        self.runs_dir = runs_dir
        self.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(18)
        self.activated.connect(self._activated)
        self.refresh()

    def refresh(self, select: str = "") -> None:
        current = select or self.path()
        self.blockSignals(True)
        self.clear()
        self.addItem("(none)", "")
        first_usable = -1
        for run in runs.list_runs(self.runs_dir):
            if run.usable:
                self.addItem(run.name, str(run.path))
                first_usable = self.count() - 1 if first_usable < 0 else first_usable
            else:  # listed so the user sees it, but it cannot be chosen
                self.addItem(f"{run.name} (broken)", str(run.path))
                self.model().item(self.count() - 1).setEnabled(False)
                self.setItemData(self.count() - 1, f"Cannot be used: {run.problem}", Qt.ToolTipRole)
        if current and self.findData(current) < 0:
            self.addItem(Path(current).name, current)
        self.addItem(self._BROWSE, None)
        index = self.findData(current) if current else -1
        if index >= 0 and not self.model().item(index).isEnabled():
            index = -1
        self.setCurrentIndex(index if index >= 0 else max(first_usable, 0))
        self.blockSignals(False)

    def path(self) -> str:
        data = self.currentData()
        return data or ""

    def _activated(self, index: int) -> None:
        if self.itemData(index) is None:
            path = browse_run_folder(self, self.runs_dir)
            self.refresh(select=path)
        self.chosen.emit(self.path())
