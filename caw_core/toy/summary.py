"""The toy experiment's numbers: per-model cells, the collapse check, mean ± std over seeds, ties, Markdown.

Per model and task (the evaluation's n test images):

- clean: clean accuracy;
- pgd: PGD-10 accuracy (an image counts when it is clean-correct and PGD-10
  does not flip it);
- robust: worst case per image over PGD-10 and AutoAttack (AutoAttack runs on
  the images PGD-10 left correct): an image counts only if no attack flipped
  it -- the headline number where AutoAttack ran;
- collapsed: the model is at chance on the task -- its most frequent clean
  prediction covers >= :data:`COLLAPSE_SHARE` of the images (near-constant
  prediction), or its clean accuracy is within two binomial standard errors of
  chance (1/classes). A collapsed cell earns no robust credit: the
  "no credit" averages count its robust accuracy as 0 (the raw averages are
  reported next to them).

Per variant, each metric is averaged over the held-out tasks per seed, then
given as mean ± sample std over seeds. Two variants *tie* on a metric when
their means differ by less than the spread, ``sqrt(std_a^2 + std_b^2)``
(with one seed there is no spread and nothing is called).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Optional

from caw_core.data.toyworld import TOY_TASKS, TOY_TRAIN_TASK
from caw_core.report import display_name
from caw_core.results import Result

COLLAPSE_SHARE = 0.8
METHOD_ORDER = ("ft-adv", "tecoa", "pmg-aft", "tga-zsr", "fare", "caw")  # the tables' row order
HELD_OUT = tuple(t for t in TOY_TASKS if t != TOY_TRAIN_TASK)
ROBUST = ("pgd", "robust")  # PGD-10 alone; worst case over PGD-10 and AutoAttack
METRICS = {
    "train_clean": "clean accuracy on the training task",
    "train_pgd": "PGD-10 accuracy on the training task",
    "train_robust": "worst-case (PGD-10, AutoAttack) accuracy on the training task",
    "heldout_clean": "clean accuracy averaged over the held-out tasks",
    "heldout_pgd": "PGD-10 accuracy averaged over the held-out tasks (raw)",
    "heldout_pgd_credit": "the same, collapsed cells counted as 0",
    "heldout_robust": "worst-case accuracy averaged over the held-out tasks (raw)",
    "heldout_robust_credit": "the same, collapsed cells counted as 0",
}


@dataclass(frozen=True)
class Cell:
    """One model on one task, accuracies in percent; ``robust`` is None until AutoAttack has run."""

    clean: float
    pgd: float
    robust: Optional[float]
    collapsed: bool
    top_share: float  # share of the most frequent clean prediction
    n: int


def is_collapsed(counts: list[int], clean_fraction: float) -> tuple[bool, float]:
    """(collapsed?, top share) from the clean prediction counts per class and the clean accuracy (fraction)."""
    n, classes = sum(counts), len(counts)
    top = max(counts) / n
    chance = 1 / classes
    at_chance = clean_fraction <= chance + 2 * math.sqrt(chance * (1 - chance) / n)
    return top >= COLLAPSE_SHARE or at_chance, top


def _surviving(results: list[Result]) -> float:
    """Percent of images every result in ``results`` left correct (an image an attack skipped was broken)."""
    size = len(results[0].correct)
    return 100 * sum(all(r.correct[i] is True for r in results) for i in range(size)) / size


def model_cells(results: list[Result], checkpoint: Optional[str], predictions: dict, eps: float,
                n: int) -> dict[str, Cell]:
    """``{task: Cell}`` of the model whose checkpoint is ``checkpoint`` (None: vanilla) from the result files."""
    by_task: dict[str, dict[str, Result]] = {}
    for r in results:
        if r.model.get("checkpoint") == checkpoint and r.key.eps == eps and r.key.n == n and r.complete:
            by_task.setdefault(r.key.dataset, {})[r.key.attack.rstrip("0123456789")] = r
    cells = {}
    for task in TOY_TASKS:
        attacks = by_task.get(task, {})
        if "clean" not in attacks or "pgd" not in attacks or task not in predictions:
            continue
        clean = attacks["clean"]
        collapsed, top = is_collapsed(predictions[task]["counts"], clean.accuracy)
        robust = _surviving([attacks["pgd"], attacks["aa"]]) if "aa" in attacks else None
        cells[task] = Cell(100 * clean.accuracy, _surviving([attacks["pgd"]]), robust, collapsed, 100 * top,
                           len(clean.correct))
    return cells


def model_metrics(cells: dict[str, Cell]) -> dict[str, Optional[float]]:
    """The :data:`METRICS` of one model (one seed) from its cells; the AutoAttack ones None until it ran."""
    held, train = [cells[t] for t in HELD_OUT], cells[TOY_TRAIN_TASK]
    values: dict[str, Optional[float]] = {"train_clean": train.clean,
                                          "heldout_clean": statistics.fmean(c.clean for c in held)}
    for kind in ROBUST:
        if any(getattr(c, kind) is None for c in cells.values()):
            values.update({f"train_{kind}": None, f"heldout_{kind}": None, f"heldout_{kind}_credit": None})
            continue
        values[f"train_{kind}"] = getattr(train, kind)
        values[f"heldout_{kind}"] = statistics.fmean(getattr(c, kind) for c in held)
        values[f"heldout_{kind}_credit"] = statistics.fmean(0.0 if c.collapsed else getattr(c, kind) for c in held)
    return values


def mean_std(values: list[Optional[float]]) -> Optional[dict]:
    """Mean and sample std (None for one value) of ``values``; None when any value is missing."""
    if any(v is None for v in values):
        return None
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "values": list(values)}


def aggregate(per_seed: dict[int, dict[str, Cell]]) -> dict:
    """Mean ± std over seeds of every task's accuracies and of every metric; collapse counts per task."""
    seeds = sorted(per_seed)
    tasks = {t: {**{kind: mean_std([getattr(per_seed[s][t], kind) for s in seeds])
                    for kind in ("clean", *ROBUST)},
                 "collapsed": sum(per_seed[s][t].collapsed for s in seeds),
                 "top_share": [per_seed[s][t].top_share for s in seeds],
                 "n": per_seed[seeds[0]][t].n} for t in TOY_TASKS}
    metrics = [model_metrics(per_seed[s]) for s in seeds]
    return {"seeds": seeds, "tasks": tasks,
            "metrics": {m: mean_std([values[m] for values in metrics]) for m in METRICS},
            "cells": {str(s): {t: asdict(c) for t, c in per_seed[s].items()} for s in seeds}}


def robust_kind(summary: dict, names: list[str]) -> str:
    """``robust`` (PGD-10 + AutoAttack) when every model in ``names`` has it, else ``pgd``."""
    has_aa = all(summary["variants"][n]["metrics"]["heldout_robust"] is not None for n in names)
    return "robust" if has_aa else "pgd"


def compare(a: dict, b: dict) -> str:
    """"higher", "lower" or "tie" for ``a`` vs ``b`` (mean/std dicts); "n/a" with no spread (one seed)."""
    if a["std"] is None or b["std"] is None:
        return "n/a"
    difference, spread = a["mean"] - b["mean"], math.hypot(a["std"], b["std"])
    if abs(difference) < spread:
        return "tie"
    return "higher" if difference > 0 else "lower"


# -- Markdown ----------------------------------------------------------------------------------------------------
def _ms(entry: dict, flag: str = "") -> str:
    spread = "" if entry["std"] is None else f" ± {entry['std']:.1f}"
    return f"{entry['mean']:.1f}{spread}{flag}"


def _collapse_mark(count: int) -> str:
    return f" †{count}" if count else ""


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


ROBUST_TITLES = {"pgd": "PGD-10 accuracy (%)",
                 "robust": "Robust accuracy (%), worst case per image over PGD-10 and AutoAttack"}


def task_tables(summary: dict, names: list[str]) -> list[str]:
    """Clean, PGD-10 and (where it ran for every model) worst-case accuracy per task for the variants ``names``."""
    lines = []
    tasks = [f"{display_name(t)}{' (train)' if t == TOY_TRAIN_TASK else ''}" for t in TOY_TASKS]
    tables = [("clean", "Clean accuracy (%)", [("heldout_clean", "Held-out avg")])]
    for kind in ROBUST[:ROBUST.index(robust_kind(summary, names)) + 1]:
        tables.append((kind, ROBUST_TITLES[kind], [(f"heldout_{kind}", "Held-out avg (raw)"),
                                                   (f"heldout_{kind}_credit", "Held-out avg, no credit")]))
    for metric, title, extra in tables:
        rows = []
        for name in names:
            entry = summary["variants"][name]
            cells = [_ms(entry["tasks"][t][metric], _collapse_mark(entry["tasks"][t]["collapsed"]))
                     for t in TOY_TASKS]
            rows.append([entry["label"], f"{entry['lr']:g}" if entry["lr"] else "–", *cells,
                         *[_ms(entry["metrics"][m]) for m, _ in extra]])
        lines += [f"#### {title}", "", *_table(["Model", "lr", *tasks, *[h for _, h in extra]], rows), ""]
    return lines


def ablation_table(summary: dict, names: list[str]) -> list[str]:
    """One row per variant: clean and robust accuracy on the training task and averaged over the held-out ones."""
    kind = robust_kind(summary, names)
    label = "PGD-10" if kind == "pgd" else "worst case"
    columns = {"train_clean": "Train clean", f"train_{kind}": f"Train {label}", "heldout_clean": "Held-out clean",
               f"heldout_{kind}": f"Held-out {label} (raw)", f"heldout_{kind}_credit": f"Held-out {label}, no credit"}
    rows = [[summary["variants"][n]["label"], *[_ms(summary["variants"][n]["metrics"][m]) for m in columns]]
            for n in names]
    return _table(["Variant", *columns.values()], rows)


def selection_table(record: dict) -> list[str]:
    grid = record["grid"]
    header = ["Method", *[f"lr {lr:g}: clean / PGD-10" for lr in grid], "Chosen"]
    rows = []
    for method, entry in sorted(record["methods"].items(), key=lambda item: METHOD_ORDER.index(item[0])):
        cells = []
        for lr in grid:
            score = entry["scores"][f"{lr:g}"]
            mark = " **←**" if lr == entry["chosen_lr"] else ""
            cells.append(f"{100 * score['clean']:.1f} / {100 * score['robust']:.1f}{mark}")
        chosen = f"{entry['chosen_lr']:g}" + ("" if entry["eligible"] else " (none kept the clean floor)")
        rows.append([method, *cells, chosen])
    vanilla = record["vanilla"]
    return [f"Vanilla on the validation split: clean {100 * vanilla['clean']:.1f}%, PGD-10 "
            f"{100 * vanilla['robust']:.1f}% (n = {vanilla['n']}); clean floor = {record['clean_floor']:g} x "
            f"vanilla's clean.", "", *_table(header, rows)]


def comparison_lines(summary: dict, method_names: list[str], reference: str = "caw") -> list[str]:
    """One line per baseline: how CAW compares on the held-out and training-task metrics (tie within spread)."""
    if reference not in summary["variants"]:
        return []
    kind = robust_kind(summary, [reference, *method_names])
    ours = summary["variants"][reference]["metrics"]
    lines = []
    for name in method_names:
        if name == reference:
            continue
        theirs = summary["variants"][name]["metrics"]
        parts = []
        for metric, short in ((f"heldout_{kind}_credit", "held-out robust (no credit)"),
                              ("heldout_clean", "held-out clean"), (f"train_{kind}", "train-task robust"),
                              ("train_clean", "train-task clean")):
            delta = ours[metric]["mean"] - theirs[metric]["mean"]
            parts.append(f"{short} {delta:+.1f} ({compare(ours[metric], theirs[metric])})")
        lines.append(f"- CAW vs {summary['variants'][name]['label']}: " + "; ".join(parts))
    return lines
