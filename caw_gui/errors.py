"""Last-resort error handling: unexpected exceptions are logged and shown, never abort the app."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Callable, Optional

from platformdirs import user_log_dir

log = logging.getLogger("caw_gui")
_log_file: Optional[Path] = None


def setup_logging(folder: Optional[Path] = None) -> str:
    """Log to stderr and to ``caw-gui.log`` in ``folder`` (the per-user log folder by default).

    Returns "" when the file log works, otherwise a one-line problem for a banner: the app then
    logs to stderr only, it does not fail to start.
    """
    global _log_file
    log.setLevel(logging.INFO)
    if not any(type(h) is logging.StreamHandler for h in log.handlers):
        log.addHandler(logging.StreamHandler())
    folder = Path(folder) if folder is not None else Path(user_log_dir("caw-gui", "caw"))
    path = folder / "caw-gui.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        return (f"The log folder {folder} cannot be used ({exc.strerror or exc}); messages go to the terminal "
                "only.")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    _log_file = path
    return ""


def log_path() -> Optional[Path]:
    """The log file in use, or None when only stderr is logged to."""
    return _log_file


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
