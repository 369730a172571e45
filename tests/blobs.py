"""A tiny learnable synthetic dataset for the core tests: 'unit-blobs'.

Three classes (red, green, blue) whose images are noise plus a bright colour
channel, 32 px. A model can learn it in a few steps, which is what the
training tests need; it is registered under family "test".
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from caw_core.data.registry import DatasetSpec, get_spec, register, UnknownDatasetError

NAME = "unit-blobs"
CLASSES = ["red", "green", "blue"]


def _build(root, split, transform, size: int = 192):
    generator = torch.Generator().manual_seed(0 if split == "train" else 1)
    labels = torch.arange(size) % len(CLASSES)
    images = torch.rand(size, 3, 32, 32, generator=generator) * 0.4
    images[torch.arange(size), labels] += 0.5
    return TensorDataset(images.clamp(0, 1), labels), CLASSES


def ensure_registered() -> str:
    try:
        get_spec(NAME)
    except UnknownDatasetError:
        register(DatasetSpec(name=NAME, display_name="Unit blobs", templates=("a {} picture.",),
                             expected_layout="(generated)", missing_files=lambda root: [], build=_build,
                             splits=("train", "test"), synthetic=True, family="test"))
    return NAME
