"""The 16 benchmark loaders, each on a miniature copy in the dataset's real format."""

from __future__ import annotations

import socket
import urllib.error

import pytest
import torch
from fake_datasets import COLOURS, WRITERS

from caw_core.data import (
    PAPER_DATASETS,
    DatasetDownloadError,
    DatasetError,
    DatasetNotFoundError,
    UnknownDatasetError,
    available_datasets,
    check_dataset,
    download_dataset,
    get_spec,
    load_dataset,
)


def colour_index(image: torch.Tensor) -> int:
    """Which of COLOURS a solid image is closest to."""
    mean = image.mean(dim=(1, 2)) * 255
    return int(
        torch.stack([(mean - torch.tensor(c, dtype=mean.dtype)).abs().sum() for c in COLOURS]).argmin()
    )


def test_paper_datasets_are_the_16_registered_ones():
    assert len(PAPER_DATASETS) == 16
    assert set(available_datasets("paper")) == set(PAPER_DATASETS)
    assert set(WRITERS) == set(PAPER_DATASETS)


@pytest.mark.parametrize("name", PAPER_DATASETS)
def test_loads_miniature_in_real_format(name, tmp_path):
    fake = WRITERS[name](tmp_path)
    assert check_dataset(name, tmp_path).found
    for split, count in fake.counts.items():
        ds = load_dataset(name, tmp_path, split=split, image_size=32)
        assert ds.split == split
        assert len(ds) == count
        assert len(ds.classnames) == fake.num_classes
        for label, expected in fake.names.items():
            assert ds.classnames[label] == expected
        assert ds.templates and all("{}" in t for t in ds.templates)
        seen = set()
        for i in range(len(ds)):
            image, label = ds.data[i]
            assert isinstance(label, int) and 0 <= label < fake.num_classes
            assert image.shape == (3, 32, 32) and image.dtype == torch.float32
            assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
            assert label == fake.label_of_colour[colour_index(image)], f"{name}/{split} item {i}"
            seen.add(label)
        assert seen == set(fake.label_of_colour), f"{name}/{split}: not every class came back"
    assert load_dataset(name, tmp_path, image_size=32).split == next(iter(fake.counts))


@pytest.mark.parametrize("name", PAPER_DATASETS)
def test_missing_files_are_reported_and_named(name, tmp_path):
    key_file = WRITERS[name](tmp_path / "full").key_file
    empty = tmp_path / "empty"
    empty.mkdir()
    status = check_dataset(name, empty)
    assert not status.found
    assert str(empty / key_file) in status.missing
    assert key_file in status.expected_layout
    with pytest.raises(DatasetNotFoundError, match="expected layout") as info:
        load_dataset(name, empty, image_size=32)
    assert key_file in str(info.value)


def test_split_without_its_files_is_a_clear_not_found(tmp_path):
    WRITERS["cifar10"](tmp_path)  # test split only
    with pytest.raises(DatasetNotFoundError, match="data_batch_1"):
        load_dataset("cifar10", tmp_path, split="train", image_size=32)


def test_unknown_split_is_rejected(tmp_path):
    WRITERS["eurosat"](tmp_path)
    with pytest.raises(UnknownDatasetError, match="all"):
        load_dataset("eurosat", tmp_path, split="test")


def test_imagenet_rejects_folders_that_are_not_wnids(tmp_path):
    WRITERS["imagenet"](tmp_path)
    (tmp_path / "imagenet" / "val" / "cat_pictures").mkdir()
    with pytest.raises(DatasetError, match="cat_pictures"):
        load_dataset("imagenet", tmp_path, image_size=32)


def test_templates_follow_the_reference_prompts():
    assert get_spec("food101").templates == ("A photo of {}, a type of food.",)
    assert get_spec("eurosat").templates == ("A centered satellite photo of {}.",)
    assert get_spec("pcam").templates == ("{}",)
    assert get_spec("cifar10").templates == ("This is a photo of a {}",)


@pytest.fixture
def offline(monkeypatch):
    """No socket may connect, and torchvision's downloader fails like it does offline."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable (test is offline)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("torchvision.datasets.utils.download_url", refuse)


@pytest.mark.parametrize("name", ["imagenet", "cars"])
def test_datasets_without_download_say_why(name, tmp_path, offline):
    with pytest.raises(DatasetDownloadError, match="cannot be downloaded automatically") as info:
        download_dataset(name, tmp_path)
    assert get_spec(name).download_note in str(info.value)


@pytest.mark.parametrize("name", ["cifar10", "tinyimagenet", "dtd"])
def test_download_offline_is_a_download_error(name, tmp_path, offline):
    with pytest.raises(DatasetDownloadError, match="network is unreachable") as info:
        download_dataset(name, tmp_path)
    assert isinstance(info.value.__cause__, urllib.error.URLError)
    assert get_spec(name).expected_layout in str(info.value)
