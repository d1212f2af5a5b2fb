"""Ctrl-C, SIGTERM and the memory limit: ending a run well from outside it.

:func:`guard` wraps one solve. While it is active:

- the first SIGINT or SIGTERM sets the run's :data:`~memopt.core.deadline.STOP`
  signal (reason ``interrupted``): every search loop sees its deadline
  expire, and every solver running in C++ is told through its stop hook
  (CP-SAT's ``stop_search``, HiGHS's interrupt callback, the CBC process is
  killed), so the solve returns its best plan within about a second;
- a second signal calls ``on_second`` (the CLI writes the best plan) and
  exits at once with status 130;
- a watchdog thread samples the process's resident memory (with its child
  processes, e.g. CBC, the planner's walker) and sets the stop signal
  (reason ``memory limit``) when it exceeds the limit, killing the child
  processes the run started (never others: a library call must not kill
  its caller's workers); if the memory keeps growing to 1.25× the
  limit, it calls ``on_second`` and exits (status 1) rather than let the
  machine swap or the kernel kill the run with nothing written.

Why a watching thread rather than a Python signal handler alone: Python
runs signal handlers in the main thread between bytecodes, and the main
thread of a solve is often inside a C++ solver for minutes. Python's
C-level handler, in whatever thread the kernel picked, writes the signal
number to a *wakeup pipe* (:func:`signal.set_wakeup_fd`) at once; a thread
reading that pipe sets the stop signal. The Python-level handlers are
replaced by no-ops while the solve runs (so no ``KeyboardInterrupt`` breaks
a solver's bookkeeping), and restored after. Signals are taken only when
the solve runs in the main thread (elsewhere the caller's handlers stay in
charge).
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from memopt.core.deadline import STOP
from memopt.core.status import EXIT_INTERRUPTED, EXIT_UNKNOWN

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        pass
    return out


def process_memory() -> int:
    """Resident bytes of this process and its descendants (Linux; 0 where /proc is missing)."""
    total, todo, seen = 0, [os.getpid()], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _rss_bytes(p)
        todo += _children(p)
    return total


_OWN: set[int] = set()
"""The child processes memopt started and kills on a stop (the planner's walker: :func:`own_child`)."""


def own_child(pid: int) -> None:
    """``pid`` is a process of this run's: :func:`kill_children` kills it (the stop signal, the memory limit)."""
    _OWN.add(pid)


def disown_child(pid: int) -> None:
    _OWN.discard(pid)


def child_pids() -> set[int]:
    """This process's child processes now."""
    return set(_children(os.getpid()))


def kill_children(besides: set[int] | None = None) -> None:
    """SIGKILL the child processes this run started, never others of this process (a caller's own workers, the
    ``multiprocessing`` resource tracker: a library call must not kill them).

    The run's own are those :func:`own_child` registered and, with ``besides`` (the children there were before
    a solver's binary started, e.g. CBC: :func:`child_pids`), every child not in it.
    """
    now = child_pids()
    targets = now & _OWN
    if besides is not None:
        targets |= now - besides
    for c in targets:
        try:
            os.kill(c, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Watch:
    """What :func:`guard` observed: signals received, the largest memory sampled."""

    def __init__(self) -> None:
        self.signals = 0
        self.peak_memory = 0


def _exit_now(status: int, message: str, on_second: Callable[[], None] | None) -> None:
    try:
        sys.stderr.write(f"memopt: {message}\n")
        sys.stderr.flush()
        if on_second is not None:
            on_second()
    finally:
        os._exit(status)


@contextmanager
def guard(*, memory_limit: int | None = None, on_second: Callable[[], None] | None = None,
          sample_seconds: float = 0.2, hard_exit: bool = False) -> Iterator[Watch]:
    """Turn signals and the memory limit into the stop signal while the block runs (module docstring).

    ``hard_exit`` (the command line): a second signal, or memory still growing past the limit, calls
    ``on_second`` and ends the process. Without it (a library call): a second signal raises
    ``KeyboardInterrupt`` in the main thread, and the memory watchdog only stops the search.
    """
    watch = Watch()
    STOP.clear()
    main = threading.current_thread() is threading.main_thread()
    done = threading.Event()
    threads = [threading.Thread(target=_watch_memory, args=(watch, done, memory_limit, sample_seconds,
                                                            on_second if hard_exit else None, hard_exit),
                                name="memopt-memory", daemon=True)]
    restore: list[Callable[[], None]] = []
    if main:
        r, w = os.pipe()
        os.set_blocking(w, False)
        old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        old = {sig: signal.signal(sig, _note) for sig in _SIGNALS}

        def undo() -> None:
            for sig, h in old.items():
                # the command line leaves them ignored: a second Ctrl-C between the end of the search and the
                # written answer must not lose it (the caller's shielded() restores the handlers afterwards)
                signal.signal(sig, signal.SIG_IGN if hard_exit else h if h is not None else signal.SIG_DFL)
            signal.set_wakeup_fd(old_fd)
            os.write(w, bytes([_QUIT]))
            threads[-1].join(2.0)
            os.close(r)
            os.close(w)

        restore.append(undo)
        threads.append(threading.Thread(target=_take_signals, args=(r, watch, on_second, hard_exit),
                                        name="memopt-signals", daemon=True))
    for t in threads:
        t.start()
    try:
        yield watch
    finally:
        done.set()
        for f in restore:
            f()
        watch.peak_memory = max(watch.peak_memory, process_memory())
        # the stop belongs to this solve: a library call after it (a bound, another method's function with
        # the default deadline) must not find itself already stopped
        STOP.clear()


_QUIT = 0  # the byte guard() writes to its own wakeup pipe when the solve is over (no signal has number 0)


def _note(signum: int, frame: object) -> None:
    """The Python-level handler: nothing to do (the wakeup pipe already told the watching thread)."""


def _take_signals(r: int, watch: Watch, on_second: Callable[[], None] | None, hard_exit: bool) -> None:
    """Read the signal numbers the C-level handler writes to the wakeup pipe, whatever thread it ran in."""
    while True:
        try:
            data = os.read(r, 64)
        except OSError:
            return
        for sig in data:
            if sig == _QUIT:
                return
            if sig not in _SIGNALS:
                continue
            watch.signals += 1
            if watch.signals == 1:
                STOP.set("interrupted")
                kill_children()
            elif hard_exit:
                _exit_now(EXIT_INTERRUPTED, "interrupted again: exiting at once", on_second)
            elif watch.signals == 2:
                _thread.interrupt_main()  # a library call: the caller gets its KeyboardInterrupt


def _watch_memory(watch: Watch, done: threading.Event, memory_limit: int | None, sample_seconds: float,
                  on_second: Callable[[], None] | None, hard_exit: bool) -> None:
    over_since = None
    while not done.wait(sample_seconds):
        m = process_memory()
        watch.peak_memory = max(watch.peak_memory, m)
        if memory_limit is None or m <= memory_limit:
            continue
        STOP.set("memory limit")
        kill_children()
        over_since = over_since or time.perf_counter()
        if hard_exit and (m > 1.25 * memory_limit or time.perf_counter() - over_since > 30):
            _exit_now(EXIT_UNKNOWN, f"memory {m / 2**30:.1f} GiB is past the limit {memory_limit / 2**30:.1f} GiB "
                                    "and still held: exiting", on_second)


@contextmanager
def shielded() -> Iterator[None]:
    """Restore the SIGINT and SIGTERM handlers when the block ends, whatever it set them to.

    The command line wraps the solve and the writing of its answer in it: ``guard(hard_exit=True)`` leaves the
    signals ignored when the search ends, so that a second Ctrl-C cannot arrive between the search and the
    written answer, and this puts the caller's handlers back afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h if h is not None else signal.SIG_DFL)


def machine_memory() -> tuple[int, int]:
    """(total, available) bytes of physical memory (``(0, 0)`` where /proc/meminfo is missing)."""
    total = avail = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                k, v = line.split(":", 1)
                if k == "MemTotal":
                    total = int(v.split()[0]) * 1024
                elif k == "MemAvailable":
                    avail = int(v.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return total, avail


DEFAULT_MEMORY_FRACTION = 0.75
"""The default memory limit of a solve: this share of the machine's memory (and at most 90 % of what
is available when the solve starts, plus what the process already holds)."""


def default_memory_limit() -> int | None:
    total, avail = machine_memory()
    if not total:
        return None
    limit = int(DEFAULT_MEMORY_FRACTION * total)
    if avail:
        limit = min(limit, int(0.9 * avail) + _rss_bytes(os.getpid()))
    return limit


__all__ = ["DEFAULT_MEMORY_FRACTION", "Watch", "child_pids", "default_memory_limit", "disown_child", "guard",
           "kill_children", "machine_memory", "own_child", "process_memory", "shielded"]
