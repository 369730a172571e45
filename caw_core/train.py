"""Adversarial fine-tuning of CLIP's image tower, as a generator of metric records.

The recipe (CAW paper, PMG-AFT, TGA-ZSR; see ANCHORS.md): for every batch of
clean images x in [0, 1] with labels y,

1. inner loop -- x' = PGD-k(x) in the linf ball of radius eps (the method's
   recipe: 2 steps of 1/255 at eps 1/255 for all but FARE, uniform random
   start) against the current tower T, maximising the objective's attack loss
   (zero-shot CE for all but FARE);
2. outer loop -- one optimizer step (the method's recipe: SGD momentum 0.9 and
   no weight decay for all but FARE) on the objective's loss, learning rate
   warmed up linearly (at most a tenth of the run) then cosine-decayed to 0.

The text tower is frozen and its class head computed once. :class:`Trainer`
yields a record (a dict of plain Python values) after every step; callers (the
CLI, the GUI worker, tests) print, plot or stop as they like. A run folder
is ``runs/<name>/{config.json, metrics.jsonl, checkpoints/}``; ``resume``
continues exactly where the last checkpoint stopped: same weights, optimizer
state, data order and attack random state.

Interruption saves. ``request_stop()``, SIGINT (Ctrl-C) and SIGTERM (``kill``,
cluster preemption) let the current step finish, write a checkpoint of it and
end the generator with a ``stopped`` record (``signal`` names the signal);
closing the generator (``.close()``, or dropping it) checkpoints the last
finished step too. A second Ctrl-C aborts at once without saving. The signal
handlers exist only while :meth:`Trainer.run` is live in the main thread;
under torchrun every rank learns of a stop at the same step (an all-reduce of
the flag), so the ranks never disagree about when to stop.

One writer per run folder: rank 0 holds the folder's lock
(:mod:`caw_core.run_lock`) from set-up until the run ends; an existing run is
never started afresh (``--resume`` it or choose a new name), and resuming cuts
``metrics.jsonl`` back to the checkpointed step, so no step is logged twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from caw_core import distributed, feature_cache
from caw_core.attacks.pgd import default_step_size, eval_mode, pgd
from caw_core.data import load_dataset
from caw_core.data.registry import require_dataset
from caw_core.io import BadFileError, atomic_write, atomic_write_json, open_regular
from caw_core.methods import Recipe, method_class, option_fields, options_from_dict
from caw_core.methods.base import LossTerms, Objective, StepInputs
from caw_core.models import ModelSpec, frozen_image_encoder, load_model
from caw_core.models.checkpoint import (
    CheckpointError,
    TrainerState,
    check_tensors_fit,
    load_image_tower,
    load_trainer_state,
    read_pointer,
    save_checkpoint,
)
from caw_core.run_lock import RunLock
from caw_core.typed_json import check_dataclass_payload, parse_json, read_json

OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("fp32", "bf16")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class RunExistsError(ValueError):
    """A fresh run was asked for in a folder that already holds a run."""


@dataclass
class TrainConfig:
    """Every argument of a training run (a run is this dataclass, as in CleanRL).

    ``method_options`` holds the chosen method's own options (its ``Options`` dataclass, e.g. CAW's
    alpha and beta); keys the method does not have are an error. eps and attack_step_size are in units
    of 1/255 (pixel grey levels). Fields left as None -- lr, optimizer, weight_decay, eps, attack_steps --
    take the method's reference recipe (:class:`caw_core.methods.Recipe`; README's recipes table);
    attack_step_size=None takes the attacks' one rule, :func:`caw_core.attacks.pgd.default_step_size`
    (1/255 in the paper's recipe). :meth:`resolve` fills them in; the Trainer calls it, so a run's
    config.json records the values it trained with.
    """

    method: str = "caw"
    method_options: dict = field(default_factory=dict)
    model: str = "ViT-B-32"
    pretrained: Optional[str] = "openai"
    checkpoint: Optional[str] = None
    data: str = "tinyimagenet"
    data_root: Optional[str] = None
    # inner attack
    eps: Optional[float] = None
    attack_steps: Optional[int] = None
    attack_step_size: Optional[float] = None
    attack_norm: str = "linf"
    # outer optimisation
    optimizer: Optional[str] = None
    lr: Optional[float] = None
    momentum: float = 0.9
    weight_decay: Optional[float] = None
    warmup_steps: int = 1000
    epochs: int = 10
    max_steps: Optional[int] = None
    batch_size: int = 128
    grad_clip: Optional[float] = None
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    seed: int = 0
    device: str = "auto"
    num_workers: int = 4
    clean_acc_every: int = 10
    cache_original_features: Optional[bool] = None
    # bookkeeping
    runs_dir: str = "runs"
    name: Optional[str] = None
    save_every: int = 1000
    keep_last: int = 3

    def validate(self) -> None:
        """Raise ValueError naming the first bad value and what was expected."""
        for name in ("eps", "attack_step_size", "lr", "momentum", "weight_decay", "grad_clip"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if self.name is not None and (not self.name.strip() or Path(self.name).name != self.name
                                      or self.name in (".", "..")):
            raise ValueError(f"name must be a plain folder name (no '/' or '..'), got {self.name!r}")
        if not isinstance(self.method_options, dict):
            raise ValueError(f"method_options must be a dict of option names to values, got {self.method_options!r}")
        checks = [
            (self.eps is None or self.eps >= 0, f"eps must be >= 0 (units of 1/255), got {self.eps}"),
            (self.attack_steps is None or self.attack_steps >= 1, f"attack_steps must be >= 1, got {self.attack_steps}"),
            (self.attack_step_size is None or self.attack_step_size > 0, f"attack_step_size must be > 0, got {self.attack_step_size}"),
            (self.attack_norm in ("linf", "l2"), f"attack_norm must be linf or l2, got {self.attack_norm!r}"),
            (self.optimizer is None or self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"),
            (self.lr is None or self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.weight_decay is None or self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.max_steps is None or self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be > 0, got {self.grad_clip}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}"),
            (self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}"),
            (self.save_every >= 1, f"save_every must be >= 1, got {self.save_every}"),
            (self.keep_last >= 1, f"keep_last must be >= 1, got {self.keep_last}"),
            (self.clean_acc_every >= 1, f"clean_acc_every must be >= 1, got {self.clean_acc_every}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.options()  # the method exists and its options are valid

    def options(self):
        """The method's ``Options`` built from ``method_options`` (ValueError for unknown or bad values)."""
        cls = method_class(self.method)
        return options_from_dict(cls.Options, self.method_options, cls.name)

    def build_objective(self) -> Objective:
        return method_class(self.method)(self.options())

    def recipe_value(self, name: str) -> Any:
        """This config's ``name`` (lr, optimizer, weight_decay, eps, attack_steps), or the method's recipe value."""
        value = getattr(self, name)
        return getattr(method_class(self.method).recipe, name) if value is None else value

    def resolve(self) -> "TrainConfig":
        """In place: fill the recipe fields left as None and spell out every method option; returns self."""
        self.method = method_class(self.method).name
        for name in RECIPE_FIELDS:
            setattr(self, name, self.recipe_value(name))
        self.method_options = dataclasses.asdict(self.options())
        return self

    def inner_step_size(self) -> float:
        """The inner attack's step in pixel units: ``attack_step_size / 255``, or the attacks' default rule."""
        if self.attack_step_size is not None:
            return self.attack_step_size / 255
        return default_step_size(self.recipe_value("eps") / 255, self.recipe_value("attack_steps"), self.attack_norm)

    @property
    def learning_rate(self) -> float:
        return self.recipe_value("lr")

    def model_spec(self) -> ModelSpec:
        return ModelSpec(self.model, self.pretrained, self.checkpoint)

    def run_name(self) -> str:
        return self.name or f"{self.method}-{self.data}-{time.strftime('%Y%m%d-%H%M%S')}"

    @classmethod
    def from_run(cls, run_dir: str | Path) -> "TrainConfig":
        """The config a run was started with (to resume it).

        config.json files written before methods owned their options kept them as top-level keys
        (alpha, beta, kl, ...): those of the run's method move into ``method_options``, the others
        (every method's run stored CAW's) are dropped, and the method's ``BEFORE_OPTIONS`` fill in
        what the method computed then (PMG-AFT: the caw-v1 variant), so the run resumes unchanged.
        """
        payload = read_run_config(run_dir, cls)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in payload.items() if k in known}
        if "method_options" not in payload:
            method = method_class(values.get("method", cls.method))
            own = {f.name for f, _ in option_fields(method.Options)}
            values["method_options"] = {**method.Options.BEFORE_OPTIONS,
                                        **{k: v for k, v in payload.items() if k in own}}
        return cls(**values)


RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe) if f.name != "source")


WARMUP_CAP = 0.1  # the warm-up never takes more than this fraction of the run


def learning_rate_at(step: int, base_lr: float, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up over ``warmup_steps`` (capped at a tenth of the run, ``WARMUP_CAP``), then cosine to 0."""
    warmup = min(warmup_steps, max(int(total_steps * WARMUP_CAP), 0))
    if step < warmup:
        return base_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def autocast_context(precision: str, device: torch.device):
    """bf16 autocast on CUDA for ``precision="bf16"``; otherwise no autocast (fp32)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_encoders(*encoders: nn.Module, channels_last: bool = False, compile: bool = False) -> None:
    """In place: channels_last weights (CUDA convolutions) and/or ``torch.compile`` of each forward.

    ``nn.Module.compile`` keeps the module and its state_dict keys, so checkpoints are unchanged.
    """
    for encoder in encoders:
        if channels_last:
            encoder.to(memory_format=torch.channels_last)
        if compile:
            encoder.compile()


def adversarial_losses(objective: Objective, encoder: nn.Module, original: nn.Module, text_head: torch.Tensor,
                       images: torch.Tensor, labels: torch.Tensor, *, eps: float, step_size: float, steps: int,
                       norm: str = "linf", generator: Optional[torch.Generator] = None, encode=None,
                       precision: str = "fp32") -> LossTerms:
    """Inner PGD against the current tower T (eval mode), then the objective's loss on (x, x', y).

    eps and step_size are in pixel units; ``encode`` is T as the loss calls it (a DDP wrapper), T by
    default. The loss is returned un-backpropagated.
    """
    with autocast_context(precision, images.device):
        with eval_mode(encoder):
            target = objective.attack_target(encoder, original, text_head, images, labels)
            adv = pgd(target.forward, images, target.labels, eps=eps, step_size=step_size, steps=steps, norm=norm,
                      loss_fn=target.loss_fn, generator=generator)
        encoder.train()
        return objective.losses(StepInputs(encode or encoder, original, text_head, images, adv, labels))


def optimizer_update(loss: torch.Tensor, optimizer: torch.optim.Optimizer, params: list,
                     grad_clip: Optional[float] = None) -> Optional[float]:
    """zero_grad, backward, optional gradient-norm clipping, step; returns the norm when clipping."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = None
    if grad_clip is not None:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip).item()
    optimizer.step()
    return grad_norm


class EpochSampler(Sampler[int]):
    """Deterministic data order: a permutation seeded by (seed, epoch), sharded by rank.

    Rank r takes the examples of each global batch at positions
    ``r*per_rank .. (r+1)*per_rank``, so the global batch is the same for any
    world size; ``start_batch`` skips the batches already done (resume).
    """

    def __init__(self, size: int, seed: int, epoch: int, per_rank_batch: int, rank: int, world_size: int,
                 start_batch: int = 0):
        self.size, self.seed, self.epoch = size, seed, epoch
        self.per_rank, self.rank, self.world = per_rank_batch, rank, world_size
        self.start_batch = start_batch
        self.batches = size // (per_rank_batch * world_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        global_batch = self.per_rank * self.world
        for b in range(self.start_batch, self.batches):
            start = b * global_batch + self.rank * self.per_rank
            yield from order[start:start + self.per_rank]

    def __len__(self) -> int:
        return (self.batches - self.start_batch) * self.per_rank


def read_run_config(run_dir: str | Path, config_cls: type) -> dict:
    """``run_dir/config.json`` as a dict, checked against ``config_cls``'s fields (types, finite numbers)."""
    path = Path(run_dir) / "config.json"
    if not os.path.lexists(path):
        raise FileNotFoundError(f"{run_dir} is not a caw run folder: {path} is missing")
    return check_dataclass_payload(config_cls, read_json(path, "run config"), f"run config {path}")


def _step_of(line: bytes) -> Optional[int]:
    """The step of a metrics.jsonl line; None for a line cut short by a crash or otherwise malformed (dropped)."""
    try:
        step = parse_json(line, "metrics line").get("step")
    except (BadFileError, AttributeError):
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def _stop_signals() -> tuple[int, ...]:
    return tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C (sent to the whole process group) to the main process, which saves."""
    for signum in _stop_signals():
        signal.signal(signum, signal.SIG_IGN)


def _accuracy(logits: Optional[torch.Tensor], labels: torch.Tensor) -> Optional[float]:
    return None if logits is None else (logits.argmax(dim=1) == labels).float().mean().item()


@dataclass
class _Progress:
    step: int = 0
    best_robust: float = -1.0
    robust_window: list = field(default_factory=list)


class Trainer:
    """Owns the model, data, optimizer and run folder of one training run."""

    def __init__(self, config: TrainConfig, resume: bool = False):
        config.validate()
        config.resolve()
        self.config = config
        self.ctx = distributed.init_distributed(config.device)
        self.objective = config.build_objective()
        self.run_dir = Path(config.runs_dir) / config.run_name()
        if config.name is None:
            config.name = self.run_dir.name
        if config.precision == "bf16" and self.ctx.device.type != "cuda":
            raise ValueError("precision bf16 (autocast) is for CUDA; on this device use --precision fp32")
        if config.channels_last and self.ctx.device.type != "cuda":
            raise ValueError("channels_last is for CUDA convolutions; on this device use --no-channels-last")
        if config.batch_size % self.ctx.world_size:
            raise ValueError(f"batch_size {config.batch_size} must be divisible by the {self.ctx.world_size} processes")
        torch.manual_seed(config.seed + self.ctx.rank)

        self.stop_signal: Optional[int] = None
        self._lock = self._claim_run_folder(resume)
        try:
            self._build(config)
            if resume:
                self._restore()
            elif self.ctx.is_main:
                atomic_write_json(self.run_dir / "config.json", dataclasses.asdict(config))
        except BaseException:
            self._release()
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()  # only if the failed set-up left it empty
            raise

    def _claim_run_folder(self, resume: bool) -> Optional[RunLock]:
        """Rank 0 takes the folder's lock (before any slow set-up); a fresh run refuses a folder holding a run."""
        if not self.ctx.is_main:
            return None
        lock = RunLock(self.run_dir).acquire()
        if not resume and os.path.lexists(self.run_dir / "config.json"):
            lock.release()
            raise RunExistsError(f"run folder {self.run_dir} already holds a run; continue it with --resume "
                                 f"{self.run_dir} or choose another --name")
        return lock

    def _build(self, config: TrainConfig) -> None:
        """Model, frozen original, data, optimizer, DDP wrapper and attack RNG of the run."""
        require_dataset(config.data, config.data_root)  # fail before downloading any weights
        self.model = load_model(config.model_spec(), device=self.ctx.device)
        self.original = frozen_image_encoder(self.model)
        self.dataset = load_dataset(config.data, config.data_root, split="train", image_size=self.model.image_size)
        if len(self.dataset) < config.batch_size:
            raise ValueError(f"batch_size {config.batch_size} is larger than the {len(self.dataset)} training images "
                             f"of {config.data}")
        self.model.set_classes(self.dataset.classnames, self.dataset.templates)
        self.per_rank_batch = config.batch_size // self.ctx.world_size
        self.steps_per_epoch = len(self.dataset) // config.batch_size
        epochs_total = config.epochs * self.steps_per_epoch
        self.total_steps = min(epochs_total, config.max_steps) if config.max_steps else epochs_total

        encoder = self.model.image_encoder
        encoder.train()
        prepare_encoders(encoder, self.original, channels_last=config.channels_last, compile=config.compile)
        self.trainable = [p for p in encoder.parameters() if p.requires_grad]
        self.optimizer = self._make_optimizer()
        self.encode = encoder
        if self.ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.encode = DistributedDataParallel(
                encoder, device_ids=[self.ctx.device.index] if self.ctx.device.type == "cuda" else None)
        self.attack_rng = torch.Generator(device=self.ctx.device).manual_seed(config.seed * 7919 + self.ctx.rank)
        self.feature_cache = feature_cache.for_run(
            config.cache_original_features, self.dataset.data, len(self.dataset), self.model.text_head.shape[-1],
            {**self._base_model(), "data": config.data, "size": len(self.dataset), "image_size": self.model.image_size},
            self.ctx.device, self.run_dir if self.ctx.is_main else None, announce=self.ctx.is_main)
        self.progress = _Progress()
        self._stop = False

    # -- setup -------------------------------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        fused = {"fused": True} if self.ctx.device.type == "cuda" else {}
        if c.optimizer == "sgd":
            return torch.optim.SGD(self.trainable, lr=c.learning_rate, momentum=c.momentum,
                                   weight_decay=c.weight_decay, **fused)
        return torch.optim.AdamW(self.trainable, lr=c.learning_rate, weight_decay=c.weight_decay, **fused)

    def _restore(self) -> None:
        """Load the latest checkpoint; a run killed before its first checkpoint restarts from step 0."""
        checkpoints = self.run_dir / "checkpoints"
        pointer = read_pointer(checkpoints)
        if pointer is not None:
            folder = checkpoints / pointer["folder"]
            load_image_tower(self.model, folder)
            state = load_trainer_state(folder)
            self._load_optimizer(state, folder)
            self.progress.step = state.step
            best = state.extra.get("best_robust", -1.0)
            self.progress.best_robust = best if isinstance(best, (int, float)) and math.isfinite(best) else -1.0
        if self.ctx.is_main:
            self._truncate_metrics(self.progress.step)

    def _load_optimizer(self, state: TrainerState, folder: Path) -> None:
        """Optimizer and attack RNG state from ``state``, refusing tensors that do not fit the parameters."""
        per_param = {f"{i}/{slot}": value for i, slots in state.optimizer["state"].items()
                     for slot, value in slots.items() if isinstance(value, torch.Tensor) and value.dim() > 0}
        expected = {key: self.trainable[int(key.split("/")[0])].detach().cpu() for key in per_param
                    if int(key.split("/")[0]) < len(self.trainable)}
        check_tensors_fit(per_param, expected, folder, "the optimizer of this model")
        rng = state.rng.get(f"attack{self.ctx.rank}", state.rng.get("attack0"))
        try:
            self.optimizer.load_state_dict(state.optimizer)
            self.attack_rng.set_state(rng)
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"the trainer state in {folder} does not fit this run: {exc}") from None

    def _truncate_metrics(self, step: int) -> None:
        """Drop logged records of steps after the checkpoint (they will be redone), and malformed lines."""
        path = self.run_dir / "metrics.jsonl"
        if not os.path.lexists(path):
            return
        with open_regular(path, "metrics log") as source:
            def write(handle) -> None:
                for line in source:
                    line_step = _step_of(line)
                    if line_step is not None and line_step <= step:
                        handle.write(line.rstrip(b"\n") + b"\n")

            atomic_write(path, write, mode="wb")

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _base_model(self) -> dict:
        c = self.config
        return {"name": c.model, "pretrained": c.pretrained, "checkpoint": c.checkpoint}

    # -- control -----------------------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the run to stop after the current step (it saves a checkpoint first)."""
        self._stop = True

    def _on_signal(self, signum: int, frame) -> None:
        if self.stop_signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: abort now, without saving
        self.stop_signal = signum
        self._stop = True
        if self.ctx.is_main:
            print(f"\n{signal.Signals(signum).name}: stopping after this step and saving a checkpoint "
                  "(Ctrl-C again aborts without saving)", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def _signals_stop_the_run(self):
        """SIGINT/SIGTERM -> :meth:`request_stop`, while the loop runs (main thread only; else nothing)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self._on_signal) for s in _stop_signals()}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def save_checkpoint(self) -> Optional[Path]:
        """Write a checkpoint of the current step (rank 0 only); returns its folder."""
        if not self.ctx.is_main:
            return None
        window = self.progress.robust_window
        robust = sum(window) / len(window) if window else -1.0
        is_best = robust > self.progress.best_robust
        if is_best:
            self.progress.best_robust = robust
        self.progress.robust_window = []
        if self.feature_cache is not None:
            self.feature_cache.save()
        state = TrainerState(
            step=self.progress.step,
            epoch=self.progress.step // self.steps_per_epoch,
            optimizer=self.optimizer.state_dict(),
            rng={"attack0": self.attack_rng.get_state()},
            extra={"best_robust": self.progress.best_robust, "train_robust_acc": robust},
        )
        return save_checkpoint(self.run_dir / "checkpoints", self.model.image_encoder, self._base_model(), state,
                               keep_last=self.config.keep_last, is_best=is_best)

    # -- the loop ----------------------------------------------------------------------------------------------
    def _loader(self, epoch: int, start_batch: int) -> DataLoader:
        sampler = EpochSampler(len(self.dataset), self.config.seed, epoch, self.per_rank_batch, self.ctx.rank,
                               self.ctx.world_size, start_batch)
        return DataLoader(feature_cache.WithIndices(self.dataset.data), batch_size=self.per_rank_batch, sampler=sampler, drop_last=True,
                          num_workers=self.config.num_workers, pin_memory=self.ctx.device.type == "cuda",
                          generator=torch.Generator().manual_seed(self.config.seed + epoch),
                          persistent_workers=False, worker_init_fn=_ignore_stop_signals)

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor, lr: float,
                    indices: torch.Tensor) -> dict[str, Optional[float]]:
        c = self.config
        encoder = self.model.image_encoder
        if c.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        original = self.original if self.feature_cache is None else self.feature_cache.bind(self.original, images,
                                                                                              indices)
        terms = adversarial_losses(self.objective, encoder, original, self.model.text_head, images, labels,
                                   eps=c.eps / 255, step_size=c.inner_step_size(), steps=c.attack_steps,
                                   norm=c.attack_norm, generator=self.attack_rng, encode=self.encode,
                                   precision=c.precision)
        if not torch.isfinite(terms.total):
            raise TrainingDivergedError(
                f"the loss became {terms.total.item()} at step {self.progress.step}; the run stopped and its last "
                f"checkpoint is kept. Try a smaller learning rate (now {lr:g}) or --grad-clip.")
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        grad_norm = optimizer_update(terms.total, self.optimizer, self.trainable, c.grad_clip)

        clean_acc = _accuracy(terms.logits_clean, labels)
        if clean_acc is None and self.progress.step % c.clean_acc_every == 0:
            with torch.no_grad(), eval_mode(encoder):
                clean_acc = _accuracy(self.model(images), labels)
        record = {"loss": terms.total.item(), **{k: v.item() for k, v in terms.parts.items()},
                  "robust_acc": _accuracy(terms.logits_adv, labels), "clean_acc": clean_acc, "grad_norm": grad_norm}
        return record

    def run(self) -> Iterator[dict]:
        """Train until done or stopped, yielding one record per step, then a final ``done``/``stopped`` record.

        Closing the generator early checkpoints the last finished step; the run folder's lock is
        released when the generator ends in any way.
        """
        try:
            with self._signals_stop_the_run():
                yield from self._loop()
        finally:
            self._release()

    def _loop(self) -> Iterator[dict]:
        c = self.config
        metrics_path = self.run_dir / "metrics.jsonl"
        start = self.progress.step
        if start >= self.total_steps:
            yield {"event": "done", "step": start, "total_steps": self.total_steps, "run_dir": str(self.run_dir)}
            return
        log = open_regular(metrics_path, "metrics log", append=True) if self.ctx.is_main else None
        started = time.perf_counter()
        try:
            epoch = start // self.steps_per_epoch
            while self.progress.step < self.total_steps:
                loader = self._loader(epoch, self.progress.step - epoch * self.steps_per_epoch)
                for images, labels, indices in loader:
                    tick = time.perf_counter()
                    images = images.to(self.ctx.device, non_blocking=True)
                    labels = labels.to(self.ctx.device, non_blocking=True)
                    lr = learning_rate_at(self.progress.step, c.learning_rate, c.warmup_steps, self.total_steps)
                    values = self._train_step(images, labels, lr, indices)
                    values = distributed.mean_across_ranks(values, self.ctx)
                    if self.ctx.device.type == "cuda":
                        torch.cuda.synchronize(self.ctx.device)
                    elapsed = time.perf_counter() - tick
                    self.progress.step += 1
                    if values["robust_acc"] is not None:
                        self.progress.robust_window.append(values["robust_acc"])
                    record = {"event": "step", "step": self.progress.step, "epoch": epoch,
                              "total_steps": self.total_steps, "lr": lr, **values,
                              "images_per_s": c.batch_size / elapsed, "step_time_s": elapsed,
                              "elapsed_s": time.perf_counter() - started}
                    if log is not None:
                        log.write((json.dumps(record) + "\n").encode("utf-8"))
                        log.flush()
                    done = self.progress.step >= self.total_steps
                    self._stop = distributed.any_across_ranks(self._stop, self.ctx)
                    if self.progress.step % c.save_every == 0 or done or self._stop:
                        folder = self.save_checkpoint()
                        if folder is not None:
                            record["checkpoint"] = str(folder)
                    try:
                        yield record
                    except GeneratorExit:  # the caller closed us: keep the step it saw
                        if "checkpoint" not in record:
                            self.save_checkpoint()
                        raise
                    self._stop = distributed.any_across_ranks(self._stop, self.ctx)
                    if self._stop and "checkpoint" not in record:  # stop asked while the record was out
                        self.save_checkpoint()
                    if done or self._stop:
                        break
                if self._stop:
                    signame = signal.Signals(self.stop_signal).name if self.stop_signal is not None else None
                    yield {"event": "stopped", "step": self.progress.step, "total_steps": self.total_steps,
                           "run_dir": str(self.run_dir), "signal": signame}
                    return
                epoch += 1
            yield {"event": "done", "step": self.progress.step, "total_steps": self.total_steps,
                   "run_dir": str(self.run_dir)}
        finally:
            if log is not None:
                log.close()


def resume_config(run_dir: str | Path, **overrides) -> TrainConfig:
    """The config of ``run_dir`` with ``overrides`` (e.g. more epochs), ready for ``Trainer(..., resume=True)``."""
    run_dir = Path(run_dir)
    config = TrainConfig.from_run(run_dir)
    return dataclasses.replace(config, runs_dir=str(run_dir.parent), name=run_dir.name, **overrides)
