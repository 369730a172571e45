"""Entry point of ``caw-gui``: builds the QApplication and the main window."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from caw_gui.errors import install_excepthook, setup_logging


def main(argv: list[str] | None = None) -> int:
    """Start the app; an optional image path argument opens in the playground."""
    argv = list(sys.argv if argv is None else argv)
    app = QApplication.instance() or QApplication(argv)
    app.setOrganizationName("caw")
    app.setApplicationName("caw-gui")
    log_path = setup_logging()
    from caw_gui.main_window import MainWindow  # after QApplication: widgets need it

    window = MainWindow()
    install_excepthook(window.show_error)
    window.statusBar().showMessage(f"Log: {log_path}", 10_000)
    window.show()
    images = [a for a in argv[1:] if not a.startswith("-")]
    if images:
        window.tabs.setCurrentWidget(window.playground)
        window.playground.open_path(images[0])
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
