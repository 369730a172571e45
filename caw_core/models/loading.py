"""Build a :class:`ZeroShotCLIP` from one of three sources.

1. an open_clip architecture + pretrained tag (``ViT-B-32`` / ``openai``),
   downloaded by open_clip where there is internet;
2. an open_clip architecture + a local weights file (``--pretrained path``):
   safetensors, or a foreign ``.pt``/``.bin`` read with ``weights_only=True``;
3. ``toy``: the project's own tiny CLIP, pretrained on the toy world and
   shipped inside the package.

A fine-tuned checkpoint of ours (see :mod:`caw_core.models.checkpoint`) is
applied on top of any of them: it stores the image tower only and names its
base model.
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional

import torch

from caw_core.io import BadFileError, require_regular
from caw_core.models.zero_shot import ImageEncoder, ZeroShotCLIP

TOY_MODEL = "toy"  # the user-facing model name of the embedded toy CLIP
TOY_ARCH = "caw-toy-vit"  # its open_clip architecture (config in MODEL_CONFIG_DIR)
TEST_ARCH = "caw-test-tiny"
MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
_CONFIGS_REGISTERED = False


class ModelLoadError(RuntimeError):
    """A model could not be built; the message says what to do instead."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from.

    name: open_clip architecture (``ViT-B-32``), or ``toy`` for the embedded
        tiny CLIP. pretrained: open_clip tag (``openai``), a local weights
        path, or None for random init. checkpoint: a caw fine-tuning run or
        checkpoint folder whose image tower replaces the base one.
    """

    name: str = "ViT-B-32"
    pretrained: Optional[str] = "openai"
    checkpoint: Optional[str] = None

    def label(self) -> str:
        base = self.name if self.name == TOY_MODEL else f"{self.name}/{self.pretrained or 'random'}"
        return f"{base}+{Path(self.checkpoint).name}" if self.checkpoint else base


def register_configs() -> None:
    """Make the project's open_clip configs (toy, test-tiny) known to open_clip."""
    global _CONFIGS_REGISTERED
    if not _CONFIGS_REGISTERED:
        import open_clip

        open_clip.add_model_config(MODEL_CONFIG_DIR)
        _CONFIGS_REGISTERED = True


def toy_weights_path() -> Path:
    return Path(str(resources.files("caw_core") / "resources" / "toy_clip.safetensors"))


@functools.lru_cache(maxsize=None)
def tokenizer_for(name: str):
    """open_clip's tokenizer of architecture ``name``, built once per process (building one reads the BPE
    vocabulary; it cost 5% of the quick demo when every model load rebuilt it). Tokenizers keep no state
    between calls, so every model of the architecture shares it."""
    import open_clip

    return open_clip.get_tokenizer(name)


def _check_arch(name: str) -> None:
    import open_clip

    known = open_clip.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise ModelLoadError(f"unknown model architecture {name!r}.{hint} Or use 'toy' for the embedded tiny CLIP.")


def _create_clip(name: str, pretrained: Optional[str]):
    import open_clip

    register_configs()
    if pretrained is not None and pretrained.strip().lower() in ("", "none", "random"):
        pretrained = None
    if name == TOY_MODEL:
        weights = toy_weights_path()
        if not weights.exists():
            raise ModelLoadError(f"the embedded toy CLIP weights are missing at {weights}; run `caw-core toy pretrain`")
        name, pretrained = TOY_ARCH, str(weights)
    _check_arch(name)
    is_file = pretrained is not None and (os.sep in pretrained or Path(pretrained).suffix != "")
    if is_file:
        try:
            require_regular(pretrained, "weights file")  # a FIFO or /dev/zero would hang or exhaust memory
        except (BadFileError, FileNotFoundError) as exc:
            raise ModelLoadError(str(exc)) from None
    if pretrained and not is_file:
        tags = open_clip.list_pretrained_tags_by_model(name)
        if pretrained not in tags:
            raise ModelLoadError(
                f"open_clip has no pretrained tag {pretrained!r} for {name}; known tags: {', '.join(tags) or 'none'}. "
                "Pass a local weights file with --pretrained /path/to/weights.safetensors"
            )
    # OpenAI's CLIPs were trained with QuickGELU; open_clip only warns when the plain architecture name is
    # paired with such weights and then builds GELU, a different network. Follow the weights' own config.
    quick_gelu = bool(pretrained and not is_file
                      and open_clip.get_pretrained_cfg(name, pretrained).get("quick_gelu", False))
    try:
        clip = open_clip.create_model(name, pretrained=pretrained, weights_only=True,
                                      **({"force_quick_gelu": True} if quick_gelu else {}))
    except Exception as exc:  # download or unpickling failures have many types
        if is_file:
            raise ModelLoadError(
                f"could not load weights {pretrained} for {name}: {exc}. caw reads safetensors, or .pt/.bin "
                "state dicts with torch.load(weights_only=True); files that need arbitrary unpickling are refused."
            ) from exc
        raise ModelLoadError(
            f"could not get the {pretrained!r} weights of {name}: {exc}. Without internet, download them elsewhere "
            "and pass the file with --pretrained /path/to/open_clip_pytorch_model.bin (or .safetensors)."
        ) from exc
    return clip, tokenizer_for(name)


def load_model(spec: ModelSpec | str = ModelSpec(), device: str | torch.device = "cpu") -> ZeroShotCLIP:
    """Build the zero-shot model of ``spec`` on ``device`` in eval mode (fp32).

    A bare string is an architecture with random weights (or ``"toy"``, which
    always comes with its embedded weights).
    """
    if isinstance(spec, str):
        spec = ModelSpec(name=spec, pretrained=None)
    clip, tokenizer = _create_clip(spec.name, spec.pretrained)
    model = zero_shot_model(clip, tokenizer, spec.label())
    if spec.checkpoint:
        from caw_core.models.checkpoint import load_image_tower

        load_image_tower(model, spec.checkpoint)
    return model.to(device).eval()


def zero_shot_model(clip: torch.nn.Module, tokenizer, name: str, freeze_text: bool = True) -> ZeroShotCLIP:
    """``clip`` (an open_clip CLIP) as a :class:`ZeroShotCLIP`, with its own preprocess size, mean and std.

    Shares ``clip``'s parameters (no copy); ``freeze_text`` as in :class:`ZeroShotCLIP`.
    """
    import open_clip

    cfg = open_clip.get_model_preprocess_cfg(clip)
    size = cfg.get("size", 224)
    size = size[0] if isinstance(size, (tuple, list)) else size
    return ZeroShotCLIP(clip, tokenizer, size, cfg["mean"], cfg["std"], name=name, freeze_text=freeze_text)


def frozen_image_encoder(model: ZeroShotCLIP) -> ImageEncoder:
    """A frozen copy of ``model``'s image tower: the 'original' CLIP of CAW and baselines.

    Only the image tower is copied: the text tower is frozen anyway, so both
    models share one text head.
    """
    frozen = copy.deepcopy(model.image_encoder)
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen.eval()
