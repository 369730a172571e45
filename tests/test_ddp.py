"""Two CPU processes under torchrun (gloo): metrics reduced, weights in sync, rank 0 alone writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_two_gloo_processes_train_in_sync(tmp_path):
    entry = Path(__file__).parent / "ddp_entry.py"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[1]))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517",
         str(entry), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in reports)
    assert reports[0]["losses"] == reports[1]["losses"]  # averaged across ranks
    assert len(reports[0]["losses"]) == 3
    assert reports[0]["weights_sha"] == reports[1]["weights_sha"]  # gradients all-reduced
    run_dir = tmp_path / "runs" / "ddp"
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3  # one writer
    assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["step"] == 3
