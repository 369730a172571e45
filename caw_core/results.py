"""The evaluation's results store: one JSON file per (model, dataset, attack, eps, norm, n, seed).

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

Files are written atomically (:mod:`caw_core.io`), so an interrupted run never
leaves a half-written file. ``accuracy`` = (number of True) / n.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from caw_core.io import atomic_write_json
from caw_core.models import ModelSpec

KIND = "caw-eval-result"
FORMAT_VERSION = 1


def model_id(spec: ModelSpec) -> str:
    """A file-name-safe id of a model: its label plus a hash of where it comes from.

    The hash tells apart two checkpoints whose folders share a name
    (``runs/a/step_100`` and ``runs/b/step_100``).
    """
    checkpoint = str(Path(spec.checkpoint).resolve()) if spec.checkpoint else None
    source = json.dumps([spec.name, spec.pretrained, checkpoint])
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", spec.label()).strip("-")
    return f"{slug}-{hashlib.sha256(source.encode()).hexdigest()[:8]}"


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
    """What one results file is about. ``eps`` in units of 1/255; ``n`` an int or ``"all"``."""

    model_id: str
    dataset: str
    attack: str
    eps: float
    norm: str
    n: int | str
    seed: int

    def filename(self) -> str:
        return (f"{self.model_id}__{self.dataset}__{self.attack}__{self.norm}-eps{self.eps:g}"
                f"__n{self.n}__seed{self.seed}.json")

    def setting(self) -> tuple:
        """The evaluation setting shared by the cells of one table."""
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
    def from_json(cls, payload: dict[str, Any]) -> "Result":
        if payload.get("kind") != KIND:
            raise ValueError("not a caw evaluation result")
        if len(payload["indices"]) != len(payload["correct"]):
            raise ValueError("indices and correct flags differ in length")
        return cls(ResultKey(**payload["key"]), payload["model"], list(payload["indices"]),
                   list(payload["correct"]), bool(payload["complete"]), float(payload["seconds"]),
                   payload.get("config", {}), payload.get("versions", {}))


def result_path(out_dir: str | Path, key: ResultKey) -> Path:
    return Path(out_dir) / key.filename()


def save_result(out_dir: str | Path, result: Result) -> Path:
    path = result_path(out_dir, result.key)
    atomic_write_json(path, result.to_json())
    return path


def load_result(path: str | Path) -> Result:
    with open(path, encoding="utf-8") as handle:
        return Result.from_json(json.load(handle))


def find_result(out_dir: str | Path, key: ResultKey) -> Optional[Result]:
    path = result_path(out_dir, key)
    return load_result(path) if path.is_file() else None


def load_results(out_dir: str | Path) -> list[Result]:
    """Every result file in ``out_dir`` (other JSON files there are ignored)."""
    results = []
    for path in sorted(Path(out_dir).glob("*.json")):
        try:
            results.append(load_result(path))
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            continue
    return results
