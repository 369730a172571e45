"""CIFAR's pickled batches: a planted pickle is refused and its payload never runs."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from caw_core.data import DatasetError, load_dataset
from fake_datasets import write_cifar10


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_a_planted_cifar_batch_is_refused_before_unpickling(tmp_path, protocol):
    write_cifar10(tmp_path)
    marker = tmp_path / "payload-ran"
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({"data": _Payload(marker), "labels": [0]}, protocol=protocol))
    with pytest.raises(DatasetError, match="refusing to unpickle"):
        load_dataset("cifar10", tmp_path, image_size=32)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_genuine_array_pickles_still_load(tmp_path, protocol):
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    entry = pickle.loads(batch.read_bytes())
    entry["data"] = np.asarray(entry["data"], dtype=np.uint8)
    batch.write_bytes(pickle.dumps(entry, protocol=protocol))
    assert len(load_dataset("cifar10", tmp_path, image_size=32)) == len(entry["labels"])
