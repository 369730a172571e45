"""Contrastive pretraining of the toy CLIP on captioned toy-world scenes.

This makes the project's embedded default model: ``caw-core toy pretrain``
runs :func:`pretrain`, which trains ``caw-toy-vit`` from scratch on an endless
stream of scenes with captions that drop attributes at random (like web
alt-text), then writes the weights (fp16 safetensors) and a JSON card that
says how they were made and what zero-shot accuracy they reach per toy task.
They go to a folder in the user's data directory (:func:`default_out_dir`),
never into the installed package; from a source checkout,
``--out caw_core/resources`` replaces the embedded weights.

The loss is CLIP's symmetric InfoNCE with one change: a batch of toy captions
is full of *false negatives* ("a photo of a circle." describes every circle in
the batch), so the targets are multi-positive. Caption ``j`` counts as a
positive for image ``i`` when every attribute it names matches image ``i``,
and each row's target mass is spread evenly over its positives. This is the
supervision the captions carry anyway; it only stops the loss from pushing
apart pairs that the text says are the same.

Two choices make the fifth attribute, position, learnable at all. Measured
with 1,500-step runs unless stated (zero-shot accuracy on 300 test scenes;
position's chance is 25%):

- lr 2e-3 with open_clip's learned position embedding (the first recipe):
  colour and texture are learned within 250 steps, position never (26.5% on
  1,000 scenes after 5,666 steps). Naming the position in 90% of captions, or
  adding twins that differ only in position, did not help (23-29%).
- Fixed 2-D sin-cos position embeddings (``caw-toy-vit``'s
  ``pos_embed_type``) at lr 2e-3: still 24%.
- Sin-cos at lr 5e-4: position 99.4%, size 87%, shape 66% at step 1,500.
- Learned embeddings at lr 5e-4: position still 30% at step 1,250.

At init, position explains 0.05% of the image embedding's variance (0.3% with
sin-cos), colour 5-10%; at the higher rate the towers align on colour and
texture so fast that the position directions are squashed before the text
side learns what "top left" means, and both towers settle into ignoring it,
the spatial blind spot real CLIPs are known for. A supervised probe confirms
the image tower itself can read position in ~100 steps with sin-cos.

Everything is a pure function of the config: the scene/caption stream is keyed
by ``seed`` (disjoint from the task splits' streams) and torch is seeded, so a
run with the same config and thread count reproduces its weights. Runs default
to one torch thread: on the shared 2-core machines this was built on, two
threads spun on each other and ran 8x slower.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from platformdirs import user_data_dir
from safetensors.torch import save_file

import caw_core
from caw_core.data import toyworld as tw
from caw_core.io import atomic_path, atomic_write_json
from caw_core.models.loading import MODEL_CONFIG_DIR, TOY_ARCH, zero_shot_model
from caw_core.toy.model import RESOURCES, create_toy_clip, toy_tokenizer
from caw_core.toy.zeroshot import to_tensor, zero_shot_accuracy

PRETRAIN_STREAM = 1_000_000  # stream seed = PRETRAIN_STREAM + seed; task splits use 1 and 2


def default_out_dir() -> Path:
    """Where ``caw-core toy pretrain`` writes by default: ``<user data dir of caw>/toy``."""
    return Path(user_data_dir("caw", "caw")) / "toy"


@dataclass
class PretrainConfig:
    """One pretraining run. ``steps`` x ``batch_size`` scenes are seen."""

    steps: int = 1000
    batch_size: int = 64
    lr: float = 5e-4  # 2e-3 never learns position (module docstring)
    weight_decay: float = 0.1
    warmup_steps: int = 100
    keep_prob: float = 0.4  # chance a caption names each of colour/texture/size/position
    shape_prob: float = 0.95  # chance it names the shape (else "shape")
    seed: int = 0
    threads: int = 1  # one thread: on a shared, oversubscribed CPU two were 8x slower
    eval_every: int = 0  # zero-shot check every N steps (0: only at the end)
    eval_images: int = 1000  # test scenes per task for the final card
    out_dir: str = str(default_out_dir())  # RESOURCES replaces the embedded weights
    name: str = "toy_clip"
    extra: dict = field(default_factory=dict)  # free-form notes copied into the card

    def command(self) -> str:
        """The CLI line that reproduces this run (and writes where it wrote)."""
        out_dir = Path(self.out_dir).resolve()
        if out_dir == default_out_dir().resolve():
            out = ""
        elif out_dir == RESOURCES.resolve():
            out = " --out caw_core/resources"  # the embedded weights, from a source checkout
        else:
            out = f" --out {self.out_dir}"
        return (
            f"caw-core toy pretrain --steps {self.steps} --batch-size {self.batch_size} "
            f"--lr {self.lr:g} --seed {self.seed} --threads {self.threads}{out}"
        )


def batch_targets(labels: np.ndarray, keep: np.ndarray) -> torch.Tensor:
    """(N, N) compatibility: [i, j] = 1 when caption j's named attributes all match image i."""
    agree = labels[:, None, :] == labels[None, :, :]  # (image i, caption j, attribute)
    return torch.from_numpy((agree | ~keep[None, :, :]).all(-1).astype(np.float32))


def multi_positive_clip_loss(image_f, text_f, logit_scale, positives: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with soft targets spread over every compatible pair."""
    logits = logit_scale * image_f @ text_f.T
    to_text = positives / positives.sum(1, keepdim=True)
    to_image = positives.T / positives.T.sum(1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, to_text) + F.cross_entropy(logits.T, to_image))


def _lr_at(step: int, config: PretrainConfig) -> float:
    """Linear warmup, then cosine decay to zero."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _optimizer(model: torch.nn.Module, config: PretrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]  # gains, biases, logit scale
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), eps=1e-6)


class _Batches:
    """Step ``k``'s batch: scenes ``k*B .. (k+1)*B`` of the pretraining stream."""

    def __init__(self, config: PretrainConfig, tokenizer):
        self.config, self.tokenizer = config, tokenizer
        self.stream = PRETRAIN_STREAM + config.seed
        self._tokens: dict[str, torch.Tensor] = {}

    def __call__(self, step: int):
        b = self.config.batch_size
        indices = range(step * b, (step + 1) * b)
        scenes = tw.sample_scenes(self.stream, indices, composition="seen")
        images = to_tensor(tw.render_uint8(scenes).astype(np.float32) / 255.0)
        captions, keep = tw.pretraining_captions(
            scenes, self.stream, indices, self.config.keep_prob, self.config.shape_prob
        )
        tokens = torch.cat([self._tokenize(c) for c in captions])
        return images, tokens, batch_targets(tw.scene_labels(scenes), keep)

    def _tokenize(self, text: str) -> torch.Tensor:
        if text not in self._tokens:  # the world has a few thousand distinct captions
            self._tokens[text] = self.tokenizer([text])
        return self._tokens[text]


def pretrain(config: PretrainConfig) -> Iterator[dict]:
    """Train, yielding a record per step; at the end write weights and card.

    Step records: ``step, loss, lr, logit_scale, images_per_s``. Evaluation
    records (every ``eval_every`` steps and once at the end) add
    ``zeroshot/<task>`` accuracies. The last record also has ``wall_time_s``.
    """
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    model = create_toy_clip().train()
    tokenizer = toy_tokenizer()
    image_encoder = zero_shot_model(model, tokenizer, "toy", freeze_text=False).image_encoder  # adds the normalisation
    optimizer = _optimizer(model, config)
    batches = _Batches(config, tokenizer)
    for step in range(config.steps):
        tick = time.perf_counter()
        lr = _lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        images, tokens, positives = batches(step)
        image_f = F.normalize(image_encoder(images), dim=-1)
        text_f = model.encode_text(tokens, normalize=True)
        loss = multi_positive_clip_loss(image_f, text_f, model.logit_scale.exp(), positives)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        record = {
            "step": float(step + 1),
            "loss": loss.item(),
            "lr": lr,
            "logit_scale": model.logit_scale.exp().item(),
            "images_per_s": config.batch_size / (time.perf_counter() - tick),
        }
        if config.eval_every and (step + 1) % config.eval_every == 0 and step + 1 < config.steps:
            record.update(_flat(zero_shot_accuracy(model, tokenizer, n=300)))
        yield record
    train_time = time.perf_counter() - started
    _round_to_fp16(model)  # evaluate exactly what is saved
    accuracy = zero_shot_accuracy(model, tokenizer, n=config.eval_images)
    wall = time.perf_counter() - started
    _write(model, config, accuracy, train_time, wall)
    yield {"step": float(config.steps), **_flat(accuracy), "wall_time_s": wall}


def estimate_steps(config: PretrainConfig, minutes: float, probe_steps: int = 6) -> int:
    """How many steps of ``config`` fit in ``minutes`` here, from a short throwaway run.

    Leaves ~5% for setup and the final evaluation. The result is recorded in
    the card's command, so the run itself stays reproducible.
    """
    probe = replace(config, steps=10**9, eval_every=0, warmup_steps=1)
    records = pretrain(probe)
    next(records)  # the first step pays one-off costs
    tick = time.perf_counter()
    for _ in range(probe_steps):
        next(records)
    records.close()  # stops before anything is written
    per_step = (time.perf_counter() - tick) / probe_steps
    return max(1, int(minutes * 60 * 0.95 / per_step))


def _flat(accuracy: dict) -> dict:
    return {f"zeroshot/{task}": r["accuracy"] for task, r in accuracy.items()}


@torch.no_grad()
def _round_to_fp16(model: torch.nn.Module) -> None:
    for tensor in model.state_dict().values():
        if tensor.is_floating_point():
            tensor.copy_(tensor.half().float())


def _write(model, config: PretrainConfig, accuracy: dict, train_time: float, wall: float) -> None:
    out = Path(config.out_dir)
    weights = out / f"{config.name}.safetensors"
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={"model": TOY_ARCH, "format": "pt"})
    card = {
        "model": TOY_ARCH,
        "model_config": json.loads((MODEL_CONFIG_DIR / f"{TOY_ARCH}.json").read_text()),
        "weights": weights.name,
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "dtype": "float16",
        "parameters": sum(p.numel() for p in model.parameters()),
        "vision_parameters": sum(p.numel() for p in model.visual.parameters()),
        "normalisation": {k: list(v) for k, v in open_clip.get_model_preprocess_cfg(model).items() if k in ("mean", "std")},
        "tokenizer": f"open_clip.get_tokenizer({TOY_ARCH!r}) (ViT-B-32's BPE at context 20)",
        "config": asdict(config),
        "command": config.command(),
        "steps": config.steps,
        "images_seen": config.steps * config.batch_size,
        "train_time_s": round(train_time, 1),
        "wall_time_s": round(wall, 1),
        "machine": {"platform": platform.platform(), "torch_threads": config.threads},
        "versions": {
            "caw": caw_core.__version__,
            "torch": torch.__version__,
            "open_clip": open_clip.__version__,
            "numpy": np.__version__,
        },
        "world": {
            "attributes": {k: list(v) for k, v in tw.ATTRIBUTES.items()},
            "held_out_colour_texture_pairs": [list(p) for p in tw.HELD_OUT_PAIRS],
            "train_task": tw.TOY_TRAIN_TASK,
        },
        "zero_shot": {
            "split": "test",
            "images": config.eval_images,
            "note": "held_out_accuracy: test scenes whose colour x texture pair never occurs in pretraining",
            "tasks": accuracy,
        },
    }
    atomic_write_json(out / f"{config.name}.json", card)
