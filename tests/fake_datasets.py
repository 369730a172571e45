"""Miniature copies of the 16 benchmark datasets, in each one's real on-disk format.

Every image is a solid colour: colour ``c`` (red, green, blue) marks its class,
so a test can check each loaded ``(image, label)`` pair, not just counts. Each
writer ``write_<name>(root)`` creates the files below ``root`` and returns a
:class:`Fake` describing what loading them must give.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

COLOURS = ((220, 30, 30), (30, 220, 30), (30, 30, 220))


@dataclass(frozen=True)
class Fake:
    """What loading a miniature must give.

    Attributes:
        counts: images per split written (the first split is the default).
        label_of_colour: label of images drawn in ``COLOURS[i]``.
        names: cleaned class name expected at each of those labels.
        num_classes: length of the class-name list.
        key_file: a path (relative to root) the missing-files report must name.
    """

    counts: dict[str, int]
    label_of_colour: tuple[int, ...]
    names: dict[int, str]
    num_classes: int
    key_file: str


def _jpeg(path: Path, colour: int, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), COLOURS[colour]).save(path, quality=95)


def _planes(colours: list[int], side: int) -> np.ndarray:
    """(N, 3, side, side) uint8 solid images (channel planes, as CIFAR/STL store them)."""
    rgb = np.array([COLOURS[c] for c in colours], dtype=np.uint8)
    return np.broadcast_to(rgb[:, :, None, None], (len(colours), 3, side, side)).copy()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))


def _identity(names: list[str], key_file: str, counts: dict[str, int]) -> Fake:
    """Fake whose labels are 0..k-1 in colour order."""
    return Fake(counts, tuple(range(len(names))), dict(enumerate(names)), len(names), key_file)


# --- one writer per dataset ------------------------------------------------------


def write_cifar10(root: Path) -> Fake:
    labels = [2, 0, 1, 0, 2]
    base = root / "cifar-10-batches-py"
    _pickle(base / "test_batch", {"data": _planes(labels, 32).reshape(len(labels), -1), "labels": labels})
    _pickle(base / "batches.meta", {"label_names": ["airplane", "automobile", "bird"]})
    return _identity(["airplane", "automobile", "bird"], "cifar-10-batches-py/test_batch", {"test": 5})


def write_cifar100(root: Path) -> Fake:
    labels = [1, 1, 0, 2]
    base = root / "cifar-100-python"
    data = _planes(labels, 32).reshape(len(labels), -1)
    _pickle(base / "test", {"data": data, "fine_labels": labels, "coarse_labels": [0] * len(labels)})
    _pickle(
        base / "meta",
        {"fine_label_names": ["apple", "aquarium_fish", "maple_tree"], "coarse_label_names": ["x"]},
    )
    return _identity(["apple", "aquarium fish", "maple tree"], "cifar-100-python/test", {"test": 4})


def write_stl10(root: Path) -> Fake:
    labels = [0, 2, 1, 2]
    base = root / "stl10_binary"
    base.mkdir(parents=True)
    _planes(labels, 96).tofile(base / "test_X.bin")
    (np.array(labels, dtype=np.uint8) + 1).tofile(base / "test_y.bin")  # 1-based on disk
    _write(base / "class_names.txt", "airplane\nbird\ncar\n")
    return _identity(["airplane", "bird", "car"], "stl10_binary/test_X.bin", {"test": 4})


def write_sun397(root: Path) -> Fake:
    base = root / "SUN397"
    _write(base / "ClassName.txt", "/a/abbey\n/a/apartment_building/outdoor\n/b/bakery/shop\n")
    for colour, folder, n in (
        (0, "a/abbey", 2),
        (1, "a/apartment_building/outdoor", 1),
        (2, "b/bakery/shop", 2),
    ):
        for i in range(n):
            _jpeg(base / folder / f"sun_{colour}{i}abc.jpg", colour)
    return _identity(
        ["abbey", "apartment building outdoor", "bakery shop"], "SUN397/ClassName.txt", {"all": 5}
    )


def write_food101(root: Path) -> Fake:
    base = root / "food-101"
    classes = ["apple_pie", "baby_back_ribs", "beignets"]
    splits = {"test": {c: [f"{c}/{100 + i}" for i in range(2)] for c in classes}}
    splits["train"] = {c: [f"{c}/{200}"] for c in classes}
    for split, meta in splits.items():
        _write(base / "meta" / f"{split}.json", json.dumps(meta))
        for colour, c in enumerate(classes):
            for image in meta[c]:
                _jpeg(base / "images" / f"{image}.jpg", colour)
    return _identity(
        ["apple pie", "baby back ribs", "beignets"], "food-101/meta/test.json", {"test": 6, "train": 3}
    )


def write_pets(root: Path) -> Fake:
    base = root / "oxford-iiit-pet"
    breeds = [("Abyssinian", 1), ("american_bulldog", 2), ("american_pit_bull_terrier", 2)]  # (name, species)
    rows = {"test": [(0, 1), (0, 2), (1, 7), (2, 3)], "trainval": [(1, 20), (2, 21), (0, 22)]}
    for split, images in rows.items():
        lines = [f"{breeds[b][0]}_{n} {b + 1} {breeds[b][1]} 1" for b, n in images]
        _write(base / "annotations" / f"{split}.txt", "\n".join(lines) + "\n")
        for b, n in images:
            _jpeg(base / "images" / f"{breeds[b][0]}_{n}.jpg", b)
    names = ["Abyssinian", "American Bulldog", "American Pit Bull Terrier"]
    return _identity(names, "oxford-iiit-pet/annotations/test.txt", {"test": 4, "trainval": 3})


def write_flowers102(root: Path) -> Fake:
    from scipy.io import savemat

    base = root / "flowers-102"
    labels = [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2]  # 1-based class of image_00001 ... image_00011
    for image_id, label in enumerate(labels, 1):
        _jpeg(base / "jpg" / f"image_{image_id:05d}.jpg", label - 1)
    savemat(base / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    split_ids = {"tstid": [1, 2, 3, 10, 11], "trnid": [4, 5, 6], "valid": [7, 8, 9]}
    savemat(base / "setid.mat", {k: np.array([v], dtype=np.uint16) for k, v in split_ids.items()})
    names = {0: "pink primrose", 1: "hard-leaved pocket orchid", 2: "canterbury bells"}
    return Fake({"test": 5, "train": 3, "val": 3}, (0, 1, 2), names, 102, "flowers-102/setid.mat")


def write_dtd(root: Path) -> Fake:
    base = root / "dtd" / "dtd"
    classes = ["banded", "blotchy", "braided"]
    rows = {
        "test": [(0, 1), (1, 2), (2, 3), (2, 4)],
        "train": [(0, 5), (1, 6), (2, 7)],
        "val": [(0, 8), (1, 9), (2, 10)],
    }
    for split, images in rows.items():
        _write(
            base / "labels" / f"{split}1.txt",
            "".join(f"{classes[c]}/{classes[c]}_{n:04d}.jpg\n" for c, n in images),
        )
        for c, n in images:
            _jpeg(base / "images" / classes[c] / f"{classes[c]}_{n:04d}.jpg", c)
    return _identity(classes, "dtd/dtd/labels/test1.txt", {"test": 4, "train": 3, "val": 3})


def write_eurosat(root: Path) -> Fake:
    for colour, folder in enumerate(["AnnualCrop", "Forest", "SeaLake"]):
        for i in range(1, 3):
            _jpeg(root / "eurosat" / "EuroSAT_RGB" / folder / f"{folder}_{i}.jpg", colour, size=64)
    return _identity(["annual crop land", "forest", "lake or sea"], "eurosat/EuroSAT_RGB", {"all": 6})


def write_aircraft(root: Path) -> Fake:
    data = root / "fgvc-aircraft-2013b" / "data"
    variants = ["707-320", "A300B4", "Cessna 172"]
    _write(data / "variants.txt", "".join(v + "\n" for v in variants))
    rows = {
        "test": [(0, 1034309), (1, 1034310), (2, 1034311), (0, 1034312)],
        "train": [(1, 2000001), (2, 2000002), (0, 2000003)],
    }
    for split, images in rows.items():
        _write(data / f"images_variant_{split}.txt", "".join(f"{n:07d} {variants[v]}\n" for v, n in images))
        for v, n in images:
            _jpeg(data / "images" / f"{n:07d}.jpg", v)
    return _identity(variants, "fgvc-aircraft-2013b/data/images_variant_test.txt", {"test": 4, "train": 3})


def write_imagenet(root: Path) -> Fake:
    wnids = [("n01443537", 1, "goldfish"), ("n01530575", 10, "brambling"), ("n15075141", 999, "toilet paper")]
    for colour, (wnid, _, _) in enumerate(wnids):
        for i in range(2):
            _jpeg(root / "imagenet" / "val" / wnid / f"ILSVRC2012_val_{colour * 10 + i:08d}.JPEG", colour)
    return Fake({"val": 6}, tuple(w[1] for w in wnids), {w[1]: w[2] for w in wnids}, 1000, "imagenet/val")


def write_caltech101(root: Path) -> Fake:
    base = root / "caltech101" / "101_ObjectCategories"
    for folder, colour, n in (
        ("BACKGROUND_Google", 0, 2),
        ("Faces_easy", 0, 2),
        ("Leopards", 1, 2),
        ("water_lilly", 2, 1),
    ):
        for i in range(1, n + 1):
            _jpeg(base / folder / f"image_{i:04d}.jpg", colour)
    return _identity(
        ["centered face", "leopard", "water lily"], "caltech101/101_ObjectCategories", {"all": 5}
    )


def write_caltech256(root: Path) -> Fake:
    base = root / "caltech256" / "256_ObjectCategories"
    for colour, folder in enumerate(["001.ak47", "002.american-flag", "003.electric-guitar-101"]):
        for i in range(1, 3):
            _jpeg(base / folder / f"{colour + 1:03d}_{i:04d}.jpg", colour)
    names = ["ak47", "american flag", "electric guitar"]
    return _identity(names, "caltech256/256_ObjectCategories", {"all": 6})


def _without_year(names: list[str]) -> list[str]:
    """Cars class names as caw reads them: the model year dropped, as the reference prompts do."""
    return [name.rsplit(" ", 1)[0] for name in names]


def write_cars(root: Path) -> Fake:
    from scipy.io import savemat

    base = root / "stanford_cars"
    names = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi TTS Coupe 2012"]
    (base / "devkit").mkdir(parents=True)
    savemat(base / "devkit" / "cars_meta.mat", {"class_names": np.array([names], dtype=object)})
    labels = [3, 1, 2, 1]  # 1-based, as in the .mat files
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    annotations = np.zeros((1, len(labels)), dtype=[(f, "O") for f in fields])
    for i, label in enumerate(labels):
        fname = f"{i + 1:05d}.jpg"
        annotations[0, i] = (0, 0, 7, 7, label, fname)
        _jpeg(base / "cars_test" / fname, label - 1)
    savemat(base / "cars_test_annos_withlabels.mat", {"annotations": annotations})
    return _identity(_without_year(names), "stanford_cars/cars_test_annos_withlabels.mat", {"test": 4})


def write_pcam(root: Path) -> Fake:
    import h5py

    base = root / "pcam"
    base.mkdir(parents=True)
    labels = [0, 1, 1, 0, 1]
    stem = "camelyonpatch_level_2_split_test"
    with h5py.File(base / f"{stem}_x.h5", "w") as f:
        f["x"] = _planes(labels, 96).transpose(0, 2, 3, 1)  # stored HWC
    with h5py.File(base / f"{stem}_y.h5", "w") as f:
        f["y"] = np.array(labels, dtype=np.uint8).reshape(-1, 1, 1, 1)
    names = ["This is a photo of healthy lymph node tissue", "This is a photo of lymph node tumor tissue"]
    return _identity(names, f"pcam/{stem}_x.h5", {"test": 5})


def write_tinyimagenet(root: Path) -> Fake:
    base = root / "tiny-imagenet-200"
    wnids = ["n04067472", "n01443537", "n02124075"]  # file order is not sorted order
    _write(base / "wnids.txt", "\n".join(wnids) + "\n")
    _write(
        base / "words.txt",
        "n00001740\tentity\nn01443537\tgoldfish, Carassius auratus\n"
        "n02124075\tEgyptian cat\nn04067472\treel\nn09999999\tspare_part, extra\n",
    )
    colour_of = {"n01443537": 0, "n02124075": 1, "n04067472": 2}  # = sorted index
    for wnid in wnids:
        for i in range(2):
            _jpeg(base / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", colour_of[wnid], size=64)
        _write(base / "train" / wnid / f"{wnid}_boxes.txt", "")
    val = ["n02124075", "n01443537", "n04067472", "n02124075", "n01443537"]
    rows = []
    for i, wnid in enumerate(val):
        _jpeg(base / "val" / "images" / f"val_{i}.JPEG", colour_of[wnid], size=64)
        rows.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    _write(base / "val" / "val_annotations.txt", "\n".join(rows) + "\n")
    names = ["goldfish", "Egyptian cat", "reel"]
    return _identity(names, "tiny-imagenet-200/val/val_annotations.txt", {"val": 5, "train": 6})


WRITERS: dict[str, Callable[[Path], Fake]] = {
    "tinyimagenet": write_tinyimagenet,
    "cifar10": write_cifar10,
    "cifar100": write_cifar100,
    "stl10": write_stl10,
    "sun397": write_sun397,
    "food101": write_food101,
    "pets": write_pets,
    "flowers102": write_flowers102,
    "dtd": write_dtd,
    "eurosat": write_eurosat,
    "aircraft": write_aircraft,
    "imagenet": write_imagenet,
    "caltech101": write_caltech101,
    "caltech256": write_caltech256,
    "cars": write_cars,
    "pcam": write_pcam,
}


# --- other layouts users end up with -----------------------------------------------


def write_imagenet_flat(root: Path, devkit: str = "archive") -> Fake:
    """``ILSVRC2012_img_val.tar`` extracted flat into ``imagenet/val`` with the devkit beside it.

    ``devkit``: "archive" (``ILSVRC2012_devkit_t12.tar.gz``), "folder" (extracted) or "none".
    The ILSVRC2012_IDs are not the sorted-wnid order, as in the real devkit.
    """
    import io
    import tarfile

    from scipy.io import savemat

    synsets = [(1, "n15075141", 0), (2, "n01443537", 0), (3, "n01530575", 0), (1001, "n00001740", 3)]  # id, wnid, children
    table = np.zeros((len(synsets), 1), dtype=[(f, "O") for f in ("ILSVRC2012_ID", "WNID", "words", "gloss",
                                                                  "num_children", "wordnet_height",
                                                                  "num_train_images")])
    for i, (sid, wnid, children) in enumerate(synsets):
        table[i, 0] = (sid, wnid, wnid, "", children, 0, 0)
    meta = io.BytesIO()
    savemat(meta, {"synsets": table})
    truth_ids = [2, 3, 1, 2, 1, 3]  # image n has the ILSVRC2012_ID on line n
    colour_of_id = {2: 0, 3: 1, 1: 2}
    for n, sid in enumerate(truth_ids, 1):
        _jpeg(root / "imagenet" / "val" / f"ILSVRC2012_val_{n:08d}.JPEG", colour_of_id[sid])
    files = {"ILSVRC2012_devkit_t12/data/meta.mat": meta.getvalue(),
             "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt":
                 "".join(f"{sid}\n" for sid in truth_ids).encode()}
    if devkit == "archive":
        with tarfile.open(root / "imagenet" / "ILSVRC2012_devkit_t12.tar.gz", "w:gz") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    elif devkit == "folder":
        for name, data in files.items():
            (root / "imagenet" / name).parent.mkdir(parents=True, exist_ok=True)
            (root / "imagenet" / name).write_bytes(data)
    # sorted-wnid labels: n01443537 -> 1, n01530575 -> 10, n15075141 -> 999
    return Fake({"val": 6}, (1, 10, 999), {1: "goldfish", 10: "brambling", 999: "toilet paper"}, 1000,
                "imagenet/ILSVRC2012_devkit_t12.tar.gz")


def write_eurosat_2750(root: Path) -> Fake:
    """torchvision's EuroSAT download: ``eurosat/2750/<Class>``."""
    fake = write_eurosat(root)
    (root / "eurosat" / "EuroSAT_RGB").rename(root / "eurosat" / "2750")
    return fake


def write_dtd_in_root(root: Path) -> Fake:
    """``dtd-r1.0.1.tar.gz`` extracted into the root: ``dtd/images``, ``dtd/labels``."""
    fake = write_dtd(root / "staging")
    (root / "staging" / "dtd" / "dtd").rename(root / "dtd")
    return fake


def write_cars_all_in_one(root: Path) -> Fake:
    """The all-in-one Stanford Cars release: ``car_ims/`` + ``cars_annos.mat`` (a test flag per image)."""
    from scipy.io import savemat

    base = root / "stanford_cars"
    names = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi TTS Coupe 2012"]
    rows = [(3, 1), (1, 1), (2, 0), (2, 1), (1, 0)]  # (1-based class, test flag)
    fields = ["relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"]
    annotations = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])
    for i, (label, test) in enumerate(rows):
        path = f"car_ims/{i + 1:06d}.jpg"
        annotations[0, i] = (path, 0, 0, 7, 7, label, test)
        _jpeg(base / path, label - 1)
    savemat(base / "cars_annos.mat", {"annotations": annotations,
                                      "class_names": np.array([names], dtype=object)})
    return _identity(_without_year(names), "stanford_cars/cars_annos.mat", {"test": 3, "train": 2})


LAYOUT_WRITERS: dict[str, tuple[str, Callable[[Path], Fake]]] = {  # variant -> (dataset, writer)
    "imagenet-flat-devkit-archive": ("imagenet", write_imagenet_flat),
    "imagenet-flat-devkit-folder": ("imagenet", lambda root: write_imagenet_flat(root, devkit="folder")),
    "eurosat-2750": ("eurosat", write_eurosat_2750),
    "dtd-in-root": ("dtd", write_dtd_in_root),
    "cars-all-in-one": ("cars", write_cars_all_in_one),
}
