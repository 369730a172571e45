"""The main job on the embedded default: the CAW paper's experiment in miniature.

1. fine-tune the embedded toy CLIP adversarially on the toy training task,
   once with TeCoA's loss (cross-entropy only) and once with CAW;
2. evaluate vanilla, TeCoA and CAW zero-shot on every toy task -- the training
   task and the held-out ones -- clean, under PGD and under AutoAttack;
3. print the paper-style table (rows = models, columns = tasks + Avg).

Everything runs offline on a CPU; the default settings finish in about ten
minutes on two cores. The demo eps (:data:`DEMO_EPS`, in /255) is larger than
the paper's 1/255 because the toy CLIP sees 64 px scenes of flat colours and
shapes: at 1/255 it is not broken, at this eps vanilla robust accuracy is near
0 on every task, which is the situation the paper starts from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from caw_core.data.toyworld import TOY_TASKS, TOY_TRAIN_TASK
from caw_core.evaluate import EvalConfig, evaluate
from caw_core.models import ModelSpec
from caw_core.report import build_report, to_markdown
from caw_core.results import load_results
from caw_core.toy.recipe import TOY_BATCH, TOY_EPS, TOY_STEPS, toy_lr, toy_train_config
from caw_core.train import TrainConfig, Trainer

@dataclass(frozen=True)
class ToyRecipe:
    """Deprecated view of :mod:`caw_core.toy.recipe` (CAW's toy fine-tune); kept until the GUI imports the recipe."""

    eps: float = TOY_EPS
    lr: float = toy_lr("caw")
    batch_size: int = TOY_BATCH
    train_steps: int = TOY_STEPS


TOY_RECIPE = ToyRecipe()
DEMO_EPS = TOY_EPS


@dataclass
class DemoConfig:
    """The demo's knobs; ``quick`` shrinks everything to a smoke run of a minute or two."""

    out: str = "caw-demo"
    eps: float = DEMO_EPS
    train_steps: int = TOY_RECIPE.train_steps
    batch_size: int = TOY_RECIPE.batch_size
    lr: float = TOY_RECIPE.lr
    alpha: float = 1.0
    beta: float = 1.0
    n: int = 200
    attacks: list = field(default_factory=lambda: ["clean", "pgd", "aa"])
    eval_batch_size: int = 100
    seed: int = 0
    device: str = "cpu"
    num_workers: int = 0
    methods: tuple = ("tecoa", "caw")
    quick: bool = False

    def scaled(self) -> "DemoConfig":
        """The quick variant: a few steps and a few images, same pipeline."""
        if not self.quick:
            return self
        return dataclasses.replace(self, train_steps=4, batch_size=16, n=16, eval_batch_size=16,
                                   attacks=["clean", "pgd"])


def demo_train_config(config: DemoConfig, method: str) -> TrainConfig:
    """The fine-tune of ``method`` that the demo runs: the toy recipe with the demo's overrides."""
    return toy_train_config(
        method, lr=config.lr, eps=config.eps, max_steps=config.train_steps, batch_size=config.batch_size,
        seed=config.seed, device=config.device, num_workers=config.num_workers,
        runs_dir=str(Path(config.out) / "runs"), name=method, save_every=config.train_steps,
        alpha=config.alpha, beta=config.beta)


def run_demo(config: DemoConfig) -> Iterator[dict]:
    """Train, evaluate and report; yields the training and evaluation records, then ``{"event": "table"}``.

    Reruns reuse what exists: finished training runs are not trained again and
    finished evaluations are read from the results folder.
    """
    config = config.scaled()
    checkpoints: list[Optional[str]] = [None]
    for method in config.methods:
        train_config = demo_train_config(config, method)
        run_dir = Path(train_config.runs_dir) / method
        trainer = Trainer(train_config, resume=(run_dir / "checkpoints" / "latest.json").is_file())
        for record in trainer.run():
            yield {**record, "stage": f"train {method}"}
        checkpoints.append(str(run_dir))
    results = Path(config.out) / "results"
    models = [ModelSpec("toy", None, checkpoint) for checkpoint in checkpoints]
    eval_config = EvalConfig(models=models, datasets=list(TOY_TASKS), attacks=list(config.attacks), eps=config.eps,
                             n=config.n, batch_size=config.eval_batch_size, seed=config.seed, data_root=".",
                             out=str(results), device=config.device)
    for record in evaluate(eval_config):
        yield {**record, "stage": "evaluate"}
    report = build_report(load_results(results))
    yield {"event": "table", "markdown": to_markdown(report), "flags": report.flags, "out": str(config.out)}
