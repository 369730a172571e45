"""Image -> tensor transforms shared by every dataset and the GUI.

Pixels stay in [0, 1]; mean/std normalisation belongs to the model so that
attacks and eps budgets live in pixel space (the threat model of the papers).
"""

from __future__ import annotations

from typing import Callable

from PIL import Image
from torchvision import transforms as T


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode (L, P, RGBA, CMYK, I;16, ...) -> RGB, alpha composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale the full range down to 8 bits, don't clip.
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        top = array.max() if array.max() > 255 else 255.0
        return Image.fromarray((array / top * 255.0).round().astype("uint8")).convert("RGB")
    return image.convert("RGB")


def pixel_transform(image_size: int) -> Callable:
    """Resize (shorter side, bicubic) + center crop to ``image_size`` + [0,1] tensor."""
    return T.Compose(
        [
            T.Lambda(to_rgb),
            T.Resize(image_size, interpolation=T.InterpolationMode.BICUBIC, antialias=True),
            T.CenterCrop(image_size),
            T.ToTensor(),
        ]
    )
