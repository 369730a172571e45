"""The jobs the views run: thin wrappers that call caw_core and yield its records.

Everything the jobs need is imported here, at module level, in the GUI
thread: PySide6's import hook (shiboken's feature check) can crash the
interpreter when a module is imported for the first time in a worker thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import torch
from PIL import Image

import open_clip  # noqa: F401  (see the module docstring)
import open_clip.zero_shot_metadata  # noqa: F401
import safetensors.torch  # noqa: F401
import torch.nn.parallel  # noqa: F401

import caw_core.data  # noqa: F401  (registers every dataset)
from caw_core.attacks.registry import attack_images
from caw_core.distributed import resolve_device
from caw_core.evaluate import evaluate
from caw_core.data.transforms import pixel_transform
from caw_core.models import ModelSpec, ZeroShotCLIP, load_model
from caw_core.train import Trainer


class ModelCache:
    """Loaded models by (spec, device), shared by jobs; loading is serialised by a lock."""

    def __init__(self):
        self._models: dict[tuple, ZeroShotCLIP] = {}
        self._lock = threading.Lock()

    def get(self, spec: ModelSpec, device: str) -> ZeroShotCLIP:
        """The model of ``spec`` on ``device`` ("auto" resolves to CUDA, MPS or CPU)."""
        key = (spec, str(resolve_device(device)))
        with self._lock:
            if key not in self._models:
                self._models[key] = load_model(spec, device=key[1])
            return self._models[key]

    def forget(self, spec: ModelSpec) -> None:
        with self._lock:
            for key in [k for k in self._models if k[0] == spec]:
                del self._models[key]


class TrainJob:
    """``Trainer(config, resume).run()``; ``stop()`` makes the trainer save a checkpoint and stop."""

    def __init__(self, config, resume: bool = False):
        self.config, self.resume = config, resume
        self.trainer = None
        self._stop = False

    def records(self) -> Iterator[dict]:
        self.trainer = Trainer(self.config, resume=self.resume)
        if self._stop:
            self.trainer.request_stop()
        yield {"event": "started", "run_dir": str(self.trainer.run_dir), "step": self.trainer.progress.step,
               "total_steps": self.trainer.total_steps, "device": str(self.trainer.ctx.device)}
        yield from self.trainer.run()

    def stop(self) -> None:
        self._stop = True
        if self.trainer is not None:
            self.trainer.request_stop()


class LoadModelJob:
    """Load (and cache) one model, to validate a choice before it is used."""

    def __init__(self, cache: ModelCache, spec: ModelSpec, device: str):
        self.cache, self.spec, self.device = cache, spec, device

    def records(self) -> Iterator[dict]:
        model = self.cache.get(self.spec, self.device)
        yield {"event": "loaded", "spec": self.spec, "image_size": model.image_size,
               "device": str(model.device)}

    def stop(self) -> None:
        pass


@dataclass
class AttackRequest:
    """What the playground asks for. eps is in units of 1/255; label None = each model's clean prediction."""

    image: Image.Image
    classnames: list[str]
    templates: list[str]
    vanilla: ModelSpec
    finetuned: Optional[ModelSpec]
    device: str
    attack: str = "pgd"
    norm: str = "linf"
    eps: float = 4.0
    steps: int = 10
    source: str = "each"  # "each": white-box on each model; "vanilla"/"finetuned": transfer from that model
    label: Optional[int] = None
    top_k: int = 5


def _top_k(logits: torch.Tensor, classnames: list[str], k: int) -> list[tuple[str, float]]:
    probs = logits.softmax(dim=-1)[0]
    values, indices = probs.topk(min(k, len(classnames)))
    return [(classnames[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


def _to_array(images: torch.Tensor) -> np.ndarray:
    return (images[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


class AttackJob:
    """Classify an image with the vanilla and fine-tuned models, attack, classify the adversarials.

    Records: ``clean`` (input array and both models' top-k), then one
    ``adversarial`` per crafted image (``crafted_on``, images, perturbation,
    and each model's top-k on it), then ``done``. Cancel is honoured between
    attacks.
    """

    def __init__(self, cache: ModelCache, request: AttackRequest):
        self.cache, self.request = cache, request

    def _models(self) -> dict[str, ZeroShotCLIP]:
        r = self.request
        specs = {"vanilla": r.vanilla, **({"finetuned": r.finetuned} if r.finetuned else {})}
        models = {role: self.cache.get(spec, r.device) for role, spec in specs.items()}
        for model in models.values():
            model.set_classes(r.classnames, r.templates)
        return models

    def records(self) -> Iterator[dict]:
        r = self.request
        models = self._models()
        size = models["vanilla"].image_size
        images = pixel_transform(size)(r.image).unsqueeze(0).to(models["vanilla"].device)
        with torch.no_grad():
            clean_logits = {role: model(images) for role, model in models.items()}
        yield {"event": "clean", "image": _to_array(images), "size": size,
               "topk": {role: _top_k(lg, r.classnames, r.top_k) for role, lg in clean_logits.items()}}
        sources = list(models) if r.source == "each" else [r.source]
        for source in sources:
            if source not in models:
                raise ValueError(f"cannot craft the attack on the {source} model: none is chosen")
            model = models[source]
            label = r.label if r.label is not None else int(clean_logits[source].argmax())
            adv = attack_images(r.attack, model, images, torch.tensor([label], device=images.device),
                                eps=r.eps / 255.0, norm=r.norm, steps=r.steps)
            targets = [source] if r.source == "each" else list(models)
            with torch.no_grad():
                topk = {role: _top_k(models[role](adv), r.classnames, r.top_k) for role in targets}
            delta = (adv - images)[0].permute(1, 2, 0).cpu().numpy()
            yield {"event": "adversarial", "crafted_on": source, "label": r.classnames[label],
                   "image": _to_array(adv), "delta": delta, "topk": topk}
        yield {"event": "done"}

    def stop(self) -> None:
        pass


class EvalJob:
    """``caw_core.evaluate.evaluate(config)``; cancel (between batches) leaves resumable results on disk."""

    def __init__(self, config):
        self.config = config

    def records(self) -> Iterator[dict]:
        return evaluate(self.config)

    def stop(self) -> None:
        pass
