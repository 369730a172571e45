"""Merge a results folder into the paper's table, with sanity flags.

One table per evaluation setting (norm, eps, n, seed): rows are models,
columns the datasets (in the protocol's order) and Avg (the mean over the
datasets the row has). Metrics per model, in percent:

- ``clean``: clean accuracy;
- ``robust``: worst case per image over every attack in the folder,
  ``(1/n) * #{i : correct_k(i) for every attack k}`` (an image an attack did not
  need to run on, because it was already broken, counts as broken);
- one row per attack (``pgd10``, ``aa100``, ...): that attack's file alone.

Sanity flags, in every report (an evaluation that is wired wrong shows here):

- ``robust <= clean`` and every attack ``<= clean`` per dataset;
- AutoAttack ``<=`` PGD (the stronger attack cannot leave more images correct);
- a vanilla model (no fine-tuning checkpoint) keeping more than 5% robust
  accuracy under AutoAttack: CLIP is near 0 at eps 1/255, so this means the
  attack is not reaching the model (fp16, wrong normalisation, wrong labels);
- files of an interrupted attack (left out of the table until finished), and
  rows whose Avg covers fewer datasets than the table.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from caw_core.attacks.registry import attack_sort_key, parse_attack
from caw_core.data import UnknownDatasetError, available_datasets, get_spec
from caw_core.data.paper import PAPER_DATASETS
from caw_core.results import Result, load_results

VANILLA_AA_LIMIT = 5.0  # percent
FORMATS = ("md", "csv", "json")


@dataclass
class Row:
    model: str
    model_id: str
    vanilla: bool
    metric: str
    values: dict[str, float]  # dataset -> accuracy in percent

    def avg(self) -> Optional[float]:
        return sum(self.values.values()) / len(self.values) if self.values else None


@dataclass
class Table:
    setting: dict[str, Any]  # norm, eps, n, seed
    datasets: list[str]
    rows: list[Row]
    robust_attacks: list[str]


@dataclass
class Report:
    tables: list[Table] = field(default_factory=list)
    flags: list[dict[str, str]] = field(default_factory=list)

    def flag(self, level: str, message: str) -> None:
        self.flags.append({"level": level, "message": message})


def display_name(dataset: str) -> str:
    try:
        return get_spec(dataset).display_name
    except UnknownDatasetError:
        return dataset


def _dataset_order(names) -> list[str]:
    """The protocol's table order, then other registered datasets in registry order, then the rest by name."""
    order = list(PAPER_DATASETS) + [d for d in available_datasets() if d not in PAPER_DATASETS]
    return sorted(names, key=lambda d: (order.index(d) if d in order else len(order), d))


def _worst_case(results: list[Result]) -> float:
    flags = zip(*(r.correct for r in results))
    return sum(all(f is True for f in per_image) for per_image in flags) / len(results[0].correct)


def build_report(results: list[Result]) -> Report:
    """Tables and sanity flags from loaded result files."""
    report = Report()
    for r in results:
        if not r.complete:
            report.flag("warning", f"{r.model['label']} / {r.key.dataset} / {r.key.attack}: interrupted (left out); "
                                   "rerun the same eval command to finish it")
    by_setting: dict[tuple, list[Result]] = defaultdict(list)
    for r in results:
        if r.complete:
            by_setting[r.key.setting()].append(r)
    for setting, group in sorted(by_setting.items(), key=lambda kv: str(kv[0])):
        report.tables.append(_table(setting, group, report))
    return report


def _table(setting: tuple, group: list[Result], report: Report) -> Table:
    norm, eps, n, seed = setting
    where = f"[{norm} eps {eps:g}/255, n {n}]"
    cells: dict[tuple[str, str], dict[str, Result]] = defaultdict(dict)  # (model_id, dataset) -> attack -> result
    models: dict[str, Result] = {}
    for r in group:
        cells[(r.key.model_id, r.key.dataset)][r.key.attack] = r
        models.setdefault(r.key.model_id, r)
    datasets = _dataset_order({d for _, d in cells})
    attacks = sorted({a for c in cells.values() for a in c if a != "clean"}, key=attack_sort_key)
    rows = []
    for mid, first in models.items():
        label, vanilla = first.model["label"], first.vanilla
        metrics: dict[str, dict[str, float]] = defaultdict(dict)
        for dataset in datasets:
            cell = cells.get((mid, dataset), {})
            if len({tuple(r.indices) for r in cell.values()}) > 1:
                report.flag("error", f"{where} {label} / {dataset}: result files cover different images; left out")
                continue
            for attack, r in cell.items():
                metrics[attack][dataset] = 100 * r.accuracy
            adversarial = [r for a, r in cell.items() if a != "clean"]
            if adversarial:
                metrics["robust"][dataset] = 100 * _worst_case(adversarial)
            _check_cell(where, label, vanilla, dataset, {a: v[dataset] for a, v in metrics.items()
                                                          if dataset in v}, report)
        for metric in ["clean", "robust", *attacks]:
            if metrics.get(metric):
                rows.append(Row(label, mid, vanilla, metric, dict(metrics[metric])))
                if len(metrics[metric]) < len(datasets):
                    report.flag("warning", f"{where} {label}: {metric} Avg covers {len(metrics[metric])} of "
                                           f"{len(datasets)} datasets")
    return Table({"norm": norm, "eps": eps, "n": n, "seed": seed}, datasets, rows, attacks)


def _check_cell(where: str, label: str, vanilla: bool, dataset: str, acc: dict[str, float], report: Report) -> None:
    name = f"{where} {label} / {dataset}"
    clean = acc.get("clean")
    for metric, value in acc.items():
        if clean is not None and metric != "clean" and value > clean + 1e-9:
            report.flag("error", f"{name}: {metric} accuracy {value:.2f} exceeds clean accuracy {clean:.2f}")
    kinds = {m: parse_attack(m)[0] for m in acc if m not in ("clean", "robust")}
    pgds = {m: v for m, v in acc.items() if kinds.get(m) == "pgd"}
    for aa in (m for m in acc if kinds.get(m) == "aa"):
        for pgd, value in pgds.items():
            if acc[aa] > value + 1e-9:
                report.flag("error", f"{name}: AutoAttack ({aa}) {acc[aa]:.2f} exceeds PGD ({pgd}) {value:.2f}; "
                                     "the stronger attack cannot leave more images correct")
        if vanilla and acc[aa] > VANILLA_AA_LIMIT:
            report.flag("warning", f"{name}: vanilla model keeps {acc[aa]:.2f}% under AutoAttack "
                                   f"(expected near 0): the evaluation may be wired wrong")


def _fmt(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f}"


def to_markdown(report: Report) -> str:
    out = []
    for table in report.tables:
        s = table.setting
        out.append(f"## {s['norm']} eps {s['eps']:g}/255, n = {s['n']} per dataset, seed {s['seed']}\n")
        header = ["Model", *[display_name(d) for d in table.datasets], "Avg"]
        for metric in ["clean", "robust", *table.robust_attacks]:
            rows = [r for r in table.rows if r.metric == metric]
            if not rows:
                continue
            title = {"clean": "Clean accuracy (%)",
                     "robust": f"Robust accuracy (%), worst case per image over {', '.join(table.robust_attacks)}"
                     }.get(metric, f"{metric} accuracy (%)")
            out.append(f"### {title}\n")
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            for r in rows:
                cells = [_fmt(r.values.get(d)) for d in table.datasets]
                out.append("| " + " | ".join([r.model, *cells, _fmt(r.avg())]) + " |")
            out.append("")
    if not report.tables:
        out.append("No finished results.\n")
    out.append("### Sanity checks\n")
    out += [f"- **{f['level'].upper()}**: {f['message']}" for f in report.flags] or ["- all passed"]
    return "\n".join(out) + "\n"


def to_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for table in report.tables:
        writer.writerow(["norm", "eps", "n", "seed", "model", "metric", *table.datasets, "avg"])
        for r in table.rows:
            writer.writerow([*table.setting.values(), r.model, r.metric,
                             *[_fmt(r.values.get(d)).replace("–", "") for d in table.datasets], _fmt(r.avg())])
    for f in report.flags:
        writer.writerow([f"# {f['level']}: {f['message']}"])
    return buffer.getvalue()


def to_json(report: Report) -> str:
    payload = {"tables": [{"setting": t.setting, "datasets": t.datasets, "robust_attacks": t.robust_attacks,
                           "rows": [{"model": r.model, "model_id": r.model_id, "vanilla": r.vanilla,
                                     "metric": r.metric, "values": r.values, "avg": r.avg()} for r in t.rows]}
                          for t in report.tables],
               "flags": report.flags}
    return json.dumps(payload, indent=2)


RENDERERS = {"md": to_markdown, "csv": to_csv, "json": to_json}


def render_report(results_dir: str | Path, fmt: str = "md") -> str:
    """The report of every result file in ``results_dir`` as Markdown, CSV or JSON."""
    if fmt not in RENDERERS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if not Path(results_dir).is_dir():
        raise FileNotFoundError(f"results folder {results_dir} does not exist")
    return RENDERERS[fmt](build_report(load_results(results_dir)))
