"""The toy experiment's figures, as PNG and SVG: clean vs robust on the held-out tasks, and per-task bars.

matplotlib is an optional dependency (the ``plot`` extra): without it the
figures are skipped and :func:`write_figures` says so; the tables do not need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from caw_core.data.toyworld import TOY_TASKS, TOY_TRAIN_TASK
from caw_core.report import display_name
from caw_core.toy.summary import robust_kind

FORMATS = ("png", "svg")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _std(entry: dict) -> float:
    return entry["std"] or 0.0


def clean_vs_robust(plt, summary: dict, names: list[str]):
    """Held-out clean accuracy (x) vs held-out robust accuracy with no credit for collapse (y), ± std over seeds.

    Robust: worst case over PGD-10 and AutoAttack where AutoAttack ran for every model, else PGD-10.
    """
    kind = robust_kind(summary, names)
    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    for name in names:
        entry = summary["variants"][name]
        x, y = entry["metrics"]["heldout_clean"], entry["metrics"][f"heldout_{kind}_credit"]
        vanilla = entry["lr"] is None
        axes.errorbar(x["mean"], y["mean"], xerr=_std(x), yerr=_std(y), fmt="*" if vanilla else "o",
                      markersize=14 if vanilla else 7, capsize=3, color="black" if vanilla else None,
                      label=entry["label"])
    seeds = len(summary["seeds"])
    axes.set_xlabel("held-out clean accuracy (%)")
    attack = "PGD-10 + AutoAttack" if kind == "robust" else "PGD-10"
    axes.set_ylabel(f"held-out {attack} accuracy (%), no credit for collapse", fontsize=9)
    axes.set_title(f"Toy world, eps {summary['eps']:g}/255, n {summary['n']} per task, "
                   f"{seeds} seed{'s' if seeds > 1 else ''} (± std)", fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    return figure


def per_task(plt, summary: dict, names: list[str]):
    """Grouped bars per task: clean (top) and robust (bottom) accuracy of every model, ± std over seeds."""
    kind = robust_kind(summary, names)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.4), sharex=True)
    width = 0.8 / len(names)
    positions = range(len(TOY_TASKS))
    for k, name in enumerate(names):
        entry = summary["variants"][name]
        for axes, metric in ((top, "clean"), (bottom, kind)):
            values = [entry["tasks"][t][metric] for t in TOY_TASKS]
            axes.bar([p + (k - (len(names) - 1) / 2) * width for p in positions], [v["mean"] for v in values],
                     width, yerr=[_std(v) for v in values], capsize=2, label=entry["label"],
                     hatch=["//" if entry["tasks"][t]["collapsed"] else "" for t in TOY_TASKS])
    top.set_ylabel("clean accuracy (%)")
    bottom.set_ylabel("PGD-10 + AutoAttack (%)" if kind == "robust" else "PGD-10 accuracy (%)")
    bottom.set_xticks(list(positions), [display_name(t) + (" (train)" if t == TOY_TRAIN_TASK else "")
                                        for t in TOY_TASKS])
    figure.legend(*top.get_legend_handles_labels(), fontsize=7, ncol=4, loc="lower center")
    top.set_title("Per task; hatched = collapsed (at chance) in at least one seed", fontsize=9)
    for axes in (top, bottom):
        axes.grid(axis="y", alpha=0.3)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    return figure


def write_figures(summary: dict, names: list[str], out: str | Path) -> Optional[list[Path]]:
    """Write both figures as PNG and SVG into ``out``; None when matplotlib is not installed."""
    plt = _pyplot()
    if plt is None:
        return None
    written = []
    for stem, draw in (("clean_vs_robust", clean_vs_robust), ("per_task", per_task)):
        figure = draw(plt, summary, names)
        for fmt in FORMATS:
            path = Path(out) / f"{stem}.{fmt}"
            temporary = path.with_name(f".{path.name}.tmp")
            figure.savefig(temporary, format=fmt, dpi=120)
            temporary.replace(path)
            written.append(path)
        plt.close(figure)
    return written
