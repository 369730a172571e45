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


def _evaluate_headless(settings, datasets, attacks, n=4):
    from caw_core.evaluate import EvalConfig, evaluate
    from gui_helpers import TINY

    config = EvalConfig(models=[TINY], datasets=datasets, attacks=attacks, eps=8.0, n=n, batch_size=n,
                        data_root=settings.data_root, out=settings.results_dir, device="cpu")
    assert list(evaluate(config))[-1]["event"] == "done"


def test_results_on_disk_show_at_start_with_per_attack_rows(qtbot, gui_settings, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from caw_gui.main_window import MainWindow

    _evaluate_headless(gui_settings, ["toy-colour"], ["pgd1"])
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    win = MainWindow(gui_settings)
    qtbot.addWidget(win)
    view = win.evaluate_view
    table = view.table_view
    assert table.rowCount() == 2 and sorted(table.cell_text(i, 1) for i in range(2)) == ["clean", "robust"]
    assert "ε 8/255, n 4" in view.setting_box.currentText()
    view.per_attack.setChecked(True)
    assert table.rowCount() == 3 and table.cell_text(2, 1) == "clean → pgd1"
    header = table.horizontalHeaderItem(table.columnCount() - 1).text()
    assert header == "Avg" and table.item(0, table.columnCount() - 1).font().bold()

    other = tmp_path / "elsewhere"
    gui_settings.results_dir = str(other)
    _evaluate_headless(gui_settings, ["toy-size"], ["pgd1"], n=3)
    gui_settings.results_dir = str(tmp_path / "results")
    assert view.open_results_folder(str(other)) and gui_settings.results_dir == str(other)
    assert "n 3" in view.setting_box.currentText() and str(other) in view.results_label.text()
    assert view.chart.bar_count == 2 * 2  # (clean, robust) x (Toy size, Avg)
    for suffix in (".png", ".svg"):
        assert view.export_chart(str(tmp_path / f"chart{suffix}")).stat().st_size > 0
    win.close()


def test_one_overall_progress_bar_and_partial_averages(window):
    view = window.evaluate_view
    _tick_only(view.datasets, {"toy-colour", "toy-size"})
    view.n.setValue(4)
    view.batch.setValue(2)
    view.steps.setValue(1)
    values, labels, headers = [], [], []
    view.progress.valueChanged.connect(values.append)
    view.run()

    def seen(record):
        labels.append(view.progress_label.text())
        if record["event"] == "result" and view.table_view.columnCount():
            headers.append(view.table_view.horizontalHeaderItem(view.table_view.columnCount() - 1).text())

    view.task.record.connect(seen)
    wait_for(lambda: not view.is_running(), timeout=150, what="the evaluation")
    assert values == sorted(values) and values[-1] == view.progress.maximum()  # never restarts per attack
    assert any("item 2 of 4 (models × datasets × attacks)" in text for text in labels)
    assert any("left in total" in text for text in labels)
    assert "Avg (partial)" in headers  # while the run was going
    final = view.table_view.horizontalHeaderItem(view.table_view.columnCount() - 1).text()
    assert final == "Avg" and view.progress_label.text().startswith("finished")


def test_cancel_reaches_inside_a_long_autoattack(window, monkeypatch):
    """Cancel during AutoAttack with 1000 iterations: the evaluation ends after a handful of forward passes."""
    import caw_core.evaluate

    calls, loaded = [], []

    def counting_load_model(spec, device):
        model = load_model(spec, device)
        model.register_forward_hook(lambda *args: calls.append(1))
        loaded.append(model)
        return model

    load_model = caw_core.evaluate.load_model
    monkeypatch.setattr(caw_core.evaluate, "load_model", counting_load_model)
    view = window.evaluate_view
    _tick_only(view.datasets, {"toy-colour"})
    for name, box in view.attacks.items():
        box.setChecked(name == "aa")
    view.steps.setValue(1000)
    view.n.setValue(4)
    view.batch.setValue(4)
    view.run()
    wait_for(lambda: len(calls) > 30, what="the attack to get going")
    view.cancel()
    at_cancel = len(calls)
    wait_for(lambda: not view.is_running(), timeout=60, what="the cancelled evaluation")
    assert view.progress_label.text().startswith("cancelled")
    assert len(calls) - at_cancel <= 2 and len(calls) < 500  # 1000 APGD iterations were asked for


def test_the_evaluate_tab_fits_1024_by_700(window):
    from PySide6.QtWidgets import QApplication

    window.resize(1024, 700)
    view = window.evaluate_view
    window.tabs.setCurrentWidget(view)
    QApplication.processEvents()
    for widget in (view.run_button, view.cancel_button, view.progress, view.export_buttons["md"], view.table_view):
        bottom_right = widget.mapTo(window, widget.rect().bottomRight())
        assert window.rect().contains(bottom_right) and not widget.visibleRegion().isEmpty(), widget
