"""The jobs the views run: thin wrappers that call caw_core and yield its records.

Each training, evaluation and playground job first applies
:func:`caw_core.threads.apply_thread_policy` for its model, in the worker
thread that runs it (torch's OpenMP thread count is per thread), as the CLI does.

Everything the jobs need is imported here, at module level, in the GUI
thread: PySide6's import hook (shiboken's feature check) can crash the
interpreter when a module is imported for the first time in a worker thread.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator, Optional, Union

import open_clip  # noqa: F401  (see the module docstring)
import open_clip.zero_shot_metadata  # noqa: F401
import safetensors.torch  # noqa: F401
import torch.nn.parallel  # noqa: F401

import caw_core.data  # noqa: F401  (registers every dataset)
from caw_core.evaluate import evaluate
from caw_core.models import ModelSpec
from caw_core.attacks.control import AttackCancelled
from caw_core.playground import ModelCache, PlaygroundRequest, load_playground_models, run_playground
from caw_core.threads import apply_thread_policy
from caw_core.train import Trainer
from caw_gui.image_io import ImageLoadError, load_image

__all__ = ["AttackJob", "EvalJob", "LoadModelJob", "ModelCache", "TrainJob"]


class TrainJob:
    """``Trainer(config, resume).run()``; ``stop()`` makes the trainer save a checkpoint and stop."""

    def __init__(self, config, resume: bool = False):
        self.config, self.resume = config, resume
        self.trainer = None
        self._stop = False

    def records(self) -> Iterator[dict]:
        apply_thread_policy(self.config.model)
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


class AttackJob:
    """Decode the image (when given as a path or bytes), then :func:`caw_core.playground.run_playground`.

    Decoding happens here, in the worker, so a huge image never stalls the window; an unusable
    one ends the job with an ``image_error`` record (the view keeps its previous image). Records
    are the playground's, after an optional ``loaded`` (``image``, ``name``, ``notes``); a cancel
    (:meth:`stop`) stops the running attack within one forward pass and ends with ``cancelled``.
    ``on_progress`` (set before the job starts) receives the attack's progress dicts.
    """

    def __init__(self, cache: ModelCache, request: PlaygroundRequest, vanilla: ModelSpec,
                 finetuned: Optional[ModelSpec], device: str, image_source: Union[str, bytes, None] = None):
        self.cache, self.request = cache, request
        self.vanilla, self.finetuned, self.device = vanilla, finetuned, device
        self.image_source = image_source
        self.on_progress: Optional[Callable[[dict], None]] = None
        self._stop = threading.Event()

    def records(self) -> Iterator[dict]:
        apply_thread_policy(self.vanilla.name)
        if self.image_source is not None:
            try:
                loaded = load_image(self.image_source)
            except ImageLoadError as exc:
                yield {"event": "image_error", "message": str(exc)}
                return
            self.request.image = loaded.image
            yield {"event": "loaded", "image": loaded.image, "name": loaded.name, "notes": loaded.notes}
        models = load_playground_models(self.cache, self.vanilla, self.finetuned, self.device)
        try:
            yield from run_playground(self.request, models, self._stop.is_set, self.on_progress)
        except AttackCancelled:
            yield {"event": "cancelled"}

    def stop(self) -> None:
        self._stop.set()


class EvalJob:
    """``caw_core.evaluate.evaluate(config)``; :meth:`stop` ends it within one forward pass of the running attack
    (a final ``cancelled`` record); finished batches stay on disk and a rerun resumes."""

    def __init__(self, config):
        self.config = config
        self._stop = threading.Event()

    def records(self) -> Iterator[dict]:
        apply_thread_policy(self.config.model_specs()[0].name)  # the first model, as the CLI
        yield from evaluate(self.config, should_stop=self._stop.is_set)

    def stop(self) -> None:
        self._stop.set()
