"""``caw-core data check`` as the setup guide, and the layouts users actually end up with."""

from __future__ import annotations

import zipfile

import pytest
from fake_datasets import LAYOUT_WRITERS, WRITERS, write_imagenet_flat
from test_data_loaders import colour_index

from caw_core.cli import main
from caw_core.data import DatasetNotFoundError, check_dataset, load_dataset


@pytest.mark.parametrize("variant", LAYOUT_WRITERS)
def test_each_accepted_layout_is_found_and_loads_with_its_labels(variant, tmp_path):
    name, write = LAYOUT_WRITERS[variant]
    fake = write(tmp_path)
    assert check_dataset(name, tmp_path).found
    for split, count in fake.counts.items():
        ds = load_dataset(name, tmp_path, split=split, image_size=32)
        assert len(ds) == count and len(ds.classnames) == fake.num_classes
        for label, expected in fake.names.items():
            assert ds.classnames[label] == expected
        labels = []
        for i in range(len(ds)):
            image, label = ds.data[i]
            assert label == fake.label_of_colour[colour_index(image)], f"{variant}/{split} item {i}"
            labels.append(label)
        assert set(labels) <= set(fake.label_of_colour)


def test_data_check_exit_status_and_guide(tmp_path, capsys):
    WRITERS["cifar10"](tmp_path)
    assert main(["data", "check", "cifar10", "--root", str(tmp_path)]) == 0
    assert "cifar10: found" in capsys.readouterr().out

    assert main(["data", "check", "cifar10", "cars", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    cars = out[out.index("cars: missing"):]
    for expected in ("cars_test_annos_withlabels.mat", "car_devkit.tgz", "cars_test.tgz", "web.archive.org",
                     f"unpack:   car_devkit.tgz into {tmp_path / 'stanford_cars'}", "car_ims.tgz", "cars_annos.mat",
                     "no automatic download"):
        assert expected in cars
    assert "1 of 2 datasets found" in out

    assert main(["data", "check", "eurosat", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"fetch:    caw-core data download eurosat --root {tmp_path}" in out
    assert "EuroSAT_RGB.zip" in out and "zenodo.org" in out and "2750" in out


def test_imagenet_flat_without_devkit_is_missing_not_found(tmp_path, capsys):
    write_imagenet_flat(tmp_path, devkit="none")
    status = check_dataset("imagenet", tmp_path)
    assert not status.found and "ILSVRC2012_devkit_t12.tar.gz" in status.missing[0]
    with pytest.raises(DatasetNotFoundError, match="devkit"):
        load_dataset("imagenet", tmp_path, image_size=32)
    assert main(["data", "check", "imagenet", "--root", str(tmp_path)]) == 1


def test_imagenet_val_folder_without_images_is_missing(tmp_path):
    (tmp_path / "imagenet" / "val" / "stray").mkdir(parents=True)
    assert not check_dataset("imagenet", tmp_path).found
    (tmp_path / "imagenet" / "ILSVRC2012_img_val.tar").write_bytes(b"")
    guide = "\n".join(check_dataset("imagenet", tmp_path).guide)
    assert f"tar -xf {tmp_path / 'imagenet' / 'ILSVRC2012_img_val.tar'} -C {tmp_path / 'imagenet' / 'val'}" in guide


def test_caltech101_nested_archive_is_explained_step_by_step(tmp_path):
    target = tmp_path / "caltech101"
    target.mkdir()
    with zipfile.ZipFile(target / "caltech-101.zip", "w") as archive:
        archive.writestr("caltech-101/101_ObjectCategories.tar.gz", b"")
    guide = "\n".join(check_dataset("caltech101", tmp_path).guide)
    assert f"unzip -q {target / 'caltech-101.zip'} -d {target}" in guide
    (target / "caltech-101.zip").unlink()
    (target / "caltech-101").mkdir()
    (target / "caltech-101" / "101_ObjectCategories.tar.gz").write_bytes(b"")
    guide = "\n".join(check_dataset("caltech101", tmp_path).guide)
    assert f"tar -xzf {target / 'caltech-101' / '101_ObjectCategories.tar.gz'} -C {target}" in guide


def test_data_check_without_names_checks_the_16_paper_datasets(tmp_path, capsys):
    for write in WRITERS.values():
        write(tmp_path)
    assert main(["data", "check", "--root", str(tmp_path)]) == 0
    assert "16 of 16 datasets found" in capsys.readouterr().out
    (tmp_path / "pcam" / "camelyonpatch_level_2_split_test_y.h5").unlink()
    assert main(["data", "check", "--root", str(tmp_path)]) == 1
    assert "15 of 16 datasets found" in capsys.readouterr().out
