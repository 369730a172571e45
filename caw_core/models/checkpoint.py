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
folders left by a killed process (``.step_*.tmp``) are removed by the next save.
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

from caw_core.io import atomic_write_json, describe_os_error

MODEL_FILE = "model.safetensors"
TRAINER_TENSORS = "trainer.safetensors"
TRAINER_JSON = "trainer.json"


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
        weights = {k: _contiguous_cpu(v) for k, v in image_tower.state_dict().items()}
        save_file(weights, str(tmp / MODEL_FILE), metadata={"base_model": json.dumps(base_model), "format": "caw-image-tower-v1"})
        optim_tensors, optim_meta = _flatten_optimizer(state.optimizer)
        rng_tensors = {f"rng/{k}": _contiguous_cpu(v) for k, v in state.rng.items()}
        save_file({**optim_tensors, **rng_tensors}, str(tmp / TRAINER_TENSORS))
        payload = {"step": state.step, "epoch": state.epoch, "optimizer": optim_meta, "extra": state.extra,
                   "base_model": base_model}
        (tmp / TRAINER_JSON).write_text(json.dumps(payload, indent=2), encoding="utf-8")
        for name in (MODEL_FILE, TRAINER_TENSORS, TRAINER_JSON):
            with open(tmp / name, "rb") as handle:
                os.fsync(handle.fileno())
        if final.exists():  # re-saving the same step (e.g. stop right after a periodic save):
            # move the old folder aside first, so the pointer never names a missing folder for long
            trash = Path(tempfile.mkdtemp(prefix=f".{folder_name}.old.", suffix=".tmp", dir=checkpoints_dir))
            os.replace(final, trash / folder_name)
            os.rename(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, final)
        tmp, placed = None, True
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


def latest_pointer(checkpoints_dir: Path) -> Optional[dict]:
    """The content of ``latest.json`` ({"step", "folder"}), or None when there is none or it is unreadable."""
    try:
        return json.loads((Path(checkpoints_dir) / "latest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def remove_stale_temporaries(checkpoints_dir: Path) -> list[Path]:
    """Delete temporary files/folders (``.*.tmp``) left in ``checkpoints_dir`` by a killed process.

    Only one process (rank 0) writes a run's checkpoints, so any temporary entry
    seen before a save starts is stale.
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
    for pointer in ("latest.json", "best.json"):
        path = checkpoints_dir / pointer
        if path.exists():
            protected.add(json.loads(path.read_text())["folder"])
    steps = sorted(p for p in checkpoints_dir.glob("step_*") if p.is_dir())
    for old in steps[: max(0, len(steps) - keep_last)]:
        if old.name not in protected:
            shutil.rmtree(old, ignore_errors=True)


def resolve_checkpoint(path: str | Path, which: str = "latest") -> Path:
    """A run folder, its checkpoints folder, a step folder or a model file -> the step folder."""
    path = Path(path)
    if path.is_file() and path.name == MODEL_FILE:
        return path.parent
    for candidate in (path / "checkpoints", path):
        pointer = candidate / f"{which}.json"
        if pointer.is_file():
            return candidate / json.loads(pointer.read_text())["folder"]
    if (path / MODEL_FILE).is_file():
        return path
    raise CheckpointError(
        f"no caw checkpoint at {path}: expected a run folder with checkpoints/{which}.json, "
        f"a step folder with {MODEL_FILE}, or the {MODEL_FILE} file itself"
    )


def read_base_model(path: str | Path) -> dict:
    """The base model (a ModelSpec as dict) a checkpoint was fine-tuned from."""
    folder = resolve_checkpoint(path)
    with safe_open(str(folder / MODEL_FILE), framework="pt") as handle:
        return json.loads((handle.metadata() or {}).get("base_model", "{}"))


def load_image_tower(model, path: str | Path) -> None:
    """Load a checkpoint's image tower weights into ``model`` (a ZeroShotCLIP)."""
    folder = resolve_checkpoint(path)
    try:
        from safetensors.torch import load_file

        weights = load_file(str(folder / MODEL_FILE))
    except Exception as exc:
        raise CheckpointError(f"cannot read {folder / MODEL_FILE}: {exc}") from exc
    missing, unexpected = model.image_encoder.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {folder} does not fit model {model.name}: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


def load_trainer_state(path: str | Path) -> TrainerState:
    folder = resolve_checkpoint(path)
    try:
        meta = json.loads((folder / TRAINER_JSON).read_text(encoding="utf-8"))
        from safetensors.torch import load_file

        tensors = load_file(str(folder / TRAINER_TENSORS))
    except Exception as exc:
        raise CheckpointError(f"cannot read the trainer state in {folder}: {exc}") from exc
    rng = {k[len("rng/"):]: v for k, v in tensors.items() if k.startswith("rng/")}
    return TrainerState(meta["step"], meta["epoch"], _unflatten_optimizer(tensors, meta["optimizer"]), rng, meta["extra"])


def latest_step(run_dir: Path) -> Optional[int]:
    pointer = Path(run_dir) / "checkpoints" / "latest.json"
    return json.loads(pointer.read_text())["step"] if pointer.is_file() else None
