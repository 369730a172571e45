"""ImageNet-1k validation set (50,000 images), sorted into class folders or flat with the devkit.

Two layouts are read, both below ``root/imagenet``::

    val/<wnid>/ILSVRC2012_val_<nnnnnnnn>.JPEG      sorted: one folder per class (valprep.sh, torchvision)
    val/ILSVRC2012_val_<nnnnnnnn>.JPEG             flat: ILSVRC2012_img_val.tar extracted as it comes ...
    ILSVRC2012_devkit_t12.tar.gz                   ... with the devkit beside it (or extracted:
                                                   ILSVRC2012_devkit_t12/data/meta.mat + the ground truth)

In the flat layout image ``n`` has the label on line ``n`` of the devkit's
``data/ILSVRC2012_validation_ground_truth.txt``, an ILSVRC2012_ID (1..1000)
that ``data/meta.mat`` maps to its wnid. The devkit archive is read in
memory, never extracted.

Labels index the 1000 sorted wnids (``classnames/imagenet_wnids.txt``), so a
partial tree keeps the standard label ids and the zero-shot head always has all
1000 classes; class names are OpenAI CLIP's cleaned ImageNet names
(``open_clip.zero_shot_metadata.IMAGENET_CLASSNAMES``).

``data check`` reports ImageNet found only for a layout that loads: a ``val``
folder with neither wnid folders nor flat images, or flat images without the
devkit, is reported missing with what to add.

This module is the dataset's spec and the devkit reader (imports no torch);
the image folders are read by :mod:`caw_core.data.imagenet_loader`.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path
from typing import Optional

from caw_core.data.layout import Layout, has_entry
from caw_core.data.registry import DatasetError, DatasetSpec, register
from caw_core.imports import imported

WNIDS = tuple((Path(__file__).parent / "classnames" / "imagenet_wnids.txt").read_text().split())
LABEL = {wnid: i for i, wnid in enumerate(WNIDS)}
_WNID = re.compile(r"n\d{8}")
FLAT_IMAGE = re.compile(r"ILSVRC2012_val_(\d{8})\.JPEG")
DEVKIT = "ILSVRC2012_devkit_t12"
META = f"{DEVKIT}/data/meta.mat"
GROUND_TRUTH = f"{DEVKIT}/data/ILSVRC2012_validation_ground_truth.txt"

SOURCE = "https://image-net.org/challenges/LSVRC/2012/2012-downloads.php (needs a registered account)"
LAYOUT = Layout(
    {"val": ["imagenet/val"]},
    contents=["imagenet/val/<wnid>/ILSVRC2012_val_<nnnnnnnn>.JPEG  (sorted: one folder per class)",
              "or imagenet/val/ILSVRC2012_val_<nnnnnnnn>.JPEG  (flat, as the tar unpacks) with "
              f"imagenet/{DEVKIT}.tar.gz beside it (or extracted: imagenet/{META} and imagenet/{GROUND_TRUTH})"],
    source=SOURCE,
    archives={"ILSVRC2012_img_val.tar": "imagenet/val", f"{DEVKIT}.tar.gz": "imagenet"},
)


def is_wnid_folder(entry) -> bool:
    return bool(_WNID.fullmatch(entry.name)) and entry.is_dir()


def is_flat_image(entry) -> bool:
    return bool(FLAT_IMAGE.fullmatch(entry.name)) and entry.is_file()


def find_devkit(base: Path) -> Optional[Path]:
    """The devkit archive, or the extracted devkit folder, below ``base``; None when neither is complete."""
    archive = base / f"{DEVKIT}.tar.gz"
    if archive.is_file():
        return archive
    if (base / META).is_file() and (base / GROUND_TRUTH).is_file():
        return base / DEVKIT
    return None


def missing_files(root: Path) -> list[str]:
    base = Path(root) / "imagenet"
    val = base / "val"
    if not val.is_dir():
        return [str(val)]
    if has_entry(val, is_wnid_folder):
        return []
    if has_entry(val, is_flat_image):
        if find_devkit(base) is None:
            return [f"{base / DEVKIT}.tar.gz (the devkit: {val} holds the images flat, and their labels are in it)"]
        return []
    return [f"{val}/<wnid>/*.JPEG or {val}/ILSVRC2012_val_*.JPEG ({val} has neither)"]


def devkit_labels(devkit: Path) -> list[int]:
    """Label (sorted-wnid index) of validation image 1, 2, ... from the devkit archive or folder."""
    try:
        if devkit.is_file():
            with tarfile.open(devkit, "r:gz") as archive:
                meta = _member(archive, META, devkit)
                truth = _member(archive, GROUND_TRUTH, devkit)
        else:
            meta = (devkit.parent / META).read_bytes()
            truth = (devkit.parent / GROUND_TRUTH).read_bytes()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise DatasetError(f"cannot read the ImageNet devkit {devkit}: {exc}; expected {DEVKIT}.tar.gz from "
                           f"{SOURCE}") from exc
    id_to_wnid = _id_to_wnid(meta, devkit)
    labels = []
    for number, line in enumerate(truth.decode("ascii", "replace").split(), 1):
        wnid = id_to_wnid.get(int(line)) if line.isdigit() else None
        if wnid not in LABEL:
            raise DatasetError(f"{devkit}: line {number} of the validation ground truth ({line!r}) is not an "
                               "ILSVRC2012_ID of the 1000 classes")
        labels.append(LABEL[wnid])
    return labels


def _member(archive: tarfile.TarFile, name: str, path: Path) -> bytes:
    try:
        handle = archive.extractfile(name)
    except KeyError:
        handle = None
    if handle is None:
        raise DatasetError(f"{path} has no {name}; is it the ILSVRC2012 devkit ({DEVKIT}.tar.gz)?")
    return handle.read()


def _id_to_wnid(meta: bytes, devkit: Path) -> dict[int, str]:
    """ILSVRC2012_ID -> wnid for the 1000 leaf synsets of ``meta.mat`` (read by field name)."""
    try:
        from scipy.io import loadmat
    except ImportError as exc:
        raise DatasetError("reading the ImageNet devkit needs scipy: pip install 'caw[data]'") from exc
    try:
        synsets = loadmat(io.BytesIO(meta), squeeze_me=True)["synsets"]
        return {int(i): str(w) for i, w, children in zip(synsets["ILSVRC2012_ID"], synsets["WNID"],
                                                          synsets["num_children"]) if int(children) == 0}
    except Exception as exc:  # scipy raises many types for a malformed .mat
        raise DatasetError(f"{devkit}: {META} is not the devkit's synset table ({exc})") from exc


register(
    DatasetSpec(
        name="imagenet",
        display_name="ImageNet",
        templates=("This is a photo of a {}",),
        expected_layout=LAYOUT.describe(),
        missing_files=missing_files,
        build=imported("caw_core.data.imagenet_loader:build"),
        splits=LAYOUT.splits,
        download=None,
        download_note="ImageNet needs a registered account at https://image-net.org, so it cannot be "
        "fetched automatically.",
        family="paper",
        guide=LAYOUT.guide,
    )
)
