"""TinyImageNet (200 classes, 64 px): the fine-tuning set of the CAW recipe.

Expected layout (the official ``tiny-imagenet-200.zip`` extracted into the root)::

    tiny-imagenet-200/wnids.txt                  the 200 WordNet ids
    tiny-imagenet-200/words.txt                  "<wnid>\\t<synonym>, <synonym>, ..."
    tiny-imagenet-200/train/<wnid>/images/*.JPEG
    tiny-imagenet-200/val/images/*.JPEG           flat folder ...
    tiny-imagenet-200/val/val_annotations.txt     ... labelled here: "<file>\\t<wnid>\\t<box>"

Labels index the *sorted* wnids (what ``ImageFolder`` on ``train/`` gives, as in
the reference implementations); class names are the first synonym of each
wnid in ``words.txt``. The test split has no labels, so "val" is the
evaluation split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset
from torchvision.datasets.utils import download_and_extract_archive

from caw_core.data.checked import reading
from caw_core.data.folders import SampleList
from caw_core.data.layout import Layout
from caw_core.data.names import clean_classname
from caw_core.data.registry import DatasetSpec, register

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
FOLDER = "tiny-imagenet-200"

LAYOUT = Layout(
    {
        "val": [
            f"{FOLDER}/wnids.txt",
            f"{FOLDER}/words.txt",
            f"{FOLDER}/val/val_annotations.txt",
            f"{FOLDER}/val/images",
        ],
        "train": [f"{FOLDER}/wnids.txt", f"{FOLDER}/words.txt", f"{FOLDER}/train"],
    },
    contents=[f"{FOLDER}/train/<wnid>/images/<wnid>_<n>.JPEG", f"{FOLDER}/val/images/val_<n>.JPEG"],
    source=URL,
    archives={"tiny-imagenet-200.zip": ""},
)


class TinyImageNet(SampleList):
    """``(transform(image), label)`` pairs of one split of ``root/tiny-imagenet-200``."""

    def __init__(self, root: Path, split: str, transform: Callable) -> None:
        base = Path(root) / FOLDER
        self.wnids = sorted((base / "wnids.txt").read_text().split())
        self.classes = _first_synonyms(base / "words.txt", self.wnids)
        index = {wnid: i for i, wnid in enumerate(self.wnids)}
        if split == "val":
            self.samples = [
                (base / "val" / "images" / file, index[wnid])
                for file, wnid, *_ in (
                    line.split("\t") for line in _lines(base / "val" / "val_annotations.txt")
                )
            ]
        else:
            self.samples = [
                (path, index[wnid])
                for wnid in self.wnids
                for path in sorted((base / "train" / wnid / "images").glob("*.JPEG"))
            ]
        self.transform = transform


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def _first_synonyms(words_file: Path, wnids: list[str]) -> list[str]:
    """Cleaned first synonym of each wnid's ``words.txt`` entry ("goldfish, Carassius auratus" -> "goldfish")."""
    words = dict(line.split("\t", 1) for line in _lines(words_file))
    return [clean_classname(words[wnid].split(",")[0]) for wnid in wnids]


def _build(root: Path, split: str, transform: Callable) -> tuple[Dataset, list[str]]:
    LAYOUT.require(root, split, "TinyImageNet")
    with reading("TinyImageNet", [Path(root) / p for p in LAYOUT.files[split] if "." in Path(p).name],
                 "the wnids.txt/words.txt/val_annotations.txt of tiny-imagenet-200.zip"):
        data = TinyImageNet(root, split, transform)
    return data, data.classes


def _download(root: Path) -> None:
    download_and_extract_archive(URL, str(root))


register(
    DatasetSpec(
        name="tinyimagenet",
        display_name="TinyImageNet",
        templates=("This is a photo of a {}",),
        expected_layout=LAYOUT.describe(),
        missing_files=LAYOUT.missing,
        build=_build,
        splits=LAYOUT.splits,
        download=_download,
        family="paper",
        guide=LAYOUT.guide,
    )
)
