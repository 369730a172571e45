"""``caw-core train --log tensorboard,csv``: the per-step records where researchers look, read back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import blobs
from caw_core.cli import main
from caw_core.train_logs import parse_log_kinds


def _train(tmp_path: Path, *extra: str) -> int:
    return main(["train", "--method", "caw", "--model", "caw-test-tiny", "--pretrained", "none",
                 "--data", blobs.NAME, "--batch-size", "16", "--num-workers", "0", "--device", "cpu",
                 "--warmup-steps", "0", "--lr", "0.05", "--eps", "4", "--runs-dir", str(tmp_path / "runs"),
                 "--name", "run", "--quiet", *extra])


def _jsonl(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_tensorboard_scalars_and_hparams_read_back_with_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert _train(tmp_path, "--max-steps", "3", "--save-every", "3", "--log", "tensorboard") == 0
    run = tmp_path / "runs" / "run"
    records = _jsonl(run)
    events = EventAccumulator(str(run))
    events.Reload()
    tags = events.Tags()["scalars"]
    keys = ("loss", "ce", "ca", "reg", "robust_acc", "lr", "images_per_s")
    assert {f"train/{key}" for key in keys} <= set(tags)
    for key in keys:
        assert [(e.step, pytest.approx(e.value, rel=1e-5)) for e in events.Scalars(f"train/{key}")] == \
            [(r["step"], r[key]) for r in records]
    hparams = EventAccumulator(str(run), size_guidance={"tensors": 0})
    hparams.Reload()
    assert "_hparams_/session_start_info" in hparams.summary_metadata
    plugin = hparams.summary_metadata["_hparams_/session_start_info"].plugin_data.content
    assert b"method" in plugin and b"caw" in plugin


@pytest.mark.slow
def test_csv_has_one_row_per_step_and_is_cut_on_resume(tmp_path):
    assert _train(tmp_path, "--max-steps", "4", "--save-every", "2", "--log", "csv,csv") == 0
    run = tmp_path / "runs" / "run"
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    records = _jsonl(run)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert [float(r["loss"]) for r in rows] == pytest.approx([r["loss"] for r in records])
    # a crash after step 3 with the last checkpoint at step 2: the resumed run redoes 3 and 4 once
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"step": 2, "folder": "step_00000002"}))
    assert main(["train", "--resume", str(run), "--quiet", "--log", "csv"]) == 0
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]


def test_log_kinds_are_parsed_and_checked(tmp_path, capsys):
    assert parse_log_kinds(["tensorboard,csv", "csv"]) == ["tensorboard", "csv"]
    assert parse_log_kinds(None) == []
    assert _train(tmp_path, "--log", "wandb") == 2
    assert "--log takes tensorboard or csv" in capsys.readouterr().err
