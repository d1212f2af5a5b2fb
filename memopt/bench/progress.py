"""A progress bar for the grid, with no dependency.

On a terminal it redraws one line (``[####....]  12/144  8%  0:12 left
1:30  last: vgg16 greedy 0.9x feasible``); elsewhere (a log file, CI) it
prints one line per finished run, so the log shows every run.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(s: float) -> str:
    s = int(round(s))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counts finished runs of ``total``; ``enabled=False`` prints nothing."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True, width: int = 24):
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.width = width
        self.start = time.monotonic()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self, last: str = "") -> str:
        n, total = self.done, self.total
        frac = n / total if total else 1.0
        elapsed = time.monotonic() - self.start
        bar = "#" * int(round(frac * self.width))
        eta = f"  left {_clock(elapsed / n * (total - n))}" if 0 < n < total else ""
        text = f"[{bar:<{self.width}}] {n:>{len(str(total))}}/{total} {100 * frac:3.0f}%  {_clock(elapsed)}{eta}"
        return text + (f"  {last}" if last else "")

    def update(self, last: str = "") -> None:
        """One more run finished; ``last`` describes it."""
        self.done += 1
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\x1b[2K" + self.line(last)[:200])
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(self.line(last) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and 0 < self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()


__all__ = ["Progress"]
