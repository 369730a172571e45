"""The GUI's jobs apply caw's thread policy for their model, in the thread that runs them, before the work."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("PySide6")

import caw_gui.workers.jobs as jobs  # noqa: E402
from caw_core.evaluate import EvalConfig  # noqa: E402
from caw_core.models import ModelSpec  # noqa: E402
from caw_core.threads import available_cores  # noqa: E402
from caw_core.train import TrainConfig  # noqa: E402


def _threads_now(*_args, **_kwargs):
    yield {"threads": torch.get_num_threads()}


class _FakeTrainer:
    def __init__(self, config, resume=False):
        self.run_dir, self.total_steps = "run", 1
        self.progress, self.ctx = SimpleNamespace(step=0), SimpleNamespace(device="cpu")

    def run(self):
        return _threads_now()


def _job(kind: str, model: str, monkeypatch):
    if kind == "train":
        monkeypatch.setattr(jobs, "Trainer", _FakeTrainer)
        return jobs.TrainJob(TrainConfig(model=model))
    if kind == "eval":
        monkeypatch.setattr(jobs, "evaluate", _threads_now)
        return jobs.EvalJob(EvalConfig(models=[ModelSpec(model, None)]))
    monkeypatch.setattr(jobs, "load_playground_models", lambda *args: None)
    monkeypatch.setattr(jobs, "run_playground", _threads_now)
    return jobs.AttackJob(jobs.ModelCache(), None, ModelSpec(model, None), None, "cpu")


@pytest.fixture
def two_threads(monkeypatch):
    for variable in ("CAW_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(variable, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("kind", ["train", "eval", "attack"])
@pytest.mark.parametrize("model, expected", [("toy", 1), ("ViT-B-32", None)])
def test_jobs_set_the_thread_count_for_their_model_before_the_work(kind, model, expected, two_threads, monkeypatch):
    records = [r for r in _job(kind, model, monkeypatch).records() if "threads" in r]
    assert records == [{"threads": expected or available_cores()}]
