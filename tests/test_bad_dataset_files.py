"""Bad dataset files: one DatasetError naming the file and what was expected -- no traceback, no hang."""

from __future__ import annotations

import os
import pickle
import signal
from pathlib import Path

import numpy as np
import pytest
from fake_datasets import WRITERS

from caw_core.cli import main
from caw_core.data import DatasetError, load_dataset


@pytest.fixture(autouse=True)
def no_hang():
    """Fail instead of hanging: a FIFO read blocks forever without the guard."""
    def timeout(*_):
        raise TimeoutError("the loader hung")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _fifo_instead_of(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _read_all(name: str, root: Path) -> None:
    ds = load_dataset(name, root, image_size=32)
    for i in range(len(ds)):
        ds.data[i]


@pytest.mark.parametrize("name, relative", [
    ("cifar10", "cifar-10-batches-py/test_batch"),
    ("cifar10", "cifar-10-batches-py/batches.meta"),
    ("stl10", "stl10_binary/test_X.bin"),
    ("flowers102", "flowers-102/imagelabels.mat"),
    ("pcam", "pcam/camelyonpatch_level_2_split_test_y.h5"),
])
def test_a_fifo_where_a_dataset_file_should_be_is_refused(name, relative, tmp_path):
    WRITERS[name](tmp_path)
    _fifo_instead_of(tmp_path / relative)
    with pytest.raises(DatasetError, match="not a regular file") as info:
        load_dataset(name, tmp_path, image_size=32)
    assert str(tmp_path / relative) in str(info.value)


@pytest.mark.parametrize("name, relative, content", [
    ("cifar10", "cifar-10-batches-py/test_batch", pickle.dumps({"data": 1})[:-4]),  # truncated
    ("cifar10", "cifar-10-batches-py/test_batch", pickle.dumps({"rows": [1, 2]})),  # no 'data'/'labels'
    ("stl10", "stl10_binary/test_X.bin", b"\x00" * 1000),  # not a whole number of 96x96x3 images
    ("flowers102", "flowers-102/imagelabels.mat", b"MATLAB? no"),
    ("cars", "stanford_cars/cars_test_annos_withlabels.mat", b"\x00" * 300),
    ("pcam", "pcam/camelyonpatch_level_2_split_test_x.h5", b"not hdf5"),
    ("tinyimagenet", "tiny-imagenet-200/val/val_annotations.txt", b"val_0.JPEG\tn99999999\t0\t0\t1\t1\n"),
])
def test_malformed_files_name_the_file_in_one_line(name, relative, content, tmp_path):
    WRITERS[name](tmp_path)
    (tmp_path / relative).write_bytes(content)
    with pytest.raises(DatasetError) as info:
        _read_all(name, tmp_path)
    message = str(info.value)
    assert str(tmp_path / relative) in message or Path(relative).name in message
    assert "\n" not in message


def test_an_undecodable_image_names_its_file(tmp_path):
    WRITERS["dtd"](tmp_path)
    first = (tmp_path / "dtd" / "dtd" / "labels" / "test1.txt").read_text().split()[0]
    broken = tmp_path / "dtd" / "dtd" / "images" / first
    broken.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DatasetError, match="cannot read item") as info:
        _read_all("dtd", tmp_path)
    assert str(broken) in str(info.value)


def test_labels_outside_the_classes_are_an_error_not_a_miscount(tmp_path):
    WRITERS["cifar10"](tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    entry = pickle.loads(batch.read_bytes())
    entry["labels"][1] = 7  # batches.meta names 3 classes
    batch.write_bytes(pickle.dumps(entry))
    with pytest.raises(DatasetError, match="label 7, outside the 3 classes"):
        load_dataset("cifar10", tmp_path, image_size=32)

    import h5py

    WRITERS["pcam"](tmp_path)  # PCAM reads its labels lazily: the item check catches them
    with h5py.File(tmp_path / "pcam" / "camelyonpatch_level_2_split_test_y.h5", "w") as f:
        f["y"] = np.array([0, 1, 5, 0, 1], dtype=np.uint8).reshape(-1, 1, 1, 1)
    with pytest.raises(DatasetError, match="item 2 has label 5"):
        _read_all("pcam", tmp_path)


def test_symlink_loops_in_an_image_folder_end(tmp_path):
    fake = WRITERS["eurosat"](tmp_path)
    forest = tmp_path / "eurosat" / "EuroSAT_RGB" / "Forest"
    (forest / "loop").symlink_to(forest)
    (forest / "up").symlink_to(forest.parent)
    ds = load_dataset("eurosat", tmp_path, image_size=32)
    assert len(ds) == fake.counts["all"]


@pytest.mark.parametrize("workers", ["0", "1"])  # a DataLoader worker re-raises with the worker's traceback
def test_eval_on_a_corrupt_dataset_exits_2_with_one_line(workers, tmp_path, capsys):
    WRITERS["dtd"](tmp_path / "data")
    first = (tmp_path / "data" / "dtd" / "dtd" / "labels" / "test1.txt").read_text().split()[0]
    (tmp_path / "data" / "dtd" / "dtd" / "images" / first).write_bytes(b"not a jpeg")
    code = main(["eval", "--model", "toy", "--pretrained", "none", "--datasets", "dtd", "--attacks", "clean",
                 "--n", "4", "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--quiet",
                 "--num-workers", workers])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert first.split("/")[-1] in err and len(err.strip().splitlines()) == 1, err
