"""Light or dark look, following the system's colour scheme (Qt 6.5+), or ``CAW_GUI_THEME=light|dark``.

The Fusion style is used everywhere; when the scheme is dark, a dark palette
is set (the plots and banners read their colours from the palette, so they
follow). A change of the system scheme while the app runs re-applies it.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette


def wants_dark(app: QGuiApplication) -> bool:
    forced = os.environ.get("CAW_GUI_THEME", "").strip().lower()
    if forced in ("dark", "light"):
        return forced == "dark"
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def dark_palette() -> QPalette:
    palette = QPalette()
    colours = {
        QPalette.Window: "#26282b", QPalette.WindowText: "#e6e6e6", QPalette.Base: "#1c1d1f",
        QPalette.AlternateBase: "#2a2c30", QPalette.ToolTipBase: "#2f3135", QPalette.ToolTipText: "#e6e6e6",
        QPalette.Text: "#e6e6e6", QPalette.Button: "#303236", QPalette.ButtonText: "#e6e6e6",
        QPalette.BrightText: "#ff6b6b", QPalette.Link: "#7ab7ff", QPalette.Highlight: "#2f6db3",
        QPalette.HighlightedText: "#ffffff", QPalette.PlaceholderText: "#8c8c8c",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        palette.setColor(QPalette.Disabled, role, QColor("#7a7a7a"))
    return palette


def apply_theme(app) -> None:
    """Fusion style with a light or dark palette; follows later changes of the system scheme."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if wants_dark(app) else app.style().standardPalette())
    hints = app.styleHints()
    if not getattr(app, "_caw_theme_connected", False):
        hints.colorSchemeChanged.connect(lambda _scheme: apply_theme(app))
        app._caw_theme_connected = True
