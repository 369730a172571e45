"""Progress of long CLI jobs: a tqdm bar with ETA on a terminal, plain lines when piped, nothing with --quiet.

Every long command (train, eval, demo, toy pretrain, bench, export) reports
through :class:`Progress`, so they all behave alike:

- stderr is a terminal: a tqdm bar (count, rate, elapsed, ETA, key values);
- stderr is a file or a pipe (a cluster log, ``| tee``): one plain line per
  tenth of the job (and at its end, and at least once a minute), each with
  the count, percentage, elapsed time and ETA -- no carriage returns in logs;
- ``--quiet``: neither, and no side messages; results still go to stdout.

ETA = (total - done) * elapsed / (done - initial): the rate of this process,
not counting work a resumed job had already done.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any, Optional, TextIO

PLAIN_INTERVAL_S = 60.0


def add_quiet_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar or progress lines (results are still printed)")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Progress:
    """Progress of one job of ``total`` units (None: unknown), starting at ``initial``.

    ``update(done, **values)`` takes the absolute count; ``message(text)``
    prints a side line without breaking the bar.
    """

    def __init__(self, total: Optional[int], desc: str = "", unit: str = "it", initial: int = 0,
                 quiet: bool = False, stream: Optional[TextIO] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.desc, self.unit, self.quiet = total, desc, unit, quiet
        self.initial = self.done = initial
        self.started = self.last_line = time.monotonic()
        self.next_line = self._next_threshold(initial)
        self.bar = None
        if not quiet and _is_terminal(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc or None, unit=unit, file=self.stream,
                            dynamic_ncols=True)

    def _next_threshold(self, done: int) -> float:
        if not self.total:
            return done + 1
        tenth = max(1, math.ceil(self.total / 10))
        return min(self.total, (done // tenth + 1) * tenth)

    def update(self, done: int, **values: Any) -> None:
        self.done = done
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            if values:
                self.bar.set_postfix({k: _value(v) for k, v in values.items()}, refresh=False)
            return
        now = time.monotonic()
        if done >= self.next_line or now - self.last_line >= PLAIN_INTERVAL_S:
            self.next_line = self._next_threshold(done)
            self.last_line = now
            print(self.line(done, now - self.started, values), file=self.stream, flush=True)

    def line(self, done: int, elapsed: float, values: dict[str, Any]) -> str:
        """The plain progress line: ``desc: 30/100 step (30%), 00:12 elapsed, ETA 00:28, loss 0.5``."""
        head = f"{self.desc}: " if self.desc else ""
        count = f"{done}/{self.total} {self.unit}" if self.total else f"{done} {self.unit}"
        parts = [f"{head}{count}" + (f" ({100 * done / self.total:.0f}%)" if self.total else ""),
                 f"{_duration(elapsed)} elapsed"]
        if self.total and done > self.initial:
            parts.append(f"ETA {_duration((self.total - done) * elapsed / (done - self.initial))}")
        parts += [f"{k} {_value(v)}" for k, v in values.items()]
        return ", ".join(parts)

    def message(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
