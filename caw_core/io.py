"""Crash-safe file writing: a reader never sees a half-written file.

Every file caw writes that matters (checkpoints, result JSONs, run configs) goes
through :func:`atomic_write`: the bytes go to a temporary file in the same
folder, are flushed and fsync'd, and the temporary file is renamed over the
target (``os.replace`` is atomic on POSIX and Windows). A crash or a full disk
at any moment leaves either the old file or the new one, never a mix.

A failed write (disk full, permission denied, read-only file system) raises
:class:`StorageError`, an ``OSError`` with the same ``errno`` whose message
names the file and the likely cause; the old file stays as it was and no
temporary file is left behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


_CAUSES = {
    errno.ENOSPC: "no space left on the device (disk full?)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied (operation not permitted)",
    errno.EROFS: "read-only file system",
}


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes owner-only (0600) files; a finished file gets the mode a plain
# open() would give it, so results and checkpoints on a shared box stay readable.
_FILE_MODE = 0o666 & ~_current_umask()


class StorageError(OSError):
    """Writing a file failed; the message names the file and the likely cause (disk full, permissions)."""


def describe_os_error(exc: OSError) -> str:
    """A short human reason for ``exc``: 'no space left on the device (disk full?)', 'permission denied', ..."""
    return _CAUSES.get(exc.errno, exc.strerror or str(exc))


def storage_error(action: str, path: str | os.PathLike, exc: OSError) -> StorageError:
    """A :class:`StorageError` ('cannot write X: disk full?') keeping ``exc``'s errno."""
    if isinstance(exc, StorageError):
        return exc
    error = StorageError(exc.errno, f"cannot {action} {path}: {describe_os_error(exc)}")
    error.filename = os.fspath(path)
    return error


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success fsync and rename it.

    Use it for writers that want a path (``safetensors.torch.save_file``).
    On any exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise storage_error("write", target, exc) from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise storage_error("write", target, exc) from exc
        raise


def atomic_write(target: str | os.PathLike, write: Callable[[Any], None], mode: str = "w") -> None:
    """Write ``target`` atomically; ``write(handle)`` fills the open temp file."""
    with atomic_path(target) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8") as handle:
            write(handle)


def atomic_write_json(target: str | os.PathLike, payload: Any) -> None:
    """Write ``payload`` as indented JSON atomically."""
    atomic_write(target, lambda handle: json.dump(payload, handle, indent=2, sort_keys=True))


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
