"""The run-folder layout, read side: list runs, validate them, find checkpoints, load curves, rename, delete.

A run is a folder ``<runs_dir>/<name>/`` written by :class:`caw_core.train.Trainer`::

    config.json                 the TrainConfig (method, data, eps, ...)
    metrics.jsonl               one JSON record per step ({"event": "step", "step", "total_steps", losses, ...})
    checkpoints/latest.json     {"step", "folder"}: the newest complete checkpoint
    checkpoints/best.json       same shape: the best training robust accuracy so far
    checkpoints/step_NNNNNNNN/  model.safetensors, trainer.json, trainer.safetensors

A run's *status*: ``finished`` (its latest checkpoint is at the last step), ``partial`` (a checkpoint before the
last step: it can be resumed) or ``broken`` (no usable checkpoint, or a config or pointer that cannot be read);
a broken run carries a one-line ``problem`` in the user's words and is never offered as a model. Listing never
raises: an unreadable folder is listed as broken. Nothing here imports torch, so the GUI lists runs at once.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from caw_core.io import BadFileError, atomic_write_json, open_regular, read_regular
from caw_core.typed_json import MAX_JSON_BYTES, parse_json

MODEL_FILE = "model.safetensors"
FINISHED, PARTIAL, BROKEN = "finished", "partial", "broken"


@dataclass(frozen=True)
class RunInfo:
    """What the run list shows about one run folder. ``eps`` is in units of 1/255; ``modified`` a Unix time."""

    path: Path
    status: str
    problem: str = ""
    method: str = ""
    data: str = ""
    eps: Optional[float] = None
    step: int = 0
    total_steps: Optional[int] = None
    modified: float = 0.0

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def usable(self) -> bool:
        """It has a checkpoint that can be loaded as a model or resumed."""
        return self.status != BROKEN


def _read_json(path: Path, what: str) -> dict:
    """A JSON object from the regular file ``path`` (bounded, never blocking on a FIFO); ValueError with a
    message in the user's words otherwise."""
    try:
        data = read_regular(path, MAX_JSON_BYTES, what)
    except FileNotFoundError:
        raise ValueError(f"{what} is missing") from None
    except BadFileError as exc:
        raise ValueError(f"{what} cannot be read ({exc})") from None
    try:
        payload = parse_json(data, what)
    except BadFileError:
        raise ValueError(f"{what} is damaged (not readable JSON)") from None
    if not isinstance(payload, dict):
        raise ValueError(f"{what} is damaged (not a JSON object)")
    return payload


def _pointer(run_dir: Path, which: str) -> tuple[int, Path]:
    """(step, folder) of ``checkpoints/<which>.json``; ValueError naming what is wrong."""
    what = "the latest checkpoint pointer" if which == "latest" else f"the {which} checkpoint pointer"
    payload = _read_json(run_dir / "checkpoints" / f"{which}.json", f"{what} (checkpoints/{which}.json)")
    step, folder = payload.get("step"), payload.get("folder")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0 or not isinstance(folder, str) \
            or Path(folder).name != folder or folder in ("", ".", ".."):
        raise ValueError(f"{what} (checkpoints/{which}.json) is damaged (no step or folder)")
    path = run_dir / "checkpoints" / folder
    if not (path / MODEL_FILE).is_file():
        raise ValueError(f"the checkpoint it names ({folder}) has no weights file")
    return step, path


def _last_total_steps(run_dir: Path) -> Optional[int]:
    """``total_steps`` of the last readable metrics record, or None."""
    total = None
    for record in load_history(run_dir):
        value = record.get("total_steps")
        if isinstance(value, int) and not isinstance(value, bool):
            total = value
    return total


def inspect_run(run_dir: str | Path) -> RunInfo:
    """Validate one run folder and summarise it (never raises)."""
    run_dir = Path(run_dir)
    try:
        modified = run_dir.stat().st_mtime
    except OSError:
        return RunInfo(run_dir, BROKEN, "the folder cannot be read")
    try:
        config = _read_json(run_dir / "config.json", "its settings file (config.json)")
    except ValueError as exc:
        return RunInfo(run_dir, BROKEN, f"not a caw run: {exc}", modified=modified)
    eps = config.get("eps")
    summary = dict(method=str(config.get("method", "")), data=str(config.get("data", "")),
                   eps=float(eps) if isinstance(eps, (int, float)) and math.isfinite(eps) else None,
                   modified=modified)
    try:
        step, _ = _pointer(run_dir, "latest")
    except ValueError as exc:
        reason = ("no checkpoint was saved (the run stopped before its first save)"
                  if not (run_dir / "checkpoints" / "latest.json").exists() else str(exc))
        return RunInfo(run_dir, BROKEN, reason, **summary)
    total = _last_total_steps(run_dir)
    status = FINISHED if total is not None and step >= total else PARTIAL
    return RunInfo(run_dir, status, "", step=step, total_steps=total, **summary)


def list_runs(runs_dir: str | Path) -> list[RunInfo]:
    """Every run folder under ``runs_dir`` (hidden ones aside), newest first; [] when the folder is unreadable."""
    root = Path(runs_dir)
    try:
        entries = [entry for entry in root.iterdir() if not entry.name.startswith(".") and entry.is_dir()]
    except OSError:
        return []
    runs = [inspect_run(entry) for entry in entries]
    return sorted(runs, key=lambda run: run.modified, reverse=True)


def latest_usable(runs_dir: str | Path) -> Optional[RunInfo]:
    """The newest run that is not broken (what a model chooser may pre-select), or None."""
    return next((run for run in list_runs(runs_dir) if run.usable), None)


def find_checkpoint(run_dir: str | Path, which: str = "latest") -> Path:
    """The step folder of the run's ``latest`` or ``best`` checkpoint (best falls back to latest).

    Raises ValueError with a message naming the run and what is wrong.
    """
    run_dir = Path(run_dir)
    if which not in ("latest", "best"):
        raise ValueError(f"which must be 'latest' or 'best', got {which!r}")
    try:
        if which == "best" and (run_dir / "checkpoints" / "best.json").exists():
            return _pointer(run_dir, "best")[1]
        return _pointer(run_dir, "latest")[1]
    except ValueError as exc:
        raise ValueError(f"run {run_dir.name} has no usable checkpoint: {exc}") from None


def load_history(run_dir: str | Path) -> list[dict]:
    """The step records of ``metrics.jsonl`` in file order; damaged lines (a crash mid-write) are skipped.

    Only a regular file is read (a FIFO or device there gives no history instead of a hang).
    """
    try:
        with open_regular(Path(run_dir) / "metrics.jsonl", "metrics") as handle:
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except (OSError, BadFileError):
        return []
    records = []
    for line in lines:
        try:
            record = parse_json(line, "metrics line")
        except BadFileError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), (int, float)):
            records.append(record)
    return records


def _check_run_folder(run_dir: Path) -> None:
    if not run_dir.is_dir() or not ((run_dir / "config.json").exists() or (run_dir / "checkpoints").is_dir()):
        raise ValueError(f"{run_dir} is not a caw run folder (it has neither config.json nor checkpoints/)")


def rename_run(run_dir: str | Path, new_name: str) -> Path:
    """Rename a run folder in place (its config's ``name`` follows); returns the new path.

    ValueError when the name is not a plain folder name or is taken.
    """
    run_dir = Path(run_dir)
    _check_run_folder(run_dir)
    new_name = new_name.strip()
    if not new_name or Path(new_name).name != new_name or new_name in (".", "..") or new_name.startswith("."):
        raise ValueError(f"a run name must be a plain folder name (no '/', not starting with '.'), got {new_name!r}")
    target = run_dir.parent / new_name
    if target.exists():
        raise ValueError(f"a run named {new_name!r} already exists")
    os.rename(run_dir, target)
    config_path = target / "config.json"
    try:
        config = _read_json(config_path, "config.json")
    except ValueError:
        return target  # a broken run keeps its broken config; the folder name is what counts
    atomic_write_json(config_path, {**config, "name": new_name})
    return target


def delete_run(run_dir: str | Path) -> None:
    """Delete a run folder and everything in it (only a folder that looks like a caw run)."""
    run_dir = Path(run_dir)
    _check_run_folder(run_dir)
    shutil.rmtree(run_dir)
