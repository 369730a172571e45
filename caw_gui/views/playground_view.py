"""Attack playground: an image in, vanilla vs fine-tuned CLIP predictions on clean and adversarial versions.

The work is :func:`caw_core.playground.run_playground` in a worker (decoding the file too); this
view only gathers the inputs and shows the records: what the models saw, the top-5 charts, a
fooled / robust verdict per model, and the attack's progress.
"""

from __future__ import annotations

import html
import logging
import time
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image
from PySide6.QtCore import QBuffer, QIODevice, QObject, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
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
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from caw_core.attacks.registry import attack_choices
from caw_core.models import TOY_MODEL, ModelSpec
from caw_core.models.checkpoint import CheckpointError
from caw_core.playground import (TEMPLATE_SEPARATOR, PlaygroundRequest, class_presets, describe_verdict,
                                 parse_templates)
from caw_gui.image_io import amplified_perturbation, save_adversarial
from caw_gui.widgets.banner import MessageBanner
from caw_gui.widgets.gallery import SampleGallery
from caw_gui.widgets.image_panel import ImagePanel
from caw_gui.widgets.model_picker import CheckpointCombo, spec_from_checkpoint
from caw_gui.widgets.topk_chart import TopKChart, export_with_dialog
from caw_gui.widgets.view_layout import banner_over_split
from caw_gui.workers.jobs import AttackJob, ModelCache
from caw_gui.workers.task import Task

log = logging.getLogger("caw_gui")

PRESETS = {preset.display: preset for preset in class_presets().values()}
TOY_PRESET, PHOTO_PRESET = class_presets()["toy-shape"].display, class_presets()["imagenet"].display
CUSTOM = "Custom (edit the list)"
UNKNOWN_LABEL = "(unknown: push away from each model's prediction)"
ATTACKS = {name: label for name, label in attack_choices().items() if name != "clean"}  # the registry's
NORMS = {"ℓ∞": "linf", "ℓ2": "l2"}
SOURCES = {"Attack each model (white-box)": "each",
           "Craft on vanilla, transfer to fine-tuned": "vanilla",
           "Craft on fine-tuned, transfer to vanilla": "finetuned"}
ROLE_NAMES = {"vanilla": "Vanilla", "finetuned": "Fine-tuned"}
VERDICT_COLOURS = {"robust": "#2e7d32", "fooled": "#b71c1c", "wrong": "#6b4b00"}
STEPS_TOOLTIP = ("Iterations of the attack: PGD/CW steps, or the iterations of each APGD run of AutoAttack. "
                 "'default' = the attack's own (PGD/CW 10, AutoAttack 100). Same meaning in Evaluate.")
PROGRESS_INTERVAL_S = 0.1


class ClassListEdit(QPlainTextEdit):
    """The class-name list. A dropped or pasted file or image is handed on (``image_dropped``), never typed in."""

    image_dropped = Signal(object)

    def canInsertFromMimeData(self, source) -> bool:  # noqa: N802 (Qt override)
        return source.hasUrls() or source.hasImage() or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source) -> None:  # noqa: N802 (Qt override)
        if source.hasUrls() or source.hasImage():
            self.image_dropped.emit(source)
            return
        super().insertFromMimeData(source)


class _ProgressRelay(QObject):
    """Carries progress dicts from the worker thread to the view (a queued signal), at most every 0.1 s."""

    progress = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._last = 0.0

    def send(self, record: dict) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_S or record["forwards"] == record["expected"]:
            self._last = now
            self.progress.emit(record)


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
        self.scene_labels: dict[str, str] = {}  # a toy scene's true attributes
        self.task: Optional[Task] = None
        self.job: Optional[AttackJob] = None
        self.pending: Optional[tuple] = None  # (image source,) to run once the current job ends
        self.adversarials: dict[str, dict] = {}
        self.relay = _ProgressRelay(self)
        self.relay.progress.connect(self._on_progress)
        self.banner = MessageBanner()
        banner_over_split(self, self.banner, self._build_controls(), self._build_results(), (360, 660))
        self.set_vanilla(self.vanilla_spec)
        self._update_buttons()
        for keys, slot, what in (("Ctrl+Return", self.run_attack, "Playground: attack"), ("F5", self.run_attack, "Playground: attack"),
                                 ("Esc", self.cancel, "Playground: cancel")):
            QShortcut(QKeySequence(keys), self, slot).setWhatsThis(what)  # active while the tab is shown

    # -- layout ------------------------------------------------------------------------------------------------
    def _build_controls(self) -> QWidget:
        open_button = QPushButton("Open…")
        open_button.setToolTip("Open an image file (PNG, JPEG, WebP, …); or drop one anywhere on the window")
        open_button.clicked.connect(self.open_file_dialog)
        paste_button = QPushButton("Paste")
        paste_button.setToolTip("Use the image on the clipboard")
        paste_button.clicked.connect(self.paste)
        image_row = QHBoxLayout()
        image_row.addWidget(open_button)
        image_row.addWidget(paste_button)
        self.gallery = SampleGallery()
        self.gallery.picked.connect(self.set_sample)
        self.gallery_label = QLabel()
        image_box = QGroupBox("Image (or drop a file anywhere on the window)")
        column = QVBoxLayout(image_box)
        column.addLayout(image_row)
        column.addWidget(self.gallery_label)
        column.addWidget(self.gallery)

        self.preset = QComboBox()
        self.preset.addItems([*PRESETS, CUSTOM])
        self.preset.setToolTip("The zero-shot task: the class names the models choose from")
        self.preset.activated.connect(lambda _: self._apply_preset(self.preset.currentText()))
        self.classes = ClassListEdit()
        self.classes.setPlaceholderText("one class name per line")
        self.classes.setFixedHeight(80)
        self.classes.textChanged.connect(self._classes_edited)
        self.classes.image_dropped.connect(self.open_mime)
        self.template = QLineEdit()
        self.template.setToolTip("Prompt template: {} is replaced by each class name. Several templates separated "
                                 "by ' | ' are averaged (CLIP's prompt ensembling); the toy presets use one per "
                                 "shape name")
        self.true_class = QComboBox()
        self.true_class.setToolTip("The true label. The attack pushes the image away from it and the verdict "
                                   "says whether each model still predicts it. A toy scene sets its own; "
                                   "unknown: each model's clean prediction stands in for it.")
        class_box = QGroupBox("Classes")
        form = QFormLayout(class_box)
        form.addRow("Preset", self.preset)
        form.addRow(self.classes)
        form.addRow("Prompt", self.template)
        form.addRow("True class", self.true_class)

        self.vanilla_label = QLabel()
        self.vanilla_label.setWordWrap(True)
        self.vanilla_label.setToolTip("The un-fine-tuned base model (Model → Choose model…)")
        self.finetuned = CheckpointCombo(self.settings.runs_dir)
        self.finetuned.setToolTip("A caw run folder (its latest checkpoint) to compare against the vanilla model")
        model_box = QGroupBox("Models")
        form = QFormLayout(model_box)
        form.addRow("Vanilla", self.vanilla_label)
        form.addRow("Fine-tuned", self.finetuned)

        self.attack = QComboBox()
        for index, (name, label) in enumerate(ATTACKS.items()):
            self.attack.addItem(name)
            self.attack.setItemData(index, label, Qt.ToolTipRole)
        self.attack.setToolTip("pgd: projected gradient ascent on the cross-entropy; cw: on the Carlini-Wagner "
                               "margin; aa: AutoAttack (APGD-CE + APGD-T), the evaluation standard; hover an "
                               "entry for its details")
        self.norm = QComboBox()
        self.norm.addItems(list(NORMS))
        self.norm.setToolTip("The threat model's norm: ℓ∞ bounds every pixel's change (the paper's), ℓ2 the "
                             "total change")
        self.eps = QSlider(Qt.Horizontal)
        self.eps.setRange(0, 32)
        self.eps.setValue(4)
        self.eps.setToolTip("ε: the largest change per pixel (ℓ∞) in grey levels out of 255 (ℓ2: the radius "
                            "in the same units); the paper evaluates at 1/255")
        self.eps_label = QLabel()
        self.eps.valueChanged.connect(lambda value: self.eps_label.setText(f"{value}/255"))
        self.eps_label.setText(f"{self.eps.value()}/255")
        eps_row = QHBoxLayout()
        eps_row.addWidget(self.eps, 1)
        eps_row.addWidget(self.eps_label)
        self.steps = QSpinBox()
        self.steps.setRange(0, 1000)
        self.steps.setSpecialValueText("default")
        self.steps.setValue(0)
        self.steps.setToolTip(STEPS_TOOLTIP)
        self.source = QComboBox()
        self.source.addItems(list(SOURCES))
        self.source.setToolTip("White-box: each model is attacked with its own gradients. Transfer: the image "
                               "crafted on one model is shown to both.")
        attack_box = QGroupBox("Attack")
        form = QFormLayout(attack_box)
        attack_row = QHBoxLayout()
        attack_row.addWidget(self.attack, 1)
        attack_row.addWidget(self.norm)
        form.addRow("Attack", attack_row)
        form.addRow("ε", eps_row)
        form.addRow("Steps", self.steps)
        form.addRow("Crafted on", self.source)

        panel = QWidget()
        column = QVBoxLayout(panel)
        for box in (image_box, class_box, model_box, attack_box):
            column.addWidget(box)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)

        self.run_button = QPushButton("Attack")
        self.run_button.setDefault(True)
        self.run_button.setToolTip("Classify and attack the image (Ctrl+Enter or F5)")
        self.run_button.clicked.connect(lambda: self.run_attack())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running attack (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button = QPushButton("Save adversarial…")
        self.save_button.setToolTip("Save the shown adversarial image (lossless PNG) and its perturbation")
        self.save_button.clicked.connect(lambda: self.save_adversarial())
        self.attack_progress = QProgressBar()
        self.attack_progress.setTextVisible(True)
        self.attack_progress.setFormat("idle")
        self.attack_progress.setValue(0)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.save_button)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(scroll, 1)
        column.addLayout(buttons)  # outside the scroll area: always in view
        column.addWidget(self.attack_progress)
        left.setMinimumWidth(330)
        return left

    def _build_results(self) -> QWidget:
        self.clean_panel = ImagePanel("Clean (what the models see)",
                                      "Drop an image, paste one, open a file or pick a sample")
        self.adv_panel = ImagePanel("Adversarial", "run an attack")
        self.delta_panel = ImagePanel("Perturbation (amplified)", "")
        self.shown_group = QButtonGroup(self)
        shown_row = QHBoxLayout()
        shown_row.addWidget(QLabel("Adversarial shown:"))
        for role in ROLE_NAMES:
            button = QRadioButton(f"crafted on {ROLE_NAMES[role].lower()}")
            button.setProperty("role", role)
            button.setEnabled(False)
            self.shown_group.addButton(button)
            shown_row.addWidget(button)
        shown_row.addStretch(1)
        self.export_button = QPushButton("Export charts…")
        self.export_button.setToolTip("Save the four top-5 charts as one PNG or SVG figure")
        self.export_button.clicked.connect(lambda: self.export_charts())
        shown_row.addWidget(self.export_button)
        self.shown_group.buttonToggled.connect(lambda button, on: on and self._show_adversarial(button.property("role")))
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.verdict_label = QLabel("")
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setTextFormat(Qt.RichText)

        images = QHBoxLayout()
        for panel in (self.clean_panel, self.adv_panel, self.delta_panel):
            images.addWidget(panel, 1)
        self.charts: dict[tuple[str, str], TopKChart] = {}
        self.chart_grid = QWidget()
        grid = QGridLayout(self.chart_grid)
        grid.setContentsMargins(0, 0, 0, 0)
        for row, role in enumerate(ROLE_NAMES):
            for col, kind in enumerate(("clean", "adversarial")):
                chart = TopKChart(f"{ROLE_NAMES[role]}: {kind}", "#1f77b4" if role == "vanilla" else "#d62728")
                self.charts[(role, kind)] = chart
                grid.addWidget(chart, row, col)
        panel = QWidget()
        column = QVBoxLayout(panel)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(images, 3)
        column.addLayout(shown_row)
        column.addWidget(self.status)
        column.addWidget(self.verdict_label)
        column.addWidget(self.chart_grid, 4)
        return panel

    # -- inputs ------------------------------------------------------------------------------------------------
    def set_vanilla(self, spec: ModelSpec) -> None:
        """Use ``spec`` as the vanilla model; the gallery and the default classes follow its kind (toy or real)."""
        toy = spec.name == TOY_MODEL
        kind_changed = self.gallery.kind != ("toy" if toy else "photo") or not self.class_names()
        self.vanilla_spec = spec
        self.vanilla_label.setText(spec.label())
        self.gallery.show_kind("toy" if toy else "photo")
        self.gallery_label.setText("Samples: toy-world test scenes (true labels known)" if toy else
                                   "Samples: photos (CC0 / public domain); pick the true class yourself")
        if kind_changed:
            self.preset.setCurrentText(TOY_PRESET if toy else PHOTO_PRESET)
            self._apply_preset(self.preset.currentText())

    def set_runs_dir(self, runs_dir: str) -> None:
        self.finetuned.runs_dir = runs_dir
        self.finetuned.refresh()

    def _apply_preset(self, name: str) -> None:
        if name in PRESETS:
            preset = PRESETS[name]
            self.classes.blockSignals(True)
            self.classes.setPlainText("\n".join(preset.classnames))
            self.classes.blockSignals(False)
            self.template.setText(TEMPLATE_SEPARATOR.join(preset.templates))
            self.template.setCursorPosition(0)
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

    def _scene_label(self) -> Optional[str]:
        """The shown toy scene's true class under the current preset, if the preset reads a toy attribute."""
        preset = PRESETS.get(self.preset.currentText())
        return self.scene_labels.get(preset.attribute) if preset and preset.attribute else None

    def _fill_true_classes(self) -> None:
        current = self._scene_label() or self.true_class.currentText()
        self.true_class.blockSignals(True)
        self.true_class.clear()
        self.true_class.addItem(UNKNOWN_LABEL)
        self.true_class.addItems(self.class_names())
        index = self.true_class.findText(current)
        self.true_class.setCurrentIndex(max(index, 0))
        self.true_class.blockSignals(False)

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "",
                                              "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff);;All (*)")
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> bool:
        """Decode ``path`` in the worker and attack it; an unusable file shows why and keeps the previous image."""
        self._open_source(str(path))
        return True

    def _open_source(self, source) -> None:
        """A new image from outside: its true class is unknown until the user picks one."""
        self.banner.clear()
        self.scene_labels = {}
        self.true_class.setCurrentIndex(0)
        self.run_attack(image_source=source)

    def open_mime(self, mime) -> bool:
        """Accept dropped or pasted data: local file URLs (the first is used) or raw image data."""
        files = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []
        if files:
            self.open_path(files[0])
            if len(files) > 1:
                self.banner.show_message(f"{len(files)} files dropped: only the first, {Path(files[0]).name}, "
                                         "is used.", "info")
            return True
        if mime.hasImage():
            buffer = QBuffer()
            buffer.open(QIODevice.WriteOnly)
            mime.imageData().save(buffer, "PNG")
            self._open_source(bytes(buffer.data()))
            return True
        self.banner.show_message("Nothing usable to open: drop or paste an image file or image data.", "warning")
        return False

    def paste(self) -> None:
        self.open_mime(QApplication.clipboard().mimeData())

    def set_sample(self, image: Image.Image, caption: str, labels: dict) -> None:
        """A gallery sample: its true labels (toy scenes) choose the true class."""
        self.scene_labels = dict(labels)
        self.set_image(image, f"sample: {caption}")

    def set_image(self, image: Image.Image, name: str, notes: tuple = ()) -> None:
        self.image, self.image_name = image, name
        if notes:
            self.banner.show_message(f"{name}: " + "; ".join(notes), "info")
        else:
            self.banner.clear()
        self._fill_true_classes()
        self.clean_panel.set_image(np.asarray(image), caption=f"{name} ({image.width}×{image.height})")
        self.run_attack()

    # -- running -----------------------------------------------------------------------------------------------
    def build_request(self) -> tuple[PlaygroundRequest, Optional[ModelSpec]]:
        """The playground request the form describes and the fine-tuned model; ValueError / CheckpointError."""
        classnames = self.class_names()
        if len(classnames) < 2:
            raise ValueError("enter at least two class names, one per line")
        templates = parse_templates(self.template.text())
        path = self.finetuned.path()
        finetuned = spec_from_checkpoint(path) if path else None
        source = SOURCES[self.source.currentText()]
        if finetuned is None and source != "each":
            raise ValueError("a transfer attack needs a fine-tuned checkpoint; choose one under Models")
        attack, norm = self.attack.currentText(), NORMS[self.norm.currentText()]
        label_index = self.true_class.currentIndex() - 1
        request = PlaygroundRequest(self.image, classnames, templates, attack=attack, norm=norm,
                                    eps=float(self.eps.value()), steps=self.steps.value() or None, source=source,
                                    label=label_index if label_index >= 0 else None)
        return request, finetuned

    def run_attack(self, image_source=None) -> None:
        """Attack the current image, or first decode ``image_source`` (a path or image bytes) in the worker."""
        if image_source is None and self.image is None:
            return
        if self.task is not None:  # a new image or settings while busy: redo once the current job ends
            self.pending = (image_source,)
            self._stop_job()
            return
        try:
            request, finetuned = self.build_request()
        except (ValueError, CheckpointError) as exc:
            self.banner.show_message(str(exc), "error")
            return
        self._clear_results()
        self.status.setText("Loading the image…" if image_source is not None else "Loading models and classifying…")
        self.job = AttackJob(self.cache, request, self.vanilla_spec, finetuned, self.settings.device, image_source)
        self.job.on_progress = self.relay.send
        self.task = Task(self.job, self)
        self.task.record.connect(self._on_record)
        self.task.failed.connect(self._on_failed)
        self.task.finished.connect(self._on_finished)
        self.task.start()
        self.attack_progress.setRange(0, 0)
        self.attack_progress.setFormat("starting…")
        self._update_buttons()
        self.busy_changed.emit(True)

    def _clear_results(self) -> None:
        self.adversarials.clear()
        for button in self.shown_group.buttons():
            button.setEnabled(False)
        for chart in self.charts.values():
            chart.set_topk([])
        self.adv_panel.set_image(None)
        self.delta_panel.set_image(None)
        self.verdict_label.setText("")

    def _stop_job(self) -> None:
        self.job.stop()  # reaches inside the running attack: it ends at its next forward pass
        self.task.cancel()

    def cancel(self) -> None:
        if self.task is not None:
            self.pending = None
            self._stop_job()
            self.status.setText("Cancelling…")

    def shutdown(self, timeout_ms: int = 1_000) -> None:
        """Cancel a running attack (it ends at its next forward pass) and give its thread a moment (closing)."""
        if self.task is not None:
            self.pending = None
            self._stop_job()
            self.task.wait(timeout_ms)

    def is_busy(self) -> bool:
        return self.task is not None

    def _on_progress(self, record: dict) -> None:
        if self.task is None:
            return
        expected = max(record["expected"], record["forwards"], 1)
        self.attack_progress.setRange(0, expected)
        self.attack_progress.setValue(record["forwards"])
        self.attack_progress.setFormat(f"crafting on {ROLE_NAMES[record['crafted_on']].lower()}: forward pass "
                                       f"{record['forwards']} of ~{expected}, {record['elapsed_s']:.1f} s")

    def _on_record(self, record: dict) -> None:
        event = record["event"]
        if self.pending is not None:  # superseded: a newer image or setting runs once this job has ended
            return
        if event == "image_error":
            self.banner.show_message(f"Cannot use this image: {record['message']}", "error")
            self.status.setText("")
        elif event == "loaded":
            self.scene_labels = {}
            self.image, self.image_name = record["image"], record["name"]
            self._fill_true_classes()
            if record["notes"]:
                self.banner.show_message(f"{record['name']}: " + "; ".join(record["notes"]), "info")
        elif event == "input":
            size = record["size"]
            note = record["note"] or "used as is"
            self.clean_panel.set_image(record["image"], caption=f"model input {size}×{size}: {note}")
            self.clean_panel.setToolTip(self.image_name)
            self.status.setText("Classifying…")
        elif event == "clean":
            for role, entries in record["topk"].items():
                self.charts[(role, "clean")].set_topk(entries, highlight=record["label"])
            label = f"true class '{record['label']}'" if record["label"] else "each model's clean prediction"
            self.status.setText(f"Attacking: pushing away from {label}…")
        elif event == "adversarial":
            self._on_adversarial(record)
        elif event == "cancelled":
            self.status.setText("Cancelled.")

    def _on_adversarial(self, record: dict) -> None:
        role = record["crafted_on"]
        self.adversarials[role] = record
        for target, entries in record["topk"].items():
            chart = self.charts[(target, "adversarial")]
            chart.set_title(f"{ROLE_NAMES[target]}: adversarial (crafted on {ROLE_NAMES[role].lower()})"
                            if role != target else f"{ROLE_NAMES[target]}: adversarial")
            chart.set_topk(entries, highlight=record["label"])
        for button in self.shown_group.buttons():
            button.setEnabled(button.property("role") in self.adversarials)
            if button.property("role") == role:
                button.setChecked(True)
        self._show_adversarial(role)
        self._show_verdicts()

    def _show_verdicts(self) -> None:
        lines = []
        for record in self.adversarials.values():
            transfer = len(record["verdict"]) > 1
            for target, verdict in record["verdict"].items():
                text = describe_verdict(verdict, record["found_nothing"], record["topk"][target][0][0],
                                        record["reference"][target])
                if transfer:
                    text += f" (image crafted on {ROLE_NAMES[record['crafted_on']].lower()})"
                lines.append(f"<b style='color:{VERDICT_COLOURS[verdict]}'>{verdict.upper()}</b> — "
                             f"{ROLE_NAMES[target]}: {html.escape(text)}")
        self.verdict_label.setText("<br>".join(lines))

    def verdicts(self) -> dict[str, str]:
        """{tested role: 'fooled' / 'robust' / 'wrong'} of the attacks shown (the last record per role)."""
        return {target: v for record in self.adversarials.values() for target, v in record["verdict"].items()}

    def _show_adversarial(self, role: str) -> None:
        record = self.adversarials.get(role)
        if record is None:
            return
        attack = f"{self.attack.currentText()} {self.norm.currentText()}"
        self.adv_panel.set_title(f"Adversarial (crafted on {ROLE_NAMES[role].lower()})")
        pushed = f"pushed away from '{record['label']}'" + ("" if record["true_label"] else " (its prediction)")
        if record["found_nothing"]:
            self.adv_panel.set_image(record["image"], overlay="nothing found",
                                     caption=f"{attack} found no adversarial inside ε: the image is unchanged")
            self.delta_panel.set_image(None, caption="δ = 0: the attack found nothing to change")
            return
        self.adv_panel.set_image(record["image"], caption=f"{attack}, {pushed}")
        picture, factor = amplified_perturbation(record["delta"])
        self.delta_panel.set_image(picture, overlay=f"×{factor}",
                                   caption=f"‖δ‖∞ = {record['linf'] * 255:.1f}/255, ‖δ‖₂ = {record['l2']:.3f}; "
                                           f"shown ×{factor} around grey")

    def _on_failed(self, message: str, details: str) -> None:
        self.banner.show_message(f"Attack failed: {message}", "error")
        self.status.setText("")
        log.error("attack failed: %s\n%s", message, details)

    def _on_finished(self, status: str) -> None:
        self.task = self.job = None
        self.attack_progress.setRange(0, 1)
        self.attack_progress.setValue(0)
        self.attack_progress.setFormat("idle")
        if status == "done" and self.adversarials:
            count = len(self.adversarials)
            self.status.setText(f"Done: {count} adversarial image{'s' if count != 1 else ''}. "
                                + self.source.currentText() + ".")
        elif status == "cancelled":
            self.status.setText("Cancelled.")
        self._update_buttons()
        self.busy_changed.emit(False)
        if self.pending is not None:
            (source,) = self.pending
            self.pending = None
            self.run_attack(image_source=source)

    def _update_buttons(self) -> None:
        busy = self.task is not None
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.save_button.setEnabled(not busy and bool(self.adversarials))

    def shown_role(self) -> Optional[str]:
        button = self.shown_group.checkedButton()
        return button.property("role") if button is not None else None

    def export_charts(self, path: str = "") -> Optional[Path]:
        """Save the four top-5 charts as one PNG or SVG figure."""
        return export_with_dialog(self, self.chart_grid, self.banner, "playground_top5.png", "charts", path)

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
