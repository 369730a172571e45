"""A titled image view that keeps the aspect ratio and can print a note on the image."""

from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget


def qimage_from_array(array: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB array -> QImage (a deep copy, safe after the array dies)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    height, width, _ = array.shape
    return QImage(array.data, width, height, 3 * width, QImage.Format_RGB888).copy()


class _Canvas(QWidget):
    """Paints a pixmap scaled to fit (pixelated when enlarged) and an optional overlay text."""

    def __init__(self, placeholder: str):
        super().__init__()
        self.pixmap: Optional[QPixmap] = None
        self.overlay = ""
        self.placeholder = placeholder
        self.setMinimumSize(140, 140)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#f4f4f4"))
        if self.pixmap is None:
            painter.setPen(QColor("#888"))
            painter.drawText(self.rect(), Qt.AlignCenter | Qt.TextWordWrap, self.placeholder)
            return
        side = min(self.width(), self.height())
        scaled = self.pixmap.scaled(side, side, Qt.KeepAspectRatio,
                                    Qt.FastTransformation if side > self.pixmap.width() else Qt.SmoothTransformation)
        x = (self.width() - scaled.width()) // 2
        y = (self.height() - scaled.height()) // 2
        painter.drawPixmap(x, y, scaled)
        if self.overlay:
            font = QFont(painter.font())
            font.setBold(True)
            painter.setFont(font)
            box = QRect(x + 4, y + 4, scaled.width() - 8, 22)
            metrics = painter.fontMetrics()
            box.setWidth(min(box.width(), metrics.horizontalAdvance(self.overlay) + 12))
            painter.fillRect(box, QColor(0, 0, 0, 160))
            painter.setPen(QColor("white"))
            painter.drawText(box, Qt.AlignCenter, self.overlay)


class ImagePanel(QWidget):
    """Title above, image (or placeholder) in the middle, caption below."""

    def __init__(self, title: str, placeholder: str = "no image", parent=None):
        super().__init__(parent)
        self.title = QLabel(f"<b>{title}</b>")
        self.title.setAlignment(Qt.AlignCenter)
        self.canvas = _Canvas(placeholder)
        self.caption = QLabel()
        self.caption.setAlignment(Qt.AlignCenter)
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.title)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.caption)

    def set_title(self, title: str) -> None:
        self.title.setText(f"<b>{title}</b>")

    def set_image(self, array: Optional[np.ndarray], overlay: str = "", caption: str = "") -> None:
        self.canvas.pixmap = None if array is None else QPixmap.fromImage(qimage_from_array(array))
        self.canvas.overlay = overlay
        self.caption.setText(caption)
        self.canvas.update()

    def has_image(self) -> bool:
        return self.canvas.pixmap is not None
