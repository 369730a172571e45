"""The 13 benchmark datasets torchvision reads, registered through one spec builder.

Each dataset sits below the data root exactly where torchvision's class expects
it (``root/cifar-10-batches-py/test_batch``, ``root/dtd/dtd/labels/test1.txt``,
...); the per-dataset :class:`Layout` lists the files, ``caw-core data check``
reports the missing ones. Loading always passes ``download=False``; downloading
goes through the same torchvision class with ``download=True``, so its md5
checks verify what was fetched.

Class names come from the dataset's own files where it has them (cleaned by
:func:`clean_classname`), or from fixed lists where the files hold codes
(EuroSAT folders, Caltech oddities, PCAM's two tissue classes). Prompt
templates follow the single per-dataset prompt of the reference
implementations (see ANCHORS.md, "Evaluation protocol").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from torch.utils.data import Dataset
from torchvision import datasets as tvd

from caw_core.data.layout import Layout
from caw_core.data.names import clean_classname, strip_model_year
from caw_core.data.registry import DatasetSpec, register
from caw_core.data.safe_pickle import require_plain_pickle

PHOTO = "This is a photo of a {}"  # the references' prompt for datasets without their own


# --- torchvision classes that hash every file on construction ------------------


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


class _CIFAR10(_PlainPickles, tvd.CIFAR10):
    meta = {**tvd.CIFAR10.meta, "md5": None}  # _load_meta hashes batches.meta on its own


class _CIFAR100(_PlainPickles, tvd.CIFAR100):
    meta = {**tvd.CIFAR100.meta, "md5": None}


class _STL10(_NoHashCheck, tvd.STL10):
    pass


class _Flowers102(_NoHashCheck, tvd.Flowers102):
    pass


# --- split arguments -----------------------------------------------------------


def _split_arg(split: str) -> dict[str, Any]:
    return {"split": split}


def _train_flag(split: str) -> dict[str, Any]:
    return {"train": split == "train"}


def _whole_set(split: str) -> dict[str, Any]:
    return {}


# --- class names ---------------------------------------------------------------


def _cleaned(attribute: str = "classes") -> Callable[[Any], list[str]]:
    return lambda data: [clean_classname(c) for c in getattr(data, attribute)]


EUROSAT_CLASSNAMES = {  # folder name -> CLIP's readable name
    "AnnualCrop": "annual crop land",
    "Forest": "forest",
    "HerbaceousVegetation": "brushland or shrubland",
    "Highway": "highway or road",
    "Industrial": "industrial buildings or commercial buildings",
    "Pasture": "pasture land",
    "PermanentCrop": "permanent crop land",
    "Residential": "residential buildings or homes or apartments",
    "River": "river",
    "SeaLake": "lake or sea",
}

CALTECH101_RENAMES = {  # folder names that are plurals, codes or ambiguous
    "Faces": "off-center face",
    "Faces_easy": "centered face",
    "Leopards": "leopard",
    "Motorbikes": "motorbike",
    "airplanes": "airplane",
    "car_side": "side of a car",
    "cougar_body": "body of a cougar cat",
    "cougar_face": "face of a cougar cat",
    "crocodile_head": "head of a crocodile",
    "flamingo_head": "head of a flamingo",
    "snoopy": "snoopy (cartoon beagle)",
    "water_lilly": "water lily",
    "yin_yang": "yin and yang symbol",
}

CALTECH256_RENAMES = {  # after dropping "NNN." and "-101"; hyphens are word breaks otherwise
    "t-shirt": "t-shirt",
    "yo-yo": "yo-yo",
    "self-propelled-lawn-mower": "self-propelled lawn mower",
    "faces-easy": "face",
    "car-side": "side of a car",
    "airplanes": "airplane",
    "motorbikes": "motorbike",
    "leopards": "leopard",
    "head-phones": "headphones",
    "dumb-bell": "dumbbell",
}

PCAM_CLASSNAMES = (  # full sentences; the template is "{}"
    "This is a photo of healthy lymph node tissue",
    "This is a photo of lymph node tumor tissue",
)


def caltech101_names(data: tvd.Caltech101) -> list[str]:
    # torchvision already drops BACKGROUND_Google and numbers the rest from 0.
    return [CALTECH101_RENAMES.get(c, clean_classname(c)) for c in data.categories]


def caltech256_name(folder: str) -> str:
    """``"063.electric-guitar-101"`` -> ``"electric guitar"``."""
    name = folder.split(".", 1)[-1].removesuffix("-101")
    return CALTECH256_RENAMES.get(name, clean_classname(name.replace("-", " ")))


# --- the generic spec builder --------------------------------------------------


def register_torchvision(
    name: str,
    display_name: str,
    template: str,
    layout: Layout,
    dataset_cls: Callable[..., Dataset],
    classnames: Callable[[Any], list[str]],
    split_kwargs: Callable[[str], dict[str, Any]] = _split_arg,
    download_cls: Optional[Callable[..., Dataset]] = None,
    download_note: str = "",
) -> DatasetSpec:
    """Register a torchvision-backed dataset.

    ``dataset_cls(root, transform=..., **split_kwargs(split))`` loads it;
    ``download_cls`` (default ``dataset_cls``) is called with ``download=True``
    for the evaluation split, unless ``download_note`` says why it cannot be.
    """

    def build(root: Path, split: str, transform: Callable) -> tuple[Dataset, list[str]]:
        layout.require(root, split, display_name)
        data = dataset_cls(str(root), transform=transform, **split_kwargs(split))
        return data, classnames(data)

    def download(root: Path) -> None:
        (download_cls or dataset_cls)(str(root), download=True, **split_kwargs(layout.splits[0]))

    return register(
        DatasetSpec(
            name=name,
            display_name=display_name,
            templates=(template,),
            expected_layout=layout.describe(),
            missing_files=layout.missing,
            build=build,
            splits=layout.splits,
            download=None if download_note else download,
            download_note=download_note,
            family="paper",
        )
    )


register_torchvision(
    name="cifar10",
    display_name="CIFAR-10",
    template=PHOTO,
    layout=Layout(
        {
            "test": ["cifar-10-batches-py/test_batch", "cifar-10-batches-py/batches.meta"],
            "train": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
            + ["cifar-10-batches-py/batches.meta"],
        },
        source="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, extracted into the root",
    ),
    dataset_cls=_CIFAR10,
    classnames=_cleaned(),
    split_kwargs=_train_flag,
    download_cls=tvd.CIFAR10,
)

register_torchvision(
    name="cifar100",
    display_name="CIFAR-100",
    template=PHOTO,
    layout=Layout(
        {
            "test": ["cifar-100-python/test", "cifar-100-python/meta"],
            "train": ["cifar-100-python/train", "cifar-100-python/meta"],
        },
        source="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz, extracted into the root",
    ),
    dataset_cls=_CIFAR100,
    classnames=_cleaned(),
    split_kwargs=_train_flag,
    download_cls=tvd.CIFAR100,
)

register_torchvision(
    name="stl10",
    display_name="STL-10",
    template=PHOTO,
    layout=Layout(
        {
            split: [
                f"stl10_binary/{split}_X.bin",
                f"stl10_binary/{split}_y.bin",
                "stl10_binary/class_names.txt",
            ]
            for split in ("test", "train")
        },
        source="http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz, extracted into the root",
    ),
    dataset_cls=_STL10,
    classnames=_cleaned(),
    download_cls=tvd.STL10,
)

register_torchvision(
    name="sun397",
    display_name="SUN397",
    template=PHOTO,
    layout=Layout(
        {"all": ["SUN397/ClassName.txt"]},
        contents=["SUN397/<letter>/<class>[/<subclass>]/sun_*.jpg  (every image: no official split)"],
        source="http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz, extracted into the root",
    ),
    dataset_cls=tvd.SUN397,
    classnames=_cleaned(),
    split_kwargs=_whole_set,
)

register_torchvision(
    name="food101",
    display_name="Food101",
    template="A photo of {}, a type of food.",
    layout=Layout(
        {split: [f"food-101/meta/{split}.json", "food-101/images"] for split in ("test", "train")},
        contents=["food-101/images/<class>/<id>.jpg"],
        source="http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz, extracted into the root",
    ),
    dataset_cls=tvd.Food101,
    classnames=_cleaned(),
)

register_torchvision(
    name="pets",
    display_name="OxfordPets",
    template="A photo of a {}, a type of pet.",
    layout=Layout(
        {
            split: [f"oxford-iiit-pet/annotations/{split}.txt", "oxford-iiit-pet/images"]
            for split in ("test", "trainval")
        },
        contents=["oxford-iiit-pet/images/<Breed_name>_<n>.jpg"],
        source="images.tar.gz and annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/, "
        "both extracted into root/oxford-iiit-pet",
    ),
    dataset_cls=tvd.OxfordIIITPet,
    classnames=_cleaned(),
)

register_torchvision(
    name="flowers102",
    display_name="Flowers102",
    template="A photo of a {}, a type of flower.",
    layout=Layout(
        {
            split: ["flowers-102/jpg", "flowers-102/imagelabels.mat", "flowers-102/setid.mat"]
            for split in ("test", "train", "val")
        },
        contents=["flowers-102/jpg/image_<nnnnn>.jpg"],
        source="102flowers.tgz (extracted), imagelabels.mat and setid.mat from "
        "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/, into root/flowers-102",
    ),
    dataset_cls=_Flowers102,
    classnames=lambda data: list(tvd.Flowers102.classes),
    download_cls=tvd.Flowers102,
)

register_torchvision(
    name="dtd",
    display_name="DTD",
    template="A surface with a {} texture.",
    layout=Layout(
        {split: [f"dtd/dtd/labels/{split}1.txt", "dtd/dtd/images"] for split in ("test", "train", "val")},
        contents=["dtd/dtd/images/<texture>/<texture>_<n>.jpg  (partition 1 of the label files)"],
        source="https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz, extracted into root/dtd",
    ),
    dataset_cls=tvd.DTD,
    classnames=_cleaned(),
    split_kwargs=lambda split: {"split": split, "partition": 1},
)

register_torchvision(
    name="eurosat",
    display_name="EuroSAT",
    template="A centered satellite photo of {}.",
    layout=Layout(
        {"all": ["eurosat/2750"]},
        contents=[
            "eurosat/2750/<ClassName>/<ClassName>_<n>.jpg  (RGB version, every image: no official split)"
        ],
        source="EuroSAT.zip (RGB) from https://github.com/phelber/eurosat, extracted into root/eurosat",
    ),
    dataset_cls=tvd.EuroSAT,
    classnames=lambda data: [EUROSAT_CLASSNAMES.get(c, clean_classname(c)) for c in data.classes],
    split_kwargs=_whole_set,
)

register_torchvision(
    name="aircraft",
    display_name="FGVC-Aircraft",
    template="A photo of a {}, a type of aircraft.",
    layout=Layout(
        {
            split: [
                "fgvc-aircraft-2013b/data/variants.txt",
                f"fgvc-aircraft-2013b/data/images_variant_{split}.txt",
                "fgvc-aircraft-2013b/data/images",
            ]
            for split in ("test", "train", "val", "trainval")
        },
        contents=["fgvc-aircraft-2013b/data/images/<id>.jpg"],
        source="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz, "
        "extracted into the root",
    ),
    dataset_cls=tvd.FGVCAircraft,
    classnames=_cleaned(),
)

register_torchvision(
    name="caltech101",
    display_name="Caltech-101",
    template="A photo of a {}.",
    layout=Layout(
        {"all": ["caltech101/101_ObjectCategories"]},
        contents=[
            "caltech101/101_ObjectCategories/<category>/image_<nnnn>.jpg  "
            "(every image: no official split; BACKGROUND_Google is skipped)"
        ],
        source="https://data.caltech.edu/records/mzrjq-6wc02 (101_ObjectCategories.tar.gz, extracted "
        "into root/caltech101)",
    ),
    dataset_cls=tvd.Caltech101,
    classnames=caltech101_names,
    split_kwargs=_whole_set,
)

register_torchvision(
    name="caltech256",
    display_name="Caltech-256",
    template="A photo of a {}.",
    layout=Layout(
        {"all": ["caltech256/256_ObjectCategories"]},
        contents=[
            "caltech256/256_ObjectCategories/<NNN>.<category>/<NNN>_<nnnn>.jpg  (every image: no official split)"
        ],
        source="https://data.caltech.edu/records/nyy15-4j048 (256_ObjectCategories.tar, extracted "
        "into root/caltech256)",
    ),
    dataset_cls=tvd.Caltech256,
    classnames=lambda data: [caltech256_name(c) for c in data.categories],
    split_kwargs=_whole_set,
)

register_torchvision(
    name="cars",
    display_name="StanfordCars",
    template="A photo of a {}.",
    layout=Layout(
        {
            "test": [
                "stanford_cars/devkit/cars_meta.mat",
                "stanford_cars/cars_test_annos_withlabels.mat",
                "stanford_cars/cars_test",
            ],
            "train": [
                "stanford_cars/devkit/cars_meta.mat",
                "stanford_cars/devkit/cars_train_annos.mat",
                "stanford_cars/cars_train",
            ],
        },
        contents=["stanford_cars/cars_test/<nnnnn>.jpg"],
        source="car_devkit.tgz, cars_test.tgz, cars_train.tgz and cars_test_annos_withlabels.mat "
        "(mirrors, e.g. Kaggle), into root/stanford_cars",
    ),
    dataset_cls=tvd.StanfordCars,
    classnames=lambda data: [strip_model_year(name) for name in _cleaned()(data)],
    download_note="Its official URL (ai.stanford.edu/~jkrause/cars) is dead, so torchvision cannot "
    "download it; get the files from a mirror (e.g. Kaggle 'stanford-cars-dataset').",
)

register_torchvision(
    name="pcam",
    display_name="PCAM",
    template="{}",
    layout=Layout(
        {
            split: [
                f"pcam/camelyonpatch_level_2_split_{file_split}_x.h5",
                f"pcam/camelyonpatch_level_2_split_{file_split}_y.h5",
            ]
            for split, file_split in (("test", "test"), ("train", "train"), ("val", "valid"))
        },
        source="https://github.com/basveeling/pcam (the .h5.gz files, gunzipped into root/pcam)",
    ),
    dataset_cls=tvd.PCAM,
    classnames=lambda data: list(PCAM_CLASSNAMES),
)
