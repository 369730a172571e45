"""A gallery of sample images: four real photos (CC0 / public domain, see
``caw_gui/resources/samples/ATTRIBUTION.md``) and toy-world scenes drawn on the fly."""

from __future__ import annotations

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


class SampleGallery(QListWidget):
    """Icons of toy scenes; ``picked`` carries the chosen scene as a PIL image and its caption."""

    picked = Signal(object, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setViewMode(QListWidget.IconMode)
        self.setIconSize(QSize(56, 56))
        self.setGridSize(QSize(64, 64))
        self.setMovement(QListWidget.Static)
        self.setResizeMode(QListWidget.Adjust)
        self.setFixedHeight(150)
        photos = sorted(p for p in (resources.files("caw_gui") / "resources" / "samples").iterdir()
                        if p.name.endswith(".jpg"))
        self.images = [np.asarray(Image.open(p).convert("RGB")) for p in photos]
        captions = [f"photo: {p.name} (CC0 / public domain)" for p in photos]
        scenes = tw.sample_scenes(GALLERY_SEED, list(range(GALLERY_SIZE)))
        self.images += list(tw.render_uint8(scenes))
        captions += [tw.caption(scenes, index) for index in range(GALLERY_SIZE)]
        for array, caption in zip(self.images, captions):
            item = QListWidgetItem(QIcon(QPixmap.fromImage(qimage_from_array(array))), "")
            item.setToolTip(caption)
            item.setData(Qt.UserRole, caption)
            self.addItem(item)
        self.itemClicked.connect(self._clicked)

    def _clicked(self, item: QListWidgetItem) -> None:
        index = self.row(item)
        self.picked.emit(Image.fromarray(self.images[index]), item.data(Qt.UserRole))
