"""The torch side of :mod:`caw_core.data.torchvision_sets`: torchvision's dataset classes as caw loads them,
and the readers of the layouts torchvision does not read (DTD extracted into the root, EuroSAT's folders,
Stanford Cars' all-in-one release). The specs name these by import path."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset
from torchvision import datasets as tvd

from caw_core.data.folders import LoopSafeImageFolder, SampleList
from caw_core.data.registry import DatasetError
from caw_core.data.safe_pickle import require_plain_pickle
from caw_core.data.torchvision_sets import CARS_LAYOUT, DTD_LAYOUT, EUROSAT_LAYOUT


class _NoHashCheck:
    """Mixin: skip torchvision's md5 check of all files when a dataset is built.

    CIFAR-10/100, STL-10 and Flowers102 hash every file on each construction,
    including files the requested split never reads (the CIFAR train batches,
    STL-10's 2.6 GB unlabeled split), so evaluating on the test split would
    need the train files and re-hash gigabytes on every run. The files a split
    needs are checked for presence by :meth:`Layout.require` before building;
    downloads use the unmodified torchvision classes, whose md5 checks then
    verify the fetched files.
    """

    def _check_integrity(self) -> bool:
        return True


class _PlainPickles(_NoHashCheck):
    """Mixin for CIFAR: without the md5 check, scan the pickles the split reads before torchvision loads them.

    See :mod:`caw_core.data.safe_pickle`: a planted pickle could otherwise run
    code on load.
    """

    def _check_integrity(self) -> bool:
        files = [name for name, _ in (self.train_list if self.train else self.test_list)] + [self.meta["filename"]]
        for name in files:
            require_plain_pickle(Path(self.root) / self.base_folder / name)
        return True


class PickleScannedCIFAR10(_PlainPickles, tvd.CIFAR10):
    meta = {**tvd.CIFAR10.meta, "md5": None}  # _load_meta hashes batches.meta on its own


class PickleScannedCIFAR100(_PlainPickles, tvd.CIFAR100):
    meta = {**tvd.CIFAR100.meta, "md5": None}


class UnhashedSTL10(_NoHashCheck, tvd.STL10):
    pass


class UnhashedFlowers102(_NoHashCheck, tvd.Flowers102):
    pass


class CheckedPCAM(tvd.PCAM):
    """PCAM, with its two .h5 files opened once up front: torchvision opens them only per item."""

    def __init__(self, root: str, split: str, transform: Callable) -> None:
        super().__init__(root, split=split, transform=transform)
        images, targets = (self._base_folder / self._FILES[split][kind][0] for kind in ("images", "targets"))
        with self.h5py.File(images, "r") as x, self.h5py.File(targets, "r") as y:
            if "x" not in x or "y" not in y or len(x["x"]) != len(y["y"]):
                raise DatasetError(f"{images} and {targets} are not a PCAM pair: expected an 'x' dataset of N "
                                   "96x96x3 patches and a 'y' dataset of N labels")


# --- layouts torchvision does not read ------------------------------------------


class DTDFolder(SampleList):
    """DTD read from ``<data>/labels/<split><partition>.txt`` and ``<data>/images``, as torchvision reads it.

    Labels index the sorted texture names of the split's label file.
    """

    def __init__(self, data: Path, split: str, partition: int, transform: Callable) -> None:
        rows = (data / "labels" / f"{split}{partition}.txt").read_text().split()
        self.classes = sorted({row.split("/")[0] for row in rows})
        index = {name: i for i, name in enumerate(self.classes)}
        self.samples = [(data / "images" / row, index[row.split("/")[0]]) for row in rows]
        self.transform = transform


def dtd(root: str, transform: Callable, split: str) -> Dataset:
    found = DTD_LAYOUT.require(Path(root), split, "DTD")
    return DTDFolder(Path(root) / Path(found.files[split][1]).parent, split, 1, transform)


def eurosat(root: str, transform: Callable) -> Dataset:
    found = EUROSAT_LAYOUT.require(Path(root), "all", "EuroSAT")
    return LoopSafeImageFolder(str(Path(root) / found.files["all"][0]), transform=transform)


class CarsAllInOne(SampleList):
    """Stanford Cars from ``cars_annos.mat`` + ``car_ims/``: the ``test`` flag picks the split, labels are 1-based."""

    def __init__(self, base: Path, split: str, transform: Callable) -> None:
        from scipy.io import loadmat

        path = base / "cars_annos.mat"
        try:
            mat = loadmat(str(path), squeeze_me=True)
            self.classes = [str(name) for name in mat["class_names"]]
            rows = [(str(a["relative_im_path"]), int(a["class"]) - 1, int(a["test"])) for a in mat["annotations"]]
        except Exception as exc:  # scipy raises many types for a malformed .mat
            raise DatasetError(f"{path} is not the Stanford Cars annotation file (annotations with "
                               f"relative_im_path, class, test; class_names): {exc}") from exc
        self.samples = [(base / image, label) for image, label, test in rows if test == (split == "test")]
        self.transform = transform


def cars(root: str, transform: Callable, split: str) -> Dataset:
    found = CARS_LAYOUT.require(Path(root), split, "StanfordCars")
    if found is CARS_LAYOUT.options[0]:
        return tvd.StanfordCars(root, split=split, transform=transform)
    return CarsAllInOne(Path(root) / "stanford_cars", split, transform)
