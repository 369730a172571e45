"""Reading and downloading TinyImageNet (its spec and layout: :mod:`caw_core.data.tinyimagenet`)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset
from torchvision.datasets.utils import download_and_extract_archive

from caw_core.data.checked import reading
from caw_core.data.folders import SampleList
from caw_core.data.names import clean_classname
from caw_core.data.tinyimagenet import FOLDER, LAYOUT, URL


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


def build(root: Path, split: str, transform: Callable) -> tuple[Dataset, list[str]]:
    LAYOUT.require(root, split, "TinyImageNet")
    with reading("TinyImageNet", [Path(root) / p for p in LAYOUT.files[split] if "." in Path(p).name],
                 "the wnids.txt/words.txt/val_annotations.txt of tiny-imagenet-200.zip"):
        data = TinyImageNet(root, split, transform)
    return data, data.classes


def download(root: Path) -> None:
    download_and_extract_archive(URL, str(root))
