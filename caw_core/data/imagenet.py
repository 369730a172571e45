"""ImageNet-1k validation set (50,000 images) as a class-sorted folder tree.

Expected layout::

    imagenet/val/<wnid>/*.JPEG      e.g. imagenet/val/n01440764/ILSVRC2012_val_00000293.JPEG

This is the tree most ImageNet copies already have. From the official
``ILSVRC2012_img_val.tar`` + ``ILSVRC2012_devkit_t12.tar.gz`` you get it by
putting both into ``root/imagenet`` and running
``torchvision.datasets.ImageNet(root/"imagenet", split="val")`` once (it sorts
the images into ``val/<wnid>/``), or with the common ``valprep.sh`` script.

Labels index the 1000 sorted wnids (``classnames/imagenet_wnids.txt``), so a
partial tree keeps the standard label ids and the zero-shot head always has all
1000 classes; class names are OpenAI CLIP's cleaned ImageNet names
(``open_clip.zero_shot_metadata.IMAGENET_CLASSNAMES``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder

from caw_core.data.layout import Layout
from caw_core.data.registry import DatasetError, DatasetSpec, register

WNIDS = tuple((Path(__file__).parent / "classnames" / "imagenet_wnids.txt").read_text().split())
_LABEL = {wnid: i for i, wnid in enumerate(WNIDS)}

LAYOUT = Layout(
    {"val": ["imagenet/val"]},
    contents=["imagenet/val/<wnid>/ILSVRC2012_val_<nnnnnnnn>.JPEG  (one folder per class, 1000 in all)"],
    source="https://image-net.org (registration); sort the val images into wnid folders as described "
    "in caw_core/data/imagenet.py",
)


class ImageNetVal(ImageFolder):
    """``ImageFolder`` whose labels are the wnid's index among all 1000 classes,
    not among the folders found."""

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        found = sorted(p.name for p in Path(directory).iterdir() if p.is_dir())
        unknown = [name for name in found if name not in _LABEL]
        if unknown:
            raise DatasetError(
                f"{directory} has folders that are not ImageNet-1k wnids: {', '.join(unknown[:5])}"
            )
        return found, {wnid: _LABEL[wnid] for wnid in found}


def _build(root: Path, split: str, transform: Callable) -> tuple[Dataset, list[str]]:
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES  # open_clip is slow to import

    LAYOUT.require(root, split, "ImageNet")
    return ImageNetVal(str(Path(root) / "imagenet" / "val"), transform=transform), list(IMAGENET_CLASSNAMES)


register(
    DatasetSpec(
        name="imagenet",
        display_name="ImageNet",
        templates=("This is a photo of a {}",),
        expected_layout=LAYOUT.describe(),
        missing_files=LAYOUT.missing,
        build=_build,
        splits=LAYOUT.splits,
        download=None,
        download_note="ImageNet needs a registered account at https://image-net.org, so it cannot be "
        "fetched automatically.",
        family="paper",
    )
)
