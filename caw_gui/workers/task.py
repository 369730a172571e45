"""Run a job's record iterator in a QThread with pause, graceful stop and cancel."""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Iterator, Protocol

from PySide6.QtCore import QObject, QThread, Signal

log = logging.getLogger("caw_gui")


class Job(Protocol):
    def records(self) -> Iterator[dict]: ...

    def stop(self) -> None: ...


def user_message(exc: BaseException) -> str:
    """A one-paragraph message for the user: caw_core errors already say what to do."""
    text = str(exc).strip()
    if isinstance(exc, (ValueError, FileNotFoundError, RuntimeError, KeyError, OSError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Worker(QObject):
    record = Signal(object)
    failed = Signal(str, str)  # user message, traceback
    finished = Signal(str)  # "done", "cancelled" or "failed"

    def __init__(self, job: Job):
        super().__init__()
        self.job = job
        self.running = threading.Event()
        self.running.set()
        self.cancelled = threading.Event()

    def run(self) -> None:
        status = "done"
        iterator = None
        try:
            iterator = iter(self.job.records())
            for record in iterator:
                self.record.emit(record)
                while not self.running.wait(0.1):  # paused: wait between records
                    if self.cancelled.is_set():
                        break
                if self.cancelled.is_set():
                    status = "cancelled"
                    break
        except Exception as exc:  # any failure is reported, never raised into Qt
            log.exception("background job %s failed", type(self.job).__name__)
            self.failed.emit(user_message(exc), traceback.format_exc())
            status = "failed"
        finally:
            if iterator is not None and hasattr(iterator, "close"):
                try:
                    iterator.close()
                except Exception:  # closing a failed generator must not hide the first error
                    log.exception("closing the job's iterator failed")
            self.finished.emit(status)


class Task(QObject):
    """One job in one QThread. Connect to the signals, then :meth:`start`.

    ``record(dict)`` for each record, ``failed(message, traceback)`` if the job
    raised, ``finished(status)`` at the end (after the thread stopped).
    """

    record = Signal(object)
    failed = Signal(str, str)
    finished = Signal(str)

    def __init__(self, job: Job, parent=None):
        super().__init__(parent)
        self.job = job
        self._thread = QThread()
        self._worker = _Worker(job)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.record.connect(self.record)
        self._worker.failed.connect(self.failed)
        self._worker.finished.connect(self._on_finished)
        self.status = ""

    def start(self) -> None:
        self._thread.start()

    def _on_finished(self, status: str) -> None:
        self._thread.quit()
        self._thread.wait()
        self.status = status
        self.finished.emit(status)

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def is_paused(self) -> bool:
        return not self._worker.running.is_set()

    def pause(self) -> None:
        self._worker.running.clear()

    def resume(self) -> None:
        self._worker.running.set()

    def stop(self) -> None:
        """Graceful stop: the job finishes its current unit of work (training saves a checkpoint)."""
        self.job.stop()
        self.resume()

    def cancel(self) -> None:
        """Abandon the job after its current record."""
        self._worker.cancelled.set()
        self.resume()

    def wait(self, msecs: int) -> bool:
        """Block until the thread ends (used on shutdown only)."""
        return self._thread.wait(msecs)
