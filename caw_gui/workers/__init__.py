"""Background work: caw_core generators run in QThreads and report through Qt signals.

A *job* is a plain object with ``records()`` (an iterator of dict records,
produced by caw_core) and ``stop()`` (ask for a graceful stop; may be a no-op).
:class:`~caw_gui.workers.task.Task` runs one job in its own QThread; workers
never touch widgets.
"""
