"""One writer per run folder: an advisory lock file holding the owner's pid.

Threat model: two ``caw-core train`` processes (or a CLI run and a GUI run)
pointed at the same ``runs/<name>`` by mistake. Without a lock the second
overwrites ``config.json``, appends to ``metrics.jsonl`` and its pruning and
temporary-file clean-up delete the first one's checkpoints. The lock is
``runs/<name>/.lock``, taken with ``fcntl.flock(LOCK_EX | LOCK_NB)``:

- the kernel releases it when the owner exits in any way (SIGKILL, power loss
  of a local machine), so a lock left by a dead process is never honoured --
  stale-lock detection needs no pid probing or timeouts;
- the owner writes its pid and host into the file, so a refused writer is told
  who holds the run;
- on release the file is removed; a writer that raced with the removal checks
  that the file it locked is still the one at the path, and retries otherwise.

``flock`` is POSIX; where ``fcntl`` does not exist (Windows) no lock is taken
and a run folder relies on the user's care, as before. Network file systems
honour ``flock`` only if they implement it (NFSv4 does; some FUSE mounts do not).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Optional

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".lock"


class RunLockedError(RuntimeError):
    """Another live process is writing this run folder."""


class RunLock:
    """The exclusive lock of one run folder; ``release()`` (or exiting the process) frees it."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        """Take the lock or raise :class:`RunLockedError` naming the holder; creates the run folder."""
        if fcntl is None or self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise RunLockedError(
                    f"run folder {self.path.parent} is being written by {owner}; wait for it to finish, stop it, "
                    "or choose another --name") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the previous owner removed the file between our open and our lock: try again
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and unlock (idempotent)."""
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        finally:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
