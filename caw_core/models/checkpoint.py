"""Checkpoints: weights in safetensors, everything else in JSON, written atomically.

Layout of one training run (open_clip-like)::

    runs/<name>/config.json          the TrainConfig of the run
    runs/<name>/metrics.jsonl        one JSON record per logged step
    runs/<name>/checkpoints/step_00000100/
        model.safetensors            image tower weights (+ base model in metadata)
        trainer.safetensors          optimizer tensors and RNG states
        trainer.json                 step, epoch, optimizer hyper-parameters, metrics
    runs/<name>/checkpoints/latest.json   {"step": 100, "folder": "step_00000100"}
    runs/<name>/checkpoints/best.json     same shape, the best checkpoint so far

A checkpoint folder is written under a temporary name and renamed into place,
so a crash never leaves a half-written checkpoint; ``latest.json`` is replaced
atomically only after the folder exists. Nothing here unpickles: foreign
weights are handled in :mod:`caw_core.models.loading`.

A failed write (disk full, permission denied) raises :class:`CheckpointError`
naming the folder and the cause; the temporary folder is removed and
``latest.json`` keeps pointing at the previous good checkpoint. Temporary
folders left by a killed process (``.step_*.tmp``) are removed by the next save
(one writer per run folder is enforced by :mod:`caw_core.run_lock`).

Reading is defensive: the JSON files are checked against a schema
(:mod:`caw_core.typed_json`; a pointer's folder must be a ``step_NNNNNNNN`` name,
so it cannot point outside the run), weights files must be regular files, and
every tensor must have the model's shape and dtype (float32 as caw writes it;
a float16/int64/bool tensor is refused rather than silently converted).
Step folders and files get the umask's permissions, like a plain ``mkdir``/``open``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from caw_core.io import BadFileError, atomic_write_json, describe_os_error, plain_permissions, require_regular
from caw_core.runs import MODEL_FILE
from caw_core.typed_json import Field, check_object, read_object

TRAINER_TENSORS = "trainer.safetensors"
TRAINER_JSON = "trainer.json"

POINTER_SCHEMA = {"step": Field(int, minimum=0), "folder": Field(str, pattern=r"step_\d{8}")}
TRAINER_SCHEMA = {"step": Field(int, minimum=0), "epoch": Field(int, minimum=0), "optimizer": Field(dict),
                  "extra": Field(dict), "base_model": Field(dict, required=False)}
OPTIMIZER_SCHEMA = {"param_groups": Field(list), "scalars": Field(dict)}


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not fit the model."""


@dataclass
class TrainerState:
    """What resuming needs besides the weights."""

    step: int
    epoch: int
    optimizer: dict
    rng: dict[str, torch.Tensor]
    extra: dict[str, Any]


def _contiguous_cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous()


def _flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, slots in state_dict["state"].items():
        for slot, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{index}/{slot}"] = _contiguous_cpu(value)
            else:
                scalars.setdefault(str(index), {})[slot] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, slot = key.split("/", 2)
            state.setdefault(int(index), {})[slot] = value
    for index, slots in meta["scalars"].items():
        state.setdefault(int(index), {}).update(slots)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    checkpoints_dir: Path,
    image_tower: torch.nn.Module,
    base_model: dict,
    state: TrainerState,
    keep_last: int = 3,
    is_best: bool = False,
) -> Path:
    """Write one checkpoint folder atomically and point ``latest.json`` at it.

    Keeps the ``keep_last`` newest step folders plus the best one.
    """
    checkpoints_dir = Path(checkpoints_dir)
    folder_name = f"step_{state.step:08d}"
    final = checkpoints_dir / folder_name
    previous = latest_pointer(checkpoints_dir)
    kept = (f"; the previous checkpoint ({previous['folder']}) is kept" if previous
            else "; no checkpoint was saved")
    tmp: Optional[Path] = None
    placed = pointed = False
    try:
        checkpoints_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(checkpoints_dir)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder_name}.", suffix=".tmp", dir=checkpoints_dir))
        plain_permissions(tmp)
        weights = {k: _contiguous_cpu(v) for k, v in image_tower.state_dict().items()}
        save_file(weights, str(tmp / MODEL_FILE), metadata={"base_model": json.dumps(base_model), "format": "caw-image-tower-v1"})
        optim_tensors, optim_meta = _flatten_optimizer(state.optimizer)
        rng_tensors = {f"rng/{k}": _contiguous_cpu(v) for k, v in state.rng.items()}
        save_file({**optim_tensors, **rng_tensors}, str(tmp / TRAINER_TENSORS))
        payload = {"step": state.step, "epoch": state.epoch, "optimizer": optim_meta, "extra": state.extra,
                   "base_model": base_model}
        (tmp / TRAINER_JSON).write_text(json.dumps(payload, indent=2), encoding="utf-8")
        for name in (MODEL_FILE, TRAINER_TENSORS, TRAINER_JSON):
            plain_permissions(tmp / name)
            with open(tmp / name, "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_folder(tmp)  # the folder's entries are durable before it is renamed into place
        if final.exists():  # re-saving the same step (e.g. stop right after a periodic save):
            # move the old folder aside first, so the pointer never names a missing folder for long
            trash = Path(tempfile.mkdtemp(prefix=f".{folder_name}.old.", suffix=".tmp", dir=checkpoints_dir))
            os.replace(final, trash / folder_name)
            os.rename(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, final)
        tmp, placed = None, True
        _fsync_folder(checkpoints_dir)
        pointer = {"step": state.step, "folder": folder_name}
        atomic_write_json(checkpoints_dir / "latest.json", pointer)
        pointed = True
        if is_best:
            atomic_write_json(checkpoints_dir / "best.json", pointer)
    except (OSError, SafetensorError) as exc:
        if placed and not pointed and (previous or {}).get("folder") != folder_name:
            shutil.rmtree(final, ignore_errors=True)  # complete but unreferenced: don't leave it behind
        raise CheckpointError(
            f"could not write checkpoint {final}: {_io_reason(exc)}{kept}. "
            "Free some disk space or fix the folder's permissions, then resume the run."
        ) from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    _prune(checkpoints_dir, keep_last)
    return final


def _io_reason(exc: Exception) -> str:
    """'disk full?', 'permission denied', ... for an OSError or a safetensors I/O error ('... (os error 28)')."""
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    match = re.search(r"os error (\d+)", str(exc))
    if match:
        code = int(match.group(1))
        return describe_os_error(OSError(code, os.strerror(code)))
    return str(exc)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_pointer(checkpoints_dir: str | Path, which: str = "latest") -> Optional[dict]:
    """``{which}.json`` ({"step", "folder"}) checked against its schema; None when absent.

    Raises :class:`CheckpointError` naming the file when it is malformed.
    """
    path = Path(checkpoints_dir) / f"{which}.json"
    if not os.path.lexists(path):
        return None
    try:
        return read_object(path, POINTER_SCHEMA, "checkpoint pointer")
    except (BadFileError, OSError) as exc:
        raise CheckpointError(f"{exc}; expected {{\"step\": N, \"folder\": \"step_NNNNNNNN\"}}") from None


def latest_pointer(checkpoints_dir: Path) -> Optional[dict]:
    """The content of ``latest.json`` ({"step", "folder"}), or None when there is none or it is unreadable."""
    try:
        return read_pointer(checkpoints_dir)
    except CheckpointError:
        return None


def remove_stale_temporaries(checkpoints_dir: Path) -> list[Path]:
    """Delete temporary files/folders (``.*.tmp``) left in ``checkpoints_dir`` by a killed process.

    Only one process writes a run's checkpoints (rank 0, holding the run folder's
    lock, :mod:`caw_core.run_lock`), so any temporary entry seen before a save
    starts is stale -- never another live training's.
    """
    removed = []
    for entry in Path(checkpoints_dir).glob(".*.tmp"):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    return removed


def _prune(checkpoints_dir: Path, keep_last: int) -> None:
    protected = set()
    for which in ("latest", "best"):
        try:
            pointer = read_pointer(checkpoints_dir, which)
        except CheckpointError:
            return  # a damaged pointer: delete nothing it might have named
        if pointer is not None:
            protected.add(pointer["folder"])
    steps = sorted(p for p in checkpoints_dir.glob("step_*") if p.is_dir())
    for old in steps[: max(0, len(steps) - keep_last)]:
        if old.name not in protected:
            shutil.rmtree(old, ignore_errors=True)


def resolve_checkpoint(path: str | Path, which: str = "latest") -> Path:
    """A run folder, its checkpoints folder, a step folder or a model file -> the step folder."""
    path = Path(path)
    if path.name == MODEL_FILE and os.path.lexists(path):
        return path.parent
    for candidate in (path / "checkpoints", path):
        pointer = read_pointer(candidate, which) if candidate.is_dir() else None
        if pointer is not None:
            return candidate / pointer["folder"]
    if os.path.lexists(path / MODEL_FILE):
        return path
    raise CheckpointError(
        f"no caw checkpoint at {path}: expected a run folder with checkpoints/{which}.json, "
        f"a step folder with {MODEL_FILE}, or the {MODEL_FILE} file itself"
    )


def read_base_model(path: str | Path) -> dict:
    """The base model (a ModelSpec as dict) a checkpoint was fine-tuned from."""
    folder = resolve_checkpoint(path)
    weights = _regular(folder / MODEL_FILE)
    try:
        with safe_open(str(weights), framework="pt") as handle:
            text = (handle.metadata() or {}).get("base_model", "{}")
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read {weights}: {exc}; expected a safetensors file written by caw") from exc
    try:
        return check_object(json.loads(text), {}, f"the base_model metadata of {weights}")
    except (ValueError, BadFileError) as exc:
        raise CheckpointError(f"{exc}") from None


def _regular(path: Path) -> Path:
    try:
        return require_regular(path, "checkpoint file")
    except (BadFileError, FileNotFoundError) as exc:
        raise CheckpointError(str(exc)) from None


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(_regular(path)))
    except (OSError, SafetensorError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}; expected a safetensors file written by caw") from exc


def check_tensors_fit(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: Path,
                      what: str) -> None:
    """Raise :class:`CheckpointError` unless every tensor has the expected key set, shape and dtype."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{source} does not fit {what}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for key, want in expected.items():
        have = tensors[key]
        if have.shape != want.shape:
            raise CheckpointError(f"{source} does not fit {what}: {key} has shape {tuple(have.shape)}, "
                                  f"expected {tuple(want.shape)}")
        if have.dtype != want.dtype:
            raise CheckpointError(f"{source}: {key} is {have.dtype}, expected {want.dtype} as caw writes it "
                                  "(tensors are not converted silently)")


def load_image_tower(model, path: str | Path) -> None:
    """Load a checkpoint's image tower weights into ``model`` (a ZeroShotCLIP)."""
    folder = resolve_checkpoint(path)
    weights = _load_tensors(folder / MODEL_FILE)
    check_tensors_fit(weights, model.image_encoder.state_dict(), folder / MODEL_FILE,
                      f"the image tower of model {model.name}")
    model.image_encoder.load_state_dict(weights)


def load_trainer_state(path: str | Path) -> TrainerState:
    folder = resolve_checkpoint(path)
    where = folder / TRAINER_JSON
    try:
        meta = read_object(where, TRAINER_SCHEMA, "trainer state")
        check_object(meta["optimizer"], OPTIMIZER_SCHEMA, f"trainer state {where}: 'optimizer'")
    except (BadFileError, FileNotFoundError) as exc:
        raise CheckpointError(str(exc)) from None
    tensors = _load_tensors(folder / TRAINER_TENSORS)
    try:
        optimizer = _unflatten_optimizer(tensors, meta["optimizer"])
    except (ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"trainer state in {folder}: optimizer entries are malformed ({exc})") from None
    rng = {k[len("rng/"):]: v for k, v in tensors.items() if k.startswith("rng/")}
    return TrainerState(meta["step"], meta["epoch"], optimizer, rng, meta["extra"])


def latest_step(run_dir: Path) -> Optional[int]:
    pointer = read_pointer(Path(run_dir) / "checkpoints")
    return None if pointer is None else pointer["step"]
