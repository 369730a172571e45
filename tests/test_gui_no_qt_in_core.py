"""caw_core must never import Qt: importing every caw_core module pulls in no Qt binding."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "caw_core"
QT_MODULES = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "shiboken2", "pyqtgraph", "qtpy")

PROBE = f"""
import importlib, pkgutil, sys
import caw_core
failed = []
for info in pkgutil.walk_packages(caw_core.__path__, "caw_core."):
    try:
        importlib.import_module(info.name)
    except Exception as exc:  # a module that cannot import here (optional deps) is reported, not hidden
        failed.append(f"{{info.name}}: {{exc!r}}")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {QT_MODULES!r})
print("QT:" + ",".join(loaded))
print("FAILED:" + " | ".join(failed))
"""


def test_importing_every_caw_core_module_loads_no_qt():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300,
                         cwd=CORE.parent, env={"PYTHONPATH": str(CORE.parent), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(":", 1) for line in out.stdout.splitlines() if line.startswith(("QT:", "FAILED:")))
    assert lines["QT"] == "", f"caw_core imported Qt modules: {lines['QT']}"
    assert len(list(CORE.rglob("*.py"))) > 10  # the walk really covered the package


def test_caw_core_source_has_no_qt_import():
    pattern = re.compile(r"^\s*(from|import)\s+(" + "|".join(QT_MODULES) + r")\b", re.MULTILINE)
    offenders = [str(p) for p in CORE.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert not offenders, f"Qt imported in caw_core: {offenders}"
