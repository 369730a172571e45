"""An inline message bar (info / warning / error) shown at the top of a view."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton

_STYLES = {
    "info": ("#e8f1fb", "#1f4e79", "#9cc3e6"),
    "warning": ("#fff6e0", "#6b4b00", "#f0c36d"),
    "error": ("#fdecea", "#8a1c14", "#f1a39c"),
}


class MessageBanner(QFrame):
    """A dismissible coloured bar; hidden until :meth:`show_message` is called."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.level = ""
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignTop)
        self.hide()

    def show_message(self, text: str, level: str = "info") -> None:
        background, foreground, border = _STYLES[level]
        self.level = level
        self.setStyleSheet(f"MessageBanner {{ background: {background}; border: 1px solid {border}; "
                           f"border-radius: 4px; }} QLabel {{ color: {foreground}; }}")
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return self.label.text()

    def clear(self) -> None:
        self.level = ""
        self.label.clear()
        self.hide()
