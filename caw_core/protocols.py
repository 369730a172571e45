"""Evaluation protocols: the preprocessing, attack chain and subset size a paper's table was measured with.

Robust accuracy numbers are comparable only under the same protocol. What
differs between the references (read in their code):

- **resolution**: TeCoA (cvlab-columbia/ZSRobust4FoundationModel) and PMG-AFT
  (which builds on its code) load CIFAR-10/100 and STL-10 with ``ToTensor()``
  only and attack them at their native 32/96 px; the model upsamples bicubically
  to 224 inside its forward (``clip_img_preprocessing``), so the attacker has
  32x32x3 (or 96x96x3) free pixels. caw's default, like TGA-ZSR, resizes them
  to 224 first: a much larger threat space at the same eps;
- **resize/crop** for the other datasets: TeCoA's ``preprocess224`` is
  Resize(256) + CenterCrop(224); caw's default and FARE's CLIP_benchmark
  (open_clip's transform) use Resize(224) + CenterCrop(224);
- **attacks**: AutoAttack as APGD-CE (1 restart) + APGD-T (caw), with APGD-CE
  at 5 restarts (FARE, chs20/RobustVLM CLIP_benchmark), or standard AutoAttack
  (PMG-AFT's reported AA);
- **n**: a fixed 1000-image subset per dataset (caw, FARE's
  ``run_benchmark_adv.sh`` SAMPLES=1000) or the full test sets (TeCoA).

A protocol fixes all four; ``caw-core eval --protocol NAME`` applies it, an
explicit ``--attacks``/``--n`` still wins, and the result files and the
report name the protocol.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

NATIVE_SETS = ("cifar10", "cifar100", "stl10")


@dataclass(frozen=True)
class Protocol:
    """name; description (which table it reproduces); ``native``: datasets attacked at native size and
    upsampled (bicubic) to the model's input inside the model; ``resize``: shorter side before the
    center crop to 224 for the others (224 or 256; scaled for models of another input size); the default
    attack chain and n."""

    name: str
    description: str
    native: tuple[str, ...]
    resize: int
    attacks: tuple[str, ...]
    n: Union[int, str]

    def resize_for(self, dataset: str, image_size: int) -> int:
        """The ``resize`` argument of :func:`caw_core.data.transforms.pixel_transform` for ``dataset`` and a model
        of input side ``image_size`` (0: native size)."""
        return 0 if dataset in self.native else round(image_size * self.resize / 224)

    def settings(self) -> dict:
        """What the protocol fixes beyond the attack chain and n (part of every result's config id)."""
        return {"name": self.name, "native": list(self.native), "resize": self.resize}

    def to_json(self) -> dict:
        return asdict(self)


PROTOCOLS = {p.name: p for p in (
    Protocol("caw", "caw's default, the CAW / TGA-ZSR setting: every set resized to 224 (Resize 224 + "
                    "CenterCrop 224), clean + PGD-10 + AutoAttack (APGD-CE + APGD-T), 1000 images per set",
             (), 224, ("clean", "pgd", "aa"), 1000),
    Protocol("tecoa", "TeCoA / PMG-AFT preprocessing: CIFAR-10/100 and STL-10 attacked at native size and "
                      "upsampled inside the model, others Resize 256 + CenterCrop 224; clean + PGD-10, full "
                      "test sets", NATIVE_SETS, 256, ("clean", "pgd"), "all"),
    Protocol("fare", "FARE's CLIP_benchmark: Resize 224 + CenterCrop 224, AutoAttack APGD-CE (5 restarts) + "
                     "APGD-T, 1000 images per set", (), 224, ("clean", "aafare"), 1000),
    Protocol("standard-aa", "standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square) with TeCoA / PMG-AFT "
                            "preprocessing, 1000 images per set", NATIVE_SETS, 256, ("clean", "aastd"), 1000),
)}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None


class NativeResolution(nn.Module):
    """``model`` behind a bicubic upsampling of its [0, 1] input to ``size`` (TeCoA's ``clip_img_preprocessing``)."""

    def __init__(self, model: nn.Module, size: int):
        super().__init__()
        self.model, self.size = model, size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] != (self.size, self.size):
            images = F.interpolate(images, size=(self.size, self.size), mode="bicubic", align_corners=False)
        return self.model(images)
