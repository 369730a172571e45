"""CLIP as a zero-shot classifier over [0, 1] pixels.

Threat model: attacks perturb pixels in [0, 1]; resizing to the tower's input
size and the CLIP mean/std normalisation are part of the model, so an eps ball
in pixel space is exactly the eps ball the papers use.

Maths: for image x and class prompts, with image embedding f(x) and the text
head t_c = normalise(mean_k normalise(g(template_k(class_c)))),
``logits_c(x) = s * cos(f(x), t_c)`` with logit scale s = 100 (CLIP's trained
temperature, fixed as in every reference implementation).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

LOGIT_SCALE = 100.0


class ImageEncoder(nn.Module):
    """[0, 1] images (any size) -> CLIP image embedding (unnormalised).

    Wraps an open_clip visual tower. With ``return_tokens=True`` (ViT towers
    only) also returns the projected patch tokens (B, N_patches, D), used for
    text-guided attention maps (TGA-ZSR).
    """

    def __init__(self, visual: nn.Module, image_size: int, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.visual = visual
        self.image_size = int(image_size)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.has_tokens = hasattr(visual, "output_tokens")
        if self.has_tokens:
            # open_clip ViTs return (pooled, tokens) when output_tokens is set;
            # pooled is then projected and the tokens are not.
            visual.output_tokens = True

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(
                images, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False, antialias=True
            )
        return (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)

    def forward(self, images: torch.Tensor, return_tokens: bool = False):
        out = self.visual(self.normalise(images))
        if not self.has_tokens:
            if return_tokens:
                raise ValueError("patch tokens need a ViT image tower (open_clip VisionTransformer)")
            return out
        pooled, tokens = out
        if not return_tokens:
            return pooled
        proj = getattr(self.visual, "proj", None)
        return pooled, (tokens @ proj if proj is not None else tokens)


def logits_from_features(features: torch.Tensor, text_head: torch.Tensor) -> torch.Tensor:
    """``LOGIT_SCALE * cos(features, text_head)``: (B, D) x (C, D) -> (B, C)."""
    return LOGIT_SCALE * F.normalize(features, dim=-1) @ text_head.to(features.dtype).t()


class ZeroShotCLIP(nn.Module):
    """An open_clip CLIP model as ``[0,1] images -> zero-shot logits``.

    The image tower is ``self.image_encoder`` (the part that fine-tuning
    trains); the text tower stays frozen and only builds class heads. Heads
    are cached per (class names, templates), so the text encoder runs once per
    class list, never per batch. Call :meth:`set_classes` before ``forward``.

    ``freeze_text=False`` leaves the text tower's ``requires_grad`` alone, for
    toy pretraining, which trains both towers; the cached heads then go stale
    as the text tower learns, so wrap the model afresh for each evaluation.
    """

    def __init__(self, clip: nn.Module, tokenizer, image_size: int, mean, std, name: str = "clip",
                 freeze_text: bool = True):
        super().__init__()
        self.clip = clip
        self.tokenizer = tokenizer
        self.name = name
        self.image_encoder = ImageEncoder(clip.visual, image_size, mean, std)
        if freeze_text:
            for p in self.text_parameters():
                p.requires_grad_(False)
        self._heads: dict[tuple, torch.Tensor] = {}
        self.text_head: Optional[torch.Tensor] = None
        self.classnames: list[str] = []
        self.text_encoder_calls = 0

    @property
    def image_size(self) -> int:
        return self.image_encoder.image_size

    @property
    def device(self) -> torch.device:
        return self.image_encoder.mean.device

    def text_parameters(self):
        visual_ids = {id(p) for p in self.clip.visual.parameters()}
        return [p for p in self.clip.parameters() if id(p) not in visual_ids]

    @torch.no_grad()
    def build_text_head(self, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
        """(C, D) unit-norm class embeddings: mean over templates of normalised text features."""
        if not classnames:
            raise ValueError("a zero-shot head needs at least one class name")
        if not templates or any("{}" not in t for t in templates):
            raise ValueError(f"every prompt template needs one '{{}}' for the class name, got {list(templates)}")
        key = (tuple(classnames), tuple(templates))
        if key not in self._heads:
            self.text_encoder_calls += 1
            prompts = [t.format(c) for c in classnames for t in templates]
            tokens = self.tokenizer(prompts).to(self.device)
            was_training = self.clip.training
            self.clip.eval()
            features = F.normalize(self.clip.encode_text(tokens).float(), dim=-1)
            self.clip.train(was_training)
            features = features.view(len(classnames), len(templates), -1).mean(dim=1)
            self._heads[key] = F.normalize(features, dim=-1)
        return self._heads[key].to(self.device)

    def set_classes(self, classnames: Sequence[str], templates: Sequence[str]) -> "ZeroShotCLIP":
        self.text_head = self.build_text_head(classnames, templates)
        self.classnames = list(classnames)
        return self

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        if self.text_head is None:
            raise RuntimeError("call set_classes(classnames, templates) before classifying")
        return logits_from_features(features, self.text_head.to(features.device))

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        features = self.image_encoder(images)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify(self.image_encoder(images))

    def _apply(self, fn, recurse=True):
        # Keep cached heads on the model's device when it moves.
        super()._apply(fn, recurse)
        self._heads = {k: fn(v) for k, v in self._heads.items()}
        if self.text_head is not None:
            self.text_head = fn(self.text_head)
        return self
