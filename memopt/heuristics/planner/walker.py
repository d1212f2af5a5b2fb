"""A second walker: moves of the best order in a helper process, beside the portfolio's own.

With offloading the planner's portfolio is a local search over orders
(:mod:`.order_moves`): perturb the best plan's order, rerun the planner,
keep a plan as good or better. It is one Python thread, and on the
training graphs with offloading no model runs beside it (POET's model is
too large to build in the time), so a run with two threads left the
second core idle. :class:`Walker` forks the process once the first plan
exists; the child makes its own moves (another random stream) from the
best order it knows, sends each better plan to the parent, and takes the
parent's better orders as they come. The parent checks every plan it
receives with the evaluator, as its own, and offers it as a move's.

The child is forked (Linux; elsewhere there is no walker): it shares the
parent's instance without copying it, ignores SIGINT and SIGTERM (Ctrl-C
reaches the whole process group: the parent ends the search and stops
the child), does not log, and stops at the parent's deadline, on the
parent's word, or when the parent is gone. Its memory counts in the run's
(the memory watchdog sums a process's descendants and kills them at the
limit; the parent then goes on alone).
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import queue
import random
import signal
import struct
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from memopt.core.deadline import Deadline, StopSignal
from memopt.core.interrupt import disown_child, own_child
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.heuristics.planner.config import PlannerConfig
from memopt.heuristics.planner.order_moves import OrderMoves

_SIGNALS = {signal.SIGINT, signal.SIGTERM}

MIN_WALK_SECONDS = 2.0
"""No walker for less time than this: forking a large graph's process and its first planner run would not pay."""

STOP_WAIT_SECONDS = 0.1
"""How long the parent waits for the child to end on its word before killing it (the child sends each better
plan when it finds it: what it would finish after the parent's search has ended is not waited for)."""


@dataclass
class Received:
    """A plan the walker found: the order it ran and the makespan the child's evaluation gave (the parent
    evaluates it again)."""

    plan: Plan
    order: list[int]
    config: PlannerConfig
    makespan: Any


def can_walk() -> bool:
    """Whether this platform can fork a walker (Linux: fork shares the instance without pickling it)."""
    return hasattr(os, "fork") and "fork" in multiprocessing.get_all_start_methods() \
        and os.uname().sysname == "Linux"


class Walker:
    """The helper process and the parent's end of its pipe (see the module's docstring).

    ``run(req, order, cfg, deadline)`` is one planner run (:func:`.portfolio.run_planner`); ``stream``
    makes the child's moves another random sequence than the parent's; ``stale_limit`` ends the child's
    walk after that many moves in a row without a better plan, as the parent's.
    """

    def __init__(self, req: Request, cfg: PlannerConfig, order: Sequence[int], makespan: Any,
                 deadline: Deadline, stream: int, stale_limit: int, run: Callable[..., Plan | None]):
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe(duplex=True)
        # the child's move count, in a page both processes share (a message would be lost when the child is
        # killed in a run)
        self._count = mmap.mmap(-1, 8)
        self.invalid: list[str] = []  # the child's plans the evaluator rejected (a bug)
        self.alive = True
        with warnings.catch_warnings():
            # Python 3.12+ warns that forking a process with threads (the run's memory watchdog) may deadlock the
            # child on a lock one of them held: the child takes no lock those threads use (no logging, no I/O
            # but its pipe)
            warnings.simplefilter("ignore", DeprecationWarning)
            self._proc = ctx.Process(target=_walk, args=(child, req, cfg, list(order), makespan, deadline.end,
                                                         stream, stale_limit, run, self._count),
                                     name="memopt-walker", daemon=True)
            # Ctrl-C blocked across the fork: the child inherits the mask and ignores the signals before it
            # takes them again (one arriving between the fork and that used to end the child at once); the
            # parent gets a pending one as soon as the fork is done
            old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
            try:
                self._proc.start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        own_child(self._proc.pid)  # killed with the run's solvers at the memory limit
        child.close()
        # the parent's messages go through a thread of their own: an order of 20,000 tasks is more than a pipe
        # holds, and the child reads only between its planner runs (8-30 s each on the 70B shape), so a send
        # from the search loop would block it that long
        self._outbox: queue.Queue = queue.Queue()
        self._sender = threading.Thread(target=self._send_all, name="memopt-walker-send", daemon=True)
        self._sender.start()

    def _send_all(self) -> None:
        while (msg := self._outbox.get()) is not None:
            try:
                self._conn.send(msg)
            except (OSError, EOFError, ValueError):  # the child is gone (or the pipe closed)
                return

    @property
    def moves(self) -> int:
        """The moves the child has made so far."""
        return struct.unpack_from("q", self._count)[0]

    def tell(self, cfg: PlannerConfig, order: Sequence[int], makespan: Any) -> None:
        """The parent's new best plan: the child walks from its order (and configuration) next."""
        if self.alive:
            self._outbox.put(("best", cfg, list(order), makespan))

    def received(self) -> list[Received]:
        """The plans the child sent since the last call (none once it is gone)."""
        out: list[Received] = []
        while self.alive:
            try:
                if not self._conn.poll():
                    break
                msg = self._conn.recv()
            except (OSError, EOFError):  # killed (the memory limit) or ended
                self.alive = False
                break
            if msg[0] == "plan":
                _, plan, order, c, makespan = msg
                out.append(Received(plan, order, c, makespan))
            elif msg[0] == "invalid":
                self.invalid.append(msg[1])
            else:  # "done": the child's deadline or its stale limit
                self.alive = False
        return out

    def wait(self, until: float) -> list[Received]:
        """Block until the child sends something, ends, or ``until`` (perf_counter); then :meth:`received`."""
        if self.alive:
            try:
                self._conn.poll(max(0.0, until - time.perf_counter()))
            except (OSError, EOFError):
                self.alive = False
        return self.received()

    def close(self) -> list[Received]:
        """Stop the child (its word, then a kill) and return what it had sent and not yet been read."""
        out = self.received()
        if self.alive:
            self._outbox.put(("stop",))
        self._outbox.put(None)
        self._proc.join(STOP_WAIT_SECONDS)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        disown_child(self._proc.pid)
        out += self.received()
        self.alive = False
        self._sender.join(1.0)  # (its send fails once the child is gone)
        self._conn.close()
        return out


def _walk(conn, req: Request, cfg: PlannerConfig, order: list[int], makespan: Any, end: float, stream: int,
          stale_limit: int, run: Callable[..., Plan | None], count: mmap.mmap) -> None:
    """The child: moves of the best order it knows until ``end``, the parent's word, or ``stale_limit``."""
    # Ctrl-C is the parent's to handle; and the parent's C-level handler would write the signal to the parent's
    # wakeup pipe, counting it twice there (a second Ctrl-C exits at once)
    signal.set_wakeup_fd(-1)
    for sig in _SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)  # (blocked by the parent across the fork)

    parent = os.getppid()
    deadline = Deadline(start=time.perf_counter(), end=end, hard=end, stop=StopSignal())
    neighbourhood = OrderMoves(req.instance)
    moves = stale = 0
    try:
        while not deadline.expired() and stale < stale_limit and os.getppid() == parent:
            stop = False
            while conn.poll():  # the parent's word: a better plan's order, or stop
                msg = conn.recv()
                if msg[0] == "stop":
                    stop = True
                elif msg[3] < makespan:
                    _, cfg, order, makespan = msg
                    stale = 0
            if stop:
                break
            moves += 1
            struct.pack_into("q", count, 0, moves)
            rng = random.Random(1_000_003 * moves + 7_919 * stream + cfg.seed)
            moved = neighbourhood.perturb(order, rng)
            plan = run(req, moved, cfg, deadline)
            if deadline.expired():
                break  # a run the deadline cut short says nothing about its order
            ev = req.evaluate(plan) if plan is not None else None
            if ev is None or not ev.valid:
                if ev is not None:
                    conn.send(("invalid", f"walker move {moves}: {ev.violation}"))
                stale += 1
            elif ev.makespan < makespan:
                order, makespan, stale = moved, ev.makespan, 0
                conn.send(("plan", plan, moved, cfg, ev.makespan))
            else:
                if ev.makespan == makespan:
                    order = moved  # a plateau: the walk goes on from there
                stale += 1
        conn.send(("done",))
    except (OSError, EOFError):
        pass  # the parent is gone or closed the pipe
    finally:
        conn.close()


__all__ = ["MIN_WALK_SECONDS", "Received", "Walker", "can_walk"]
