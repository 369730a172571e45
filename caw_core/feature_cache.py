"""The frozen original tower's features on clean training images, computed once per image and reused.

Every method trains T against a frozen copy O of the original image tower, and
several evaluate O on the *clean* batch every step: CAW's P_O(x) (through
f_O(x)), FARE's target f_O(x) (in its attack and its loss). O never changes and,
without random augmentation, neither does image i, so f_O(x_i) is the same in
every epoch. This cache stores it: a (N, D) float32 table on the training
device plus a filled mask, keyed by the dataset index, filled as batches are
first seen and reused from then on (≈10% of a CAW ViT-B/32 step;
docs/BENCHMARKS.md).

How the methods see it: :meth:`OriginalFeatureCache.bind` wraps O for one step.
The wrapper is a pure-function shortcut: when its input *begins with* the bound
clean batch (value-equal rows, so ``O(x)`` and ``O(cat([x, x']))`` both
qualify), those rows' features come from the table and only the rest run
through O. Any other call (adversarial images, ``return_tokens=True``) goes to
O unchanged, so no method needs to know about the cache. O is per-example
(eval mode, no batch statistics), hence the cached features equal the
uncached ones up to float round-off from the different batch composition.

The table is saved next to the run's checkpoints
(``original_features.safetensors``, written atomically, no pickle) with the
identity of what produced it -- base model, dataset, split size, image size --
so a resumed run reuses it and a mismatching file is ignored. Memory:
N x D x 4 bytes (TinyImageNet's 100k images at ViT-B/32's D = 512: 205 MB).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from caw_core.io import atomic_write

FILENAME = "original_features.safetensors"


def has_random_augmentation(data) -> bool:
    """True when the dataset's ``transform`` contains a random torchvision transform (``Random*``)."""
    transform = getattr(data, "transform", None)
    stack = [transform]
    while stack:
        item = stack.pop()
        if item is None:
            continue
        if type(item).__name__.startswith("Random"):
            return True
        stack += list(getattr(item, "transforms", []))
    return False


class WithIndices:
    """A map-style dataset whose items are ``(image, label, index)``: the trainer needs the index for the cache."""

    def __init__(self, data):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        return (*self.data[index], index)

    def __getitems__(self, indices: list[int]) -> list:
        batched = getattr(self.data, "__getitems__", None)
        items = batched(indices) if batched else [self.data[i] for i in indices]
        return [(*item, index) for item, index in zip(items, indices)]


class OriginalFeatureCache:
    """f_O(x_i) for training images ``0 .. size-1``: a float32 (size, dim) table and the mask of filled rows."""

    def __init__(self, size: int, dim: int, identity: dict, device: torch.device, path: Optional[Path] = None):
        self.identity, self.path = identity, path
        self.size, self.dim, self.device = size, dim, device
        self._table: Optional[tuple[torch.Tensor, torch.Tensor]] = None  # allocated on first use
        self._unsaved = False
        if path is not None and path.is_file():
            self._load(path)

    @property
    def features(self) -> torch.Tensor:
        return self._allocated()[0]

    @property
    def filled(self) -> torch.Tensor:
        return self._allocated()[1]

    def _allocated(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The table, allocated on first use: methods that never run O on clean images (TeCoA, PMG-AFT, TGA-ZSR's
        token maps) never pay for it."""
        if self._table is None:
            self._table = (torch.zeros(self.size, self.dim, dtype=torch.float32, device=self.device),
                           torch.zeros(self.size, dtype=torch.bool, device=self.device))
        return self._table

    @property
    def allocated(self) -> bool:
        return self._table is not None

    @property
    def nbytes(self) -> int:
        return self.size * self.dim * 4 + self.size

    def describe(self) -> str:
        where = f"; saved with the checkpoints to {self.path}" if self.path is not None else ""
        reused = int(self.filled.sum()) if self.allocated else 0
        return (f"original-feature cache: {self.size} images x {self.dim} floats = {self.nbytes / 2**20:.1f} MB on "
                f"{self.device}, allocated when the method first runs the original tower on clean images{where}"
                + (f" ({reused} reused from an earlier run)" if reused else ""))

    def lookup(self, original: nn.Module, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """f_O(images) for dataset ``indices``: filled rows from the table, the rest computed now and stored."""
        indices = indices.to(self.device)
        missing = ~self.filled[indices]
        if bool(missing.any()):
            with torch.no_grad():
                fresh = original(images[missing.to(images.device)]).float()
            rows = indices[missing]
            self.features[rows] = fresh.to(self.features.device)
            self.filled[rows] = True
            self._unsaved = True
        return self.features[indices].to(images.device)

    def bind(self, original: nn.Module, images: torch.Tensor, indices: torch.Tensor) -> "CachedOriginal":
        return CachedOriginal(original, self, images, indices)

    # -- persistence -------------------------------------------------------------------------------------------
    def save(self) -> None:
        """Write the table atomically to ``path`` if rows were added since the last save (or load)."""
        if self.path is None or not self._unsaved:
            return
        from safetensors.torch import save

        payload = save({"features": self.features.cpu(), "filled": self.filled.cpu().to(torch.uint8)},
                       metadata={"identity": json.dumps(self.identity, sort_keys=True)})
        atomic_write(self.path, lambda handle: handle.write(payload), mode="wb")
        self._unsaved = False

    def _load(self, path: Path) -> None:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            identity = json.loads((handle.metadata() or {}).get("identity", "null"))
            if identity != self.identity:
                return  # made for another model or dataset: recompute
            features, filled = handle.get_tensor("features"), handle.get_tensor("filled").bool()
        if features.shape == (self.size, self.dim) and filled.shape == (self.size,):
            self._table = (features.to(self.device), filled.to(self.device))


class CachedOriginal:
    """O for one training step, answering calls that begin with the bound clean batch from the cache."""

    def __init__(self, original: nn.Module, cache: OriginalFeatureCache, images: torch.Tensor,
                 indices: torch.Tensor):
        self._original, self._cache, self._images, self._indices = original, cache, images, indices

    def __getattr__(self, name: str):  # image_size, parameters(), ... are O's
        return getattr(self._original, name)

    def __call__(self, x: torch.Tensor, return_tokens: bool = False):
        count = len(self._images)
        if return_tokens or len(x) < count or not torch.equal(x[:count], self._images):
            return self._original(x, return_tokens=return_tokens)
        clean = self._cache.lookup(self._original, self._images, self._indices)
        if len(x) == count:
            return clean
        rest = self._original(x[count:])
        return torch.cat([clean.to(rest.dtype), rest])


def for_run(enabled: Optional[bool], data, size: int, dim: int, identity: dict, device: torch.device,
            run_dir: Optional[Path], announce: bool) -> Optional[OriginalFeatureCache]:
    """The cache of a training run, or None. ``enabled=None`` (auto) turns it on unless the training transform is
    random; ``True`` with a random transform is refused (the cached features would be of other images)."""
    random = has_random_augmentation(data)
    if enabled is None:
        enabled = not random
    elif enabled and random:
        raise ValueError("cache_original_features needs a deterministic training transform; this dataset's is "
                         "random (use --no-cache-original-features)")
    if not enabled:
        return None
    cache = OriginalFeatureCache(size, dim, identity, device, None if run_dir is None else Path(run_dir) / FILENAME)
    if announce:
        print(cache.describe(), file=sys.stderr)
    return cache
