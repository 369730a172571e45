"""Entry point of ``caw-gui``: a start-up window at once, the heavy imports in the background, then the app.

Importing torch, open_clip and the caw_core modules takes 10-20 s on a slow
machine. So :func:`main` shows a small start-up window first (no torch
needed), imports those modules in a background thread (plain Python modules,
no Qt: Qt modules are imported in the GUI thread only) while the window shows
which one is loading, and then builds the main window in the GUI thread.

After the event loop ends, :func:`main` waits for worker threads that are
still finishing (a model that was loading when the user quit), so no thread
is destroyed while running.
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import Optional

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QProgressBar, QVBoxLayout, QWidget

from caw_gui.errors import install_excepthook, setup_logging
from caw_gui.theme import apply_theme

# (module, what the user is told is loading); pure-Python/torch modules only -- no Qt here.
HEAVY_MODULES = (
    ("torch", "PyTorch"),
    ("torchvision", "torchvision"),
    ("open_clip", "open_clip"),
    ("open_clip.zero_shot_metadata", "open_clip"),
    ("safetensors.torch", "safetensors"),
    ("caw_core.data", "the datasets"),
    ("caw_core.models", "the models"),
    ("caw_core.attacks.autoattack", "the attacks"),  # the registry imports its attacks lazily; this loads them
    ("caw_core.train", "training"),
    ("caw_core.evaluate", "evaluation"),
)


class Preloader:
    """Imports :data:`HEAVY_MODULES` in a daemon thread; the GUI thread polls :attr:`done` / :attr:`current`."""

    def __init__(self, modules=HEAVY_MODULES):
        self.modules = modules
        self.index = 0
        self.error: Optional[BaseException] = None
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, name="caw-preload", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            for self.index, (module, _) in enumerate(self.modules):
                importlib.import_module(module)
            self.index = len(self.modules)
        except BaseException as exc:  # reported in the GUI thread, which imports again and shows the error
            self.error = exc
        finally:
            self.finished.set()

    def current(self) -> str:
        return self.modules[min(self.index, len(self.modules) - 1)][1]


class StartupWindow(QWidget):
    """The window shown while the heavy parts load: what is loading and how far along."""

    def __init__(self, steps: int):
        super().__init__()
        self.setWindowTitle("caw — starting")
        self.label = QLabel("Starting caw…")
        self.bar = QProgressBar()
        self.bar.setRange(0, steps)
        column = QVBoxLayout(self)
        title = QLabel("<b>caw</b> — robust CLIP with Confidence-Aware Weighting")
        title.setAlignment(Qt.AlignCenter)
        column.addWidget(title)
        column.addWidget(self.label)
        column.addWidget(self.bar)
        self.resize(460, 130)

    def show_progress(self, index: int, what: str) -> None:
        self.bar.setValue(index)
        self.label.setText(f"Loading {what}…")


def main(argv: list[str] | None = None) -> int:
    """Start the app; an optional image path argument opens in the playground."""
    argv = list(sys.argv if argv is None else argv)
    app = QApplication.instance() or QApplication(argv)
    app.setOrganizationName("caw")
    app.setApplicationName("caw-gui")
    apply_theme(app)
    log_problem = setup_logging()
    startup = StartupWindow(len(HEAVY_MODULES))
    startup.show()
    preloader = Preloader()
    preloader.start()
    images = [a for a in argv[1:] if not a.startswith("-")]
    state: dict = {}

    def poll() -> None:
        if not preloader.finished.is_set():
            startup.show_progress(preloader.index, preloader.current())
            return
        timer.stop()
        startup.show_progress(len(HEAVY_MODULES), "the window")
        from caw_gui.main_window import MainWindow  # Qt-side modules: imported in the GUI thread

        window = state["window"] = MainWindow()
        window.closed.connect(app.quit)  # also when it was hidden while a checkpoint was saved
        install_excepthook(window.show_error)
        if log_problem:
            window.show_error(log_problem, "warning")
        window.show()
        startup.close()
        if images:
            window.tabs.setCurrentWidget(window.playground)
            window.playground.open_path(images[0])

    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(poll)
    timer.start()
    status = app.exec()
    from caw_gui.workers.task import Task

    Task.wait_all()  # e.g. a model still loading when the window closed: let it end, never abort it
    return status


if __name__ == "__main__":
    sys.exit(main())
