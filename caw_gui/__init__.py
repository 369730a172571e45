"""caw-gui: the PySide6 + pyqtgraph desktop app over :mod:`caw_core`.

Qt lives only here; every computation is a caw_core generator driven from a
worker thread (see :mod:`caw_gui.workers`).
"""
