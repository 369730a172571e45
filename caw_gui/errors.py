"""Last-resort error handling: unexpected exceptions are logged and shown, never abort the app."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Callable

from platformdirs import user_log_dir

log = logging.getLogger("caw_gui")


def setup_logging() -> Path:
    """Log to stderr and to a file in the per-user log folder; returns the file's path."""
    folder = Path(user_log_dir("caw-gui", "caw"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "caw-gui.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.addHandler(logging.StreamHandler())
    log.setLevel(logging.INFO)
    return path


def install_excepthook(show: Callable[[str], None]) -> None:
    """Route uncaught exceptions (e.g. in Qt slots) to the log and to ``show`` instead of aborting."""

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, value, tb)))
        try:
            show(f"Unexpected error: {kind.__name__}: {value}. The app is still usable; details are in the log.")
        except Exception:  # the window itself may be broken; the log has the error
            sys.__excepthook__(kind, value, tb)

    sys.excepthook = hook
