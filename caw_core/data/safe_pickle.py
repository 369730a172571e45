"""Refuse dataset pickles that could run code, before anything unpickles them.

CIFAR-10/100 ship as Python pickles and torchvision reads them with
``pickle.load``. Whoever can write to the data root could plant a pickle whose
``GLOBAL``/``STACK_GLOBAL`` opcodes import ``os.system`` (or anything else) and
call it on load. :func:`require_plain_pickle` walks the opcodes with
``pickletools`` (parsing, never executing) and allows only the globals that
numpy arrays, dicts, lists and strings need; anything else -- another global,
a global whose name is not a literal right before it, extension codes or
persistent ids -- raises :class:`DatasetError`.
"""

from __future__ import annotations

import pickletools
from pathlib import Path

from caw_core.data.checked import require_regular_files
from caw_core.data.registry import DatasetError

ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"), ("__builtin__", "object"), ("builtins", "object"),
})
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
_FORBIDDEN_OPS = {"EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID"}


def require_plain_pickle(path: Path) -> None:
    """Raise DatasetError unless the pickle at ``path`` only references :data:`ALLOWED_GLOBALS`."""
    require_regular_files(Path(path).parent, [Path(path).name])  # a FIFO would block the read forever
    with open(path, "rb") as handle:
        data = handle.read()
    recent: list[str] = []  # string literals just pushed (from the stream or the memo), oldest first
    top = None  # the string on top of the stack when the last opcode pushed one
    memo: dict[int, object] = {}
    try:
        for opcode, arg, _ in pickletools.genops(data):
            name = opcode.name
            if name in _FORBIDDEN_OPS:
                _refuse(path, f"opcode {name}")
            if name in ("GLOBAL", "INST"):
                module, qualname = str(arg).split(" ", 1)
                _check(path, module, qualname)
            elif name == "STACK_GLOBAL":
                if len(recent) < 2:
                    _refuse(path, "a global whose name is computed")
                _check(path, recent[-2], recent[-1])
            if name in _STRING_OPS or name in ("BINGET", "LONG_BINGET", "GET"):
                top = (arg if isinstance(arg, str) else arg.decode("latin1")) if name in _STRING_OPS else memo.get(int(arg))
                recent = recent + [top] if isinstance(top, str) else []
            elif name == "MEMOIZE":
                memo[len(memo)] = top
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = top
            else:
                recent, top = [], None
    except DatasetError:
        raise
    except Exception as exc:  # a truncated or garbled file
        raise DatasetError(f"{path} is not a readable pickle ({exc}); re-download the dataset") from exc


def _check(path: Path, module: str, qualname: str) -> None:
    if (module, qualname) not in ALLOWED_GLOBALS:
        _refuse(path, f"a reference to {module}.{qualname}")


def _refuse(path: Path, what: str) -> None:
    raise DatasetError(f"{path} contains {what}, which a CIFAR batch never does; refusing to unpickle it "
                       "(the file may have been tampered with -- re-download the dataset)")
