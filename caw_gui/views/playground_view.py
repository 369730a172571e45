"""Attack playground: an image in, vanilla vs fine-tuned CLIP predictions on clean and adversarial versions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image
from PySide6.QtCore import QBuffer, QIODevice, Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

from caw_core.data import toyworld as tw
from caw_core.data.toy_tasks import TASKS
from caw_core.models import ModelSpec
from caw_core.models.checkpoint import CheckpointError
from caw_gui.image_io import ImageLoadError, amplified_perturbation, load_image, save_adversarial
from caw_gui.widgets.banner import MessageBanner
from caw_gui.widgets.view_layout import banner_over_split
from caw_gui.widgets.gallery import SampleGallery
from caw_gui.widgets.image_panel import ImagePanel
from caw_gui.widgets.model_picker import CheckpointCombo, spec_from_checkpoint
from caw_gui.widgets.topk_chart import TopKChart
from caw_gui.workers.jobs import AttackJob, AttackRequest, ModelCache
from caw_gui.workers.task import Task

log = logging.getLogger("caw_gui")

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PRESETS = {display: (list(tw.ATTRIBUTES[attribute]), templates[0])
           for attribute, display, templates in TASKS.values()}
PRESETS["CIFAR-10"] = (list(CIFAR10), "a photo of a {}.")
PRESETS["ImageNet"] = (list(IMAGENET_CLASSNAMES), "a photo of a {}.")
CUSTOM = "Custom (edit the list)"
# label -> (attack name, norm)
ATTACKS = {"PGD ℓ∞": ("pgd", "linf"), "PGD ℓ2": ("pgd", "l2"), "CW ℓ∞": ("cw", "linf"),
           "AutoAttack ℓ∞": ("aa", "linf")}
SOURCES = {"Attack each model (white-box)": "each",
           "Craft on vanilla, transfer to fine-tuned": "vanilla",
           "Craft on fine-tuned, transfer to vanilla": "finetuned"}
ROLE_NAMES = {"vanilla": "Vanilla", "finetuned": "Fine-tuned"}


class PlaygroundView(QWidget):
    """Drop/paste/open an image or pick a sample; the attack runs in a worker and the charts compare models."""

    busy_changed = Signal(bool)

    def __init__(self, settings, cache: ModelCache, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.cache = cache
        self.vanilla_spec: ModelSpec = settings.model_spec
        self.image: Optional[Image.Image] = None
        self.image_name = ""
        self.task: Optional[Task] = None
        self.rerun_pending = False
        self.adversarials: dict[str, dict] = {}
        self.banner = MessageBanner()
        banner_over_split(self, self.banner, self._build_controls(), self._build_results(), (400, 1000))
        self._apply_preset(self.preset.currentText())
        self._update_buttons()

    # -- layout ------------------------------------------------------------------------------------------------
    def _build_controls(self) -> QWidget:
        open_button = QPushButton("Open…")
        open_button.clicked.connect(self.open_file_dialog)
        paste_button = QPushButton("Paste")
        paste_button.clicked.connect(self.paste)
        image_row = QHBoxLayout()
        image_row.addWidget(open_button)
        image_row.addWidget(paste_button)
        self.gallery = SampleGallery()
        self.gallery.picked.connect(lambda image, caption: self.set_image(image, f"sample: {caption}"))
        image_box = QGroupBox("Image (or drop a file anywhere on the window)")
        column = QVBoxLayout(image_box)
        column.addLayout(image_row)
        column.addWidget(QLabel("Samples (toy-world test scenes):"))
        column.addWidget(self.gallery)

        self.preset = QComboBox()
        self.preset.addItems([*PRESETS, CUSTOM])
        self.preset.activated.connect(lambda _: self._apply_preset(self.preset.currentText()))
        self.classes = QPlainTextEdit()
        self.classes.setPlaceholderText("one class name per line")
        self.classes.setFixedHeight(110)
        self.classes.textChanged.connect(self._classes_edited)
        self.template = QLineEdit()
        self.template.setToolTip("Prompt template; {} is replaced by each class name")
        class_box = QGroupBox("Classes")
        form = QFormLayout(class_box)
        form.addRow("Preset", self.preset)
        form.addRow(self.classes)
        form.addRow("Prompt", self.template)

        self.vanilla_label = QLabel()
        self.vanilla_label.setWordWrap(True)
        self.finetuned = CheckpointCombo(self.settings.runs_dir)
        self.finetuned.setToolTip("A caw run folder (its latest checkpoint) to compare against the vanilla model")
        model_box = QGroupBox("Models")
        form = QFormLayout(model_box)
        form.addRow("Vanilla", self.vanilla_label)
        form.addRow("Fine-tuned", self.finetuned)

        self.attack = QComboBox()
        self.attack.addItems(list(ATTACKS))
        self.eps = QSlider(Qt.Horizontal)
        self.eps.setRange(0, 32)
        self.eps.setValue(4)
        self.eps_label = QLabel()
        self.eps.valueChanged.connect(self._eps_changed)
        self._eps_changed(self.eps.value())
        eps_row = QHBoxLayout()
        eps_row.addWidget(self.eps, 1)
        eps_row.addWidget(self.eps_label)
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(10)
        self.source = QComboBox()
        self.source.addItems(list(SOURCES))
        self.true_class = QComboBox()
        self.true_class.setToolTip("The label the attack pushes away from")
        self.run_button = QPushButton("Attack")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run_attack)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button = QPushButton("Save adversarial…")
        self.save_button.clicked.connect(lambda: self.save_adversarial())
        attack_box = QGroupBox("Attack")
        form = QFormLayout(attack_box)
        form.addRow("Attack", self.attack)
        form.addRow("ε (/255)", eps_row)
        form.addRow("Steps", self.steps)
        form.addRow("Crafted on", self.source)
        form.addRow("True class", self.true_class)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        form.addRow(buttons)
        form.addRow(self.save_button)

        panel = QWidget()
        column = QVBoxLayout(panel)
        for box in (image_box, class_box, model_box, attack_box):
            column.addWidget(box)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(390)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.set_vanilla(self.vanilla_spec)
        return scroll

    def _build_results(self) -> QWidget:
        self.clean_panel = ImagePanel("Clean", "Drop an image, paste one, open a file or pick a sample")
        self.adv_panel = ImagePanel("Adversarial", "run an attack")
        self.delta_panel = ImagePanel("Perturbation (amplified)", "")
        self.shown_group = QButtonGroup(self)
        self.shown_row = QHBoxLayout()
        self.shown_row.addWidget(QLabel("Adversarial shown:"))
        for role in ROLE_NAMES:
            button = QRadioButton(f"crafted on {ROLE_NAMES[role].lower()}")
            button.setProperty("role", role)
            button.setEnabled(False)
            self.shown_group.addButton(button)
            self.shown_row.addWidget(button)
        self.shown_row.addStretch(1)
        self.shown_group.buttonToggled.connect(lambda button, on: on and self._show_adversarial(button.property("role")))
        self.status = QLabel("")

        images = QHBoxLayout()
        for panel in (self.clean_panel, self.adv_panel, self.delta_panel):
            images.addWidget(panel, 1)
        self.charts: dict[tuple[str, str], TopKChart] = {}
        grid = QGridLayout()
        for row, role in enumerate(ROLE_NAMES):
            for col, kind in enumerate(("clean", "adversarial")):
                chart = TopKChart(f"{ROLE_NAMES[role]}: {kind}", "#1f77b4" if role == "vanilla" else "#d62728")
                self.charts[(role, kind)] = chart
                grid.addWidget(chart, row, col)
        panel = QWidget()
        column = QVBoxLayout(panel)
        column.addLayout(images, 3)
        column.addLayout(self.shown_row)
        column.addWidget(self.status)
        column.addLayout(grid, 4)
        return panel

    # -- inputs ------------------------------------------------------------------------------------------------
    def set_vanilla(self, spec: ModelSpec) -> None:
        self.vanilla_spec = spec
        self.vanilla_label.setText(spec.label())

    def set_runs_dir(self, runs_dir: str) -> None:
        self.finetuned.runs_dir = runs_dir
        self.finetuned.refresh()

    def _eps_changed(self, value: int) -> None:
        self.eps_label.setText(f"{value}/255")

    def _apply_preset(self, name: str) -> None:
        if name in PRESETS:
            classes, template = PRESETS[name]
            self.classes.blockSignals(True)
            self.classes.setPlainText("\n".join(classes))
            self.classes.blockSignals(False)
            self.template.setText(template)
            self._fill_true_classes()

    def _classes_edited(self) -> None:
        self.preset.setCurrentText(CUSTOM)
        self._fill_true_classes()

    def class_names(self) -> list[str]:
        seen: list[str] = []
        for line in self.classes.toPlainText().splitlines():
            name = line.strip()
            if name and name not in seen:
                seen.append(name)
        return seen

    def _fill_true_classes(self) -> None:
        current = self.true_class.currentText()
        self.true_class.clear()
        self.true_class.addItem("(each model's clean prediction)")
        self.true_class.addItems(self.class_names())
        self.true_class.setCurrentText(current)

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "",
                                              "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff);;All (*)")
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> bool:
        """Load an image file; on failure show why and keep the previous image."""
        try:
            loaded = load_image(path)
        except ImageLoadError as exc:
            self.banner.show_message(f"Cannot use this image: {exc}", "error")
            return False
        self.set_image(loaded.image, loaded.name, loaded.notes)
        return True

    def open_mime(self, mime) -> bool:
        """Accept dropped or pasted data: a local file URL or raw image data."""
        files = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []
        if files:
            return self.open_path(files[0])
        if mime.hasImage():
            buffer = QBuffer()
            buffer.open(QIODevice.WriteOnly)
            mime.imageData().save(buffer, "PNG")
            try:
                loaded = load_image(bytes(buffer.data()))
            except ImageLoadError as exc:
                self.banner.show_message(f"Cannot use the pasted image: {exc}", "error")
                return False
            self.set_image(loaded.image, loaded.name, loaded.notes)
            return True
        self.banner.show_message("Nothing usable to open: drop or paste an image file or image data.", "warning")
        return False

    def paste(self) -> None:
        self.open_mime(QApplication.clipboard().mimeData())

    def set_image(self, image: Image.Image, name: str, notes: tuple = ()) -> None:
        self.image, self.image_name = image, name
        if notes:
            self.banner.show_message(f"{name}: " + "; ".join(notes), "info")
        else:
            self.banner.clear()
        self.clean_panel.set_image(np.asarray(image), caption=f"{name} ({image.width}×{image.height})")
        self.run_attack()

    # -- running -----------------------------------------------------------------------------------------------
    def build_request(self) -> AttackRequest:
        classnames = self.class_names()
        if len(classnames) < 2:
            raise ValueError("enter at least two class names, one per line")
        template = self.template.text().strip() or "{}"
        if "{}" not in template:
            raise ValueError("the prompt template needs {} where the class name goes, e.g. 'a photo of a {}.'")
        path = self.finetuned.path()
        finetuned = spec_from_checkpoint(path) if path else None
        source = SOURCES[self.source.currentText()]
        if finetuned is None and source != "each":
            raise ValueError("a transfer attack needs a fine-tuned checkpoint; choose one under Models")
        attack, norm = ATTACKS[self.attack.currentText()]
        label_index = self.true_class.currentIndex() - 1
        return AttackRequest(self.image, classnames, [template], self.vanilla_spec, finetuned, self.settings.device,
                             attack=attack, norm=norm, eps=float(self.eps.value()), steps=self.steps.value(),
                             source=source, label=label_index if label_index >= 0 else None)

    def run_attack(self) -> None:
        if self.image is None:
            return
        if self.task is not None:  # a new image or settings while busy: redo once the current job ends
            self.rerun_pending = True
            self.task.cancel()
            return
        try:
            request = self.build_request()
        except (ValueError, CheckpointError) as exc:
            self.banner.show_message(str(exc), "error")
            return
        self.adversarials.clear()
        for button in self.shown_group.buttons():
            button.setEnabled(False)
        for chart in self.charts.values():
            chart.set_topk([])
        self.adv_panel.set_image(None)
        self.delta_panel.set_image(None)
        if request.finetuned is None:
            self.status.setText("No fine-tuned checkpoint chosen: only the vanilla model is shown.")
        else:
            self.status.setText("Loading models and classifying…")
        self.task = Task(AttackJob(self.cache, request), self)
        self.task.record.connect(self._on_record)
        self.task.failed.connect(self._on_failed)
        self.task.finished.connect(self._on_finished)
        self.task.start()
        self._update_buttons()
        self.busy_changed.emit(True)

    def cancel(self) -> None:
        if self.task is not None:
            self.rerun_pending = False
            self.task.cancel()
            self.status.setText("Cancelling after the current attack…")

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Cancel a running attack and wait for its thread (window closing)."""
        if self.task is not None:
            self.rerun_pending = False
            self.task.cancel()
            self.task.wait(timeout_ms)

    def is_busy(self) -> bool:
        return self.task is not None

    def _on_record(self, record: dict) -> None:
        event = record["event"]
        if event == "clean":
            self.clean_panel.set_image(record["image"], caption=f"{self.image_name} [model input "
                                                                f"{record['size']}×{record['size']}]")
            for role, entries in record["topk"].items():
                self.charts[(role, "clean")].set_topk(entries)
            self.status.setText(f"Attacking at the model input size {record['size']}×{record['size']}…")
        elif event == "adversarial":
            role = record["crafted_on"]
            self.adversarials[role] = record
            for target, entries in record["topk"].items():
                chart = self.charts[(target, "adversarial")]
                chart.set_title(f"{ROLE_NAMES[target]}: adversarial crafted on {ROLE_NAMES[role].lower()}")
                chart.set_topk(entries, highlight=record["label"])
            for button in self.shown_group.buttons():
                button.setEnabled(button.property("role") in self.adversarials)
                if button.property("role") == role:
                    button.setChecked(True)
            self._show_adversarial(role)

    def _show_adversarial(self, role: str) -> None:
        record = self.adversarials.get(role)
        if record is None:
            return
        picture, factor = amplified_perturbation(record["delta"])
        linf = float(np.abs(record["delta"]).max()) * 255
        l2 = float(np.linalg.norm(record["delta"]))
        attack = self.attack.currentText()
        self.adv_panel.set_title(f"Adversarial (crafted on {ROLE_NAMES[role].lower()})")
        self.adv_panel.set_image(record["image"], caption=f"{attack}, pushed away from '{record['label']}'")
        self.delta_panel.set_image(picture, overlay=f"×{factor}",
                                   caption=f"‖δ‖∞ = {linf:.1f}/255, ‖δ‖₂ = {l2:.3f}; shown ×{factor} around grey")

    def _on_failed(self, message: str, details: str) -> None:
        self.banner.show_message(f"Attack failed: {message}", "error")
        self.status.setText("")
        log.error("attack failed: %s\n%s", message, details)

    def _on_finished(self, status: str) -> None:
        self.task = None
        if status == "done":
            count = len(self.adversarials)
            self.status.setText(f"Done: {count} adversarial image{'s' if count != 1 else ''}. "
                                + self.source.currentText() + ".")
        elif status == "cancelled":
            self.status.setText("Cancelled.")
        self._update_buttons()
        self.busy_changed.emit(False)
        if self.rerun_pending:
            self.rerun_pending = False
            self.run_attack()

    def _update_buttons(self) -> None:
        busy = self.task is not None
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.save_button.setEnabled(not busy and bool(self.adversarials))

    def shown_role(self) -> Optional[str]:
        button = self.shown_group.checkedButton()
        return button.property("role") if button is not None else None

    def save_adversarial(self, path: str = "") -> list[Path]:
        """Save the shown adversarial image (PNG) and its perturbation (.npy exact, PNG amplified)."""
        record = self.adversarials.get(self.shown_role() or "")
        if record is None:
            return []
        if not path:
            stem = Path(self.image_name).stem if self.image_name and "sample" not in self.image_name else "sample"
            path, _ = QFileDialog.getSaveFileName(self, "Save adversarial image", f"{stem}_adversarial.png",
                                                  "PNG (*.png)")
        if not path:
            return []
        try:
            written = save_adversarial(path, record["image"], record["delta"])
        except OSError as exc:
            self.banner.show_message(f"Could not save to {path}: {exc}", "error")
            return []
        self.banner.show_message("Saved " + ", ".join(p.name for p in written) + f" in {written[0].parent}", "info")
        return written
