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

This module is the dataset's spec (imports no torch); reading and downloading
are in :mod:`caw_core.data.tinyimagenet_loader`.
"""

from __future__ import annotations

from caw_core.data.layout import Layout
from caw_core.data.registry import DatasetSpec, register
from caw_core.imports import imported

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

register(
    DatasetSpec(
        name="tinyimagenet",
        display_name="TinyImageNet",
        templates=("This is a photo of a {}",),
        expected_layout=LAYOUT.describe(),
        missing_files=LAYOUT.missing,
        build=imported("caw_core.data.tinyimagenet_loader:build"),
        splits=LAYOUT.splits,
        download=imported("caw_core.data.tinyimagenet_loader:download"),
        family="paper",
        guide=LAYOUT.guide,
    )
)
