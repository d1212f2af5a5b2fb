"""One deadline for a whole run, and the stop signal that ends every search at once.

:class:`Deadline` is what every method and backend asks "how long may I
still run?": the remaining seconds, whether it has expired, and
sub-deadlines — a *share* of what is left with a *cap* in seconds — for the
phases of a composite method. A deadline also expires when the run's
:class:`StopSignal` is set: by the first Ctrl-C or SIGTERM
(:mod:`memopt.core.interrupt`), or by the memory watchdog. So a search loop
written as ``while not deadline.expired(): ...`` honours time limits,
interrupts and the memory limit alike, and a solver that runs in C++ gets
the same news through a *stop hook* (e.g. CP-SAT's ``stop_search``).

Deadlines are cheap values (a start and an end on ``time.perf_counter()``);
making a child never extends the parent's end.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class StopSignal:
    """A flag that ends every search of a run, with the reason, and hooks to tell running solvers.

    ``set(reason)`` is safe from any thread and from a signal-watching thread;
    hooks registered with :meth:`hook` are called once, at once, in the
    thread that sets the signal (they must be quick and thread-safe, like
    ``CpSolver.stop_search``).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._hooks: list[Callable[[], None]] = []
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            hooks = list(self._hooks)
        for h in hooks:
            try:
                h()
            except Exception:  # noqa: BLE001 - a hook of a solver that already ended; nothing to stop
                pass

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        with self._lock:
            self._event.clear()
            self.reason = None

    @contextmanager
    def hook(self, fn: Callable[[], None]) -> Iterator[None]:
        """Call ``fn`` if the signal is set while the block runs (at once if it is set already)."""
        with self._lock:
            self._hooks.append(fn)
            already = self._event.is_set()
        if already:
            fn()
        try:
            yield
        finally:
            with self._lock:
                self._hooks.remove(fn)


#: the process's stop signal: set by interrupts and the memory watchdog of the running solve
STOP = StopSignal()


class Deadline:
    """A point in time (``time.perf_counter()``) by which a run must return, plus the run's stop signal.

    ``Deadline(60)``: 60 s from now; ``Deadline(None)``: no time limit (the
    stop signal still ends it).
    """

    __slots__ = ("end", "hard", "start", "stop")

    def __init__(self, seconds: float | None = None, *, start: float | None = None,
                 stop: StopSignal | None = None, end: float | None = None, hard: float | None = None):
        self.start = time.perf_counter() if start is None else start
        if end is not None:
            self.end = end
        else:
            self.end = math.inf if seconds is None else self.start + float(seconds)
        self.stop = STOP if stop is None else stop
        # the end of the whole run: a step that overran its own share may still finish a unit of work
        # (e.g. the planner's first run) as long as the run's own limit is not reached
        self.hard = self.end if hard is None else hard

    # ------------------------------------------------------------ queries
    @property
    def limited(self) -> bool:
        """Whether there is a time limit (else only the stop signal ends the run)."""
        return not math.isinf(self.end)

    @property
    def stopped(self) -> bool:
        """The stop signal is set (an interrupt or the memory limit)."""
        return self.stop.is_set()

    def remaining(self) -> float:
        """Seconds left (``inf`` without a limit; 0 once stopped)."""
        if self.stop.is_set():
            return 0.0
        return max(0.0, self.end - time.perf_counter())

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def expired(self) -> bool:
        """Time is up or the run was stopped."""
        return self.stop.is_set() or time.perf_counter() >= self.end

    def run_expired(self) -> bool:
        """The *run's* limit is reached (or the run was stopped): nothing may go on, not even a first result."""
        return self.stop.is_set() or time.perf_counter() >= self.hard

    def seconds(self) -> float | None:
        """The remaining seconds for a backend's own limit (``None``: no limit)."""
        return None if not self.limited and not self.stop.is_set() else self.remaining()

    # ------------------------------------------------------ sub-deadlines
    def share(self, fraction: float, cap: float = math.inf, *, floor: float = 0.0) -> Deadline:
        """A child deadline: ``fraction`` of the time left, at most ``cap`` seconds, never past this one.

        Without a limit the child gets ``cap`` seconds (no limit if ``cap`` is
        infinite). ``floor``: at least this many seconds (still never past
        this deadline).
        """
        now = time.perf_counter()
        left = self.end - now
        want = cap if math.isinf(left) else min(cap, fraction * left)
        want = max(want, floor)
        return Deadline(start=now, end=min(self.end, now + want), stop=self.stop, hard=self.hard)

    def bounded_share(self, fraction: float, cap: float, hard_fraction: float, *, floor: float = 0.0) -> Deadline:
        """:meth:`share`, with ``run_expired()`` at ``hard_fraction`` of the time left instead of the run's end:
        for a step that may go on past its share to its first result, when something else needs the time
        after it."""
        d = self.share(fraction, cap, floor=floor)
        if self.limited:
            d.hard = min(d.hard, max(d.end, time.perf_counter() + hard_fraction * self.remaining()))
        return d

    def capped(self, seconds: float) -> Deadline:
        """A child deadline at most ``seconds`` from now."""
        now = time.perf_counter()
        return Deadline(start=now, end=min(self.end, now + seconds), stop=self.stop, hard=self.hard)

    def __repr__(self) -> str:
        left = "no limit" if not self.limited else f"{self.remaining():.2f}s left"
        return f"Deadline({left}{', stopped' if self.stopped else ''})"


def as_deadline(deadline: Deadline | float | None) -> Deadline:
    """A :class:`Deadline` from what older callers pass: ``None`` (no limit) or a ``perf_counter()`` value."""
    if isinstance(deadline, Deadline):
        return deadline
    if deadline is None:
        return Deadline(None)
    return Deadline(end=float(deadline))


__all__ = ["STOP", "Deadline", "StopSignal", "as_deadline"]
