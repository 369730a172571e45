"""Decode user images robustly: every failure becomes an :class:`ImageLoadError` with a clear message.

Pillow does the decoding with its decompression-bomb guard on; EXIF
orientation is applied; the first frame of animated images is used; every mode
(16-bit, CMYK, palette, alpha, ...) is converted to RGB by
:func:`caw_core.data.transforms.to_rgb`, and a note says what was converted.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from PIL import Image, ImageOps, UnidentifiedImageError

from caw_core.data.transforms import to_rgb

MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_PIXELS = 50_000_000  # larger images are refused before decoding

_MODE_NOTES = {
    "CMYK": "CMYK image converted to RGB (colours are approximate)",
    "P": "palette image converted to RGB",
    "PA": "palette image with alpha: transparent parts composited on white",
    "RGBA": "transparent parts composited on white",
    "LA": "greyscale with alpha: transparent parts composited on white",
    "L": "greyscale image, replicated to RGB",
    "1": "black-and-white image converted to RGB",
    "I;16": "16-bit greyscale scaled down to 8 bits",
    "I;16B": "16-bit greyscale scaled down to 8 bits",
    "I;16L": "16-bit greyscale scaled down to 8 bits",
    "I": "32-bit integer image scaled down to 8 bits",
    "F": "floating-point image converted to 8-bit RGB",
    "YCbCr": "YCbCr image converted to RGB",
    "LAB": "Lab image converted to RGB",
    "HSV": "HSV image converted to RGB",
}


class ImageLoadError(ValueError):
    """The input is not a usable image; the message says why, for the user."""


@dataclass
class LoadedImage:
    """An RGB image plus notes about conversions applied on the way."""

    image: Image.Image
    name: str
    notes: list[str] = field(default_factory=list)


Source = Union[str, Path, bytes]


def _read_bytes(source: Source) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        return source, "pasted image"
    path = Path(source)
    if not path.exists():
        raise ImageLoadError(f"{path} does not exist")
    if path.is_dir():
        raise ImageLoadError(f"{path} is a folder, not an image file")
    size = path.stat().st_size
    if size == 0:
        raise ImageLoadError(f"{path.name} is empty (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise ImageLoadError(f"{path.name} is {size / 2**20:.0f} MiB; images over {MAX_FILE_BYTES // 2**20} MiB "
                             "are refused")
    try:
        return path.read_bytes(), path.name
    except OSError as exc:
        raise ImageLoadError(f"cannot read {path}: {exc.strerror or exc}") from exc


def load_image(source: Source) -> LoadedImage:
    """Decode ``source`` (a path or encoded bytes) into an RGB :class:`LoadedImage`.

    Raises :class:`ImageLoadError` for anything that is not a readable image.
    """
    data, name = _read_bytes(source)
    if not data:
        raise ImageLoadError(f"{name} is empty (0 bytes)")
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError as exc:
            raise ImageLoadError(f"{name} is not an image format Pillow can read (PNG, JPEG, WebP, GIF, TIFF, "
                                 "BMP, ... are supported)") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageLoadError(f"{name} is too large to decode safely: {exc}") from exc
        except Exception as exc:  # corrupt headers raise many types
            raise ImageLoadError(f"{name} looks corrupt: {exc}") from exc
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageLoadError(f"{name} is {width}x{height} = {width * height / 1e6:.0f} megapixels; images over "
                                 f"{MAX_PIXELS / 1e6:.0f} megapixels are refused (possible decompression bomb)")
        if width == 0 or height == 0:
            raise ImageLoadError(f"{name} has no pixels ({width}x{height})")
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            image.seek(0)
            notes.append(f"animated image with {frames} frames: using the first frame")
        try:
            image.load()
        except OSError as exc:
            reason = "is truncated (the file ends early)" if "truncated" in str(exc) else f"could not be decoded ({exc})"
            raise ImageLoadError(f"{name} {reason}") from exc
        except Exception as exc:
            raise ImageLoadError(f"{name} could not be decoded: {exc}") from exc
    orientation = image.getexif().get(0x0112, 1)
    if orientation not in (None, 1):
        image = ImageOps.exif_transpose(image)
        notes.append(f"EXIF orientation {orientation} applied")
    if image.mode in _MODE_NOTES:
        notes.append(_MODE_NOTES[image.mode])
    elif image.mode != "RGB":
        notes.append(f"{image.mode} image converted to RGB")
    try:
        rgb = to_rgb(image)
    except Exception as exc:
        raise ImageLoadError(f"{name}: cannot convert mode {image.mode} to RGB: {exc}") from exc
    return LoadedImage(rgb, name, notes)


def amplified_perturbation(delta) -> tuple["np.ndarray", int]:
    """(H, W, 3) float perturbation -> (uint8 image of 0.5 + factor * delta, integer factor).

    The factor maps the largest absolute change to half the grey range.
    """
    import numpy as np

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
    import numpy as np

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
