"""Measure how long Cancel takes in the playground and the Evaluate tab (real widgets, the real main window).

Starts a long AutoAttack (1000 iterations) on the embedded toy CLIP, lets it run a few seconds, presses
Cancel and times until the job has ended (its thread finished and the buttons are back):

    QT_QPA_PLATFORM=offscreen python scripts/measure_cancel.py [--warmup 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def timed_cancel(start, cancel, busy, warmup: float) -> float:
    """Start, wait ``warmup`` seconds of attack, cancel; seconds from the cancel to the job's end."""
    from caw_gui.waiting import wait_for

    start()
    deadline = time.monotonic() + warmup
    wait_for(lambda: time.monotonic() > deadline, timeout=warmup + 5, what="the warm-up")
    assert busy(), "the job ended before it could be cancelled"
    pressed = time.perf_counter()
    cancel()
    wait_for(lambda: not busy(), timeout=600, what="the cancel")
    return time.perf_counter() - pressed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of attack before Cancel")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)  # noqa: F841

    from caw_core.models import ModelSpec
    from caw_gui.main_window import MainWindow
    from caw_gui.settings import AppSettings
    from caw_gui.waiting import wait_for

    home = Path(tempfile.mkdtemp(prefix="caw-cancel-"))
    settings = AppSettings(QSettings(str(home / "settings.ini"), QSettings.IniFormat))
    settings.runs_dir, settings.results_dir, settings.data_root = str(home / "runs"), str(home / "results"), str(home)
    settings.device, settings.model_spec = "cpu", ModelSpec("toy", None)
    window = MainWindow(settings)
    window.resize(1024, 700)
    window.show()
    wait_for(lambda: getattr(window, "model_task", None) is None, timeout=300, what="the model")

    play = window.playground
    window.tabs.setCurrentWidget(play)
    play.attack.setCurrentText("aa")
    play.steps.setValue(1000)
    play.eps.setValue(4)
    play_times = [timed_cancel(lambda: play.gallery._clicked(play.gallery.item(0)), play.cancel, play.is_busy,
                               args.warmup) for _ in range(args.repeats)]

    evaluate = window.evaluate_view
    window.tabs.setCurrentWidget(evaluate)
    for name, box in evaluate.attacks.items():
        box.setChecked(name == "aa")
    evaluate.steps.setValue(1000)
    evaluate.n.setValue(100)
    evaluate.batch.setValue(50)
    eval_times = []
    for _ in range(args.repeats):
        eval_times.append(timed_cancel(evaluate.run, evaluate.cancel, evaluate.is_running, args.warmup))
    window.close()
    for name, times in (("playground AA-1000", play_times), ("evaluate AA-1000, n 100, batch 50", eval_times)):
        print(f"{name}: cancel latency median {statistics.median(times):.3f} s, max {max(times):.3f} s "
              f"over {len(times)} runs ({', '.join(f'{t:.3f}' for t in times)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
