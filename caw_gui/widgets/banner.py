"""An inline message bar (info / warning / error) shown at the top of a view, with bounded height.

However long the message, the bar shows one summary line (the first sentence
or line, elided to the width); the full text is behind "Details", in a
scrollable box of at most :data:`DETAILS_MAX_HEIGHT` pixels. So a banner can
never push a view's buttons off-screen. Colours follow the light or dark
palette.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QToolButton, QVBoxLayout

DETAILS_MAX_HEIGHT = 110
SUMMARY_CHARS = 160

_LIGHT = {
    "info": ("#e8f1fb", "#1f4e79", "#9cc3e6"),
    "warning": ("#fff6e0", "#6b4b00", "#f0c36d"),
    "error": ("#fdecea", "#8a1c14", "#f1a39c"),
}
_DARK = {
    "info": ("#16283a", "#bcd8f5", "#2f5578"),
    "warning": ("#332a12", "#f3d98c", "#7a6224"),
    "error": ("#3a1a18", "#f6b8b1", "#7d332c"),
}


def summarise(text: str) -> str:
    """The first line (or sentence) of ``text``, at most SUMMARY_CHARS characters."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    sentence = re.split(r"(?<=[.!?])\s", first, maxsplit=1)[0]
    return sentence if len(sentence) <= SUMMARY_CHARS else sentence[:SUMMARY_CHARS - 1] + "…"


class MessageBanner(QFrame):
    """A dismissible coloured bar; hidden until :meth:`show_message` is called."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.level = ""
        self._text = ""
        self.label = QLabel()
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.label.setWordWrap(True)  # at most SUMMARY_CHARS characters: two or three lines at worst
        self.details_button = QToolButton()
        self.details_button.setText("Details")
        self.details_button.setCheckable(True)
        self.details_button.setAutoRaise(True)
        self.details_button.setToolTip("Show the whole message")
        self.details_button.toggled.connect(self._show_details)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.clear)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(DETAILS_MAX_HEIGHT)
        self.details.hide()
        row = QHBoxLayout()
        row.addWidget(self.label, 1)
        row.addWidget(self.details_button, 0, Qt.AlignTop)
        row.addWidget(close, 0, Qt.AlignTop)
        column = QVBoxLayout(self)
        column.setContentsMargins(10, 4, 4, 4)
        column.setSpacing(2)
        column.addLayout(row)
        column.addWidget(self.details)
        self.hide()

    def show_message(self, text: str, level: str = "info") -> None:
        self.level = level
        self._text = text
        summary = summarise(text)
        self.label.setText(summary)
        self.label.setToolTip(text if summary != text.strip() else "")
        self.details.setPlainText(text)
        self.details_button.setVisible(summary != text.strip())
        self.details_button.setChecked(False)
        self._apply_colours()
        self.show()

    def _show_details(self, shown: bool) -> None:
        self.details.setVisible(shown)
        self.details_button.setText("Hide details" if shown else "Details")

    def _apply_colours(self) -> None:
        if not self.level:
            return
        dark = self.palette().color(QPalette.Window).lightness() < 128
        background, foreground, border = (_DARK if dark else _LIGHT)[self.level]
        sheet = (f"MessageBanner {{ background: {background}; border: 1px solid {border}; "
                 f"border-radius: 4px; }} QLabel, QToolButton {{ color: {foreground}; }}")
        if sheet != self.styleSheet():  # setting a style sheet sends a palette change: avoid a loop
            self.setStyleSheet(sheet)

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt override): the system switched light/dark
        if event.type() == QEvent.PaletteChange:
            self._apply_colours()
        super().changeEvent(event)

    def text(self) -> str:
        """The whole message ("" when hidden)."""
        return self._text

    def clear(self) -> None:
        self.level = ""
        self._text = ""
        self.label.clear()
        self.details.clear()
        self.details_button.setChecked(False)
        self.hide()
