"""Writers of good, odd and broken image files for the GUI tests."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def noise_png(path: Path, size: int = 64, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def png_claiming_size(path: Path, width: int, height: int) -> Path:
    """A tiny valid PNG whose header claims ``width`` x ``height`` (a decompression-bomb shape)."""
    noise_png(path, 8)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4:ihdr + 13]))
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path


def bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a phrase the error message must contain)."""
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    text = folder / "notes.png"
    text.write_text("this is not an image\n")
    truncated = noise_png(folder / "truncated.png", 128)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    corrupt = folder / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
    return {
        "zero-byte": (empty, "empty (0 bytes)"),
        "not an image": (text, "is not an image"),
        "truncated": (truncated, "truncated"),
        "corrupt": (corrupt, "corrupt.jpg"),
        "bomb": (png_claiming_size(folder / "bomb.png", 30000, 30000), "too large"),
        "huge": (png_claiming_size(folder / "huge.png", 9000, 9000), "megapixels"),
        "folder": (folder, "is a folder"),
    }


def odd_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Readable but unusual images: name -> (file, a phrase the conversion note must contain)."""
    grey16 = folder / "grey16.png"
    Image.fromarray((np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)).save(grey16)
    cmyk = folder / "cmyk.jpg"
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(cmyk)
    palette = folder / "palette.png"
    Image.new("RGB", (32, 32), (0, 0, 255)).convert("P").save(palette)
    alpha = folder / "alpha.png"
    Image.new("RGBA", (32, 32), (255, 0, 0, 0)).save(alpha)
    animated = folder / "animated.gif"
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(animated, save_all=True, append_images=frames[1:], duration=100)
    rotated = folder / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (40, 20), (200, 200, 0)).save(rotated, exif=exif)
    return {
        "16-bit": (grey16, "16-bit"),
        "CMYK": (cmyk, "CMYK"),
        "palette": (palette, "palette"),
        "alpha": (alpha, "composited on white"),
        "animated": (animated, "first frame"),
        "exif": (rotated, "EXIF orientation 6"),
    }
