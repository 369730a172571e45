"""The CAW paper's experiment in miniature on the toy world, as one resumable plan of jobs.

Every fine-tune is the toy recipe (:mod:`caw_core.toy.recipe`: same data,
attack, budget and steps for every method); only the objective and the
learning rate differ. The plan, in order:

1. ``sweep``, ``validate``, ``choose`` (when a grid is given): fine-tune every
   method at every grid learning rate with seed 0, score each on the
   validation split of the training task, and choose one lr per method by the
   rule of :mod:`caw_core.toy.selection` (written to ``selection.json``);
   without a grid, the recipe's chosen lrs (:data:`caw_core.toy.recipe.TOY_LR`);
2. ``train``, ``evaluate``: every method with every seed at its chosen lr
   (seed 0 reuses the sweep's run); vanilla and every fine-tune on the test
   split of every toy task, clean and PGD-10, plus each model's clean
   prediction counts per task (the collapse check);
3. ``ablation-train``, ``ablation-evaluate``: the CAW ablation variants at CAW's
   lr, evaluated the same way;
4. ``autoattack``: AutoAttack on the images PGD-10 left correct, for vanilla and
   the methods' fine-tunes (last: the most costly stage, so an interrupted run
   already has every table at PGD-10);
5. the summary (:mod:`caw_core.toy.summary`) and figures (:mod:`caw_core.toy.plot`),
   written by :mod:`caw_core.toy.writeup`.

A seed sets the training data order, the inner attack's random starts and the
torch seed. Rerunning with the same ``out`` skips every finished job
(training runs resume from their checkpoint, evaluations from their result
files). Layout of ``out``::

    runs/<variant>-lr<lr>-s<seed>/   training runs (caw_core.train)
    validation/<run>.json            validation scores (selection only)
    selection.json                   the learning-rate choice
    results/                         evaluation result files (caw_core.evaluate)
    predictions/<model>.json         clean prediction counts per task
    autoattack/<model>               marker: AutoAttack finished for that model
    summary.json, RESULTS.md, clean_vs_robust.{png,svg}, per_task.{png,svg}
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import torch

from caw_core.data import load_dataset
from caw_core.distributed import resolve_device
from caw_core.data.toyworld import TOY_TASKS
from caw_core.evaluate import EvalConfig, evaluate, subset_indices
from caw_core.io import atomic_write_json
from caw_core.models import ModelSpec, load_model
from caw_core.models.checkpoint import latest_step
from caw_core.toy import selection
from caw_core.toy.recipe import (
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
    CAW_FULL,  # CE + CA + Reg: the same runs as the methods table's CAW
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
    attacks: tuple = ("clean", "pgd")  # every model (pgd = PGD-10)
    autoattack: bool = True  # then AutoAttack on the methods' models (the last stage: the most costly)
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

    def method_variants(self) -> list[Variant]:
        return [v for v in METHOD_VARIANTS if v.key in self.methods]

    def ablation_variants(self) -> list[Variant]:
        """The ablation's variants not already in the methods table (none without ``ablation``)."""
        return [v for v in ABLATION_VARIANTS if v not in self.method_variants()] if self.ablation else []

    def variants(self) -> list[Variant]:
        return self.method_variants() + self.ablation_variants()


@dataclass(frozen=True)
class Job:
    """One unit of the plan (picklable, so a worker process can run it).

    kind: ``train`` (variant, seed, lr -- None: the chosen lr), ``validate``
    (variant or None for vanilla, lr), ``choose`` or ``evaluate`` (variant or
    None, seed). ``stage`` groups jobs that may run at the same time; stages run
    in order. ``cost`` is a relative size for the ETA.
    """

    stage: str
    kind: str
    name: str
    cost: float
    variant: Optional[Variant] = None
    seed: int = 0
    lr: Optional[float] = None


# Methods before the ablation, AutoAttack last, so an interrupted run has the main table first.
STAGES = ("sweep", "validate", "choose", "train", "evaluate", "ablation-train", "ablation-evaluate", "autoattack")


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

    def model_spec(self, run: Optional[Path]) -> ModelSpec:
        """The evaluated model: the base (toy, or the test override) with the run's checkpoint (None: vanilla)."""
        base = self.config.train_overrides.get("model", "toy")
        return ModelSpec(base, self.config.train_overrides.get("pretrained"), str(run) if run else None)

    def _validation_path(self, variant: Optional[Variant], lr: Optional[float]) -> Path:
        name = VANILLA if variant is None else self.run_dir(variant, 0, lr).name
        return self.out / "validation" / f"{name}.json"

    def _evaluated_run(self, job: Job) -> Optional[Path]:
        return None if job.variant is None else self.run_dir(job.variant, job.seed)

    # -- the plan ----------------------------------------------------------------------------------------------
    def jobs(self) -> list[Job]:
        """Every job of the plan, in stage order."""
        c = self.config
        # costs: rough CPU-seconds on one thread (a 50 x 32 toy fine-tune is ~25), for the ETA before it is measured
        train_cost, eval_cost = c.train_steps * c.batch_size / 64, c.n * len(TOY_TASKS) / 50
        methods = [v for v in METHOD_VARIANTS if v.key in c.methods]
        jobs: list[Job] = []
        if c.lr_grid:
            jobs += [Job("sweep", "train", f"train {v.key} lr {lr:g} seed 0", train_cost, v, 0, lr)
                     for v in methods for lr in c.lr_grid]
            jobs.append(Job("validate", "validate", "validate vanilla", c.val_n / 40))
            jobs += [Job("validate", "validate", f"validate {v.key} lr {lr:g}", c.val_n / 40, v, 0, lr)
                     for v in methods for lr in c.lr_grid]
            jobs.append(Job("choose", "choose", "choose learning rates", 0.0))
        for prefix, variants in (("", c.method_variants()), ("ablation-", c.ablation_variants())):
            jobs += [Job(f"{prefix}train", "train", f"train {v.key} seed {seed}", train_cost, v, seed)
                     for v in variants for seed in c.seeds]
            if not prefix:
                jobs.append(Job("evaluate", "evaluate", "evaluate vanilla", eval_cost))
            jobs += [Job(f"{prefix}evaluate", "evaluate", f"evaluate {v.key} seed {seed}", eval_cost, v, seed)
                     for v in variants for seed in c.seeds]
        if c.autoattack:
            aa_cost = c.n * len(TOY_TASKS) / 8
            jobs.append(Job("autoattack", "autoattack", "autoattack vanilla", aa_cost))
            jobs += [Job("autoattack", "autoattack", f"autoattack {v.key} seed {seed}", aa_cost, v, seed)
                     for v in c.method_variants() for seed in c.seeds]
        return jobs

    def is_done(self, job: Job) -> bool:
        if job.kind == "train":
            return latest_step(self.run_dir(job.variant, job.seed, job.lr)) == self.config.train_steps
        if job.kind == "validate":
            return self._validation_path(job.variant, job.lr).is_file()
        if job.kind == "choose":
            return (self.out / "selection.json").is_file()
        if job.kind == "autoattack":
            return self._autoattack_marker(job).is_file()
        return prediction_path(self.out, self.model_spec(self._evaluated_run(job))).is_file()

    def execute(self, job: Job) -> Iterator[dict]:
        """Do ``job``, yielding its records (training steps, evaluation results, the selection)."""
        yield from getattr(self, f"_{job.kind}")(job)

    def _train(self, job: Job) -> Iterator[dict]:
        variant, run = job.variant, self.run_dir(job.variant, job.seed, job.lr)
        config = toy_train_config(
            variant.method, lr=self.lr_of(variant) if job.lr is None else job.lr, options=variant.option_dict(),
            seed=job.seed, eps=self.config.eps, max_steps=self.config.train_steps, batch_size=self.config.batch_size,
            device=self.config.device, runs_dir=str(run.parent), name=run.name, save_every=self.config.train_steps,
            **self.config.train_overrides)
        # an existing folder is continued (from its checkpoint, or from step 0 if killed before the first one)
        yield from Trainer(config, resume=(run / "config.json").is_file()).run()

    def _validate(self, job: Job) -> Iterator[dict]:
        spec = self.model_spec(None if job.variant is None else self.run_dir(job.variant, 0, job.lr))
        model = load_model(spec, device=resolve_device(self.config.device))
        score = selection.validation_score(model, self.config.eps, self.config.val_n)
        atomic_write_json(self._validation_path(job.variant, job.lr), asdict(score))
        yield {"event": "validation", "model": spec.label(), **asdict(score)}

    def _choose(self, job: Job) -> Iterator[dict]:
        def read(variant: Optional[Variant], lr: Optional[float] = None) -> selection.ValidationScore:
            return selection.ValidationScore(**json.loads(self._validation_path(variant, lr).read_text("utf-8")))

        vanilla = read(None)
        scores, choices = {}, {}
        for variant in (v for v in METHOD_VARIANTS if v.key in self.config.methods):
            scores[variant.key] = {lr: read(variant, lr) for lr in self.config.lr_grid}
            choices[variant.key] = selection.choose_lr(scores[variant.key], vanilla)
        record = selection.selection_record(self.config.lr_grid, vanilla, scores, choices)
        atomic_write_json(self.out / "selection.json", record)
        self.chosen = {k: choice.lr for k, choice in choices.items()}
        yield {"event": "selection", "chosen": dict(self.chosen)}

    def _eval_config(self, job: Job, attacks) -> EvalConfig:
        return toy_eval_config(models=[self.model_spec(self._evaluated_run(job))], attacks=list(attacks),
                               eps=self.config.eps, n=self.config.n, batch_size=self.config.eval_batch_size,
                               out=str(self.out / "results"), device=self.config.device)

    def _evaluate(self, job: Job) -> Iterator[dict]:
        config = self._eval_config(job, self.config.attacks)
        yield from evaluate(config)
        spec = config.models[0]
        counts = prediction_counts(spec, self.config.n, config.seed, self.config.device)
        atomic_write_json(prediction_path(self.out, spec), counts)

    def _autoattack_marker(self, job: Job) -> Path:
        return self.out / "autoattack" / f"{prediction_path(self.out, self.model_spec(self._evaluated_run(job))).stem}"

    def _autoattack(self, job: Job) -> Iterator[dict]:
        """AutoAttack on the images PGD-10 left correct (the evaluation chain), then a marker that it finished."""
        yield from evaluate(self._eval_config(job, (*self.config.attacks, "aa")))
        marker = self._autoattack_marker(job)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    # -- running -----------------------------------------------------------------------------------------------
    def run(self, workers: int = 1) -> Iterator[dict]:
        """Run every unfinished job, stage by stage, yielding ``{"event": "job", ...}`` progress with an ETA.

        With ``workers`` = 1 the jobs' own records (steps, results) are yielded
        too; with more, the jobs of a stage run in that many processes and
        only a ``job`` record per finished job comes back.
        """
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        jobs = self.jobs()
        progress = _Progress(jobs)
        for stage in STAGES:
            todo = [j for j in jobs if j.stage == stage and not self.is_done(j)]
            progress.skip(j for j in jobs if j.stage == stage and j not in todo)
            if not todo:
                continue
            progress.start_stage()
            if workers == 1 or len(todo) == 1:
                for job in todo:
                    yield progress.record(job, "started")
                    for record in self.execute(job):
                        yield {**record, "stage": stage, "job": job.name}
                    progress.finish(job)
            else:
                yield from self._pool(todo, workers, progress)
        yield {**progress.record(None, "finished"), "event": "finished", "out": str(self.out)}

    def _pool(self, todo: list[Job], workers: int, progress: "_Progress") -> Iterator[dict]:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=context) as pool:
            threads = torch.get_num_threads()  # the CLI's thread policy (or --threads/CAW_THREADS), for each worker
            futures = {pool.submit(_run_job, self.config, job, threads): job for job in todo}
            for future in as_completed(futures):
                future.result()  # a failed job raises here
                progress.finish(futures[future])
                yield progress.record(futures[future], "finished")


def _run_job(config: ExperimentConfig, job: Job, threads: int) -> None:
    """A worker process's entry: run ``job`` of the experiment ``config`` to the end on ``threads`` torch threads."""
    torch.set_num_threads(threads)
    for _ in Experiment(config).execute(job):
        pass


class _Progress:
    """Jobs done out of the plan, and the ETA: each remaining job's cost at the wall seconds per cost that jobs of
    its kind (train, validate, evaluate) took so far in this process (skipped finished jobs do not count)."""

    def __init__(self, jobs: list[Job]):
        self.jobs, self.done = jobs, set()
        self.total_cost = sum(j.cost for j in jobs) or 1.0
        self.measured_cost, self.measured_seconds, self.seconds_before = {}, {}, {}
        self.stage_started = time.perf_counter()

    def skip(self, jobs) -> None:
        self.done.update(jobs)

    def start_stage(self) -> None:
        self.stage_started = time.perf_counter()
        self.seconds_before = dict(self.measured_seconds)

    def finish(self, job: Job) -> None:
        self.done.add(job)
        self.measured_cost[job.kind] = self.measured_cost.get(job.kind, 0.0) + job.cost
        self.measured_seconds[job.kind] = (self.seconds_before.get(job.kind, 0.0)
                                           + time.perf_counter() - self.stage_started)

    def eta(self) -> Optional[float]:
        rates = {kind: self.measured_seconds[kind] / cost for kind, cost in self.measured_cost.items() if cost}
        if not rates:
            return None
        fallback = max(rates.values())
        return sum(j.cost * rates.get(j.kind, fallback) for j in self.jobs if j not in self.done)

    def record(self, job: Optional[Job], status: str) -> dict:
        done_cost = sum(j.cost for j in self.done)
        return {"event": "job", "status": status, "name": job.name if job else "",
                "job_stage": job.stage if job else "", "done": len(self.done),
                "total": len(self.jobs), "done_fraction": done_cost / self.total_cost, "eta_s": self.eta()}


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
