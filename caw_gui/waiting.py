"""Run the Qt event loop until a condition holds (for tests and the screenshot script).

It spins a real QEventLoop in short slices instead of ``QTest.qWait``: qWait
keeps the GIL while it processes events, which starves worker threads.
"""

from __future__ import annotations

import time
from typing import Callable

from PySide6.QtCore import QEventLoop, QTimer


def wait_for(condition: Callable[[], bool], timeout: float = 90.0, what: str = "condition") -> None:
    """Process events until ``condition()`` is true; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    loop = QEventLoop()
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        QTimer.singleShot(50, loop.quit)
        loop.exec()
