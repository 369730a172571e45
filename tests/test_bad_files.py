"""Hostile files and paths: one line naming the file and what was expected, exit 2, never a hang or a traceback."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import blobs
from caw_core import cli
from caw_core.io import BadFileError, atomic_write_json, read_regular
from caw_core.models import ModelSpec, load_model
from caw_core.models import checkpoint as ckpt
from caw_core.models.checkpoint import CheckpointError
from caw_core.train import Trainer, resume_config

TRAIN = ["train", "--model", "caw-test-tiny", "--pretrained", "none", "--data", blobs.NAME, "--batch-size", "16",
         "--num-workers", "0", "--device", "cpu", "--warmup-steps", "0", "--max-steps", "1", "--quiet"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A finished two-step run of caw-test-tiny; tests copy it before damaging it."""
    from caw_core.train import TrainConfig

    runs = tmp_path_factory.mktemp("runs")
    list(Trainer(TrainConfig(model="caw-test-tiny", pretrained=None, data=blobs.NAME, batch_size=16, max_steps=2,
                             num_workers=0, device="cpu", warmup_steps=0, save_every=1, runs_dir=str(runs),
                             name="good")).run())
    return runs / "good"


@pytest.fixture
def run_copy(trained_run, tmp_path):
    target = tmp_path / "runs" / "copy"
    shutil.copytree(trained_run, target)
    return target


def _one_line_exit_2(argv, capsys, *expected):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.endswith("\n"), err
    line = err.splitlines()[-1]  # progress notes may precede it; the error is the last line, whole
    assert line.startswith("caw-core ") and ": error: " in line, err
    for text in expected:
        assert text in line, err
    return line


def _step_folder(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / json.loads((run_dir / "checkpoints" / "latest.json").read_text())["folder"]


# -- paths that are the wrong kind of thing ---------------------------------------------------------------------
def test_a_file_as_the_runs_folder(tmp_path, capsys):
    blocker = tmp_path / "passwd"
    blocker.write_text("root:x:0:0\n")
    _one_line_exit_2(TRAIN + ["--runs-dir", str(blocker), "--name", "x"], capsys, str(blocker))


def test_a_name_too_long(tmp_path, capsys):
    _one_line_exit_2(TRAIN + ["--runs-dir", str(tmp_path), "--name", "n" * 300], capsys, "shorter")


def test_report_out_is_a_folder(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    _one_line_exit_2(["report", str(tmp_path / "results"), "--out", str(tmp_path)], capsys, "is a folder",
                     str(tmp_path))


def test_writes_refuse_a_fifo_and_write_through_a_symlink(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(BadFileError, match="FIFO"):
        atomic_write_json(fifo, {"a": 1})
    assert fifo.is_fifo()
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    atomic_write_json(link, {"a": 1})
    assert link.is_symlink() and json.loads(real.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "pipe", "real.json"]


def test_reads_refuse_fifos_and_devices_without_blocking_and_bound_the_size(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # nobody writes to it: a plain open() would wait forever
    with pytest.raises(BadFileError, match="FIFO"):
        read_regular(fifo, 100)
    with pytest.raises(BadFileError, match="device"):
        read_regular("/dev/zero", 100)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 101)
    with pytest.raises(BadFileError, match="larger than"):
        read_regular(big, 100)


@pytest.mark.parametrize("name", ["config.json", "checkpoints/latest.json"])
def test_a_fifo_or_device_instead_of_a_run_file_is_refused(run_copy, capsys, name):
    target = run_copy / name
    target.unlink()
    os.mkfifo(target)
    _one_line_exit_2(["train", "--resume", str(run_copy)], capsys, str(target), "FIFO")
    target.unlink()
    target.symlink_to("/dev/zero")
    _one_line_exit_2(["train", "--resume", str(run_copy)], capsys, "device")


def test_a_fifo_instead_of_the_weights_is_refused(run_copy):
    weights = _step_folder(run_copy) / ckpt.MODEL_FILE
    weights.unlink()
    os.mkfifo(weights)
    with pytest.raises(CheckpointError, match="FIFO"):
        load_model(ModelSpec("caw-test-tiny", None, str(run_copy)))


# -- malformed JSON ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, payload, expected", [
    ("checkpoints/latest.json", {"step": "2", "folder": "step_00000002"}, "'step': expected an integer"),
    ("checkpoints/latest.json", {"step": 2}, "'folder' is missing"),
    ("checkpoints/latest.json", {"step": 2, "folder": "../../elsewhere"}, "matching"),
    ("checkpoints/latest.json", [1, 2], "expected a JSON object"),
    ("config.json", {"epochs": "Infinity", "method": "caw"}, "'epochs': expected an integer"),
    ("config.json", {"lr": 1e308}, "'lr': expected a finite number"),
    ("config.json", {"batch_size": None}, "'batch_size': expected an integer"),
])
def test_wrong_types_and_missing_keys_name_the_file_and_key(run_copy, capsys, name, payload, expected):
    (run_copy / name).write_text(json.dumps(payload))
    _one_line_exit_2(["train", "--resume", str(run_copy)], capsys, str(run_copy / name), expected)


def test_infinity_in_a_config_is_refused(run_copy, capsys):
    config = json.loads((run_copy / "config.json").read_text())
    text = json.dumps(config).replace('"epochs": 10', '"epochs": Infinity')
    (run_copy / "config.json").write_text(text)
    _one_line_exit_2(["train", "--resume", str(run_copy)], capsys, "Infinity")


@pytest.mark.parametrize("change, expected", [
    ({"step": -5}, "'step': expected a value >= 0"),
    ({"step": 2.5}, "'step': expected an integer"),
    ({"optimizer": None}, "'optimizer': expected a JSON object"),
    ({"extra": "x"}, "'extra': expected a JSON object"),
])
def test_a_bad_trainer_state_is_refused(run_copy, capsys, change, expected):
    path = _step_folder(run_copy) / ckpt.TRAINER_JSON
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    _one_line_exit_2(["train", "--resume", str(run_copy)], capsys, str(path), expected)


def test_malformed_metrics_lines_are_dropped_on_resume(run_copy):
    with open(run_copy / "metrics.jsonl", "a") as handle:
        handle.write('{"step": "1"}\n[1, 2]\n{"step": true}\n\n')
    list(Trainer(resume_config(run_copy, max_steps=3), resume=True).run())
    steps = [json.loads(line)["step"] for line in (run_copy / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


# -- tensors that do not fit --------------------------------------------------------------------------------------
def _rewrite_weights(run_dir: Path, change) -> Path:
    path = _step_folder(run_dir) / ckpt.MODEL_FILE
    tensors = load_file(str(path))
    key = sorted(k for k in tensors if tensors[k].dim() >= 2)[0]
    tensors[key] = change(tensors[key])
    save_file(tensors, str(path))
    return path


@pytest.mark.parametrize("change, expected", [
    (lambda t: t[:-1].contiguous(), "has shape"),
    (lambda t: t.half(), "torch.float16, expected torch.float32"),
    (lambda t: t.long(), "torch.int64"),
    (lambda t: t > 0, "torch.bool"),
])
def test_weights_of_the_wrong_shape_or_dtype_are_refused(run_copy, capsys, change, expected):
    path = _rewrite_weights(run_copy, change)
    with pytest.raises(CheckpointError, match=expected):
        load_model(ModelSpec("caw-test-tiny", None, str(run_copy)))
    _one_line_exit_2(["train", "--resume", str(run_copy)], capsys, str(path), expected)


def test_optimizer_state_of_the_wrong_shape_is_refused(run_copy, capsys):
    path = _step_folder(run_copy) / ckpt.TRAINER_TENSORS
    tensors = load_file(str(path))
    key = next(k for k in tensors if k.startswith("optim/") and tensors[k].dim() >= 2)
    tensors[key] = torch.zeros(3, 3)
    save_file(tensors, str(path))
    _one_line_exit_2(["train", "--resume", str(run_copy)], capsys, "does not fit the optimizer", "has shape")


# -- the machine ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", [
    MemoryError(),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: not enough memory: you tried to "
                 "allocate 1099511627776 bytes."),
    OSError(errno.ENAMETOOLONG, "File name too long", "x" * 300),
])
def test_machine_failures_are_one_line(monkeypatch, capsys, failure):
    import caw_core.commands.train as train_command

    def boom(args):
        raise failure

    monkeypatch.setattr(train_command, "run", boom)
    _one_line_exit_2(["train"], capsys, "caw-core train: error: ")


def test_a_fifo_or_device_as_pretrained_weights_is_refused(tmp_path):
    from caw_core.models import ModelLoadError

    fifo = tmp_path / "weights.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(ModelLoadError, match="FIFO"):
        load_model(ModelSpec("caw-test-tiny", str(fifo)))
    with pytest.raises(ModelLoadError, match="device"):
        load_model(ModelSpec("caw-test-tiny", "/dev/zero"))
