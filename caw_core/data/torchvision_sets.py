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

This module holds the specs and imports no torch; the subclasses of
torchvision's datasets and the readers of the other layouts are in
:mod:`caw_core.data.torchvision_loaders`, named here by import path.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from caw_core.data.checked import reading
from caw_core.data.layout import AnyLayout, Layout
from caw_core.data.names import clean_classname, strip_model_year
from caw_core.data.registry import DatasetSpec, register
from caw_core.imports import imported

if TYPE_CHECKING:
    from torch.utils.data import Dataset

PHOTO = "This is a photo of a {}"  # the references' prompt for datasets without their own


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


def caltech101_names(data: Any) -> list[str]:
    # torchvision already drops BACKGROUND_Google and numbers the rest from 0.
    return [CALTECH101_RENAMES.get(c, clean_classname(c)) for c in data.categories]


def caltech256_name(folder: str) -> str:
    """``"063.electric-guitar-101"`` -> ``"electric guitar"``."""
    name = folder.split(".", 1)[-1].removesuffix("-101")
    return CALTECH256_RENAMES.get(name, clean_classname(name.replace("-", " ")))


# --- the generic spec builder --------------------------------------------------


def _build(name: str, display_name: str, layout: Layout | AnyLayout, load: Callable[..., Dataset],
           classnames: Callable[[Any], list[str]], split_kwargs: Callable[[str], dict[str, Any]],
           root: Path, split: str, transform: Callable) -> tuple[Dataset, list[str]]:
    found = layout.require(root, split, display_name)
    files = [Path(root) / p for p in found.files[split]]
    with reading(display_name, files, f"the files of {display_name} as in 'caw-core data check {name}'"):
        data = load(str(root), transform=transform, **split_kwargs(split))
        return data, classnames(data)


def _download(layout: Layout | AnyLayout, fetch: Callable[..., Dataset], split_kwargs: Callable[[str], dict[str, Any]],
              root: Path) -> None:
    fetch(str(root), download=True, **split_kwargs(layout.splits[0]))


def register_torchvision(
    name: str,
    display_name: str,
    template: str,
    layout: Layout | AnyLayout,
    dataset_cls: str,
    classnames: Callable[[Any], list[str]],
    split_kwargs: Callable[[str], dict[str, Any]] = _split_arg,
    download_cls: Optional[str] = None,
    download_note: str = "",
) -> DatasetSpec:
    """Register a torchvision-backed dataset.

    ``dataset_cls(root, transform=..., **split_kwargs(split))`` loads it;
    ``download_cls`` (default ``dataset_cls``) is called with ``download=True``
    for the evaluation split, unless ``download_note`` says why it cannot be.
    Both are import paths (``"torchvision.datasets:SUN397"``), imported when a
    dataset is loaded or downloaded, never when it is registered or checked.
    """
    return register(
        DatasetSpec(
            name=name,
            display_name=display_name,
            templates=(template,),
            expected_layout=layout.describe(),
            missing_files=layout.missing,
            build=partial(_build, name, display_name, layout, imported(dataset_cls), classnames, split_kwargs),
            splits=layout.splits,
            download=None if download_note else partial(_download, layout, imported(download_cls or dataset_cls),
                                                        split_kwargs),
            download_note=download_note,
            family="paper",
            guide=layout.guide,
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
        source="https://www.cs.toronto.edu/~kriz/cifar.html",
        archives={"cifar-10-python.tar.gz": ""},
    ),
    dataset_cls="caw_core.data.torchvision_loaders:PickleScannedCIFAR10",
    classnames=_cleaned(),
    split_kwargs=_train_flag,
    download_cls="torchvision.datasets:CIFAR10",
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
        source="https://www.cs.toronto.edu/~kriz/cifar.html",
        archives={"cifar-100-python.tar.gz": ""},
    ),
    dataset_cls="caw_core.data.torchvision_loaders:PickleScannedCIFAR100",
    classnames=_cleaned(),
    split_kwargs=_train_flag,
    download_cls="torchvision.datasets:CIFAR100",
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
        source="https://cs.stanford.edu/~acoates/stl10/",
        archives={"stl10_binary.tar.gz": ""},
    ),
    dataset_cls="caw_core.data.torchvision_loaders:UnhashedSTL10",
    classnames=_cleaned(),
    download_cls="torchvision.datasets:STL10",
)

register_torchvision(
    name="sun397",
    display_name="SUN397",
    template=PHOTO,
    layout=Layout(
        {"all": ["SUN397/ClassName.txt"]},
        contents=["SUN397/<letter>/<class>[/<subclass>]/sun_*.jpg  (every image: no official split)"],
        source="https://vision.princeton.edu/projects/2010/SUN/",
        archives={"SUN397.tar.gz": ""},
    ),
    dataset_cls="torchvision.datasets:SUN397",
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
        source="https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/",
        archives={"food-101.tar.gz": ""},
    ),
    dataset_cls="torchvision.datasets:Food101",
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
        source="https://www.robots.ox.ac.uk/~vgg/data/pets/",
        archives={"images.tar.gz": "oxford-iiit-pet", "annotations.tar.gz": "oxford-iiit-pet"},
    ),
    dataset_cls="torchvision.datasets:OxfordIIITPet",
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
        source="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
        archives={"102flowers.tgz": "flowers-102", "imagelabels.mat": "flowers-102", "setid.mat": "flowers-102"},
    ),
    dataset_cls="caw_core.data.torchvision_loaders:UnhashedFlowers102",
    classnames=lambda data: list(data.classes),
    download_cls="torchvision.datasets:Flowers102",
)

DTD_LAYOUT = AnyLayout([
    Layout(
        {split: [f"dtd/dtd/labels/{split}1.txt", "dtd/dtd/images"] for split in ("test", "train", "val")},
        contents=["dtd/dtd/images/<texture>/<texture>_<n>.jpg  (partition 1 of the label files)"],
        source="https://www.robots.ox.ac.uk/~vgg/data/dtd/",
        archives={"dtd-r1.0.1.tar.gz": "dtd"},
        name="torchvision's layout: the archive extracted into root/dtd",
    ),
    Layout(
        {split: [f"dtd/labels/{split}1.txt", "dtd/images"] for split in ("test", "train", "val")},
        name="also read: the archive extracted into the root",
    ),
])


register_torchvision(
    name="dtd",
    display_name="DTD",
    template="A surface with a {} texture.",
    layout=DTD_LAYOUT,
    dataset_cls="caw_core.data.torchvision_loaders:dtd",
    classnames=_cleaned(),
    download_cls="torchvision.datasets:DTD",
)

EUROSAT_LAYOUT = AnyLayout([
    Layout(
        {"all": ["eurosat/EuroSAT_RGB"]},
        contents=["eurosat/EuroSAT_RGB/<ClassName>/<ClassName>_<n>.jpg  (every image: no official split)"],
        source="https://zenodo.org/records/7711810 (the RGB version)",
        archives={"EuroSAT_RGB.zip": "eurosat"},
        name="today's official EuroSAT_RGB.zip extracted into root/eurosat",
    ),
    Layout({"all": ["eurosat/2750"]}, name="also read: torchvision's download (EuroSAT.zip, folder 2750)"),
    Layout({"all": ["EuroSAT_RGB"]}, name="also read: EuroSAT_RGB.zip extracted into the root"),
])


register_torchvision(
    name="eurosat",
    display_name="EuroSAT",
    template="A centered satellite photo of {}.",
    layout=EUROSAT_LAYOUT,
    dataset_cls="caw_core.data.torchvision_loaders:eurosat",
    classnames=lambda data: [EUROSAT_CLASSNAMES.get(c, clean_classname(c)) for c in data.classes],
    split_kwargs=_whole_set,
    download_cls="torchvision.datasets:EuroSAT",
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
        source="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/",
        archives={"fgvc-aircraft-2013b.tar.gz": ""},
    ),
    dataset_cls="torchvision.datasets:FGVCAircraft",
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
        source="https://data.caltech.edu/records/mzrjq-6wc02 (caltech-101.zip holds 101_ObjectCategories.tar.gz: "
        "unzip it, then extract the tar.gz)",
        archives={"caltech-101.zip": "caltech101", "caltech-101/101_ObjectCategories.tar.gz": "caltech101"},
    ),
    dataset_cls="torchvision.datasets:Caltech101",
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
        source="https://data.caltech.edu/records/nyy15-4j048",
        archives={"256_ObjectCategories.tar": "caltech256"},
    ),
    dataset_cls="torchvision.datasets:Caltech256",
    classnames=lambda data: [caltech256_name(c) for c in data.categories],
    split_kwargs=_whole_set,
)

_CARS_ARCHIVE = "https://web.archive.org/web/2021/https://ai.stanford.edu/~jkrause/"
CARS_LAYOUT = AnyLayout([
    Layout(
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
        source=f"the original site is offline; Wayback Machine copies: {_CARS_ARCHIVE}cars/car_devkit.tgz, "
        f"{_CARS_ARCHIVE}car196/cars_test.tgz, {_CARS_ARCHIVE}car196/cars_train.tgz, "
        f"{_CARS_ARCHIVE}car196/cars_test_annos_withlabels.mat",
        archives={"car_devkit.tgz": "stanford_cars", "cars_test.tgz": "stanford_cars",
                  "cars_train.tgz": "stanford_cars", "cars_test_annos_withlabels.mat": "stanford_cars"},
        name="the devkit layout torchvision reads (car_devkit.tgz gives devkit/)",
    ),
    Layout(
        {split: ["stanford_cars/cars_annos.mat", "stanford_cars/car_ims"] for split in ("test", "train")},
        contents=["stanford_cars/car_ims/<nnnnnn>.jpg  (all 16,185 images; cars_annos.mat flags the test ones)"],
        source=f"{_CARS_ARCHIVE}car196/car_ims.tgz and {_CARS_ARCHIVE}car196/cars_annos.mat",
        archives={"car_ims.tgz": "stanford_cars", "cars_annos.mat": "stanford_cars"},
        name="also read: the all-in-one release (car_ims.tgz + cars_annos.mat)",
    ),
])


register_torchvision(
    name="cars",
    display_name="StanfordCars",
    template="A photo of a {}.",
    layout=CARS_LAYOUT,
    dataset_cls="caw_core.data.torchvision_loaders:cars",
    classnames=lambda data: [strip_model_year(name) for name in _cleaned()(data)],
    download_note="Its official site (ai.stanford.edu/~jkrause/cars) is offline, so torchvision cannot "
    "download it; the Wayback Machine keeps the files (see source).",
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
        source="https://github.com/basveeling/pcam (files on https://zenodo.org/records/2546921)",
        archives={f"camelyonpatch_level_2_split_test_{xy}.h5.gz": "pcam" for xy in ("x", "y")},
    ),
    dataset_cls="caw_core.data.torchvision_loaders:CheckedPCAM",
    classnames=lambda data: list(PCAM_CLASSNAMES),
    download_cls="torchvision.datasets:PCAM",
)
