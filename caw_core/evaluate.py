"""Zero-shot robustness benchmark: clean / PGD / CW / AutoAttack accuracy per dataset.

For each model and dataset, a fixed subset of n images (drawn from
``(seed, dataset, n)`` only, so every model sees the same images) is
classified zero-shot and attacked under the threat model
``{x' : ||x' - x|| <= eps/255, x' in [0, 1]^d}`` in fp32. The attacks form a
chain, cheapest first (clean, PGD, CW, AutoAttack): each attack runs only on
the images every earlier link left correct, so the last link's survivors are
the images robust to all of them, i.e.

    robust accuracy = (1/n) * #{i : clean-correct(i) and correct(attack_k(x_i)) for every k},

the per-image worst case over the attacks (never an average of attacks).

:func:`evaluate` is a generator of plain-dict records, so the CLI draws a
progress bar and the GUI emits signals from the same loop. Every record but
``done``/``cancelled`` carries the overall progress of the whole plan
(models x datasets x attacks): ``item`` (1-based index of the current
model/dataset/attack), ``items`` (their number), ``overall`` (fraction of the
estimated work done, 0..1) and ``overall_eta_s`` (seconds left for the whole
plan, or None before the first timed batch). Work is estimated as images x
forward passes per image of the attack (:attr:`AttackSpec.forwards`), refined
as datasets are loaded and as each attack leaves its survivors to the next:

- ``{"event": "dataset", model, dataset, n, classes, ...}`` when a dataset starts;
- ``{"event": "progress", model, dataset, attack, done, total, eta_s, accuracy, ...}``
  after every batch (``done``/``total``/``eta_s``: this attack on this dataset;
  ``accuracy``: share of the images attacked so far that stayed correct);
- ``{"event": "result", model, dataset, attack, accuracy, robust_accuracy,
  reused, seconds, path, ...}`` when an attack is finished on a dataset
  (``robust_accuracy``: worst case over the chain so far);
- ``{"event": "done", out}`` at the end, or ``{"event": "cancelled", out}``
  when ``should_stop()`` returned True (checked before every forward pass of
  every attack, so a cancel takes effect within one forward/backward; the
  batch in flight is dropped, every finished batch is on disk).

Images are prepared as the evaluation protocol (:mod:`caw_core.protocols`)
says: resize/crop, or native size upsampled inside the model.

Results go to :mod:`caw_core.results` (one file per model/dataset/attack,
rewritten after every batch), keyed by the weights' content and the attack and
protocol configuration (a changed model is evaluated again, never reused),
which makes runs resumable: with
``skip_existing`` an attack is only run on images whose flag is missing, so a
finished run does no work again and an interrupted one picks up where it
stopped. Under torchrun the images are sharded across ranks and the flags are
gathered after every batch; rank 0 alone writes and yields records.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Union

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset

from caw_core import distributed
from caw_core.attacks.control import AttackCancelled
from caw_core.attacks.registry import Attack, attack_images, attack_sort_key, parse_attack
from caw_core.data import DatasetNotFoundError, check_dataset, get_spec, load_dataset
from caw_core.data.paper import PAPER_DATASETS
from caw_core.data.transforms import pixel_transform
from caw_core.models import ModelSpec, load_model
from caw_core.protocols import NativeResolution, get_protocol
from caw_core.results import (Result, ResultKey, config_id, find_result, model_id, remove_temporaries, save_result,
                              versions, weights_id)

DATASET_GROUPS = {"all": PAPER_DATASETS}
MAX_L2_EPS = 1e6  # units of 1/255: sqrt(3 * 2048 * 2048) * 255 ~ 9.0e5


def parse_model(entry: Union[ModelSpec, str]) -> ModelSpec:
    """``ModelSpec`` as is; a string ``NAME[:PRETRAINED[:CHECKPOINT]]`` (``toy``, ``ViT-B-32:openai:runs/caw``).

    PRETRAINED ``none`` is random init; a missing CHECKPOINT is the base model.
    """
    if isinstance(entry, ModelSpec):
        return entry
    name, pretrained, checkpoint = (entry.split(":", 2) + [None, None])[:3]
    return ModelSpec(name=name, pretrained=optional(pretrained), checkpoint=optional(checkpoint))


def optional(text: Optional[str]) -> Optional[str]:
    """None for an absent value: None, "", "none" or "random" (random init / no checkpoint)."""
    return None if text is None or text.strip().lower() in ("", "none", "random") else text


@dataclass
class EvalConfig:
    """One benchmark run.

    models: ModelSpecs or ``NAME[:PRETRAINED[:CHECKPOINT]]`` strings.
    datasets: registry names, or ``"all"`` (the 16 datasets of the protocol).
    attacks: registry names (``clean, pgd, cw, aa, ...``), optionally with steps
        (``pgd100``); run cheapest first whatever the order given; clean always runs.
    eps: attack radius in units of 1/255 (also under l2); finite, at most 255 under linf and 1e6 under l2.
    n: images per dataset (a fixed seeded subset) or ``"all"``.
    protocol: preprocessing protocol (:mod:`caw_core.protocols`); its attacks and n are the
        CLI's defaults, the config's own ``attacks``/``n`` are what runs.
    """

    models: list = field(default_factory=lambda: [ModelSpec()])
    datasets: Union[str, list] = "all"
    attacks: list = field(default_factory=lambda: ["clean", "pgd", "aa"])
    eps: float = 1.0
    norm: str = "linf"
    n: Union[int, str] = 1000
    batch_size: int = 250
    seed: int = 0
    data_root: str = "data"
    out: str = "results"
    device: str = "auto"
    num_workers: int = 0
    skip_existing: bool = True
    protocol: str = "caw"

    def model_specs(self) -> list[ModelSpec]:
        specs = [parse_model(m) for m in self.models]
        if not specs:
            raise ValueError("no model to evaluate")
        return specs

    def dataset_names(self) -> list[str]:
        names = [self.datasets] if isinstance(self.datasets, str) else list(self.datasets)
        expanded = [d for name in names for d in DATASET_GROUPS.get(name.strip().lower(), [name])]
        names = [get_spec(name).name for name in expanded]
        if not names:
            raise ValueError("no dataset to evaluate")
        return list(dict.fromkeys(names))

    def attack_chain(self) -> list[Attack]:
        """The parsed attacks, clean first, then by cost."""
        tokens = [self.attacks] if isinstance(self.attacks, str) else list(self.attacks)
        chain = {parse_attack(t) for t in tokens} | {parse_attack("clean")}
        return sorted(chain, key=attack_sort_key)

    def validate(self) -> None:
        validate_budget(self.eps, self.norm)
        get_protocol(self.protocol)
        if self.n != "all" and not (isinstance(self.n, int) and self.n >= 1):
            raise ValueError(f"n must be a positive integer or 'all', got {self.n!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        self.attack_chain()


def validate_budget(eps, norm: str) -> None:
    """ValueError unless ``norm`` is linf/l2 and ``eps`` (units of 1/255) is finite, >= 0 and at most the pixel
    range (255 under linf, :data:`MAX_L2_EPS` under l2)."""
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be linf or l2, got {norm!r}")
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0 (units of 1/255), got {eps}")
    if norm == "linf" and eps > 255:
        raise ValueError(f"eps must be <= 255 under linf (the whole pixel range), got {eps}")
    if eps > MAX_L2_EPS:
        raise ValueError(f"eps must be <= {MAX_L2_EPS:g} (units of 1/255; more than the diagonal of the pixel box "
                         f"of a 2048 x 2048 RGB image), got {eps}")


def subset_indices(seed: int, dataset: str, n: Union[int, str], size: int) -> list[int]:
    """The sorted dataset positions evaluated: all of them, or n drawn from (seed, dataset, n) alone."""
    if n == "all" or n >= size:
        return list(range(size))
    digest = hashlib.sha256(f"{seed}:{dataset}:{n}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
    return sorted(torch.randperm(size, generator=generator)[:n].tolist())


def check_datasets(names: Sequence[str], root: str) -> None:
    """Fail before any compute when a dataset is missing, naming all missing ones."""
    missing = [status for status in (check_dataset(name, Path(root)) for name in names) if not status.found]
    if missing:
        raise DatasetNotFoundError("datasets missing under {}:\n{}".format(
            root, "\n".join(status.describe() for status in missing)))


def _gather(pairs: list[tuple[int, bool]], ctx: distributed.DistContext) -> list[tuple[int, bool]]:
    if not ctx.distributed:
        return pairs
    everyone: list = [None] * ctx.world_size
    dist.all_gather_object(everyone, pairs)
    return [pair for part in everyone for pair in part]


def prepare_dataset(config: EvalConfig, model, name: str):
    """``(data, indices, attacked)``: dataset ``name`` preprocessed as the config's protocol says, the evaluated
    subset, and the model the attacks see (behind a bicubic upsampling where the protocol attacks at native size).
    Sets the model's text head to the dataset's classes."""
    resize = get_protocol(config.protocol).resize_for(name, model.image_size)
    data = load_dataset(name, Path(config.data_root), image_size=model.image_size,
                        transform=pixel_transform(model.image_size, resize))
    indices = subset_indices(config.seed, name, config.n, len(data))
    model.set_classes(data.classnames, data.templates)  # text head: once per dataset
    return data, indices, NativeResolution(model, model.image_size) if resize == 0 else model


def check_gradient_masking_per_dataset(config: EvalConfig) -> Iterator[dict]:
    """:func:`caw_core.integrity.check_gradient_masking` on the first ``batch_size`` images of each dataset's
    subset, per model: ``{"model", "dataset", "n", "report"}`` records (fp32, the config's eps and norm)."""
    from caw_core.integrity import check_gradient_masking

    config.validate()
    datasets = config.dataset_names()
    check_datasets(datasets, config.data_root)
    device = distributed.resolve_device(config.device)
    for spec in config.model_specs():
        model = load_model(spec, device)
        for name in datasets:
            data, indices, attacked = prepare_dataset(config, model, name)
            images, labels = next(iter(DataLoader(Subset(data.data, indices), batch_size=config.batch_size)))
            report = check_gradient_masking(attacked, images.to(device).float(), labels.to(device),
                                            config.eps / 255.0, norm=config.norm, seed=config.seed)
            yield {"model": spec.label(), "dataset": name, "n": len(labels), "report": report}


class _Plan:
    """Overall progress over models x datasets x attacks: estimated work (images x forwards per image), done work,
    attack time, and the ETA they give."""

    PLACEHOLDER_IMAGES = 1000  # images assumed for a dataset not loaded yet

    def __init__(self, models: int, datasets: list[str], chain: list[Attack], n: Union[int, str]):
        self.chain = chain
        images = n if isinstance(n, int) else self.PLACEHOLDER_IMAGES
        self.work = [[[images * self.cost(a) for a in chain] for _ in datasets] for _ in range(models)]
        self.done = [[[0.0] * len(chain) for _ in datasets] for _ in range(models)]
        self.items = models * len(datasets) * len(chain)
        self.seconds = 0.0

    @staticmethod
    def cost(attack: Attack, classes: int = 10) -> int:
        return attack.spec.forwards(attack.steps, classes)

    def plan(self, m: int, d: int, a: int, images: int, classes: int) -> None:
        """Attack ``a`` of dataset ``d`` of model ``m`` will run on ``images`` images."""
        self.work[m][d][a] = images * self.cost(self.chain[a], classes)
        self.done[m][d][a] = min(self.done[m][d][a], self.work[m][d][a])

    def advance(self, m: int, d: int, a: int, images: int, classes: int, seconds: float) -> None:
        self.done[m][d][a] += images * self.cost(self.chain[a], classes)
        self.seconds += seconds

    def finish(self, m: int, d: int, a: int) -> None:
        self.work[m][d][a] = self.done[m][d][a]

    def record(self, m: int, d: int, a: int) -> dict:
        total = sum(w for per_model in self.work for per_set in per_model for w in per_set)
        done = sum(w for per_model in self.done for per_set in per_model for w in per_set)
        fraction = done / total if total else 1.0
        eta = self.seconds / done * (total - done) if done and self.seconds else None
        item = (m * len(self.work[0]) + d) * len(self.chain) + a + 1
        return {"item": item, "items": self.items, "overall": min(fraction, 1.0), "overall_eta_s": eta}


class _Evaluation:
    """The loop of :func:`evaluate` over models, datasets and attacks."""

    def __init__(self, config: EvalConfig, ctx: distributed.DistContext, should_stop: Optional[Callable[[], bool]],
                 on_forward: Optional[Callable[[dict], None]]):
        self.config, self.ctx, self.should_stop, self.on_forward = config, ctx, should_stop, on_forward
        self.eps = config.eps / 255.0
        self.protocol = get_protocol(config.protocol)
        self.chain = config.attack_chain()
        self.run_config = {k: v for k, v in asdict(config).items() if k != "models"}
        self.run_config["protocol_settings"] = self.protocol.to_json()
        self.versions = versions()

    def run(self) -> Iterator[dict]:
        datasets = self.config.dataset_names()
        check_datasets(datasets, self.config.data_root)
        specs = self.config.model_specs()
        self.plan = _Plan(len(specs), datasets, self.chain, self.config.n)
        try:
            for m, spec in enumerate(specs):
                loaded, weights = self.resolve(spec)
                model = load_model(loaded, self.ctx.device)
                for d, name in enumerate(datasets):
                    yield from self.dataset(model, spec, weights, name, (m, d))
        except AttackCancelled:
            yield {"event": "cancelled", "out": str(self.config.out)}
            return
        yield {"event": "done", "out": str(self.config.out)}

    @staticmethod
    def resolve(spec: ModelSpec) -> tuple[ModelSpec, str]:
        """The spec to load (the checkpoint resolved to one step folder, so a run that saves meanwhile cannot
        swap the weights between hashing and loading) and the weights' content id."""
        if spec.checkpoint:
            from caw_core.models.checkpoint import resolve_checkpoint

            spec = replace(spec, checkpoint=str(resolve_checkpoint(spec.checkpoint)))
        return spec, weights_id(spec)

    def check_stop(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise AttackCancelled("evaluation cancelled")

    def dataset(self, model, spec: ModelSpec, weights: str, name: str, where: tuple[int, int]) -> Iterator[dict]:
        self.check_stop()
        data, indices, attacked = prepare_dataset(self.config, model, name)
        classes = len(data.classnames)
        for a in range(len(self.chain)):
            self.plan.plan(*where, a, len(indices), classes)
        yield {"event": "dataset", "model": spec.label(), "dataset": name, "n": len(indices), "classes": classes,
               **self.plan.record(*where, 0)}
        alive = [True] * len(indices)  # correct under every attack so far
        for a, attack in enumerate(self.chain):
            self.plan.plan(*where, a, sum(alive), classes)
            key = ResultKey(model_id(spec), name, attack.key, float(self.config.eps), self.config.norm,
                            self.config.n, self.config.seed, self.protocol.name, weights, self.attack_config(attack))
            result = self.existing(key, indices) or Result(
                key, {**asdict(spec), "label": spec.label()}, indices, [None] * len(indices))
            todo = [p for p in range(len(indices)) if alive[p] and result.correct[p] is None]
            reused = not todo and result.complete
            if not reused:
                remove_temporaries(self.config.out, key)
                yield from self.attack_positions(attacked, data.data, result, attack, todo, (*where, a), classes)
            self.plan.finish(*where, a)
            alive = [a and c is True for a, c in zip(alive, result.correct)]
            yield {"event": "result", "model": spec.label(), "dataset": name, "attack": key.attack,
                   "accuracy": result.accuracy, "robust_accuracy": sum(alive) / max(len(alive), 1),
                   "reused": reused, "seconds": result.seconds, "path": str(Path(self.config.out) / key.filename()),
                   **self.plan.record(*where, a)}

    def attack_config(self, attack: Attack) -> str:
        """The id of everything that defines the attack's outcome besides the model and the images."""
        return config_id({"attack": attack.key, "label": attack.spec.label, "norm": self.config.norm,
                          "step_size": attack.step_size(self.eps, self.config.norm),
                          "protocol": self.protocol.settings()})

    def existing(self, key: ResultKey, indices: list[int]) -> Optional[Result]:
        """The stored result to continue, or None (none, --no-skip-existing, or stale: other weights/config)."""
        if not self.config.skip_existing:
            return None
        result = find_result(self.config.out, key)
        if result is None or result.key != key:
            return None
        if result.indices != indices:
            raise ValueError(f"{Path(self.config.out) / key.filename()} was computed on other images (has the "
                             "dataset changed?); move it away or pass --no-skip-existing")
        return result

    def attack_positions(self, model, data, result: Result, attack: Attack, todo: list[int],
                         where: tuple[int, int, int], classes: int) -> Iterator[dict]:
        """Attack the images at ``todo`` positions batch by batch, filling ``result.correct``; save after each batch."""
        ctx, batch_size = self.ctx, self.config.batch_size
        mine = todo[ctx.rank::ctx.world_size]
        loader = DataLoader(Subset(data, [result.indices[p] for p in mine]), batch_size=batch_size,
                            num_workers=self.config.num_workers)
        batches = iter(loader)
        n_batches = math.ceil(math.ceil(len(todo) / ctx.world_size) / batch_size)
        start, last, done, survived = time.perf_counter(), 0.0, 0, 0
        for b in range(n_batches):
            self.check_stop()
            positions = mine[b * batch_size:(b + 1) * batch_size]
            pairs = []
            if positions:
                images, labels = next(batches)
                images, labels = images.to(ctx.device), labels.to(ctx.device)
                adv = attack_images(attack, model, images, labels, self.eps, self.config.norm,
                                    seed=self.config.seed + positions[0], should_stop=self.should_stop,
                                    on_forward=self.forward_reporter(result, attack, len(positions), classes))
                with torch.no_grad():
                    correct = (model(adv).argmax(dim=1) == labels).tolist()
                pairs = list(zip(positions, correct))
            pairs = _gather(pairs, ctx)
            for position, flag in pairs:
                result.correct[position] = bool(flag)
            done += len(pairs)
            survived += sum(flag for _, flag in pairs)
            elapsed = time.perf_counter() - start
            result.complete = b == n_batches - 1
            result.seconds += elapsed - last
            self.plan.advance(*where, len(pairs), classes, elapsed - last)
            last = elapsed
            self.save(result)
            yield {"event": "progress", "model": result.model["label"], "dataset": result.key.dataset,
                   "attack": result.key.attack, "done": done, "total": len(todo),
                   "eta_s": elapsed / done * (len(todo) - done) if done else None,
                   "accuracy": survived / done if done else None, **self.plan.record(*where)}
        if n_batches == 0:
            result.complete = True
            self.save(result)

    def forward_reporter(self, result: Result, attack: Attack, images: int,
                         classes: int) -> Optional[Callable[[int], None]]:
        """``on_forward(k)`` for the attack of one batch, passing ``{"event": "attack", ..., forwards, expected}``
        records to the caller's ``on_forward`` (None when the caller gave none)."""
        if self.on_forward is None or not self.ctx.is_main:
            return None
        expected = attack.spec.forwards(attack.steps, classes)
        where = {"event": "attack", "model": result.model["label"], "dataset": result.key.dataset,
                 "attack": result.key.attack, "images": images, "expected": expected}
        return lambda k: self.on_forward({**where, "forwards": k})

    def save(self, result: Result) -> None:
        if self.ctx.is_main:
            result.config, result.versions = self.run_config, self.versions
            save_result(self.config.out, result)


def evaluate(config: EvalConfig, should_stop: Optional[Callable[[], bool]] = None,
             on_forward: Optional[Callable[[dict], None]] = None) -> Iterator[dict]:
    """Run the benchmark of ``config``, yielding progress and result records (see the module docstring).

    Stop early with ``should_stop`` (a cancel flag, checked before every
    forward pass of every attack; the last record is then ``cancelled``), or
    by closing the generator between records: everything finished so far is
    on disk and a rerun resumes. ``on_forward(record)``: called from inside
    the attack after every forward pass with ``{"event": "attack", model,
    dataset, attack, images, forwards, expected}`` (``expected``: the attack's
    most forward passes for this batch; PGD/CW stop early once every image is
    fooled), for a progress indicator within a long batch (AutoAttack).
    """
    config.validate()
    ctx = distributed.init_distributed(config.device)
    try:
        for record in _Evaluation(config, ctx, should_stop, on_forward).run():
            if ctx.is_main:
                yield record
    finally:
        distributed.shutdown(ctx)
