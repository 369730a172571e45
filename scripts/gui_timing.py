"""Time the real entry point (``python -m caw_gui.app``): time to the first window, and quit latency while training.

The app runs unmodified in a subprocess (offscreen unless QT_QPA_PLATFORM is set, throwaway HOME and XDG
folders); a ``sitecustomize`` probe placed first on its PYTHONPATH watches the top-level windows from a
QTimer and prints ``PROBE`` lines:

* ``window``: seconds from process start until each window class is first visible; quits once the main
  window shows.
* ``quit``: once the main window shows and its model has loaded, starts training with the Train tab's
  defaults, closes the window after 3 steps (answering Yes to "Training in progress") and prints how long
  ``close()`` took, when the window disappeared, when the process exited and the checkpointed step.

    python scripts/gui_timing.py window [--repo PATH] [--repeat N]
    python scripts/gui_timing.py quit [--repo PATH]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = r'''
import atexit, importlib, importlib.abc, importlib.util, json, os, sys, time
MODE, START, marks = os.environ["CAW_PROBE"], float(os.environ["CAW_PROBE_START"]), {}

def checkpoint_step():
    latest = os.path.join(marks.get("run", ""), "checkpoints", "latest.json")
    return json.load(open(latest))["step"] if os.path.exists(latest) else None

def at_exit():
    if "close" in marks:
        print(f"PROBE process exited {time.perf_counter() - marks['close']:.2f} s after close(); "
              f"checkpoint step {checkpoint_step()}", flush=True)
atexit.register(at_exit)

def patch():
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox
    QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.Yes)
    original_exec, seen = QApplication.exec, set()

    def exec_(*_):
        app = QApplication.instance()

        def poll():
            for widget in app.topLevelWidgets():
                name = type(widget).__name__
                if widget.isVisible() and name not in seen:
                    seen.add(name)
                    print(f"PROBE {name} visible {time.time() - START:.2f} s after start", flush=True)
            window = next((w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow"), None)
            if window is None or "MainWindow" not in seen:
                return
            if MODE == "window":
                app.closeAllWindows(); app.quit(); return
            view = window.train_view
            if "started" not in marks and window.model_task is None:
                marks["started"] = True
                view.start()
            elif "started" in marks and "close" not in marks and view.loss_plot.point_count("total") >= 3:
                marks["run"] = view.run_dir
                marks["close"] = time.perf_counter()
                window.close()
                print(f"PROBE close() returned after {time.perf_counter() - marks['close']:.2f} s", flush=True)
            elif "close" in marks and "hidden" not in marks and not window.isVisible():
                marks["hidden"] = time.perf_counter()
                print(f"PROBE window gone {marks['hidden'] - marks['close']:.2f} s after close()", flush=True)

        timer = QTimer(app)
        timer.timeout.connect(poll)
        timer.start(10)
        return original_exec()

    QApplication.exec = exec_

class Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "PySide6.QtWidgets":
            return None
        sys.meta_path.remove(self)
        importlib.import_module(name)
        patch()
        return importlib.util.find_spec(name)

sys.meta_path.insert(0, Finder())
'''


def run_once(mode: str, repo: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="caw-gui-timing-") as home:
        Path(home, "sitecustomize.py").write_text(PROBE, encoding="utf-8")
        env = {**os.environ, "CAW_PROBE": mode, "CAW_PROBE_START": f"{time.time():.6f}", "HOME": home,
               "XDG_CONFIG_HOME": f"{home}/config", "XDG_DATA_HOME": f"{home}/data",
               "XDG_STATE_HOME": f"{home}/state", "XDG_CACHE_HOME": f"{home}/cache",
               "PYTHONPATH": os.pathsep.join([home, str(repo)])}
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        done = subprocess.run([sys.executable, "-m", "caw_gui.app"], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=600)
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("PROBE")]
        print("\n".join(lines) or f"no probe output (exit {done.returncode}):\n{done.stderr[-2000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("window", "quit"))
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent),
                        help="the checkout whose caw_gui is timed (e.g. an older one, for a before/after)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    for _ in range(args.repeat):
        run_once(args.mode, Path(args.repo))
    return 0


if __name__ == "__main__":
    sys.exit(main())
