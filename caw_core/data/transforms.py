"""Image -> tensor transforms shared by every dataset and the GUI.

Pixels stay in [0, 1]; mean/std normalisation belongs to the model so that
attacks and eps budgets live in pixel space (the threat model of the papers).
Any Pillow mode is first made 8-bit RGB by :func:`caw_core.data.images.to_rgb`.
"""

from __future__ import annotations

from typing import Callable

from torchvision import transforms as T

from caw_core.data.images import to_rgb


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
