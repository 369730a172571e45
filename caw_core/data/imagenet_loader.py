"""Reading the ImageNet-1k validation images (the layouts and the devkit: :mod:`caw_core.data.imagenet`)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset

from caw_core.data.checked import require_regular_files
from caw_core.data.folders import LoopSafeImageFolder, SampleList, walk_files
from caw_core.data.imagenet import (DEVKIT, FLAT_IMAGE, GROUND_TRUTH, LABEL, LAYOUT, META, devkit_labels,
                                    find_devkit, is_wnid_folder, missing_files)
from caw_core.data.layout import has_entry
from caw_core.data.registry import DatasetError, DatasetNotFoundError


class ImageNetVal(LoopSafeImageFolder):
    """Sorted layout: labels are the wnid's index among all 1000 classes, not among the folders found."""

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        found = sorted(p.name for p in Path(directory).iterdir() if p.is_dir())
        unknown = [name for name in found if name not in LABEL]
        if unknown:
            raise DatasetError(
                f"{directory} has folders that are not ImageNet-1k wnids: {', '.join(unknown[:5])}"
            )
        return found, {wnid: LABEL[wnid] for wnid in found}


class FlatImageNetVal(SampleList):
    """Flat layout: ``val/ILSVRC2012_val_<n>.JPEG`` labelled from the devkit's ground truth."""

    def __init__(self, val: Path, devkit: Path, transform: Callable) -> None:
        labels = devkit_labels(devkit)
        self.samples = []
        for path in walk_files(val):
            match = FLAT_IMAGE.fullmatch(Path(path).name)
            if match:
                number = int(match.group(1))
                if not 1 <= number <= len(labels):
                    raise DatasetError(f"{path}: image number {number} is not in the devkit's ground truth "
                                       f"(1..{len(labels)})")
                self.samples.append((path, labels[number - 1]))
        self.transform = transform



def build(root: Path, split: str, transform: Callable) -> tuple[Dataset, list[str]]:
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES  # open_clip is slow to import

    missing = missing_files(root)
    if missing:
        raise DatasetNotFoundError(f"ImageNet not found under {root}: missing {', '.join(missing)}\n"
                                   f"expected layout:\n{LAYOUT.describe()}")
    base = Path(root) / "imagenet"
    require_regular_files(base, [f"{DEVKIT}.tar.gz", META, GROUND_TRUTH])
    if has_entry(base / "val", is_wnid_folder):
        data: Dataset = ImageNetVal(str(base / "val"), transform=transform)
    else:
        data = FlatImageNetVal(base / "val", find_devkit(base), transform)
    return data, list(IMAGENET_CLASSNAMES)
