"""The toy experiment's written output: ``summary.json``, ``RESULTS.md`` and the figures, from the run folder.

Everything here reads what :mod:`caw_core.toy.experiment` wrote (result
files, prediction counts, selection record), so it can be rerun on a finished
or a partial folder: models whose evaluation is not finished are left out and
the report says which.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from caw_core.io import atomic_write, atomic_write_json
from caw_core.results import load_results
from caw_core.toy import plot, selection, summary as S
from caw_core.toy.experiment import ABLATION_VARIANTS, METHOD_VARIANTS, VANILLA, Experiment, prediction_path


def build_summary(experiment: Experiment) -> dict:
    """Every variant's aggregated numbers (see :mod:`caw_core.toy.summary`) plus the settings and the selection."""
    c, out = experiment.config, experiment.out
    results = load_results(out / "results")
    variants, missing = {}, []

    def cells_of(run: Optional[Path]):
        spec = experiment.model_spec(run)
        path = prediction_path(out, spec)
        if not path.is_file():
            return None
        cells = S.model_cells(results, spec.checkpoint, json.loads(path.read_text(encoding="utf-8")), c.eps, c.n)
        return cells if len(cells) == len(S.TOY_TASKS) else None

    vanilla = cells_of(None)
    if vanilla is not None:
        variants[VANILLA] = {"label": "vanilla (no fine-tune)", "lr": None, "method": None, "options": {},
                             **S.aggregate({0: vanilla})}
    else:
        missing.append(VANILLA)
    has_selection = bool(c.lr_grid) and (out / "selection.json").is_file()
    for variant in c.variants():
        if c.lr_grid and not has_selection:
            missing.append(variant.key)
            continue
        per_seed = {seed: cells_of(experiment.run_dir(variant, seed)) for seed in c.seeds}
        done = {seed: cells for seed, cells in per_seed.items() if cells is not None}
        missing += [f"{variant.key} seed {seed}" for seed in per_seed if seed not in done]
        if done:
            variants[variant.key] = {"label": variant.label, "lr": experiment.lr_of(variant), "method": variant.method,
                                     "options": variant.option_dict(), **S.aggregate(done)}
    methods = [VANILLA] + [v.key for v in METHOD_VARIANTS if v.key in c.methods]
    return {
        "eps": c.eps, "n": c.n, "seeds": list(c.seeds), "train_steps": c.train_steps,
        "batch_size": c.batch_size, "collapse_share": S.COLLAPSE_SHARE,
        "methods": [m for m in methods if m in variants],
        "ablation": [v.key for v in ABLATION_VARIANTS if c.ablation and v.key in variants],
        "variants": variants, "missing": missing,
        "selection": json.loads((out / "selection.json").read_text(encoding="utf-8")) if has_selection else None,
    }


def results_markdown(summary: dict, command: str, wall_s: float, figures: Optional[list[Path]]) -> str:
    """RESULTS.md of one run: settings, the methods tables, the comparison, the ablation and the selection."""
    seeds = len(summary["seeds"])
    lines = [
        "# caw toy experiment", "",
        f"Command: `{command}`, wall time {wall_s:.0f} s. Fine-tunes: {summary['train_steps']} steps x batch "
        f"{summary['batch_size']}, PGD-2 at eps {summary['eps']:g}/255 on toy-shape (every method the same); "
        f"evaluation: n = {summary['n']} test images per task and cell, eps {summary['eps']:g}/255, clean and "
        f"PGD-10 for every model, AutoAttack (APGD-CE + APGD-T, on the images PGD-10 left correct) for the "
        f"methods where the run got to it; {seeds} seed{'s' if seeds > 1 else ''} "
        f"({', '.join(map(str, summary['seeds']))}), mean ± std over seeds.", "",
        f"† k: the model is collapsed on that task in k seeds (most frequent clean prediction >= "
        f"{100 * summary['collapse_share']:.0f}% of images, or clean accuracy within 2 standard errors of "
        "chance); 'no credit' averages count those cells' robust accuracy as 0.", "",
    ]
    if summary["missing"]:
        lines += [f"Not finished (left out): {', '.join(summary['missing'])}.", ""]
    lines += ["## Methods", "", *S.task_tables(summary, summary["methods"])]
    comparison = S.comparison_lines(summary, summary["methods"][1:])
    if comparison:
        lines += ["## CAW against each baseline (difference of means; tie = within sqrt(std_a² + std_b²))", "",
                  *comparison, ""]
    if figures:
        lines += ["## Figures", "", "![held-out clean vs robust](clean_vs_robust.png)", "",
                  "![per-task accuracy](per_task.png)", ""]
    elif figures is None:
        lines += ["(Figures skipped: matplotlib is not installed; `pip install caw[plot]`.)", ""]
    if summary["ablation"]:
        lines += ["## Ablation (CAW's terms at CAW's learning rate)", "",
                  *S.ablation_table(summary, summary["ablation"]), ""]
    if summary["selection"]:
        lines += ["## Learning-rate selection (validation split of toy-shape)", "",
                  f"Rule: {summary['selection']['rule']}.", "", *S.selection_table(summary["selection"]), ""]
    else:
        lines += [f"Learning rates: the recipe's (chosen by `caw-core demo --full`; rule: {selection.RULE}).", ""]
    return "\n".join(lines)


def write_outputs(experiment: Experiment, command: str, wall_s: float) -> dict:
    """Write summary.json, the figures and RESULTS.md into the run folder; returns the summary."""
    summary = build_summary(experiment)
    out = experiment.out
    atomic_write_json(out / "summary.json", summary)
    figures = plot.write_figures(summary, summary["methods"], out) if summary["methods"] else []
    text = results_markdown(summary, command, wall_s, figures)
    atomic_write(out / "RESULTS.md", lambda handle: handle.write(text))
    return {"summary": summary, "markdown": text, "figures": figures or [], "results_md": out / "RESULTS.md"}
