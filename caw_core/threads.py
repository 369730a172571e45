"""How many CPU threads torch's intra-op pool gets, chosen by workload.

The toy CLIP (64 px, ~1M parameters) and the test configs have matrices far
too small for intra-op parallelism: measured on a 2-core machine, the quick
demo burned ~8x the CPU time with torch's default thread count than with one
thread, for the same results (docs/BENCHMARKS.md). Real CLIP towers (ViT-B-32
and up) do gain from every core. So the policy is:

    small model (toy, caw-toy-vit, caw-test-tiny)  -> 1 thread
    anything else                                  -> every core this process may use

and an explicit choice always wins, in this order: the ``threads`` argument
(the CLI's ``--threads``), the ``CAW_THREADS`` environment variable, then
``OMP_NUM_THREADS`` (which torch itself reads). The CLI, the GUI's workers
and the test suite call :func:`apply_thread_policy`; importing this module does
not import torch.
"""

from __future__ import annotations

import os
from typing import Optional

SMALL_MODELS = frozenset({"toy", "caw-toy-vit", "caw-test-tiny"})
ENVIRONMENT = ("CAW_THREADS", "OMP_NUM_THREADS")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _positive(text: str, source: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{source} must be a positive integer (a thread count), got {text!r}")
    return value


def choose_threads(model_name: Optional[str] = None, threads: Optional[int] = None) -> int:
    """The intra-op thread count for a workload on ``model_name`` (see the module docstring for the order)."""
    if threads is not None:
        return _positive(str(threads), "--threads")
    for variable in ENVIRONMENT:
        value = os.environ.get(variable, "").strip()
        if value:
            return _positive(value, variable)
    if model_name is not None and model_name.strip().lower() in SMALL_MODELS:
        return 1
    return available_cores()


def apply_thread_policy(model_name: Optional[str] = None, threads: Optional[int] = None) -> int:
    """Set torch's intra-op threads for ``model_name`` (``None``: a big model) and return the count set."""
    import torch

    count = choose_threads(model_name, threads)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count
