"""Render every tab of caw-gui to PNG under docs/screenshots/ (``make screenshots``).

Runs offscreen on the CPU: trains a TeCoA run for a while and stops it, then
trains CAW and shoots the Train tab mid-run with the TeCoA run ticked in the
run list (two runs overlaid), stops (checkpoint), attacks a toy scene with vanilla vs the
fresh checkpoint in the playground, and runs a small toy benchmark in the
Evaluate tab (shot mid-run and finished). Uses the embedded toy CLIP when its
weights exist, else the random-weight test CLIP (the pictures then show an
untrained model). Settings and runs go to a temporary folder.

    python scripts/screenshots.py [--out docs/screenshots] [--tabs train playground evaluate]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def shoot(window, name: str, out: Path) -> None:
    QApplication.processEvents()
    path = out / f"{name}.png"
    window.grab().save(str(path))
    print(f"wrote {path}")


TABS = ("train", "playground", "evaluate")


def train_two_runs(window, toy: bool, out: Path, shot: bool, steps: int = 60) -> None:
    """A TeCoA run stopped after ``steps`` steps, then CAW shot mid-run with the TeCoA curves overlaid."""
    from caw_gui.waiting import wait_for

    train = window.train_view
    train.max_steps.setValue(1000)
    if not toy:  # the random test model: a visible learning curve needs a large step size
        train.batch.setValue(16)
        train.lr.setText("0.01")
    for method in ("tecoa", "caw"):
        train.method.setCurrentText(method)
        train.start()
        wait_for(lambda: train.loss_plot.point_count("total") >= steps, timeout=600, what=f"{steps} {method} steps")
        if method == "caw":
            break
        train.stop()
        wait_for(lambda: not train.is_running(), timeout=120, what="the run to stop")
    first = next(path for path, info in train.run_list.infos.items() if info.method == "tecoa")
    train.run_list.set_overlay(first, True)
    train._refresh()
    if shot:
        shoot(window, "train", out)
    train.stop()
    wait_for(lambda: not train.is_running(), timeout=120, what="the run to stop")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "screenshots"))
    parser.add_argument("--tabs", nargs="+", default=list(TABS), choices=TABS, help="which tabs to render")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)

    from caw_core.models import ModelSpec
    from caw_core.models.loading import toy_weights_path
    from caw_gui.main_window import MainWindow
    from caw_gui.settings import AppSettings
    from caw_gui.waiting import wait_for

    home = Path(tempfile.mkdtemp(prefix="caw-screenshots-"))
    settings = AppSettings(QSettings(str(home / "settings.ini"), QSettings.IniFormat))
    settings.runs_dir, settings.results_dir, settings.data_root = str(home / "runs"), str(home / "results"), str(home)
    toy = toy_weights_path().exists()
    settings.model_spec = ModelSpec("toy", None) if toy else ModelSpec("caw-test-tiny", None)
    window = MainWindow(settings)
    window.resize(1440, 900)
    window.show()
    wait_for(lambda: window.model_task is None, what="the model")

    if "train" in args.tabs or "playground" in args.tabs:  # the playground attacks the fresh checkpoint
        train_two_runs(window, toy, out, shot="train" in args.tabs)
    if "playground" in args.tabs:
        shoot_playground(window, settings, out)
    if "evaluate" in args.tabs:
        shoot_evaluate(window, out)
    window.close()
    return 0


def shoot_playground(window, settings, out: Path) -> None:
    from caw_gui.waiting import wait_for

    play = window.playground
    window.tabs.setCurrentWidget(play)
    play.set_runs_dir(settings.runs_dir)
    play.eps.setValue(8)
    play.gallery._clicked(play.gallery.item(1))
    wait_for(lambda: not play.is_busy(), timeout=300, what="the attack")
    shoot(window, "playground", out)


def shoot_evaluate(window, out: Path) -> None:
    from caw_gui.waiting import wait_for

    evaluate = window.evaluate_view
    window.tabs.setCurrentWidget(evaluate)
    evaluate.refresh_sources()
    evaluate.n.setValue(100)
    evaluate.batch.setValue(50)
    evaluate.run()
    wait_for(lambda: evaluate.table_view.rowCount() > 0, timeout=300, what="a first result")
    shoot(window, "evaluate_running", out)
    wait_for(lambda: not evaluate.is_running(), timeout=600, what="the benchmark")
    shoot(window, "evaluate", out)


if __name__ == "__main__":
    sys.exit(main())
