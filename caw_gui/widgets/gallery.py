"""A gallery of sample images that fit the active model.

With the embedded toy CLIP the gallery shows toy-world test scenes, drawn on the fly, each with
its true attributes (shape, colour, texture, size, position); with a real CLIP it shows four
real photos (CC0 / public domain, see ``caw_gui/resources/samples/ATTRIBUTION.md``), whose
labels are left to the user. A toy model labelling an astronaut among five shapes, or a real
CLIP judging 64-pixel shapes, only confuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import numpy as np
from PIL import Image
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from caw_core.data import toyworld as tw
from caw_gui.widgets.image_panel import qimage_from_array

GALLERY_SEED = 2  # the toy test stream: scenes the models were not fine-tuned on
GALLERY_SIZE = 12
KINDS = ("toy", "photo")


@dataclass
class Sample:
    """One gallery image; ``labels`` maps a toy attribute to its true class name (empty for photos)."""

    image: np.ndarray
    caption: str
    labels: dict[str, str] = field(default_factory=dict)


def toy_samples() -> list[Sample]:
    scenes = tw.sample_scenes(GALLERY_SEED, list(range(GALLERY_SIZE)))
    images = tw.render_uint8(scenes)
    return [Sample(images[i], tw.caption(scenes, i),
                   {attribute: names[int(scenes.labels(attribute)[i])] for attribute, names in tw.ATTRIBUTES.items()})
            for i in range(GALLERY_SIZE)]


def photo_samples() -> list[Sample]:
    photos = sorted(p for p in (resources.files("caw_gui") / "resources" / "samples").iterdir()
                    if p.name.endswith(".jpg"))
    return [Sample(np.asarray(Image.open(p).convert("RGB")), f"photo: {p.name} (CC0 / public domain)")
            for p in photos]


class SampleGallery(QListWidget):
    """Icons of the samples of one kind; ``picked`` carries the chosen PIL image, its caption and its labels."""

    picked = Signal(object, str, object)

    def __init__(self, kind: str = "toy", parent=None):
        super().__init__(parent)
        self.setViewMode(QListWidget.IconMode)
        self.setIconSize(QSize(48, 48))
        self.setGridSize(QSize(54, 54))
        self.setMovement(QListWidget.Static)
        self.setResizeMode(QListWidget.Adjust)
        self.setFixedHeight(118)
        self.kind = ""
        self.samples: list[Sample] = []
        self.itemClicked.connect(self._clicked)
        self.show_kind(kind)

    def show_kind(self, kind: str) -> None:
        """Fill the gallery with the ``kind`` samples: "toy" (toy scenes) or "photo" (real photos)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if kind == self.kind:
            return
        self.kind = kind
        self.samples = toy_samples() if kind == "toy" else photo_samples()
        self.clear()
        for sample in self.samples:
            item = QListWidgetItem(QIcon(QPixmap.fromImage(qimage_from_array(sample.image))), "")
            item.setToolTip(sample.caption)
            item.setData(Qt.UserRole, sample.caption)
            self.addItem(item)

    def _clicked(self, item: QListWidgetItem) -> None:
        sample = self.samples[self.row(item)]
        self.picked.emit(Image.fromarray(sample.image), sample.caption, dict(sample.labels))
