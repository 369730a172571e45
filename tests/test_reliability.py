"""No data lost: a SIGKILLed training run resumes exactly; a full disk keeps the last good checkpoint."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import blobs
from caw_core import cli
from caw_core.io import StorageError, atomic_write_json
from caw_core.models import checkpoint as ckpt
from caw_core.models.checkpoint import CheckpointError
from caw_core.train import TrainConfig, Trainer, resume_config

REPO = Path(__file__).resolve().parents[1]
COMPARED = ("step", "epoch", "lr", "loss", "ce", "ca", "reg", "robust_acc", "clean_acc")

# The run as `caw-core train` flags; the subprocess registers the unit-blobs dataset first (as ddp_entry.py does).
FLAGS = ["--method", "caw", "--model", "caw-test-tiny", "--pretrained", "none", "--data", blobs.NAME,
         "--batch-size", "16", "--max-steps", "10", "--num-workers", "0", "--device", "cpu", "--warmup-steps", "0",
         "--lr", "0.05", "--save-every", "2", "--eps", "4", "--attack-step-size", "2", "--quiet"]
ENTRY = textwrap.dedent("""
    import sys
    import torch
    torch.set_num_threads(min(2, torch.get_num_threads()))
    sys.path.insert(0, {tests!r})
    import blobs
    blobs.ensure_registered()
    from caw_core.cli import main
    sys.exit(main(sys.argv[1:]))
""").format(tests=str(REPO / "tests"))


def _flags(**changes: str) -> list[str]:
    """FLAGS with some values changed: ``_flags(max_steps="2")``."""
    flags = list(FLAGS)
    for name, value in changes.items():
        flags[flags.index("--" + name.replace("_", "-")) + 1] = value
    return flags


def _caw(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", ENTRY, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _leftovers(run_dir: Path) -> list[str]:
    return [str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.name.startswith(".") or ".tmp" in p.name]


def _latest_step(run_dir: Path):
    try:
        return json.loads((run_dir / "checkpoints" / "latest.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tmp_path):
    runs = tmp_path / "runs"
    killed = _caw(["train", *FLAGS, "--runs-dir", str(runs), "--name", "killed"])
    run_dir = runs / "killed"
    deadline = time.monotonic() + 240
    try:
        while (_latest_step(run_dir) or 0) < 4:  # two checkpoints exist; more steps are on their way
            assert killed.poll() is None, f"training ended before it could be killed: {killed.communicate()}"
            assert time.monotonic() < deadline, "no checkpoint after 240 s"
            time.sleep(0.01)
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.kill()
        killed.communicate()
    assert killed.returncode == -signal.SIGKILL
    killed_at = _latest_step(run_dir)
    assert 4 <= killed_at < 10, killed_at

    # the uninterrupted reference, same seed, in this process (random init is seeded before the model is built)
    reference = Trainer(TrainConfig(
        method="caw", model="caw-test-tiny", pretrained=None, data=blobs.NAME, batch_size=16, max_steps=10,
        num_workers=0, device="cpu", warmup_steps=0, lr=0.05, save_every=2, eps=4.0, attack_step_size=2.0,
        runs_dir=str(runs), name="straight"))
    list(reference.run())

    resumed = _caw(["train", "--resume", str(run_dir), "--quiet"])
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "done at step 10 of 10" in out

    expected, got = _metrics(runs / "straight"), _metrics(run_dir)
    assert [r["step"] for r in got] == list(range(1, 11))  # nothing lost, nothing logged twice
    _same_records(expected, got)
    assert _latest_step(run_dir) == 10
    assert _leftovers(run_dir) == []
    # the final weights are the reference's
    final = ckpt.resolve_checkpoint(run_dir)
    from safetensors.torch import load_file

    mine, theirs = load_file(str(final / ckpt.MODEL_FILE)), load_file(str(ckpt.resolve_checkpoint(runs / "straight")
                                                                           / ckpt.MODEL_FILE))
    assert mine.keys() == theirs.keys()
    assert all(torch.allclose(mine[k], theirs[k], rtol=1e-4, atol=1e-6) for k in mine)


def test_a_half_written_metrics_line_does_not_block_resume(tiny_train_config, tmp_path):
    list(Trainer(tiny_train_config(max_steps=4, save_every=2)).run())
    run_dir = tmp_path / "runs" / "run"
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write('{"event": "step", "step": 5, "lo')  # killed mid-write
    resumed = Trainer(resume_config(run_dir, max_steps=6), resume=True)
    list(resumed.run())
    assert [r["step"] for r in _metrics(run_dir)] == list(range(1, 7))


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _state(step: int) -> ckpt.TrainerState:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return model, ckpt.TrainerState(step=step, epoch=0, optimizer=optimizer.state_dict(),
                                     rng={"attack0": torch.Generator().get_state()}, extra={})


@pytest.mark.parametrize("broken", ["save_file", "os.replace", "os.rename", "mkdtemp", "fsync"])
def test_a_failed_save_keeps_the_previous_checkpoint_and_leaves_nothing(tmp_path, monkeypatch, broken):
    checkpoints = tmp_path / "checkpoints"
    model, state = _state(2)
    ckpt.save_checkpoint(checkpoints, model, {"name": "x"}, state, is_best=True)
    before = sorted(p.name for p in checkpoints.iterdir())
    target = {"save_file": (ckpt, "save_file"), "os.replace": (os, "replace"), "os.rename": (os, "rename"),
              "mkdtemp": (ckpt.tempfile, "mkdtemp"), "fsync": (os, "fsync")}[broken]
    monkeypatch.setattr(*target, _enospc)
    with pytest.raises(CheckpointError) as caught:
        ckpt.save_checkpoint(checkpoints, model, {"name": "x"}, _state(4)[1], is_best=True)
    monkeypatch.undo()
    message = str(caught.value)
    assert "step_00000004" in message and "disk full?" in message and "step_00000002" in message, message
    assert json.loads((checkpoints / "latest.json").read_text()) == {"step": 2, "folder": "step_00000002"}
    assert json.loads((checkpoints / "best.json").read_text()) == {"step": 2, "folder": "step_00000002"}
    assert sorted(p.name for p in checkpoints.iterdir()) == before  # no temporaries, no orphan step folder


def test_a_real_safetensors_io_error_is_explained(tmp_path, monkeypatch):
    """safetensors reports I/O failures as SafetensorError('... (os error 28) ...'), not OSError."""
    from safetensors import SafetensorError

    def fail(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    model, state = _state(2)
    monkeypatch.setattr(ckpt, "save_file", fail)
    with pytest.raises(CheckpointError, match=r"disk full\?.*no checkpoint was saved"):
        ckpt.save_checkpoint(tmp_path, model, {}, state)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_stops_training_and_the_run_resumes_later(tiny_train_config, tmp_path, monkeypatch):
    trainer = Trainer(tiny_train_config(max_steps=2, save_every=1))
    records = trainer.run()
    next(records)  # step 1, saved
    monkeypatch.setattr(ckpt, "save_file", _enospc)
    with pytest.raises(CheckpointError, match="disk full"):
        list(records)  # the save of step 2 fails
    monkeypatch.undo()
    run_dir = tmp_path / "runs" / "run"
    assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["step"] == 1
    assert _leftovers(run_dir) == []
    resumed = Trainer(resume_config(run_dir), resume=True)
    assert resumed.progress.step == 1
    assert [r["step"] for r in resumed.run() if r["event"] == "step"] == [2]


def test_atomic_writes_name_the_file_and_cause_and_leave_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "results" / "model.json"
    atomic_write_json(target, {"accuracy": 0.5})
    for code, cause in ((errno.ENOSPC, "disk full?"), (errno.EACCES, "permission denied"),
                        (errno.EROFS, "read-only")):
        def fail(*args, _code=code, **kwargs):
            raise OSError(_code, os.strerror(_code))

        monkeypatch.setattr(os, "replace", fail)
        with pytest.raises(StorageError) as caught:
            atomic_write_json(target, {"accuracy": 0.9})
        monkeypatch.undo()
        assert caught.value.errno == code and str(target) in str(caught.value) and cause in str(caught.value)
        assert json.loads(target.read_text()) == {"accuracy": 0.5}
        assert sorted(p.name for p in target.parent.iterdir()) == ["model.json"]


def test_atomic_writes_get_the_permissions_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    atomic = tmp_path / "atomic.json"
    atomic_write_json(atomic, {})
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_a_killed_save_leaves_temporaries_that_the_next_save_removes(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    model, state = _state(2)
    ckpt.save_checkpoint(checkpoints, model, {}, state)
    (checkpoints / ".step_00000004.abc123.tmp").mkdir()  # as a SIGKILL during a save leaves them
    (checkpoints / ".step_00000004.abc123.tmp" / "model.safetensors").write_bytes(b"half")
    (checkpoints / ".latest.json.xyz.tmp").write_text("{")
    ckpt.save_checkpoint(checkpoints, model, {}, _state(4)[1])
    assert not [p.name for p in checkpoints.iterdir() if p.name.startswith(".")]
    assert json.loads((checkpoints / "latest.json").read_text())["step"] == 4


def test_resaving_a_step_replaces_it_in_place(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    model, state = _state(2)
    ckpt.save_checkpoint(checkpoints, model, {}, state)
    with torch.no_grad():
        model.weight.add_(1.0)
    ckpt.save_checkpoint(checkpoints, model, {}, state)
    from safetensors.torch import load_file

    saved = load_file(str(checkpoints / "step_00000002" / ckpt.MODEL_FILE))
    assert torch.equal(saved["weight"], model.weight.detach())
    assert sorted(p.name for p in checkpoints.iterdir()) == ["latest.json", "step_00000002"]


def test_cli_turns_machine_failures_into_one_line(monkeypatch, capsys):
    import caw_core.commands.train as train_command

    failures = {
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"): "--batch-size",
        StorageError(errno.ENOSPC, "cannot write runs/x/config.json: no space left on the device (disk full?)"):
            "disk full?",
        PermissionError(errno.EACCES, "Permission denied", "runs/x/metrics.jsonl"): "permission denied",
        CheckpointError("could not write checkpoint runs/x/step_00000004: disk full?"): "disk full?",
    }
    for failure, hint in failures.items():
        def boom(args, _failure=failure):
            raise _failure

        monkeypatch.setattr(train_command, "run", boom)
        assert cli.main(["train"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("caw-core train: error: ") and hint in err and err.count("\n") == 1, err
    monkeypatch.setattr(train_command, "run", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        cli.main(["train"])


def _reference_run(runs: Path, steps: int) -> list[dict]:
    """The uninterrupted run the FLAGS describe (same seed), trained in this process."""
    reference = Trainer(TrainConfig(
        method="caw", model="caw-test-tiny", pretrained=None, data=blobs.NAME, batch_size=16, max_steps=steps,
        num_workers=0, device="cpu", warmup_steps=0, lr=0.05, save_every=2, eps=4.0, attack_step_size=2.0,
        runs_dir=str(runs), name="straight"))
    list(reference.run())
    return _metrics(runs / "straight")


def _same_records(expected: list[dict], got: list[dict]) -> None:
    assert [r["step"] for r in got] == [r["step"] for r in expected]  # nothing lost, nothing logged twice
    for want, have in zip(expected, got):
        for key in COMPARED:
            if want.get(key) is None:
                assert have.get(key) is None, (key, want["step"])
            else:
                assert have[key] == pytest.approx(want[key], rel=1e-5, abs=1e-6), (key, want["step"])


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_save_the_current_step_and_resume_exactly(tmp_path, signum):
    """save-every 100: without the signal handling the only checkpoint would be the final one."""
    runs, steps = tmp_path / "runs", 12
    flags = _flags(max_steps=str(steps), save_every="100")
    run_dir = runs / "stopped"
    process = _caw(["train", *flags, "--runs-dir", str(runs), "--name", "stopped"])
    deadline = time.monotonic() + 240
    try:
        while not (run_dir / "metrics.jsonl").is_file() or (run_dir / "metrics.jsonl").read_text().count("\n") < 1:
            assert process.poll() is None, f"training ended before the signal: {process.communicate()}"
            assert time.monotonic() < deadline, "no step after 240 s"
            time.sleep(0.01)
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, err  # 130 for Ctrl-C, 143 for SIGTERM
    assert "Traceback" not in err
    saved = _latest_step(run_dir)
    assert saved == len(_metrics(run_dir)) and 1 <= saved < steps, (saved, out)
    assert f"stopped at step {saved} of {steps}" in out
    assert not (run_dir / ".lock").exists()

    resumed = _caw(["train", "--resume", str(run_dir), "--quiet"])
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    _same_records(_reference_run(runs, steps), _metrics(run_dir))
    assert _leftovers(run_dir) == []


def test_closing_the_generator_saves_the_step_it_saw(tiny_train_config, tmp_path):
    reference = [r["loss"] for r in Trainer(tiny_train_config(name="straight")).run() if r["event"] == "step"]
    trainer = Trainer(tiny_train_config(save_every=100))
    records = trainer.run()
    for record in records:
        if record["step"] == 2:
            break
    records.close()
    run_dir = tmp_path / "runs" / "run"
    assert _latest_step(run_dir) == 2
    resumed = Trainer(resume_config(run_dir), resume=True)
    assert [r["loss"] for r in resumed.run() if r["event"] == "step"] == pytest.approx(reference[2:], rel=1e-5)
    assert [r["step"] for r in _metrics(run_dir)] == list(range(1, 7))


def test_a_second_writer_is_refused_while_the_first_runs(tiny_train_config, tmp_path):
    from caw_core.run_lock import RunLockedError

    first = Trainer(tiny_train_config(max_steps=4, save_every=1))
    records = first.run()
    next(records)
    with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
        Trainer(resume_config(tmp_path / "runs" / "run"), resume=True)
    list(records)  # the first run is untouched by the attempt and finishes
    assert [r["step"] for r in _metrics(tmp_path / "runs" / "run")] == [1, 2, 3, 4]
    assert not (tmp_path / "runs" / "run" / ".lock").exists()


def test_a_lock_left_by_a_killed_process_is_not_honoured(tiny_train_config, tmp_path):
    run_dir = tmp_path / "runs" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / ".lock").write_text("pid 999999 on elsewhere\n")  # its owner died: the kernel dropped the flock
    assert [r["step"] for r in Trainer(tiny_train_config(max_steps=1)).run() if r["event"] == "step"] == [1]


def test_an_existing_run_name_is_refused_without_resume(tiny_train_config, tmp_path, capsys):
    list(Trainer(tiny_train_config(max_steps=2)).run())
    before = (tmp_path / "runs" / "run" / "metrics.jsonl").read_bytes()
    args = ["train", *_flags(), "--runs-dir", str(tmp_path / "runs"), "--name", "run"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("caw-core train: error: ") and "--resume" in err and "another --name" in err, err
    assert (tmp_path / "runs" / "run" / "metrics.jsonl").read_bytes() == before


def test_resume_after_a_kill_before_the_first_checkpoint_logs_no_step_twice(tiny_train_config, tmp_path):
    trainer = Trainer(tiny_train_config(max_steps=3, save_every=100))
    records = trainer.run()
    next(records)
    trainer.save_checkpoint = lambda: None  # as if SIGKILLed: no checkpoint is ever written
    records.close()
    run_dir = tmp_path / "runs" / "run"
    assert _latest_step(run_dir) is None and len(_metrics(run_dir)) == 1
    list(Trainer(resume_config(run_dir), resume=True).run())
    assert [r["step"] for r in _metrics(run_dir)] == [1, 2, 3]


def test_resume_honours_a_flag_equal_to_its_default(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert cli.main(["train", *_flags(max_steps="2"), "--runs-dir", str(runs), "--name", "r"]) == 0
    # 10 is TrainConfig's default for --epochs: before, a flag equal to its default was silently dropped
    assert cli.main(["train", "--resume", str(runs / "r"), "--epochs", "10", "--quiet"]) == 0
    assert json.loads((runs / "r" / "config.json").read_text())["max_steps"] == 2
    assert cli.main(["train", "--resume", str(runs / "r"), "--lr", "0.1", "--quiet"]) == 2
    assert "--lr cannot be changed when resuming" in capsys.readouterr().err


def test_a_distributed_environment_without_rank_zero_is_refused(tiny_train_config, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(ValueError, match="RANK=1 with WORLD_SIZE=1"):
        Trainer(tiny_train_config())


def test_checkpoint_folders_and_files_get_plain_permissions(tmp_path):
    model, state = _state(2)
    final = ckpt.save_checkpoint(tmp_path / "checkpoints", model, {}, state)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain.txt").write_text("")
    assert final.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777
    for name in (ckpt.MODEL_FILE, ckpt.TRAINER_TENSORS, ckpt.TRAINER_JSON):
        assert (final / name).stat().st_mode & 0o777 == (tmp_path / "plain.txt").stat().st_mode & 0o777, name


def test_the_step_folder_is_fsynced_before_its_rename(tmp_path, monkeypatch):
    synced, renamed = [], []
    real_fsync, real_rename = os.fsync, os.rename
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    monkeypatch.setattr(os, "rename", lambda a, b: (renamed.append((str(a), len(synced))), real_rename(a, b)))
    model, state = _state(2)
    ckpt.save_checkpoint(tmp_path, model, {}, state)
    tmp_folder, synced_before = renamed[0]
    assert tmp_folder in synced[:synced_before]
