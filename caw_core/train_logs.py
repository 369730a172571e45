"""Training logs where researchers look: TensorBoard scalars and hparams, or a CSV.

The Trainer yields one record per step (the same dicts it appends to
``metrics.jsonl``: loss and its parts, robust/clean accuracy, lr, grad norm,
images/s, step time). :class:`TrainingLogs` feeds them to the writers asked
for with ``caw-core train --log tensorboard,csv``:

- ``tensorboard``: event files in the run folder (``tensorboard --logdir
  runs/`` shows one run per folder), one scalar per numeric field under
  ``train/<field>``, and at the end the run's config as TensorBoard hparams
  with the last values of the accuracies and the loss as its metrics. Needs
  the ``tensorboard`` package (``pip install 'caw[tensorboard]'``).
- ``csv``: ``metrics.csv`` in the run folder, one row per step, columns fixed
  by the first record.

On ``--resume`` both drop what was logged after the checkpoint (TensorBoard's
``purge_step``; the CSV is cut to the checkpointed step), like metrics.jsonl.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any, Iterable, Optional

from caw_core.io import atomic_write

LOG_KINDS = ("tensorboard", "csv")
CSV_FILE = "metrics.csv"
_NOT_SCALARS = ("event", "step", "epoch", "total_steps", "checkpoint", "run_dir")
_HPARAM_METRICS = ("robust_acc", "clean_acc", "loss")


def parse_log_kinds(values: Optional[Iterable[str]]) -> list[str]:
    """``["tensorboard,csv"]`` or ``["csv", "tensorboard"]`` -> unique kinds in order; ValueError on unknown ones."""
    kinds: list[str] = []
    for value in values or []:
        for kind in (v.strip().lower() for v in value.split(",")):
            if kind and kind not in LOG_KINDS:
                raise ValueError(f"--log takes {' or '.join(LOG_KINDS)} (repeat it or give a comma list), got {kind!r}")
            if kind and kind not in kinds:
                kinds.append(kind)
    return kinds


def _scalars(record: dict) -> dict[str, float]:
    return {k: float(v) for k, v in record.items()
            if k not in _NOT_SCALARS and isinstance(v, (int, float)) and not isinstance(v, bool)}


class TensorBoardLog:
    def __init__(self, run_dir: Path, config: dict, start_step: int) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ValueError("--log tensorboard needs the tensorboard package: pip install 'caw[tensorboard]'") from exc
        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=start_step or None)
        self.config = config
        self.last: dict[str, float] = {}

    def write(self, record: dict) -> None:
        for key, value in _scalars(record).items():
            self.writer.add_scalar(f"train/{key}", value, global_step=record["step"])
        self.last.update({k: v for k, v in _scalars(record).items() if k in _HPARAM_METRICS})

    def close(self) -> None:
        if self.last:
            hparams = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in self.config.items()}
            self.writer.add_hparams(hparams, {f"hparam/{k}": v for k, v in self.last.items()}, run_name=".")
        self.writer.close()


class CsvLog:
    """Appends one row per step (flushed); on resume the file is first cut to the checkpointed step."""

    def __init__(self, run_dir: Path, start_step: int) -> None:
        self.path = Path(run_dir) / CSV_FILE
        self.columns: Optional[list[str]] = None
        self.handle = None
        self.writer: Optional[csv.DictWriter] = None
        if start_step and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                columns = list(reader.fieldnames or [])
                rows = [row for row in reader if _row_step(row) <= start_step]
            if columns:
                self.columns = columns
                atomic_write(self.path, lambda out: _write_rows(out, columns, rows))
                self._open("a")

    def _open(self, mode: str) -> None:
        self.handle = open(self.path, mode, newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.handle, fieldnames=self.columns, extrasaction="ignore",
                                     lineterminator="\n")

    def write(self, record: dict) -> None:
        if self.writer is None:
            self.columns = ["step", "epoch", *_scalars(record)]
            self._open("w")
            self.writer.writeheader()
        self.writer.writerow({k: ("" if record.get(k) is None else record.get(k)) for k in self.columns})
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _write_rows(handle, columns: list[str], rows: list[dict]) -> None:
    writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _row_step(row: dict) -> float:
    try:
        return float(row.get("step") or "inf")
    except ValueError:
        return float("inf")


class TrainingLogs:
    """The writers of one run; ``with TrainingLogs(...) as logs: logs.write(record)`` for each step record."""

    def __init__(self, kinds: Iterable[str], run_dir: Path, config: Any, start_step: int = 0) -> None:
        config_dict = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        self.writers: list = []
        for kind in kinds:
            self.writers.append(TensorBoardLog(Path(run_dir), config_dict, start_step) if kind == "tensorboard"
                                else CsvLog(Path(run_dir), start_step))

    def write(self, record: dict) -> None:
        if record.get("event") == "step":
            for writer in self.writers:
                writer.write(record)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()

    def __enter__(self) -> "TrainingLogs":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
