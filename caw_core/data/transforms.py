"""Image -> tensor transforms shared by every dataset and the GUI.

Pixels stay in [0, 1]; mean/std normalisation belongs to the model so that
attacks and eps budgets live in pixel space (the threat model of the papers).
Any Pillow mode is first made 8-bit RGB by :func:`caw_core.data.images.to_rgb`.
"""

from __future__ import annotations

from typing import Callable, Optional

from torchvision import transforms as T

from caw_core.data.images import to_rgb


def pixel_transform(image_size: int, resize: Optional[int] = None) -> Callable:
    """Resize (shorter side to ``resize``, default ``image_size``; bicubic) + center crop to ``image_size`` +
    [0,1] tensor. ``resize=0`` keeps the image at its native size (no resize, no crop)."""
    if resize == 0:
        return T.Compose([T.Lambda(to_rgb), T.ToTensor()])
    return T.Compose(
        [
            T.Lambda(to_rgb),
            T.Resize(resize or image_size, interpolation=T.InterpolationMode.BICUBIC, antialias=True),
            T.CenterCrop(image_size),
            T.ToTensor(),
        ]
    )
