"""Run a job's record iterator in its own thread, with pause, graceful stop and cancel.

Public interface (used by every view; keep it stable):

``Task(job, parent=None)``
    ``job.records()`` returns an iterator of dict records (a caw_core generator);
    ``job.stop()`` is optional: a graceful stop (training saves a checkpoint).
    Without it, :meth:`Task.stop` cancels.
Signals (delivered in the GUI thread)
    ``record(dict)`` per record; ``failed(message, traceback)`` when the job raised;
    ``paused(bool)`` when a pause takes effect (True) or ends (False);
    ``finished(status)`` once the thread has ended: "done", "stopped", "cancelled" or "failed".
Methods
    ``start()``, ``pause()``, ``resume()``, ``stop()``, ``cancel()``, ``is_running()``,
    ``wait(msecs)`` (blocks; for scripts and tests), and the class method
    ``Task.wait_all(msecs)`` which the app calls after its event loop ends.

The thread runs the iterator in ``QThread.run`` itself, so it ends on its own
when the job does: nothing has to be delivered to it from the GUI thread,
and the GUI thread never blocks waiting for it (the old design needed a
queued ``quit()`` from the very thread that was blocked in ``wait()``, which
froze the window for 30 s on quit). Running threads are kept in a class-level
set until they end, so a thread is never destroyed while running, whatever
happens to the view that started it.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import ClassVar, Iterator, Protocol

from PySide6.QtCore import QObject, QThread, Signal

log = logging.getLogger("caw_gui")


class Job(Protocol):
    def records(self) -> Iterator[dict]: ...


def user_message(exc: BaseException) -> str:
    """A one-paragraph message for the user: caw_core errors already say what to do."""
    text = str(exc).strip()
    if isinstance(exc, (ValueError, FileNotFoundError, RuntimeError, KeyError, OSError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Runner(QThread):
    """The thread: iterates the job, emitting each record; pauses between records."""

    record = Signal(object)
    failed = Signal(str, str)
    paused = Signal(bool)

    def __init__(self, job: Job):
        super().__init__()
        self.job = job
        self.running = threading.Event()
        self.running.set()
        self.cancelled = threading.Event()
        self.status = "done"

    def _wait_while_paused(self) -> None:
        if self.running.is_set():
            return
        self.paused.emit(True)
        while not self.running.wait(0.05) and not self.cancelled.is_set():
            pass
        self.paused.emit(False)

    def run(self) -> None:  # in the worker thread
        iterator = None
        try:
            iterator = iter(self.job.records())
            for record in iterator:
                self.record.emit(record)
                self._wait_while_paused()
                if self.cancelled.is_set():
                    self.status = "cancelled"
                    break
        except Exception as exc:  # any failure is reported, never raised into Qt
            log.exception("background job %s failed", type(self.job).__name__)
            self.failed.emit(user_message(exc), traceback.format_exc())
            self.status = "failed"
        finally:
            if iterator is not None and hasattr(iterator, "close"):
                try:
                    iterator.close()
                except Exception:  # closing a failed generator must not hide the first error
                    log.exception("closing the job's iterator failed")


class Task(QObject):
    """One job in one thread. Connect to the signals, then :meth:`start` (see the module docstring)."""

    record = Signal(object)
    failed = Signal(str, str)
    paused = Signal(bool)
    finished = Signal(str)

    _active: ClassVar[set["_Runner"]] = set()

    def __init__(self, job: Job, parent=None):
        super().__init__(parent)
        self.job = job
        self.status = ""
        self._stopping = False
        self._runner = _Runner(job)
        self._runner.record.connect(self.record)
        self._runner.failed.connect(self.failed)
        self._runner.paused.connect(self.paused)
        self._runner.finished.connect(self._on_finished)

    def start(self) -> None:
        Task._active.add(self._runner)
        self._runner.start()

    def _on_finished(self) -> None:
        runner = self._runner
        runner.wait()  # QThread.finished comes just before the thread returns
        Task._active.discard(runner)
        status = runner.status
        if status == "done" and self._stopping:
            status = "stopped"
        self.status = status
        self.finished.emit(status)

    def is_running(self) -> bool:
        return self._runner.isRunning()

    def pause(self) -> None:
        """Pause after the current record (training: between steps)."""
        self._runner.running.clear()

    def resume(self) -> None:
        self._runner.running.set()

    def stop(self) -> None:
        """Graceful stop: the job finishes its current unit of work (training saves a checkpoint)."""
        stop = getattr(self.job, "stop", None)
        if stop is None:
            self.cancel()
            return
        self._stopping = True
        stop()
        self.resume()

    def cancel(self) -> None:
        """Abandon the job after its current record."""
        self._runner.cancelled.set()
        self.resume()

    def wait(self, msecs: int = -1) -> bool:
        """Block until the thread ends (scripts and tests; the GUI waits through ``finished``)."""
        return self._runner.wait(msecs) if msecs >= 0 else self._runner.wait()

    @classmethod
    def wait_all(cls, msecs: int = -1) -> bool:
        """Block until every running task's thread has ended (after the event loop, before the process exits)."""
        return all(runner.wait(msecs) if msecs >= 0 else runner.wait() for runner in list(cls._active))
