"""Decode one user image safely: a path or encoded bytes in, an RGB ``PIL.Image`` out.

This is the single image-loading path for files that come from users (the GUI,
``caw-core`` commands that take an image). Every failure becomes an
:class:`ImageLoadError` (a ``ValueError``) whose message says what is wrong
with which file; nothing else escapes (except ``MemoryError`` and
``KeyboardInterrupt``, which are not the file's fault).

What it guards against and normalises:

- decompression bombs: Pillow's guard is made an error (its
  ``DecompressionBombWarning`` is raised, not printed), and images over
  :data:`MAX_PIXELS` are refused from the header, before any pixel is decoded;
- files over :data:`MAX_FILE_BYTES`, empty files, folders, unreadable files;
- unknown formats, corrupt headers and truncated data (a truncated file is
  an error, as long as nobody set Pillow's global ``LOAD_TRUNCATED_IMAGES``);
- EXIF orientation is applied (a phone photo taken upright comes out upright);
- animated images: the first frame is used;
- every mode becomes 8-bit RGB: 16/32-bit integer and float greyscale are
  scaled from their range (not clipped), alpha (RGBA, LA, PA, palette
  transparency) is composited on white, CMYK/YCbCr/LAB/HSV are converted.

:func:`load_image_with_notes` also returns human-readable notes on what was
converted (for a GUI to show).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Union

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_PIXELS = 50_000_000  # ~7000 x 7000; larger images are refused before decoding

Source = Union[str, os.PathLike, bytes, bytearray, memoryview]


class ImageLoadError(ValueError):
    """The input is not a usable image; the message says why, for the user."""


_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_MODE_NOTES = {
    "CMYK": "CMYK image converted to RGB (colours are approximate)",
    "P": "palette image converted to RGB",
    "PA": "palette image with alpha: transparent parts composited on white",
    "RGBA": "transparent parts composited on white",
    "RGBa": "transparent parts composited on white",
    "LA": "greyscale with alpha: transparent parts composited on white",
    "La": "greyscale with alpha: transparent parts composited on white",
    "L": "greyscale image replicated to RGB",
    "1": "black-and-white image converted to RGB",
    "I": "32-bit integer image scaled to 8 bits",
    "I;16": "16-bit greyscale scaled to 8 bits",
    "I;16B": "16-bit greyscale scaled to 8 bits",
    "I;16L": "16-bit greyscale scaled to 8 bits",
    "I;16N": "16-bit greyscale scaled to 8 bits",
    "F": "floating-point image scaled to 8 bits",
    "YCbCr": "YCbCr image converted to RGB",
    "LAB": "Lab image converted to RGB",
    "HSV": "HSV image converted to RGB",
}


def _read(source: Source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > MAX_FILE_BYTES:
            raise ImageLoadError(f"the image data is {len(data) / 2**20:.0f} MiB; images over "
                                 f"{MAX_FILE_BYTES // 2**20} MiB are refused")
        return data, "the image data"
    if not isinstance(source, (str, os.PathLike)):
        raise ImageLoadError(f"expected a file path or image bytes, got {type(source).__name__}")
    path = Path(source)
    try:
        if not path.exists():
            raise ImageLoadError(f"{path} does not exist")
        if path.is_dir():
            raise ImageLoadError(f"{path} is a folder, not an image file")
        if not path.is_file():  # a device (/dev/zero reads forever), a pipe (blocks) or a socket
            raise ImageLoadError(f"{path} is not a regular file (a device, pipe or socket), not an image file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageLoadError(f"{path.name} is {size / 2**20:.0f} MiB; images over {MAX_FILE_BYTES // 2**20} MiB "
                                 "are refused")
        return path.read_bytes(), path.name
    except OSError as exc:
        reason = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
        raise ImageLoadError(f"cannot read {path}: {reason}") from exc
    except ValueError as exc:  # embedded NUL bytes and the like
        if isinstance(exc, ImageLoadError):
            raise
        raise ImageLoadError(f"{source!r} is not a valid file path: {exc}") from exc


def _scale_to_8bit(image: Image.Image) -> Image.Image:
    """I / I;16* / F greyscale -> L, mapping [min(0, lo), max(255, hi)] linearly onto 0..255 (no wrap-around)."""
    import numpy as np

    array = np.asarray(image, dtype=np.float64)
    finite = array[np.isfinite(array)]
    low = min(0.0, float(finite.min())) if finite.size else 0.0
    high = max(255.0, float(finite.max())) if finite.size else 255.0
    if image.mode == "F" and finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
        high = 1.0  # float images in [0, 1]
    array = np.nan_to_num(array, nan=low, posinf=high, neginf=low)
    scaled = (array - low) / (high - low) * 255.0
    return Image.fromarray(np.clip(scaled.round(), 0, 255).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB (alpha composited on white, high bit depths scaled from their range)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        return _scale_to_8bit(image).convert("RGB")
    if mode == "LAB":
        from PIL import ImageCms

        srgb = ImageCms.createProfile("sRGB")
        lab = ImageCms.createProfile("LAB")
        return ImageCms.profileToProfile(image, lab, srgb, outputMode="RGB")
    return image.convert("RGB")


def load_image_with_notes(source: Source) -> tuple[Image.Image, list[str]]:
    """Like :func:`load_image`, plus notes on what was converted (EXIF rotation, mode, first frame)."""
    data, name = _read(source)
    if not data:
        raise ImageLoadError(f"{name} is empty (0 bytes)")
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = _decode(data, name, notes)
        image = _orient(image, name, notes)
        if image.mode in _MODE_NOTES:
            notes.append(_MODE_NOTES[image.mode])
        elif image.mode != "RGB":
            notes.append(f"{image.mode} image converted to RGB")
        try:
            rgb = to_rgb(image)
            rgb.load()
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise ImageLoadError(f"{name}: cannot convert its colour mode {image.mode} to RGB ({exc})") from exc
    if rgb.mode != "RGB":  # defensive: the contract is RGB or ImageLoadError
        raise ImageLoadError(f"{name}: conversion of mode {image.mode} gave {rgb.mode}, not RGB")
    return rgb, notes


def load_image(source: Source) -> Image.Image:
    """Decode ``source`` (a path, or the encoded bytes of a PNG/JPEG/WebP/GIF/TIFF/BMP/...) into RGB.

    Raises :class:`ImageLoadError` with a clear message for anything that is
    not a readable, reasonably sized image.
    """
    return load_image_with_notes(source)[0]


def _decode(data: bytes, name: str, notes: list[str]) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"{name} is not an image in a format Pillow can read (PNG, JPEG, WebP, GIF, TIFF, BMP, "
                             "...)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"{name} is too large to decode safely (possible decompression bomb): {exc}") from exc
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # corrupt headers raise many types (SyntaxError, struct.error, ...)
        raise ImageLoadError(f"{name} looks corrupt: {exc}") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageLoadError(f"{name} has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise ImageLoadError(f"{name} is {width}x{height} = {width * height / 1e6:.0f} megapixels; images over "
                             f"{MAX_PIXELS / 1e6:.0f} megapixels are refused (possible decompression bomb)")
    try:
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            image.seek(0)
            notes.append(f"animated image with {frames} frames: using the first frame")
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"{name} is too large to decode safely (possible decompression bomb): {exc}") from exc
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        text = str(exc)
        reason = ("is truncated (the file ends early)" if "truncated" in text or isinstance(exc, EOFError)
                  else f"could not be decoded ({type(exc).__name__}: {text})")
        raise ImageLoadError(f"{name} {reason}") from exc
    return image


def _orient(image: Image.Image, name: str, notes: list[str]) -> Image.Image:
    try:
        orientation = image.getexif().get(0x0112, 1)
        if orientation in (None, 1):
            return image
        rotated = ImageOps.exif_transpose(image)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception:  # a malformed EXIF block: keep the pixels as stored
        notes.append("unreadable EXIF data ignored (orientation not applied)")
        return image
    notes.append(f"EXIF orientation {orientation} applied")
    return rotated if rotated is not None else image
