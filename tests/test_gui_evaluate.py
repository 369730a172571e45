"""Evaluate tab: a toy benchmark fills the paper-style table and exports; missing data is refused clearly."""

from __future__ import annotations

import json

import pytest
from gui_helpers import gui_settings, trained_run, wait_for, window  # noqa: F401  (fixtures)
from PySide6.QtCore import Qt

from caw_gui.views.evaluate_view import _checked_items

pytestmark = pytest.mark.gui


def _tick_only(tree, names: set[str]) -> None:
    for i in range(tree.topLevelItemCount()):
        group = tree.topLevelItem(i)
        for j in range(group.childCount()):
            item = group.child(j)
            item.setCheckState(0, Qt.Checked if item.data(0, Qt.UserRole) in names else Qt.Unchecked)


def test_dataset_status_comes_from_the_data_root(window):
    view = window.evaluate_view
    status = {view.datasets.topLevelItem(g).child(i).data(0, Qt.UserRole): view.datasets.topLevelItem(g).child(i).text(1)
              for g in range(2) for i in range(view.datasets.topLevelItem(g).childCount())}
    assert len(status) == 5 + 16
    assert status["toy-colour"] == "found" and status["cifar10"] == "missing"
    assert "expected layout" in view.datasets.topLevelItem(1).child(1).toolTip(0)
    _tick_only(view.datasets, {"toy-colour", "cifar10"})
    view.run()
    assert not view.is_running() and "cifar10: missing" in view.banner.text()


def test_toy_benchmark_fills_the_table_and_exports(window, trained_run, tmp_path):
    view = window.evaluate_view
    assert view.add_checkpoint(str(trained_run))
    assert not view.add_checkpoint(str(tmp_path)) and "no caw checkpoint" in view.banner.text()
    assert len(_checked_items(view.models)) == 2
    _tick_only(view.datasets, {"toy-colour", "toy-size"})
    view.n.setValue(6)
    view.batch.setValue(6)
    view.steps.setValue(1)
    view.run()
    assert view.is_running() and not view.run_button.isEnabled()
    wait_for(lambda: not view.is_running(), timeout=150, what="the evaluation")
    assert view.banner.text() == "" and view.progress_label.text().startswith("finished")
    table = view.table_view
    headers = [table.horizontalHeaderItem(j).text() for j in range(table.columnCount())]
    assert headers == ["Model", "Metric", "Toy colour", "Toy size", "Avg"]
    assert table.rowCount() == 4  # 2 models x (clean, robust)
    metrics = sorted(table.cell_text(i, 1) for i in range(4))
    assert metrics == ["clean", "clean", "robust", "robust"]
    for i in range(4):
        values = [float(table.cell_text(i, j)) for j in (2, 3, 4)]
        assert all(0 <= v <= 100 for v in values) and abs(values[2] - (values[0] + values[1]) / 2) < 0.06
    assert view.chart.bar_count == 2 * 2 * 3  # models x metrics x (datasets + Avg)

    written = {fmt: view.export(fmt, str(tmp_path / f"table.{fmt}")) for fmt in ("md", "csv", "json")}
    assert "| Toy colour | Toy size | Avg |" in written["md"].read_text()
    assert written["csv"].read_text().startswith("norm,eps,n,seed,model,metric,toy-colour,toy-size,avg")
    rows = json.loads(written["json"].read_text())["tables"][0]["rows"]
    assert sorted(r["metric"] for r in rows) == ["clean", "clean", "pgd1", "pgd1", "robust", "robust"]

    results = sorted(p.name for p in (tmp_path / "results").glob("*.json"))
    assert len(results) == 2 * 2 * 2  # models x datasets x (clean, pgd1): the CLI's results layout
    view.run()  # a rerun reuses every finished result (resumable)
    wait_for(lambda: not view.is_running(), timeout=60, what="the rerun")
    assert sorted(p.name for p in (tmp_path / "results").glob("*.json")) == results
    assert table.rowCount() == 4
