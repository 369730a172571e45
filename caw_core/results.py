"""The evaluation's results store: one JSON file per (model, dataset, attack, eps, norm, n, seed, protocol).

Each file holds the per-image outcome of one attack on the fixed image subset
of one dataset: ``indices`` (positions in the dataset) and ``correct``, where
``correct[i]`` is True (still classified correctly after the attack), False
(broken) or None (not attacked, because the image was already misclassified
clean or broken by an earlier, cheaper attack of the chain). Storing the
per-image flags, not just the accuracy, makes both exact:

- the worst case over attacks: an image is robust iff every attack left it
  correct (``None`` counts as broken);
- resuming: a file is rewritten after every batch, and a rerun attacks only the
  images whose flag it still needs and does not have.

Results are tied to the exact weights and the exact attack: the key holds
``weights`` (:func:`weights_id`, a sha256 of the weights files' content) and
``config_id`` (a hash of the attack's full configuration and the protocol).
A file whose weights or configuration differ from the current ones is stale:
the evaluation recomputes it (and replaces it) instead of reusing it. The
file name says which model (by label and path), dataset, attack and setting;
the key inside must match the name it is stored under.

Files are written atomically (:mod:`caw_core.io`), so an interrupted run never
leaves a half-written file; temporaries a killed run left are removed when the
same result is written again. Reading validates every field's type; a
malformed result file raises :class:`ResultsFileError` naming the file.
``accuracy`` = (number of True) / n.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence, Union

from caw_core.io import atomic_write_json

if TYPE_CHECKING:
    from caw_core.models import ModelSpec

LOGGER = logging.getLogger(__name__)
KIND = "caw-eval-result"
FORMAT_VERSION = 2
MAX_RESULT_BYTES = 256 * 1024 * 1024  # a 10M-image result is ~100 MB
_HASH_CHUNK = 1 << 20


class ResultsFileError(ValueError):
    """A results file is unreadable or not what its name says; the message names the file."""


class OutdatedResultError(ResultsFileError):
    """A result file written by an older caw (another ``format_version``): not an error, just not comparable."""


def model_id(spec: ModelSpec) -> str:
    """A file-name-safe id of a model: its label plus a hash of where it comes from.

    The hash tells apart two checkpoints whose folders share a name
    (``runs/a/step_100`` and ``runs/b/step_100``). What the weights *are* is
    :func:`weights_id`.
    """
    checkpoint = str(Path(spec.checkpoint).resolve()) if spec.checkpoint else None
    source = json.dumps([spec.name, spec.pretrained, checkpoint])
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", spec.label()).strip("-")
    return f"{slug}-{hashlib.sha256(source.encode()).hexdigest()[:8]}"


_FILE_HASHES: dict[tuple, str] = {}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, streamed; cached per (path, inode, size, mtime) for this process."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path}: expected a regular weights file")
    cache_key = (str(Path(path).resolve()), info.st_ino, info.st_size, info.st_mtime_ns)
    if cache_key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
                digest.update(chunk)
        _FILE_HASHES[cache_key] = digest.hexdigest()
    return _FILE_HASHES[cache_key]


def weights_files(spec: ModelSpec) -> list[Path]:
    """The local files whose bytes are the model of ``spec``: base weights file (local or toy), checkpoint tower."""
    from caw_core.models.loading import TOY_MODEL, toy_weights_path

    files = []
    if spec.name == TOY_MODEL:
        files.append(toy_weights_path())
    elif spec.pretrained and Path(spec.pretrained).is_file():
        files.append(Path(spec.pretrained))
    if spec.checkpoint:
        from caw_core.models.checkpoint import MODEL_FILE, resolve_checkpoint

        files.append(resolve_checkpoint(spec.checkpoint) / MODEL_FILE)
    return files


def weights_id(spec: ModelSpec) -> str:
    """What the weights of ``spec`` are: sha256 over its weights files' content (and the architecture/tag).

    Two specs get the same id exactly when they load the same bytes; continuing
    a run (a new latest checkpoint) or overwriting weights changes it.
    """
    parts = [spec.name, "" if spec.pretrained and Path(spec.pretrained).is_file() else str(spec.pretrained)]
    parts += [file_sha256(path) for path in weights_files(spec)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def config_id(config: dict[str, Any]) -> str:
    """A short hash of an attack/protocol configuration (a JSON-able dict)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def versions() -> dict[str, str]:
    """Versions of what produced a result: torch, open_clip, pyautoattack, caw."""
    import open_clip
    import pyautoattack
    import torch

    import caw_core

    return {"torch": torch.__version__, "open_clip": open_clip.__version__,
            "pyautoattack": pyautoattack.__version__, "caw": caw_core.__version__}


@dataclass(frozen=True)
class ResultKey:
    """What one results file is about. ``eps`` in units of 1/255; ``n`` an int or ``"all"``.

    ``weights``/``config_id`` say which exact weights and attack configuration
    produced it; they are checked, not part of the file name (a re-evaluated
    model replaces its stale file).
    """

    model_id: str
    dataset: str
    attack: str
    eps: float
    norm: str
    n: Union[int, str]
    seed: int
    protocol: str = "caw"
    weights: str = ""
    config_id: str = ""

    def filename(self) -> str:
        # repr(float) round-trips exactly: eps 1.0000001 and eps 1 never share a file
        return (f"{self.model_id}__{self.dataset}__{self.attack}__{self.norm}-eps{float(self.eps)!r}"
                f"__n{self.n}__seed{self.seed}__{self.protocol}.json")

    def setting(self) -> tuple:
        """The evaluation setting shared by the cells of one table (with :attr:`protocol`)."""
        return (self.norm, self.eps, self.n, self.seed)


@dataclass
class Result:
    key: ResultKey
    model: dict[str, Any]  # the ModelSpec fields and its label
    indices: list[int]
    correct: list[Optional[bool]]
    complete: bool = False
    seconds: float = 0.0  # attack time summed over all runs that filled this file
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return sum(c is True for c in self.correct) / max(len(self.correct), 1)

    @property
    def vanilla(self) -> bool:
        """A base model, not fine-tuned by us (no checkpoint)."""
        return not self.model.get("checkpoint")

    def to_json(self) -> dict[str, Any]:
        return {"kind": KIND, "format_version": FORMAT_VERSION, "key": asdict(self.key), "model": self.model,
                "accuracy": self.accuracy, "complete": self.complete, "seconds": self.seconds,
                "config": self.config, "versions": self.versions, "indices": self.indices,
                "correct": self.correct}

    @classmethod
    def from_json(cls, payload: Any) -> "Result":
        """The result in ``payload``; ValueError saying which field is missing or of the wrong type."""
        if not isinstance(payload, dict) or payload.get("kind") != KIND:
            raise ValueError("not a caw evaluation result")
        _expect(payload, "format_version", int)
        if payload["format_version"] != FORMAT_VERSION:
            raise OutdatedResultError(f"format_version {payload['format_version']} (this caw reads "
                                      f"{FORMAT_VERSION}; rerun the evaluation)")
        key = _expect(payload, "key", dict)
        types = {"model_id": str, "dataset": str, "attack": str, "eps": (int, float), "norm": str,
                 "n": (int, str), "seed": int, "protocol": str, "weights": str, "config_id": str}
        for name in (f.name for f in fields(ResultKey)):
            _expect(key, name, types[name], where="key.")
        if set(key) - set(types):
            raise ValueError(f"unknown key fields {sorted(set(key) - set(types))}")
        model = _expect(payload, "model", dict)
        _expect(model, "label", str, where="model.")
        indices = _expect(payload, "indices", list)
        correct = _expect(payload, "correct", list)
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in indices):
            raise ValueError("indices: expected non-negative integers")
        if not all(c is None or isinstance(c, bool) for c in correct):
            raise ValueError("correct: expected true, false or null per image")
        if len(indices) != len(correct):
            raise ValueError("indices and correct flags differ in length")
        return cls(ResultKey(**{**key, "eps": float(key["eps"])}), model, list(indices), list(correct),
                   _expect(payload, "complete", bool), float(_expect(payload, "seconds", (int, float))),
                   _expect(payload, "config", dict, optional=True) or {},
                   _expect(payload, "versions", dict, optional=True) or {})


def _expect(payload: dict, name: str, kinds, where: str = "", optional: bool = False):
    if name not in payload:
        if optional:
            return None
        raise ValueError(f"missing field {where}{name}")
    value = payload[name]
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        wanted = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"field {where}{name}: expected {wanted}, got {type(value).__name__}")
    return value


def result_path(out_dir: str | Path, key: ResultKey) -> Path:
    return Path(out_dir) / key.filename()


def save_result(out_dir: str | Path, result: Result) -> Path:
    path = result_path(out_dir, result.key)
    atomic_write_json(path, result.to_json())
    return path


def remove_temporaries(out_dir: str | Path, key: ResultKey) -> list[Path]:
    """Delete the temporary files a killed writer of ``key``'s file left (``.<name>.*.tmp``)."""
    removed = []
    for tmp in Path(out_dir).glob(f".{glob_escape(key.filename())}.*.tmp"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _read_json(path: Path) -> Any:
    """The JSON in ``path``, read only if it is a regular file of bounded size (no FIFO, no device)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read it ({exc.strerror})") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ResultsFileError(f"{path}: expected a regular file")
    if info.st_size > MAX_RESULT_BYTES:
        raise ResultsFileError(f"{path}: {info.st_size} bytes, more than a results file can hold")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsFileError(f"{path}: expected a caw results JSON file ({exc})") from exc


def load_result(path: str | Path) -> Result:
    """The result stored at ``path``; :class:`ResultsFileError` naming the file if it is not a valid one."""
    path = Path(path)
    try:
        result = Result.from_json(_read_json(path))
    except OutdatedResultError as exc:
        raise OutdatedResultError(f"{path}: {exc}") from exc
    except ResultsFileError:
        raise
    except ValueError as exc:
        raise ResultsFileError(f"{path}: {exc}") from exc
    if result.key.filename() != path.name:
        raise ResultsFileError(f"{path}: holds the result {result.key.filename()} (renamed or copied?); "
                               "move it away")
    return result


def find_result(out_dir: str | Path, key: ResultKey) -> Optional[Result]:
    """The stored result of ``key``'s slot, or None; a stale one (other weights/config) is returned as is."""
    path = result_path(out_dir, key)
    return load_result(path) if os.path.lexists(path) else None


def _is_ours(path: Path) -> bool:
    """A JSON file that claims to be a caw result, or cannot be told apart from a broken one (not an object)."""
    try:
        payload = _read_json(path)
    except ResultsFileError:
        return True
    return not isinstance(payload, dict) or payload.get("kind") == KIND


def load_results(out_dir: str | Path, models: Optional[Iterable[Union[ModelSpec, str]]] = None,
                 datasets: Optional[Sequence[str]] = None, setting: Optional[Sequence] = None,
                 protocol: Optional[str] = None) -> list[Result]:
    """The result files in ``out_dir``, filtered: the one way the report, the demo and the GUI read results.

    ``models``: ModelSpecs or model ids; ``datasets``: registry names;
    ``setting``: ``(norm, eps, n, seed)``; ``protocol``: a protocol name.
    JSON files of another kind (an exported table) are ignored, files of an
    older caw format are skipped with a logged warning; a malformed result
    file raises :class:`ResultsFileError` naming it.
    """
    ids = None if models is None else {m if isinstance(m, str) else model_id(m) for m in models}
    wanted_setting = None if setting is None else (setting[0], float(setting[1]), setting[2], setting[3])
    results, outdated = [], []
    for path in sorted(Path(out_dir).glob("*.json")):
        try:
            result = load_result(path)
        except OutdatedResultError:
            outdated.append(path.name)
            continue
        except ResultsFileError:
            if _is_ours(path):
                raise
            continue
        key = result.key
        if ((ids is None or key.model_id in ids) and (datasets is None or key.dataset in datasets)
                and (wanted_setting is None or key.setting() == wanted_setting)
                and (protocol is None or key.protocol == protocol)):
            results.append(result)
    if outdated:
        LOGGER.warning("%s: skipped %d result file(s) of an older caw format (%s%s); rerun the evaluation to "
                       "replace them", out_dir, len(outdated), outdated[0], ", ..." if len(outdated) > 1 else "")
    return results
