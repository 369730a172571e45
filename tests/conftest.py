"""Shared fixtures: torch on the thread policy's count for the test models (one thread unless CAW_THREADS or
OMP_NUM_THREADS say otherwise), a random tiny CLIP and a learnable toy dataset."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from caw_core.threads import apply_thread_policy  # noqa: E402

apply_thread_policy("caw-test-tiny")  # the test models are far too small for intra-op parallelism

import blobs  # noqa: E402

blobs.ensure_registered()


@pytest.fixture(autouse=True)
def _thread_count_restored():
    """Every test starts on the policy's thread count: a command run in-process (toy pretrain, bench) may change
    it, and float results of the in-process reference runs depend on it."""
    apply_thread_policy("caw-test-tiny")
    yield


@pytest.fixture
def tiny_model():
    """A random-weight caw-test-tiny CLIP (32 px, 0.1M image-tower params) with the blob classes."""
    from caw_core.models import load_model

    torch.manual_seed(0)
    model = load_model("caw-test-tiny")
    model.set_classes(blobs.CLASSES, ["a {} picture."])
    return model


@pytest.fixture
def blob_batch():
    from caw_core.data import load_dataset

    data = load_dataset(blobs.NAME, split="test", image_size=32).data
    images, labels = zip(*(data[i] for i in range(12)))
    return torch.stack(images), torch.tensor(labels)


@pytest.fixture
def tiny_train_config(tmp_path):
    from caw_core.train import TrainConfig

    def make(**overrides):
        base = dict(method="caw", model="caw-test-tiny", pretrained=None, data=blobs.NAME, batch_size=16,
                    max_steps=6, num_workers=0, runs_dir=str(tmp_path / "runs"), name="run", device="cpu",
                    warmup_steps=0, lr=0.05, save_every=3, eps=4.0, attack_step_size=2.0)
        base.update(overrides)
        return TrainConfig(**base)

    return make
