"""The main job on the embedded default: the CAW paper's experiment in miniature, offline, on a CPU.

Every method (FT-Adv, TeCoA, PMG-AFT, TGA-ZSR, FARE, CAW) fine-tunes the
embedded toy CLIP on the toy training task with the toy recipe
(:mod:`caw_core.toy.recipe`); vanilla and every fine-tune are evaluated
zero-shot on every toy task, clean, under PGD-10 and under AutoAttack, and the
run writes its tables (``RESULTS.md``, ``summary.json``) and figures
(``clean_vs_robust.png/.svg``, ``per_task.png/.svg``) into ``out``.

Three sizes of the same pipeline (:mod:`caw_core.toy.experiment`):

- default (``make demo``, about ten minutes on two cores): the recipe's chosen
  learning rates, one seed, :data:`DEMO_N` images per task;
- ``full``: the learning-rate sweep on the validation split, :data:`FULL_SEEDS`
  seeds and CAW's ablation, :data:`FULL_N` images per task;
- ``quick``: a smoke run of a minute or two (a few steps, a few images).

The demo eps (12/255) is larger than the paper's 1/255 because the toy CLIP
sees 64 px scenes of flat colours and shapes: at 1/255 it is not broken, at
12/255 vanilla robust accuracy is near 0 on every task, the situation the
paper starts from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from caw_core.toy.experiment import ExperimentConfig
from caw_core.toy.recipe import LR_GRID, TOY_EPS, TOY_EVAL_N

DEMO_N = 64
FULL_N = TOY_EVAL_N
FULL_SEEDS = (0, 1, 2)


@dataclass
class DemoConfig:
    """The demo's knobs (``caw-core demo`` flags): output folder, size, eps, n, device and worker processes."""

    out: str = "caw-demo"
    full: bool = False
    quick: bool = False
    eps: float = TOY_EPS
    n: Optional[int] = None  # None: the size's
    device: str = "cpu"
    workers: int = 1

    def size(self) -> str:
        if self.full and self.quick:
            raise ValueError("--full and --quick exclude each other")
        return "full" if self.full else "quick" if self.quick else "default"

    def experiment(self) -> ExperimentConfig:
        """The experiment this size runs (see the module docstring)."""
        size = self.size()
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        base = ExperimentConfig(out=self.out, eps=self.eps, device=self.device, n=DEMO_N)
        if size == "full":
            base = dataclasses.replace(base, lr_grid=LR_GRID, seeds=FULL_SEEDS, ablation=True, n=FULL_N)
        elif size == "quick":
            base = dataclasses.replace(base, train_steps=4, batch_size=16, n=16, val_n=16, eval_batch_size=16,
                                       autoattack=False)
        return base if self.n is None else dataclasses.replace(base, n=self.n)

    def command(self) -> str:
        """The command line that reproduces this run's numbers and wall time (for the report): the size and every
        flag given a non-default value, except the output folder."""
        flags = {"full": ["--full"], "quick": ["--quick"], "default": []}[self.size()]
        defaults = DemoConfig()
        for name in ("eps", "n", "device", "workers"):
            value = getattr(self, name)
            if value != getattr(defaults, name):
                flags.append(f"--{name} {value:g}" if isinstance(value, float) else f"--{name} {value}")
        return " ".join(["caw-core demo", *flags])
