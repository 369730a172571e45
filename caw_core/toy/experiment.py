"""The CAW paper's experiment in miniature on the toy world, as one resumable plan of jobs.

Every fine-tune is the toy recipe (:mod:`caw_core.toy.recipe`: same data,
attack, budget and steps for every method); only the objective and the
learning rate differ. The plan, in order:

1. ``select`` (when a grid is given): fine-tune every method at every grid
   learning rate with seed 0, score each on the validation split of the
   training task, and choose one lr per method by the rule of
   :mod:`caw_core.toy.selection` (written to ``selection.json``); without a
   grid, the recipe's chosen lrs (:data:`caw_core.toy.recipe.TOY_LR`) are used;
2. ``train``: every method with every seed at its chosen lr (seed 0 reuses
   the sweep's run), then the CAW ablation variants at CAW's lr;
3. ``evaluate``: vanilla and every final fine-tune on the test split of every
   toy task (clean, PGD-10, AutoAttack, worst case per image), plus each
   model's clean prediction counts per task (the collapse check);
4. the summary (:mod:`caw_core.toy.summary`) and plots (:mod:`caw_core.toy.plot`).

A seed sets the training data order, the inner attack's random starts and the
torch seed. Rerunning with the same ``out`` skips every finished job
(training runs resume from their checkpoint, evaluations from their result
files). Layout of ``out``::

    runs/<variant>-lr<lr>-s<seed>/   training runs (caw_core.train)
    validation/<run>.json            validation scores (selection only)
    selection.json                   the learning-rate choice
    results/                         evaluation result files (caw_core.evaluate)
    predictions/<model>.json         clean prediction counts per task
    summary.json, RESULTS.md, clean_vs_robust.{png,svg}, per_task.{png,svg}
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch

from caw_core.data import load_dataset
from caw_core.distributed import resolve_device
from caw_core.data.toyworld import TOY_TASKS
from caw_core.evaluate import evaluate, subset_indices
from caw_core.io import atomic_write_json
from caw_core.models import ModelSpec, load_model
from caw_core.models.checkpoint import latest_step
from caw_core.toy import selection
from caw_core.toy.recipe import (
    TOY_ATTACKS,
    TOY_BATCH,
    TOY_EPS,
    TOY_EVAL_N,
    TOY_STEPS,
    toy_eval_config,
    toy_lr,
    toy_train_config,
)
from caw_core.train import Trainer


@dataclass(frozen=True)
class Variant:
    """A fine-tuning objective of the experiment: a method, or a CAW ablation variant (method + options)."""

    key: str  # folder-safe id
    method: str
    label: str
    options: tuple = ()  # ((option, value), ...) of the method

    def option_dict(self) -> dict:
        return dict(self.options)


METHOD_VARIANTS = (
    Variant("ft-adv", "ft-adv", "FT-Adv"),
    Variant("tecoa", "tecoa", "TeCoA"),
    Variant("pmg-aft", "pmg-aft", "PMG-AFT"),
    Variant("tga-zsr", "tga-zsr", "TGA-ZSR"),
    Variant("fare", "fare", "FARE"),
    Variant("caw", "caw", "CAW"),
)
CAW_FULL = METHOD_VARIANTS[-1]
# The paper's ablation (Table 3) plus the weight-gradient variant; CAW's defaults otherwise.
ABLATION_VARIANTS = (
    Variant("caw-ce", "caw", "CE only", (("ablation", "ce"),)),
    Variant("caw-ce-ca", "caw", "CE + CA", (("ablation", "ce+ca"),)),
    Variant("caw-ce-reg", "caw", "CE + Reg", (("ablation", "ce+reg"),)),
    Variant("caw", "caw", "CE + CA + Reg (full CAW)"),
    Variant("caw-kl-clean-adv", "caw", "full, KL(clean‖adv)", (("kl", "clean_adv"),)),
    Variant("caw-detach-weight", "caw", "full, weight detached", (("detach_weight", True),)),
)
VANILLA = "vanilla"


@dataclass
class ExperimentConfig:
    """What to run. ``lr_grid`` empty: no sweep (the recipe's lrs); ``ablation``: also the CAW variants."""

    out: str = "caw-demo"
    methods: tuple = tuple(v.key for v in METHOD_VARIANTS)
    seeds: tuple = (0,)
    lr_grid: tuple = ()
    ablation: bool = False
    train_steps: int = TOY_STEPS
    batch_size: int = TOY_BATCH
    eps: float = TOY_EPS
    n: int = TOY_EVAL_N  # test images per task
    val_n: int = 200  # validation images (selection)
    attacks: tuple = TOY_ATTACKS
    eval_batch_size: int = 100
    device: str = "cpu"
    # test hook: extra TrainConfig fields for every fine-tune (e.g. the fast test model)
    train_overrides: dict = field(default_factory=dict)

    def validate(self) -> None:
        known = {v.key for v in METHOD_VARIANTS}
        unknown = [m for m in self.methods if m not in known]
        if unknown or not self.methods:
            raise ValueError(f"methods must be some of {', '.join(sorted(known))}, got {', '.join(unknown) or 'none'}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and at least one, got {self.seeds}")
        for name in ("train_steps", "batch_size", "n", "val_n", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.eps > 0 or any(not lr > 0 for lr in self.lr_grid):
            raise ValueError("eps and every grid learning rate must be > 0")

    def variants(self) -> list[Variant]:
        chosen = [v for v in METHOD_VARIANTS if v.key in self.methods]
        if self.ablation:
            chosen += [v for v in ABLATION_VARIANTS if v not in chosen]
        return chosen


@dataclass(frozen=True)
class Job:
    """One unit of the plan: ``stage`` (select/train/evaluate), a name, a relative cost and the work."""

    stage: str
    name: str
    cost: float
    done: Callable[[], bool]
    work: Callable[[], Iterator[dict]]


class Experiment:
    """The plan of :class:`ExperimentConfig` over the folder ``config.out``."""

    def __init__(self, config: ExperimentConfig):
        config.validate()
        self.config = config
        self.out = Path(config.out)
        self.chosen: dict[str, float] = {}

    # -- names and folders -------------------------------------------------------------------------------------
    def lr_of(self, variant: Variant) -> float:
        """The variant's learning rate: the selection's choice (ablation variants: CAW's), else the recipe's."""
        method_key = variant.key if variant in METHOD_VARIANTS else CAW_FULL.key
        if self.config.lr_grid:
            if not self.chosen:
                self.chosen = load_selection(self.out)
            return self.chosen[method_key]
        return toy_lr(method_key)

    def run_dir(self, variant: Variant, seed: int, lr: Optional[float] = None) -> Path:
        lr = self.lr_of(variant) if lr is None else lr
        return self.out / "runs" / f"{variant.key}-lr{lr:g}-s{seed}"

    def final_models(self) -> list[tuple[Variant, int, Path]]:
        """(variant, seed, run folder) of every fine-tune the report uses."""
        return [(v, seed, self.run_dir(v, seed)) for v in self.config.variants() for seed in self.config.seeds]

    # -- jobs --------------------------------------------------------------------------------------------------
    def jobs(self) -> list[Job]:
        c = self.config
        train_cost, eval_cost = c.train_steps * c.batch_size, c.n * len(TOY_TASKS) * len(c.attacks) * 4
        jobs: list[Job] = []
        if c.lr_grid:
            jobs.append(self._validation_job(None, None))
            for variant in (v for v in METHOD_VARIANTS if v.key in c.methods):
                for lr in c.lr_grid:
                    jobs.append(self._train_job("select", variant, 0, lambda lr=lr: lr, train_cost))
                    jobs.append(self._validation_job(variant, lr))
            jobs.append(Job("select", "choose learning rates", 0.0, lambda: (self.out / "selection.json").is_file(),
                            self._choose))
        for variant in c.variants():
            for seed in c.seeds:
                jobs.append(self._train_job("train", variant, seed, lambda v=variant: self.lr_of(v), train_cost))
        jobs.append(self._eval_job(VANILLA, lambda: None, eval_cost))
        for variant in c.variants():
            for seed in c.seeds:
                jobs.append(self._eval_job(f"{variant.key} seed {seed}",
                                           lambda v=variant, s=seed: self.run_dir(v, s), eval_cost))
        return jobs

    def _train_job(self, stage: str, variant: Variant, seed: int, lr: Callable[[], float], cost: float) -> Job:
        def folder() -> Path:
            return self.run_dir(variant, seed, lr())

        def done() -> bool:
            return latest_step(folder()) == self.config.train_steps

        def work() -> Iterator[dict]:
            run = folder()
            config = toy_train_config(
                variant.method, lr=lr(), options=variant.option_dict(), seed=seed, eps=self.config.eps,
                max_steps=self.config.train_steps, batch_size=self.config.batch_size, device=self.config.device,
                runs_dir=str(run.parent), name=run.name, save_every=self.config.train_steps,
                **self.config.train_overrides)
            trainer = Trainer(config, resume=(run / "checkpoints" / "latest.json").is_file())
            yield from trainer.run()

        return Job(stage, f"train {variant.key} seed {seed}", cost, done, work)

    def _validation_job(self, variant: Optional[Variant], lr: Optional[float]) -> Job:
        def path() -> Path:
            name = VANILLA if variant is None else self.run_dir(variant, 0, lr).name
            return self.out / "validation" / f"{name}.json"

        def work() -> Iterator[dict]:
            spec = self.model_spec(None if variant is None else self.run_dir(variant, 0, lr))
            model = load_model(spec, device=torch.device(self._device()))
            score = selection.validation_score(model, self.config.eps, self.config.val_n)
            atomic_write_json(path(), asdict(score))
            yield {"event": "validation", "model": spec.label(), **asdict(score)}

        name = VANILLA if variant is None else f"{variant.key} lr {lr:g}"
        return Job("select", f"validate {name}", self.config.val_n * 4, lambda: path().is_file(), work)

    def _choose(self) -> Iterator[dict]:
        read = lambda name: selection.ValidationScore(**json.loads(  # noqa: E731
            (self.out / "validation" / f"{name}.json").read_text(encoding="utf-8")))
        vanilla = read(VANILLA)
        scores, choices = {}, {}
        for variant in (v for v in METHOD_VARIANTS if v.key in self.config.methods):
            scores[variant.key] = {lr: read(self.run_dir(variant, 0, lr).name) for lr in self.config.lr_grid}
            choices[variant.key] = selection.choose_lr(scores[variant.key], vanilla)
        record = selection.selection_record(self.config.lr_grid, vanilla, scores, choices)
        atomic_write_json(self.out / "selection.json", record)
        self.chosen = {k: c.lr for k, c in choices.items()}
        yield {"event": "selection", "chosen": dict(self.chosen)}

    def _eval_job(self, name: str, run: Callable[[], Optional[Path]], cost: float) -> Job:
        def done() -> bool:
            return prediction_path(self.out, self.model_spec(run())).is_file()

        def work() -> Iterator[dict]:
            spec = self.model_spec(run())
            config = toy_eval_config(models=[spec], attacks=list(self.config.attacks), eps=self.config.eps,
                                     n=self.config.n, batch_size=self.config.eval_batch_size,
                                     out=str(self.out / "results"), device=self.config.device)
            yield from evaluate(config)
            counts = prediction_counts(spec, self.config.n, config.seed, self._device())
            atomic_write_json(prediction_path(self.out, spec), counts)

        return Job("evaluate", f"evaluate {name}", cost, done, work)

    def model_spec(self, run: Optional[Path]) -> ModelSpec:
        base = self.config.train_overrides.get("model", "toy")
        return ModelSpec(base, self.config.train_overrides.get("pretrained"), str(run) if run else None)

    def _device(self) -> str:
        return str(resolve_device(self.config.device))

    # -- running -----------------------------------------------------------------------------------------------
    def run(self) -> Iterator[dict]:
        """Run every unfinished job, yielding their records and ``{"event": "job", ...}`` progress with an ETA."""
        jobs = self.jobs()
        total_cost = sum(j.cost for j in jobs)
        spent: dict[str, list[float]] = {}  # stage -> [seconds, cost] of jobs actually run
        done_cost = 0.0
        for index, job in enumerate(jobs):
            if job.done():
                done_cost += job.cost
                continue
            yield {"event": "job", "stage": job.stage, "name": job.name, "index": index + 1, "total": len(jobs),
                   "eta_s": _eta(jobs[index:], spent), "done_fraction": done_cost / total_cost if total_cost else 1}
            started = time.perf_counter()
            for record in job.work():
                yield {**record, "stage": job.stage, "job": job.name}
            seconds_cost = spent.setdefault(job.stage, [0.0, 0.0])
            seconds_cost[0] += time.perf_counter() - started
            seconds_cost[1] += job.cost
            done_cost += job.cost
        yield {"event": "finished", "out": str(self.out)}


def _eta(remaining: list[Job], spent: dict[str, list[float]]) -> Optional[float]:
    """Seconds left: each remaining job's cost at the seconds-per-cost its stage has shown; None until known."""
    rates = {stage: seconds / cost for stage, (seconds, cost) in spent.items() if cost}
    if not rates:
        return None
    fallback = max(rates.values())
    return sum(job.cost * rates.get(job.stage, fallback) for job in remaining)


def load_selection(out: Path) -> dict[str, float]:
    """``{method: chosen lr}`` from ``out/selection.json``."""
    path = Path(out) / "selection.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the selection stage has not run")
    record = json.loads(path.read_text(encoding="utf-8"))
    return {method: entry["chosen_lr"] for method, entry in record["methods"].items()}


def prediction_path(out: Path, spec: ModelSpec) -> Path:
    name = Path(spec.checkpoint).name if spec.checkpoint else VANILLA
    return Path(out) / "predictions" / f"{name}.json"


def prediction_counts(spec: ModelSpec, n: int, seed: int, device: str) -> dict:
    """``{task: {"counts": [per class], "labels": [per class]}}`` of the model's clean predictions on the test images.

    The images are the evaluation's (same ``subset_indices``), so the counts
    describe exactly the cells of the tables.
    """
    model = load_model(spec, device=torch.device(device))
    model.eval()
    counts = {}
    for task in TOY_TASKS:
        data = load_dataset(task, image_size=model.image_size)
        indices = subset_indices(seed, task, n, len(data))
        pairs = [data.data[i] for i in indices]
        images = torch.stack([p[0] for p in pairs]).to(device)
        labels = torch.tensor([p[1] for p in pairs])
        model.set_classes(data.classnames, data.templates)
        with torch.no_grad():
            predicted = model(images).argmax(dim=1).cpu()
        classes = len(data.classnames)
        counts[task] = {"counts": torch.bincount(predicted, minlength=classes).tolist(),
                        "labels": torch.bincount(labels, minlength=classes).tolist()}
    return counts
