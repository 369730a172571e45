"""Crash-safe file writing and hang-free reading: a reader never sees a half-written file.

Every file caw writes that matters (checkpoints, result JSONs, run configs) goes
through :func:`atomic_write`: the bytes go to a temporary file in the same
folder, are flushed and fsync'd, and the temporary file is renamed over the
target (``os.replace`` is atomic on POSIX and Windows). A crash or a full disk
at any moment leaves either the old file or the new one, never a mix.

A failed write (disk full, permission denied, read-only file system) raises
:class:`StorageError`, an ``OSError`` with the same ``errno`` whose message
names the file and the likely cause; the old file stays as it was and no
temporary file is left behind.

Targets: a write replaces only a regular file (or creates one). A symlink at the
target is written *through* (the file it points to is replaced atomically, the
link stays); a folder, FIFO, socket or device at the target is refused with
:class:`BadFileError`, so ``--out /dev/full`` or ``--out /tmp`` never turns a
device or a folder into something else.

Reading: :func:`read_regular` opens only regular files, without blocking (a
FIFO where a file is expected is refused instead of waiting forever) and reads
at most a bound (``/dev/zero`` or a huge file cannot exhaust memory);
:func:`require_regular` checks a path before a library (safetensors) opens it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator


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
_DIR_MODE = 0o777 & ~_current_umask()


def plain_permissions(path: str | os.PathLike) -> None:
    """Give ``path`` the mode a plain ``open()`` (file) or ``mkdir`` (folder) would have (mkdtemp/mkstemp use 0700/0600)."""
    os.chmod(path, _DIR_MODE if os.path.isdir(path) else _FILE_MODE)


class BadFileError(ValueError):
    """A file is not what was expected (a folder, a FIFO, a device, too large, malformed); the message says which."""


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
    target = writable_target(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise storage_error("write", target, exc) from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        plain_permissions(tmp)
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


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def writable_target(target: str | os.PathLike) -> Path:
    """The path an atomic write will replace: ``target``, or the file a symlink at ``target`` points to.

    Raises :class:`BadFileError` when a folder, FIFO, socket or device is there.
    """
    target = Path(target)
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise storage_error("write", target, exc) from exc
    if not stat.S_ISREG(mode):
        raise BadFileError(f"cannot write {target}: it is {_kind(mode)}; expected a file path "
                           "(caw replaces only regular files)")
    return target


def require_regular(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` if it names a regular file (symlinks followed); else :class:`BadFileError` / FileNotFoundError.

    stat() never blocks, so this is safe to call on a FIFO before a library opens the path.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise BadFileError(f"cannot read {what} {path}: {describe_os_error(exc)}") from exc
    if not stat.S_ISREG(mode):
        raise BadFileError(f"{what} {path} is {_kind(mode)}; expected a regular file")
    return path


def open_regular(path: str | os.PathLike, what: str = "file", append: bool = False) -> BinaryIO:
    """Open the regular file ``path`` (binary; for reading, or for appending, creating it) without blocking.

    O_NONBLOCK makes opening a FIFO return at once; the descriptor is then refused
    unless fstat says it is a regular file (a FIFO, device, socket or folder is not).
    """
    path = Path(path)
    flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT) if append else os.O_RDONLY
    try:
        fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0), 0o666)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise BadFileError(f"cannot {'write' if append else 'read'} {what} {path}: {describe_os_error(exc)}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise BadFileError(f"{what} {path} is {_kind(mode)}; expected a regular file")
    return os.fdopen(fd, "ab" if append else "rb")


def read_regular(path: str | os.PathLike, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of the regular file ``path``, refusing other kinds and files over ``max_bytes``.

    At most ``max_bytes + 1`` bytes are read, so a file that grows or lies about its size is still bounded.
    """
    with open_regular(path, what) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BadFileError(f"{what} {path} is larger than the {max_bytes} bytes expected of it")
    return data


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
