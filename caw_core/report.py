"""Merge a results folder into the paper's table, with sanity flags.

One table per evaluation protocol and setting (protocol, norm, eps, n,
seed): rows are models, columns the datasets (in the paper's order) and Avg
(the mean over the datasets the row has). Metrics per model, in percent:

- ``clean``: clean accuracy;
- ``robust``: worst case per image over every attack in the folder,
  ``(1/n) * #{i : correct_k(i) for every attack k}`` (an image an attack did not
  need to run on, because it was already broken, counts as broken);
- one row per link of the attack chain, labelled with the chain up to it
  (``clean → pgd10``, ``clean → pgd10 → aa100``): the evaluation runs each
  attack only on the images every earlier link left correct, so a link's
  accuracy is the worst case over the chain so far, never that attack alone.

Sanity flags, in every report (an evaluation that is wired wrong shows here):

- chain consistency, per dataset: each attack ran on exactly the images the
  previous link left correct (a flag on an image an earlier link broke, or a
  survivor left unattacked, means files from different runs were mixed);
- a vanilla model (no fine-tuning checkpoint) keeping more than 5% accuracy
  after an AutoAttack link: CLIP is near 0 at eps 1/255, so this means the
  attack is not reaching the model (fp16, wrong normalisation, wrong labels);
- files of an interrupted attack (left out of the table until finished), and
  rows whose Avg covers fewer datasets than the table.

There is no "AutoAttack <= PGD" check: in a chain AutoAttack only sees PGD's
survivors, so its row can never exceed PGD's and such a check could never
fire. Comparing attacks on the same images is what ``caw-core eval
--check-masking`` does (more steps and restarts never help the model; an
unbounded attack reaches chance).

Model labels come from user input (checkpoint folder names): they are escaped
in Markdown and CSV output (no markup, no spreadsheet formulas).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from caw_core.attacks.autoattack_configs import CONFIGS as AUTOATTACKS
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
    setting: dict[str, Any]  # norm, eps, n, seed, protocol, images (the distinct images-per-dataset counts)
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
    return sum(all(f is True for f in per_image) for per_image in flags) / max(len(results[0].correct), 1)


def chain_label(chain: list[str], metric: str) -> str:
    """``clean → pgd10 → aa100`` for the link ``aa100`` of the chain."""
    return " → ".join(["clean", *chain[:chain.index(metric) + 1]])


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
            by_setting[(r.key.protocol, *r.key.setting())].append(r)
    for setting, group in sorted(by_setting.items(), key=lambda kv: str(kv[0])):
        report.tables.append(_table(setting, group, report))
    return report


def _table(setting: tuple, group: list[Result], report: Report) -> Table:
    protocol, norm, eps, n, seed = setting
    where = f"[{protocol}: {norm} eps {eps:g}/255, n {n}]"
    cells: dict[tuple[str, str], dict[str, Result]] = defaultdict(dict)  # (model_id, dataset) -> attack -> result
    models: dict[str, Result] = {}
    for r in group:
        cells[(r.key.model_id, r.key.dataset)][r.key.attack] = r
        models.setdefault(r.key.model_id, r)
    datasets = _dataset_order({d for _, d in cells})
    attacks = sorted({a for c in cells.values() for a in c if a != "clean"}, key=attack_sort_key)
    images = sorted({len(r.indices) for r in group})
    rows = []
    for mid, first in models.items():
        label, vanilla = first.model["label"], first.vanilla
        metrics: dict[str, dict[str, float]] = defaultdict(dict)
        for dataset in datasets:
            cell = cells.get((mid, dataset), {})
            if len({tuple(r.indices) for r in cell.values()}) > 1:
                report.flag("error", f"{where} {label} / {dataset}: result files cover different images; left out")
                continue
            chain = sorted((a for a in cell if a != "clean"), key=attack_sort_key)
            if "clean" in cell:
                metrics["clean"][dataset] = 100 * cell["clean"].accuracy
                _check_chain(f"{where} {label} / {dataset}", cell["clean"], [cell[a] for a in chain], report)
            for k, attack in enumerate(chain):
                metrics[attack][dataset] = 100 * _worst_case([cell[a] for a in ["clean", *chain[:k + 1]]
                                                              if a in cell])
            if chain:
                metrics["robust"][dataset] = 100 * _worst_case([cell[a] for a in chain])
            _check_vanilla(f"{where} {label} / {dataset}", vanilla, chain, metrics, dataset, report)
        for metric in ["clean", "robust", *attacks]:
            if metrics.get(metric):
                rows.append(Row(label, mid, vanilla, metric, dict(metrics[metric])))
                if len(metrics[metric]) < len(datasets):
                    report.flag("warning", f"{where} {label}: {metric} Avg covers {len(metrics[metric])} of "
                                           f"{len(datasets)} datasets")
    return Table({"norm": norm, "eps": eps, "n": n, "seed": seed, "protocol": protocol, "images": images},
                 datasets, rows, attacks)


def _check_chain(name: str, clean: Result, links: list[Result], report: Report) -> None:
    """Each link ran on clean-correct images only, and on every image the previous link left correct."""
    survivors = [c is True for c in clean.correct]
    for link in links:
        strays = sum(c is not None and not ok for c, ok in zip(link.correct, [f is True for f in clean.correct]))
        if strays:
            report.flag("error", f"{name}: {link.key.attack} has results for {strays} images clean accuracy "
                                 "misclassified (files from different runs mixed?)")
        missed = sum(alive and c is None for alive, c in zip(survivors, link.correct))
        if missed:
            report.flag("error", f"{name}: {link.key.attack} left {missed} images unattacked that survived the "
                                 "earlier links (its robust accuracy is understated; rerun the eval command)")
        survivors = [alive and c is True for alive, c in zip(survivors, link.correct)]


def _check_vanilla(name: str, vanilla: bool, chain: list[str], metrics: dict, dataset: str, report: Report) -> None:
    for attack in chain:
        value = metrics[attack][dataset]
        if vanilla and parse_attack(attack).name in AUTOATTACKS and value > VANILLA_AA_LIMIT:
            report.flag("warning", f"{name}: vanilla model keeps {value:.2f}% after {attack} "
                                   f"(expected near 0): the evaluation may be wired wrong")


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def markdown_text(text: str) -> str:
    """``text`` as literal Markdown: markup characters escaped, line breaks flattened."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))


def csv_text(text: str) -> str:
    """``text`` safe in a spreadsheet: a leading ``= + - @`` (a formula) or control character gets a quote."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def images_text(images: list[int]) -> str:
    if not images:
        return "0 images"
    return f"{images[0]} images" if len(images) == 1 else f"{images[0]}–{images[-1]} images"


def _fmt(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f}"


def to_markdown(report: Report) -> str:
    out = []
    for table in report.tables:
        s = table.setting
        out.append(f"## Protocol {s['protocol']}: {s['norm']} eps {s['eps']:g}/255, "
                   f"{images_text(s['images'])} per dataset (n {s['n']}), seed {s['seed']}\n")
        header = ["Model", *[display_name(d) for d in table.datasets], "Avg"]
        for metric in ["clean", "robust", *table.robust_attacks]:
            rows = [r for r in table.rows if r.metric == metric]
            if not rows:
                continue
            if metric == "clean":
                title = "Clean accuracy (%)"
            elif metric == "robust":
                title = f"Robust accuracy (%), worst case per image over {', '.join(table.robust_attacks)}"
            else:
                title = (f"Accuracy (%) after the chain {chain_label(table.robust_attacks, metric)} "
                         "(each attack runs on the previous one's survivors)")
            out.append(f"### {title}\n")
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            for r in rows:
                cells = [_fmt(r.values.get(d)) for d in table.datasets]
                out.append("| " + " | ".join([markdown_text(r.model), *cells, _fmt(r.avg())]) + " |")
            out.append("")
    if not report.tables:
        out.append("No finished results.\n")
    out.append("### Sanity checks\n")
    out += [f"- **{f['level'].upper()}**: {markdown_text(f['message'])}" for f in report.flags] or ["- all passed"]
    return "\n".join(out) + "\n"


def to_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for table in report.tables:
        writer.writerow(["norm", "eps", "n", "seed", "model", "metric", *table.datasets, "avg", "protocol"])
        s = table.setting
        for r in table.rows:
            writer.writerow([s["norm"], s["eps"], s["n"], s["seed"], csv_text(r.model), r.metric,
                             *[_fmt(r.values.get(d)).replace("–", "") for d in table.datasets], _fmt(r.avg()),
                             s["protocol"]])
    for f in report.flags:
        writer.writerow([f"# {f['level']}: {csv_text(f['message'])}"])
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
