"""Training-step and evaluation-attack benchmarks (``caw-core bench``).

Three modes of a method's training step, which must not be confused:

* ``optimized`` -- the code ``caw-core train`` runs;
* ``naive`` -- caw's own loss formulas computed in the reference repositories' habits
  (:mod:`caw_core.benchmarks.naive`): the same losses as ``optimized`` (tested), so the ratio prices the habits;
* ``reference`` -- the PMG-AFT and TGA-ZSR repositories' own training steps, ported
  (:mod:`caw_core.benchmarks.reference`): their losses, attack and text handling, not caw's. Each is timed
  interleaved with caw's optimized step of the same method and caw's optimized CAW step.

``--mode cache`` times the optimized step without and with (``cached``) the original-feature cache of
:mod:`caw_core.feature_cache`, filled beforehand as it is from the second epoch on.

What is measured, per method and mode, on one synthetic batch (uniform random
images at the model's input size, random labels, ``classes`` class names such
as TinyImageNet's 200) that is reused every step, so data loading is excluded:

* **step time** -- one whole training step of the recipe: PGD-2 (linf, eps =
  step = 1/255, random start) against the current tower, the method's loss,
  backward and an SGD-momentum step. Optimized mode is the code the trainer
  runs (:func:`caw_core.train.adversarial_losses` + :func:`optimizer_update`).
  The modes of a method are built in one process and timed interleaved
  (optimized step, naive step, optimized step, ...) after ``warmup`` untimed
  steps each, so a shared machine's load swings hit both alike; the median
  (and the minimum) of ``steps`` wall-clock times is reported, with a CUDA
  synchronise after every step. images/s = batch size / median step time.
* **memory** -- measured apart, over the first ``MEMORY_STEPS`` steps of a
  freshly built step: on CUDA ``torch.cuda.max_memory_allocated`` (absolute:
  weights, optimizer state and activations); on the CPU the growth of the
  process's peak resident set (VmHWM, reset through ``/proc/self/clear_refs``
  just before the first step) over its resident set at that moment:
  activations, gradients and optimizer state, not the weights already loaded.
* **evaluation PGD-10** (``eval=True``) -- the time of ``pgd(steps=10)`` plus
  the no-grad forward that scores the adversarial batch, against the floor of
  11 forward+backward passes (one forward+backward w.r.t. the input, timed
  on the same batch, x 11). Ratios near 1 mean the attack adds no overhead.

With ``isolate`` (the default) every job -- the memory of each (method,
mode), the interleaved timing of each method, the evaluation -- runs in a
fresh Python process (``python -m caw_core.benchmarks.bench JOB``), so one job's
allocations cannot inflate another's memory.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch

METHODS_BENCHED = ("caw", "ft-adv", "pmg-aft", "tga-zsr", "fare")
MODES = ("optimized", "naive", "reference", "cached")
MODE_CHOICES = ("optimized", "naive", "both", "reference", "cache")  # both: optimized + naive; cache: + cached
TEMPLATE = "This is a photo of a {}"
EPS = 1 / 255
ATTACK_STEPS = 2
EVAL_STEPS = 10
MEMORY_STEPS = 2  # the second step also holds the momentum buffers the first one created
MOMENTUM = 0.9


@dataclass
class BenchConfig:
    """One ``caw-core bench`` invocation. ``mode`` is optimized, naive, both (optimized and naive) or reference
    (the ported reference steps of PMG-AFT and TGA-ZSR against caw's optimized steps). ``threads=None`` takes
    the thread policy of :mod:`caw_core.threads`."""

    model: str = "ViT-B-32"
    pretrained: Optional[str] = None
    methods: Optional[tuple] = None  # None: every method, or in reference mode the ported ones
    mode: str = "optimized"
    batch_size: int = 8
    classes: int = 200
    steps: int = 3
    warmup: int = 1
    device: str = "auto"
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    eval: bool = False
    eval_repeats: int = 2
    isolate: bool = True
    threads: Optional[int] = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.methods is None:
            from caw_core.benchmarks.reference import REFERENCE_METHODS

            self.methods = REFERENCE_METHODS if self.mode == "reference" else METHODS_BENCHED

    @property
    def modes(self) -> tuple:
        pairs = {"both": ("optimized", "naive"), "reference": ("optimized", "reference"),
                 "cache": ("optimized", "cached")}
        return pairs.get(self.mode, (self.mode,))

    def modes_of(self, method: str) -> tuple:
        """The modes timed for ``method``: reference mode has ports of PMG-AFT and TGA-ZSR only; caw's own CAW
        step is timed beside them (optimized)."""
        return ("optimized",) if self.mode == "reference" and method == "caw" else self.modes

    def validate(self, device: torch.device) -> None:
        """Raise ValueError naming the first bad value."""
        from caw_core.methods import METHODS

        from caw_core.benchmarks.reference import REFERENCE_METHODS

        unknown = [m for m in self.methods if m not in METHODS]
        unported = [m for m in self.methods if m not in REFERENCE_METHODS + ("caw",)]
        checks = [
            (not unknown, f"unknown methods {unknown}; choose from {', '.join(METHODS)}"),
            (self.mode in MODE_CHOICES, f"mode must be one of {', '.join(MODE_CHOICES)}, got {self.mode!r}"),
            (self.mode != "reference" or not unported,
             f"--mode reference has ports of {', '.join(REFERENCE_METHODS)} only (and times caw beside them); "
             f"drop {', '.join(unported)}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.classes >= 2, f"classes must be >= 2, got {self.classes}"),
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (self.warmup >= 0, f"warmup must be >= 0, got {self.warmup}"),
            (self.threads is None or self.threads >= 1, f"threads must be >= 1, got {self.threads}"),
            (self.eval_repeats >= 1, f"eval_repeats must be >= 1, got {self.eval_repeats}"),
            (self.precision in ("fp32", "bf16"), f"precision must be fp32 or bf16, got {self.precision!r}"),
            (self.precision == "fp32" or device.type == "cuda", "bf16 autocast is for CUDA; use --precision fp32"),
            (not self.channels_last or device.type == "cuda", "channels_last is for CUDA; drop --channels-last"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


# -- measuring ---------------------------------------------------------------------------------------------------
def _proc_status_kb(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {key}")


class PeakMemory:
    """Peak memory from :meth:`start` on: CUDA ``max_memory_allocated``, or CPU VmHWM growth (see module doc)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.kind = "cuda_max_allocated" if device.type == "cuda" else "cpu_peak_rss_growth"
        self.baseline_mb = 0.0

    def start(self) -> None:
        if self.device.type == "cuda":
            gc.collect()  # earlier jobs' tensors, when jobs share a process
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline_mb = torch.cuda.memory_allocated(self.device) / 2**20
            return
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")  # resets VmHWM to the current resident set
        self.baseline_mb = _proc_status_kb("VmRSS") / 1024

    def peak_mb(self) -> float:
        """CUDA: absolute peak allocated. CPU: peak resident set minus the resident set at start."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return _proc_status_kb("VmHWM") / 1024 - self.baseline_mb


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of ``fn()``, device work included."""
    _synchronise(device)
    start = time.perf_counter()
    fn()
    _synchronise(device)
    return time.perf_counter() - start


def synthetic_classnames(count: int) -> list[str]:
    return [f"synthetic class number {i}" for i in range(count)]


def synthetic_batch(batch_size: int, image_size: int, classes: int, device: torch.device,
                    seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform [0, 1] images of the model's input size and uniform labels, from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch_size, 3, image_size, image_size, generator=generator)
    labels = torch.randint(classes, (batch_size,), generator=generator)
    return images.to(device), labels.to(device)


# -- the step under test -------------------------------------------------------------------------------------
@dataclass
class BenchStep:
    """One method's training step on a fixed batch: ``step()`` runs it and returns its LossTerms."""

    model: object  # the ZeroShotCLIP under training (tests read its text-encoder use)
    run: Callable[[], object]
    images: Optional[torch.Tensor] = None  # the fixed batch
    labels: Optional[torch.Tensor] = None
    reference: object = None  # reference mode: the port's ReferenceState

    def __call__(self):
        return self.run()


def build_step(config: BenchConfig, method: str, mode: str, device: torch.device) -> BenchStep:
    """One training step of ``method`` in ``mode`` on a fixed synthetic batch.

    Every mode starts from the same weights (seeded), batch and attack random state; optimized mode uses
    the fused SGD on CUDA and the ``channels_last``/``compile``/``precision`` options, naive and reference
    mode plain SGD. A reference step returns the port's dict of loss terms instead of LossTerms.
    """
    from caw_core.benchmarks.naive import naive_adversarial_losses, unfrozen_copy
    from caw_core.methods import build_objective
    from caw_core.models import ModelSpec, frozen_image_encoder, load_model
    from caw_core.train import adversarial_losses, autocast_context, optimizer_update, prepare_encoders

    torch.manual_seed(config.seed)
    model = load_model(ModelSpec(config.model, config.pretrained), device=device)
    objective = build_objective(method)
    encoder = model.image_encoder.train()
    params = [p for p in encoder.parameters() if p.requires_grad]
    images, labels = synthetic_batch(config.batch_size, model.image_size, config.classes, device, config.seed)
    classnames, templates = synthetic_classnames(config.classes), [TEMPLATE]
    generator = torch.Generator(device=device).manual_seed(config.seed)
    recipe = dict(eps=EPS, step_size=EPS, steps=ATTACK_STEPS, generator=generator)

    if mode == "reference":
        from caw_core.benchmarks.reference import REFERENCE_STEPS, reference_state

        state = reference_state(model.clip, model.tokenizer, [TEMPLATE.format(c) for c in classnames],
                                model.image_size, objective.recipe.lr, MOMENTUM, EPS, EPS, ATTACK_STEPS)

        def reference_step():
            with autocast_context(config.precision, device):
                return REFERENCE_STEPS[method](state, images, labels)

        return BenchStep(model, reference_step, images, labels, state)
    if mode == "naive":
        original = unfrozen_copy(encoder)
        optimizer = torch.optim.SGD(params, lr=objective.recipe.lr, momentum=MOMENTUM)

        def losses():
            with autocast_context(config.precision, device):
                return naive_adversarial_losses(objective, model, original, classnames, templates, images, labels,
                                                **recipe)
    else:
        original = frozen_image_encoder(model)
        prepare_encoders(encoder, original, channels_last=config.channels_last, compile=config.compile)
        if config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        model.set_classes(classnames, templates)
        fused = {"fused": True} if device.type == "cuda" else {}
        optimizer = torch.optim.SGD(params, lr=objective.recipe.lr, momentum=MOMENTUM, **fused)

        if mode == "cached":
            from caw_core.feature_cache import OriginalFeatureCache

            indices = torch.arange(len(images))
            cache = OriginalFeatureCache(len(images), model.text_head.shape[-1], {}, device)
            cache.lookup(original, images, indices)  # filled, as from the second epoch on
            original = cache.bind(original, images, indices)

        def losses():
            return adversarial_losses(objective, encoder, original, model.text_head, images, labels,
                                      precision=config.precision, **recipe)

    def step():
        terms = losses()
        optimizer_update(terms.total, optimizer, params)
        return terms

    return BenchStep(model, step, images, labels)


def measure_memory(config: BenchConfig, method: str, mode: str, device: torch.device) -> dict:
    """Peak memory over the first ``MEMORY_STEPS`` steps of a freshly built step (see :class:`PeakMemory`)."""
    step = build_step(config, method, mode, device)
    memory = PeakMemory(device)
    memory.start()
    for _ in range(MEMORY_STEPS):
        step()
    _synchronise(device)
    return {"memory_mb": memory.peak_mb(), "memory_kind": memory.kind, "baseline_mb": memory.baseline_mb}


def measure_times(config: BenchConfig, method: str, device: torch.device) -> dict[str, list[float]]:
    """Step times of ``method`` per mode: ``warmup`` untimed steps each, then ``steps`` rounds, modes interleaved.
    In reference mode caw's optimized CAW step joins the rounds (key ``"caw"``)."""
    built = {mode: build_step(config, method, mode, device) for mode in config.modes_of(method)}
    if config.mode == "reference" and method != "caw":
        built["caw"] = build_step(config, "caw", "optimized", device)
    for step in built.values():
        for _ in range(config.warmup):
            step()
    times: dict[str, list[float]] = {mode: [] for mode in built}
    for _ in range(config.steps):
        for mode, step in built.items():
            times[mode].append(timed(step, device))
    return times


def measure_eval(config: BenchConfig, device: torch.device) -> dict:
    """PGD-10 + the scoring forward against 11 forward+backward passes, interleaved ``eval_repeats`` times."""
    import torch.nn.functional as F

    from caw_core.attacks.pgd import pgd
    from caw_core.models import ModelSpec, load_model

    torch.manual_seed(config.seed)
    model = load_model(ModelSpec(config.model, config.pretrained), device=device)
    model.set_classes(synthetic_classnames(config.classes), [TEMPLATE])
    images, labels = synthetic_batch(config.batch_size, model.image_size, config.classes, device, config.seed)
    generator = torch.Generator(device=device).manual_seed(config.seed)

    def forward_backward():
        x = images.clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(x), labels, reduction="none").sum(), x)

    def attack_and_score():
        adv = pgd(model, images, labels, eps=EPS, step_size=EPS, steps=EVAL_STEPS, generator=generator)
        with torch.no_grad():
            model(adv).argmax(dim=1)

    forward_backward()
    attack_and_score()
    passes, attacks = [], []
    for _ in range(config.eval_repeats):
        passes.append(statistics.median(timed(forward_backward, device) for _ in range(3)))
        attacks.append(timed(attack_and_score, device))
    floor = (EVAL_STEPS + 1) * statistics.median(passes)
    measured = statistics.median(attacks)
    return {"forward_backward_s": statistics.median(passes), "floor_s": floor,
            "pgd10_s": measured, "ratio_to_floor": measured / floor, "images_per_s": config.batch_size / measured}


# -- running jobs --------------------------------------------------------------------------------------------
def _job_list(config: BenchConfig) -> list[dict]:
    jobs = []
    for method in config.methods:
        jobs += [{"job": "memory", "method": method, "mode": mode} for mode in config.modes_of(method)]
        jobs.append({"job": "times", "method": method})
    if config.mode == "reference" and "caw" not in config.methods:  # caw's step is timed beside the references
        jobs.insert(0, {"job": "memory", "method": "caw", "mode": "optimized"})
    return jobs + ([{"job": "eval"}] if config.eval else [])


def run_job(config: BenchConfig, job: dict, device: torch.device) -> dict:
    from caw_core.threads import apply_thread_policy

    apply_thread_policy(config.model, config.threads)
    if job["job"] == "eval":
        return measure_eval(config, device)
    if job["job"] == "memory":
        return measure_memory(config, job["method"], job["mode"], device)
    return measure_times(config, job["method"], device)


def _run_isolated(config: BenchConfig, job: dict, device: torch.device) -> dict:
    payload = json.dumps({"config": dataclasses.asdict(config), "job": job, "device": str(device)})
    done = subprocess.run([sys.executable, "-m", "caw_core.benchmarks.bench", payload], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bench job {job} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _step_record(config: BenchConfig, method: str, mode: str, times: list[float], memory: dict,
                 beside: Optional[str] = None) -> dict:
    median = statistics.median(times)
    record = {"job": "step", "method": method, "mode": mode, "step_time_s": median, "min_step_time_s": min(times),
              "step_times_s": times, "images_per_s": config.batch_size / median, **memory}
    return record if beside is None else {**record, "beside": beside}


def run_bench(config: BenchConfig) -> Iterator[dict]:
    """Yield one record per (method, mode) -- times, images/s, memory -- then the evaluation record if asked.
    In reference mode each reference method's job also yields caw's CAW step timed in the same rounds
    (``"beside": method``)."""
    from caw_core.distributed import resolve_device

    device = resolve_device(config.device)
    config.validate(device)
    memory = {}
    for job in _job_list(config):
        result = _run_isolated(config, job, device) if config.isolate else run_job(config, job, device)
        if job["job"] == "memory":
            memory[(job["method"], job["mode"])] = result
        elif job["job"] == "times":
            for mode, times in result.items():
                if mode == "caw":
                    yield _step_record(config, "caw", "optimized", times, memory[("caw", "optimized")],
                                       beside=job["method"])
                else:
                    yield _step_record(config, job["method"], mode, times, memory[(job["method"], mode)])
        else:
            yield {"job": "eval", **result}


# -- reporting -----------------------------------------------------------------------------------------------
def machine_info() -> dict:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), model)
    except OSError:
        pass
    info = {"cpu": model, "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def summarise(records: list[dict]) -> dict:
    """naive/optimized ratios per method; caw vs the reference steps (reference mode); the targets."""
    rows = {(r["method"], r["mode"], r.get("beside")): r for r in records if r["job"] == "step"}

    def get(method, mode, key, beside=None):
        row = rows.get((method, mode, beside))
        return row[key] if row else None

    per_method = {}
    for method in dict.fromkeys(m for m, _, beside in rows if beside is None):
        per_method[method] = {
            "naive_over_optimized_time": _ratio(get(method, "naive", "step_time_s"),
                                                get(method, "optimized", "step_time_s")),
            "naive_over_optimized_min_time": _ratio(get(method, "naive", "min_step_time_s"),
                                                    get(method, "optimized", "min_step_time_s")),
            "naive_over_optimized_memory": _ratio(get(method, "naive", "memory_mb"),
                                                  get(method, "optimized", "memory_mb")),
        }
    reference = {}
    for method in dict.fromkeys(m for m, mode, _ in rows if mode == "reference"):
        reference[method] = {
            "caw_over_reference_time": _ratio(get("caw", "optimized", "step_time_s", beside=method),
                                              get(method, "reference", "step_time_s")),
            "caw_over_reference_memory": _ratio(get("caw", "optimized", "memory_mb", beside=method),
                                                get(method, "reference", "memory_mb")),
            "optimized_over_reference_time": _ratio(get(method, "optimized", "step_time_s"),
                                                    get(method, "reference", "step_time_s")),
            "optimized_over_reference_memory": _ratio(get(method, "optimized", "memory_mb"),
                                                      get(method, "reference", "memory_mb")),
        }
    evaluation = next((r for r in records if r["job"] == "eval"), None)
    targets = {
        "caw_time_over_naive_pmg_aft (<= 0.7)": _ratio(get("caw", "optimized", "step_time_s"),
                                                       get("pmg-aft", "naive", "step_time_s")),
        "caw_memory_over_naive_pmg_aft (<= 0.7)": _ratio(get("caw", "optimized", "memory_mb"),
                                                         get("pmg-aft", "naive", "memory_mb")),
        "caw_memory_over_tga_zsr (< 1)": _ratio(get("caw", "optimized", "memory_mb"),
                                                get("tga-zsr", "optimized", "memory_mb")),
        "eval_pgd10_over_floor (<= 1.2)": evaluation["ratio_to_floor"] if evaluation else None,
    }
    return {"per_method": per_method, "reference": reference, "targets": targets}


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(report: dict) -> str:
    """The report as aligned text: one row per (method, mode), then ratios and targets."""
    config, records, summary = report["config"], report["results"], report["summary"]
    steps = [r for r in records if r["job"] == "step"]
    kind = steps[0]["memory_kind"] if steps else ""
    lines = [f"model {config['model']}  batch {config['batch_size']}  classes {config['classes']}  "
             f"precision {config['precision']}  device {report['device']}  ({report['machine']['cpu']}, "
             f"{report['machine']['cpu_count']} cpus, {report['machine']['torch_threads']} torch threads)",
             f"{'method':<9} {'mode':<10} {'step s':>8} {'min s':>8} {'img/s':>8} {'memory MB':>10}  ({kind})"]
    for r in steps:
        beside = f"  (timed beside {r['beside']})" if r.get("beside") else ""
        lines.append(f"{r['method']:<9} {r['mode']:<10} {r['step_time_s']:>8.3f} {r['min_step_time_s']:>8.3f} "
                     f"{r['images_per_s']:>8.2f} {r['memory_mb']:>10.1f}{beside}")
    ratios = [(m, v) for m, v in summary["per_method"].items() if v["naive_over_optimized_time"] is not None]
    if ratios:
        lines.append("naive / optimized (caw's formulas in the references' habits):  " + "  ".join(
            f"{m} time x{_fmt(v['naive_over_optimized_time'], '.2f')} mem x{_fmt(v['naive_over_optimized_memory'], '.2f')}"
            for m, v in ratios))
    for m, v in summary.get("reference", {}).items():
        lines.append(f"vs the {m} reference step (its own code, ported):  caw CAW / reference: time "
                     f"x{_fmt(v['caw_over_reference_time'], '.2f')} mem x{_fmt(v['caw_over_reference_memory'], '.2f')}"
                     f";  caw {m} / reference: time x{_fmt(v['optimized_over_reference_time'], '.2f')} "
                     f"mem x{_fmt(v['optimized_over_reference_memory'], '.2f')}")
    evaluation = next((r for r in records if r["job"] == "eval"), None)
    if evaluation:
        lines.append(f"eval PGD-10: {evaluation['pgd10_s']:.3f} s/batch, floor 11 x {evaluation['forward_backward_s']:.3f}"
                     f" = {evaluation['floor_s']:.3f} s, ratio {evaluation['ratio_to_floor']:.3f}")
    lines += [f"target {name}: {_fmt(value, '.3f')}" for name, value in summary["targets"].items() if value is not None]
    return "\n".join(lines)


def bench_report(config: BenchConfig, records: list[dict]) -> dict:
    from caw_core.distributed import resolve_device

    return {"config": dataclasses.asdict(config), "device": str(resolve_device(config.device)),
            "machine": machine_info(), "results": records, "summary": summarise(records)}


def _worker_main(payload: str) -> None:
    spec = json.loads(payload)
    config = BenchConfig(**{**spec["config"], "methods": tuple(spec["config"]["methods"])})
    print(json.dumps(run_job(config, spec["job"], torch.device(spec["device"]))))


if __name__ == "__main__":
    _worker_main(sys.argv[1])
