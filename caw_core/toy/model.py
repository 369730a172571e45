"""Create the tiny open_clip model of the toy world and load its weights.

The architecture is the open_clip config ``caw-toy-vit`` in
``caw_core/models/model_configs``: a 64 px ViT with 8 px patches, width 64,
4 layers and fixed 2-D sin-cos position embeddings (without them position is
never learned, see :mod:`caw_core.toy.pretrain`); a 2-layer text transformer
with context 20. The weights are the fp16 safetensors that
``caw-core toy pretrain --out caw_core/resources`` writes to
``caw_core/resources/toy_clip.safetensors``.
"""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch
from safetensors.torch import load_file

from caw_core.models.loading import TOY_ARCH, register_configs, tokenizer_for, toy_weights_path

TOY_WEIGHTS = toy_weights_path()
RESOURCES = TOY_WEIGHTS.parent


def create_toy_clip() -> torch.nn.Module:
    """A randomly initialised ``caw-toy-vit`` open_clip model (fp32, CPU)."""
    register_configs()
    return open_clip.create_model(TOY_ARCH, load_weights=False)


def load_toy_clip(weights: str | Path = TOY_WEIGHTS) -> torch.nn.Module:
    """The pretrained toy CLIP in eval mode, fp32; ``weights`` defaults to the committed file."""
    model = create_toy_clip()
    state = {k: v.float() for k, v in load_file(str(weights)).items()}
    model.load_state_dict(state)
    return model.eval()


def toy_tokenizer():
    """open_clip's CLIP BPE tokenizer (bundled, works offline) at the config's context 20: ``load_model('toy')``'s."""
    register_configs()
    return tokenizer_for(TOY_ARCH)
