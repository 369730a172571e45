"""caw_core.runs: listing and validating run folders, checkpoints, history, rename and delete."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from caw_core import runs


def make_run(root: Path, name: str, step: int = 5, total: int = 10, method: str = "caw", eps: float = 4.0,
             mtime: float | None = None) -> Path:
    """A run folder with the trainer's layout (fake weights: listing never opens them)."""
    run = root / name
    folder = run / "checkpoints" / f"step_{step:08d}"
    folder.mkdir(parents=True)
    (folder / runs.MODEL_FILE).write_bytes(b"weights")
    (run / "config.json").write_text(json.dumps({"method": method, "data": "toy-shape", "eps": eps, "name": name}))
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"step": step, "folder": folder.name}))
    lines = [json.dumps({"event": "step", "step": s, "total_steps": total, "loss": 1.0 / s}) for s in range(1, step + 1)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if mtime is not None:
        os.utime(run, (mtime, mtime))
    return run


def test_runs_are_listed_newest_first_with_their_status(tmp_path):
    make_run(tmp_path, "old-finished", step=10, total=10, mtime=1_000)
    make_run(tmp_path, "new-partial", step=4, total=10, method="tecoa", eps=1.0, mtime=2_000)
    (tmp_path / ".hidden").mkdir()
    listed = runs.list_runs(tmp_path)
    assert [r.name for r in listed] == ["new-partial", "old-finished"]
    partial, finished = listed
    assert (partial.status, partial.method, partial.data, partial.eps, partial.step, partial.total_steps) == \
        ("partial", "tecoa", "toy-shape", 1.0, 4, 10)
    assert finished.status == "finished" and finished.usable


@pytest.mark.parametrize("damage, words", [
    (lambda run: (run / "config.json").unlink(), "config.json"),
    (lambda run: (run / "checkpoints" / "latest.json").write_text("{not json"), "damaged"),
    (lambda run: (run / "checkpoints" / "latest.json").write_text('{"step": 5}'), "damaged"),
    (lambda run: (run / "checkpoints" / "latest.json").unlink(), "no checkpoint was saved"),
    (lambda run: (run / "checkpoints" / "step_00000005" / runs.MODEL_FILE).unlink(), "no weights file"),
    (lambda run: (run / "config.json").write_text("[" * 100_000), "damaged"),
])
def test_a_broken_run_is_listed_as_broken_in_plain_words_and_never_preferred(tmp_path, damage, words):
    make_run(tmp_path, "good", mtime=1_000)
    bad = make_run(tmp_path, "fakerun", mtime=2_000)
    damage(bad)
    os.utime(bad, (2_000, 2_000))
    newest = runs.list_runs(tmp_path)[0]
    assert newest.name == "fakerun" and newest.status == "broken" and not newest.usable
    assert words in newest.problem and "'folder'" not in newest.problem
    assert runs.latest_usable(tmp_path).name == "good"


def test_listing_survives_an_unreadable_or_missing_folder(tmp_path):
    assert runs.list_runs(tmp_path / "missing") == []
    make_run(tmp_path, "good")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        listed = {r.name: r for r in runs.list_runs(tmp_path)}
    finally:
        locked.chmod(0o755)
    assert listed["good"].usable
    assert listed["locked"].status == "broken"


def test_find_checkpoint_latest_and_best(tmp_path):
    run = make_run(tmp_path, "r", step=5)
    assert runs.find_checkpoint(run) == run / "checkpoints" / "step_00000005"
    assert runs.find_checkpoint(run, "best") == run / "checkpoints" / "step_00000005"  # no best.json: latest
    best = run / "checkpoints" / "step_00000003"
    best.mkdir()
    (best / runs.MODEL_FILE).write_bytes(b"w")
    (run / "checkpoints" / "best.json").write_text(json.dumps({"step": 3, "folder": best.name}))
    assert runs.find_checkpoint(run, "best") == best
    (run / "checkpoints" / "latest.json").unlink()
    with pytest.raises(ValueError, match="run r has no usable checkpoint"):
        runs.find_checkpoint(run)


def test_history_skips_a_line_cut_short_by_a_crash(tmp_path):
    run = make_run(tmp_path, "r", step=3)
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"event": "step", "st')
    assert [r["step"] for r in runs.load_history(run)] == [1, 2, 3]
    assert runs.load_history(tmp_path / "missing") == []


def test_rename_and_delete(tmp_path):
    run = make_run(tmp_path, "r")
    renamed = runs.rename_run(run, "better-name")
    assert renamed == tmp_path / "better-name" and not run.exists()
    assert json.loads((renamed / "config.json").read_text())["name"] == "better-name"
    assert runs.inspect_run(renamed).usable
    make_run(tmp_path, "other")
    for bad in ("other", "../x", "", ".hidden"):
        with pytest.raises(ValueError):
            runs.rename_run(renamed, bad)
    not_a_run = tmp_path / "photos"
    not_a_run.mkdir()
    with pytest.raises(ValueError, match="not a caw run folder"):
        runs.delete_run(not_a_run)
    runs.delete_run(renamed)
    assert not renamed.exists() and not_a_run.exists()


@pytest.mark.parametrize("fifo_at", ["config.json", "checkpoints/latest.json", "metrics.jsonl"])
def test_a_fifo_in_a_run_folder_never_hangs_the_listing(tmp_path, fifo_at):
    import threading

    run = make_run(tmp_path, "fakerun", mtime=2_000)
    (run / fifo_at).unlink()
    os.mkfifo(run / fifo_at)
    listed: list = []
    worker = threading.Thread(target=lambda: listed.extend(runs.list_runs(tmp_path)), daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), f"listing blocked on a FIFO at {fifo_at}"
    (info,) = listed
    if fifo_at == "metrics.jsonl":
        assert info.total_steps is None and runs.load_history(run) == []
    else:
        assert info.status == "broken" and "cannot be read" in info.problem
