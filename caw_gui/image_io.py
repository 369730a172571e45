"""User images in the playground: decoding (via caw_core) and saving adversarial results.

Decoding is :func:`caw_core.data.images.load_image_with_notes` -- decompression-bomb
guard, EXIF orientation, first frame of animations, every mode to RGB, and an
:class:`ImageLoadError` with a clear message for anything unreadable. This
module adds the display name and the notes the window shows, and writes
adversarial images and perturbations losslessly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from caw_core.data.images import ImageLoadError, load_image_with_notes

__all__ = ["ImageLoadError", "LoadedImage", "load_image", "amplified_perturbation", "save_adversarial"]

Source = Union[str, Path, bytes]


@dataclass
class LoadedImage:
    """An RGB image plus notes about conversions applied on the way."""

    image: Image.Image
    name: str
    notes: list[str] = field(default_factory=list)


def load_image(source: Source) -> LoadedImage:
    """Decode ``source`` (a path or encoded bytes) into an RGB :class:`LoadedImage`; ImageLoadError otherwise."""
    image, notes = load_image_with_notes(source)
    name = "pasted image" if isinstance(source, (bytes, bytearray)) else Path(source).name
    return LoadedImage(image, name, notes)


def amplified_perturbation(delta) -> tuple[np.ndarray, int]:
    """(H, W, 3) float perturbation -> (uint8 image of 0.5 + factor * delta, integer factor).

    The factor maps the largest absolute change to half the grey range.
    """
    peak = float(np.abs(delta).max())
    factor = max(1, int(0.5 / peak)) if peak > 0 else 1
    image = np.clip(0.5 + factor * delta, 0.0, 1.0)
    return (image * 255.0 + 0.5).astype(np.uint8), factor


def save_adversarial(path: str | Path, adversarial, delta) -> list[Path]:
    """Write the adversarial image as PNG (lossless) plus the perturbation.

    The perturbation goes next to it twice: ``<stem>_perturbation.npy`` (the
    exact float values) and ``<stem>_perturbation_x<factor>.png`` (amplified, to
    look at). Returns the written paths.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    Image.fromarray(adversarial).save(path, format="PNG")
    raw = path.with_name(f"{path.stem}_perturbation.npy")
    np.save(raw, np.asarray(delta, dtype=np.float32))
    picture, factor = amplified_perturbation(delta)
    shown = path.with_name(f"{path.stem}_perturbation_x{factor}.png")
    Image.fromarray(picture).save(shown, format="PNG")
    return [path, raw, shown]
