"""The one road from a request to an answer: :func:`solve`.

validate → prove infeasible if a bound shows it → run the method (warm
starts chosen once, every plan offered to one incumbent, one deadline) →
finish (the incumbent's best plan, evaluated once; the status from what is
proven) → the :class:`~memopt.core.result.Result` (the front end writes it).

**Validation** happens before any solving: the method exists and handles
the request, its options are known and well typed, the numbers fit the
solver it uses (:func:`check_numbers`), a warm-start plan is valid.

**The run contract.** Every solve has a time limit (default
:data:`DEFAULT_TIME_LIMIT` seconds; ``None`` for none) and a memory limit
(default: :func:`~memopt.core.interrupt.default_memory_limit`); Ctrl-C or
SIGTERM ends the search within about a second with the best plan found
(status ``interrupted``), a second one exits at once
(:mod:`memopt.core.interrupt`).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from memopt.catalog import CATALOG, Catalog, MethodEntry
from memopt.core.bounds import end_bound, makespan_lower_bound, peak_lower_bound
from memopt.core.deadline import STOP, Deadline
from memopt.core.errors import MemoptError
from memopt.core.incumbent import Incumbent
from memopt.core.instance import Instance
from memopt.core.interrupt import default_memory_limit, guard
from memopt.core.method import Context, MethodOutput, Settings
from memopt.core.numbers import check_numbers
from memopt.core.params import parse_exact
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.result import Result, Statistics
from memopt.core.status import Objective, Status, StopReason
from memopt.core.units import Units
from memopt.exact.offload_moment import offload_moment_bound
from memopt.exact.peak_bounds import budget_lower_bound
from memopt.exact.transfer_prefix import transfer_prefix_bound
from memopt.heuristics.orders import best_baseline
from memopt.heuristics.warm import WarmStarts
from memopt.io import load_instance

log = logging.getLogger("memopt")

DEFAULT_TIME_LIMIT = 60.0
"""Seconds a solve may run unless told otherwise (``time_limit=None``: no limit)."""

MIN_SEARCH_SHARE = 0.05
"""The part of the time limit the search keeps however long reading the input took (``started``)."""

PROGRESS_SECONDS = 5.0
"""How often a running solve logs a progress line on ``memopt.progress`` (INFO)."""


# ----------------------------------------------------------------- requests
def parse_budget(budget: int | float | str | Decimal | Fraction | None, inst: Instance) -> int | None:
    """An absolute budget (an exact integer), or a ratio of the best baseline schedule's peak (``"0.8x"``).

    Ratios follow the literature's protocol: ceil(r × peak), computed
    exactly. Numbers are never rounded through a float: ``"9007199254740993"``
    is that number.
    """
    if budget is None:
        return inst.machine.budget
    what = f"budget {budget!r}"
    if isinstance(budget, bool):
        raise MemoptError(f"{what}: expected a size like 1000 or a ratio like 0.8x")
    if isinstance(budget, str) and budget.strip().lower().endswith("x"):
        r = parse_exact(budget.strip()[:-1])
        if r is None or r <= 0:
            raise MemoptError(f"{what}: the ratio must be a finite number > 0, like 0.8x")
        peak = best_baseline(inst)[1]
        return math.ceil(Fraction(r) * peak)
    if isinstance(budget, float) and budget.is_integer() and abs(budget) > 2**53:
        raise MemoptError(f"{what}: a float this large is not exact; give the budget as an integer or a string")
    v = parse_exact(budget) if not isinstance(budget, Fraction) else budget
    if v is None:
        raise MemoptError(f"{what}: expected a size like 1000 or a ratio like 0.8x")
    if v != int(v):
        raise MemoptError(f"{what}: must be an integer size (or a ratio like 0.8x)")
    if v < 0:
        raise MemoptError(f"{what}: must be >= 0")
    return int(v)


def parse_time_value(value: Any, what: str) -> int | float | Fraction:
    """A non-negative finite number, exactly: an int, the float it is exactly, or a Fraction."""
    if isinstance(value, Fraction):
        v: Any = value
    else:
        d = parse_exact(value)
        if d is None:
            raise MemoptError(f"{what} {value!r}: expected a finite number >= 0")
        v = Fraction(d)
    if v < 0:
        raise MemoptError(f"{what} {value!r}: must be >= 0")
    if v.denominator == 1:
        return int(v)
    f = float(v)
    return f if Fraction(f) == v else v


def make_request(instance: Instance, objective: str = "peak", *, budget: Any = None, max_makespan: Any = None,
                 recompute: bool = False, offload: bool = False) -> Request:
    """Check the pieces of a request and build it (clear errors for mistakes)."""
    if objective not in Objective.values():
        raise MemoptError(f"unknown objective {objective!r}; known: {', '.join(Objective.values())}")
    obj = Objective(objective)
    b = parse_budget(budget, instance)
    if obj is Objective.TIME and b is None:
        raise MemoptError(f"{instance.name}: objective 'time' needs a budget (--budget, or machine.budget "
                          "in the instance)")
    if offload and instance.machine.bandwidth is None:
        raise MemoptError(f"{instance.where}: offloading needs machine.bandwidth (size units per time unit) "
                          "in the instance")
    T = None
    if max_makespan is not None:
        if obj is not Objective.PEAK:
            raise MemoptError("a time limit on the makespan (max_makespan) goes with objective 'peak'")
        T = parse_time_value(max_makespan, "max_makespan")
    return Request(instance, obj, b, T, bool(recompute), bool(offload))


def static_bound(req: Request) -> tuple[int | float, str]:
    """A lower bound on the objective that holds for every valid plan, and why (cheap)."""
    if req.objective == Objective.TIME:
        return makespan_lower_bound(req.instance)
    if req.budget is None:
        # no budget to prove infeasible: the O(n + m) bounds; the methods compute the stronger ones they use
        # (the lifetime bound costs seconds at 50,000 tasks, where a series-parallel proof needs none)
        return max(peak_lower_bound(req.instance, offload=req.offload),
                   end_bound(req.instance, recompute=req.recompute) if not req.offload else (0, ""),
                   key=lambda c: c[0])
    return budget_lower_bound(req.instance, recompute=req.recompute, offload=req.offload)


def static_infeasibility(req: Request) -> tuple[str, int | float, str] | None:
    """Why no plan can exist when a cheap lower bound already shows it: (reason, the bound, its quantity)."""
    if req.budget is not None:
        lb, why = budget_lower_bound(req.instance, recompute=req.recompute, offload=req.offload)
        if lb > req.budget:
            return f"budget {req.budget} is below the lower bound {lb} on the peak of every plan: {why}", lb, "peak"
    if req.max_makespan is not None and req.instance.total_time > req.max_makespan:
        return (f"makespan limit {req.max_makespan} is below the lower bound {req.instance.total_time} on the "
                "makespan of every plan: every task runs at least once"), req.instance.total_time, "makespan"
    return None


TRANSFER_BOUND_SHARE, TRANSFER_BOUND_SECONDS = 0.05, 3.0
"""Time for the bounds with offloading before any method (their searches are also work-limited: the transfer
prefix bound ~1 s at 23,000 tasks)."""


def prove_offload_bounds(req: Request, inc: Incumbent, deadline: Deadline) -> None:
    """With offloading, objective ``time``: prove the transfer prefix bound
    (:mod:`memopt.exact.transfer_prefix`) and the priced moment of both techniques
    (:mod:`memopt.exact.offload_moment`, searched only above the first) when they beat Σ c."""
    if req.objective != Objective.TIME or not req.offload or req.budget is None:
        return
    share = deadline.share(TRANSFER_BOUND_SHARE, TRANSFER_BOUND_SECONDS, floor=0.2)
    tb = transfer_prefix_bound(req.instance, req.budget, recompute=req.recompute, deadline=share)
    if tb.task is not None:
        inc.prove(tb.value, f"transfer prefix bound: {tb.reason(req.instance)}")
    mb = offload_moment_bound(req.instance, req.budget, recompute=req.recompute, deadline=share, floor=tb.value,
                              heads=tb.heads)
    if mb.task is not None and mb.value > tb.value:
        inc.prove(mb.value, f"offload moment bound: {mb.reason(req.instance)}")


# -------------------------------------------------------------------- solve
def solve(instance: Instance | str | os.PathLike, objective: str = "peak", method: str = "auto", *,
          time_limit: float | None = DEFAULT_TIME_LIMIT, memory_limit: int | None | str = "default",
          warm_start: bool | Plan = True, budget: Any = None, max_makespan: Any = None,
          recompute: bool = False, offload: bool = False, threads: int = 2, seed: int = 0,
          solver_log: bool = False, catalog: Catalog | None = None,
          on_start: Callable[[Incumbent], None] | None = None, **method_options: Any) -> Result:
    """Solve ``instance`` with ``method`` and return an evaluated :class:`Result`.

    Parameters
    ----------
    instance:
        An :class:`Instance`, or the path of an instance file (any format
        :func:`memopt.io.load_instance` reads).
    objective:
        ``"peak"`` (minimise the peak memory) or ``"time"`` (minimise the
        makespan subject to peak ≤ budget).
    method:
        A method of the catalog (``memopt.catalog.CATALOG``, ``memopt solve
        --list-methods``), or ``"auto"``.
    time_limit:
        Wall-clock seconds (default 60; ``None``: no limit). The best plan
        found is returned when time runs out.
    memory_limit:
        Bytes the process may hold (default: 75 % of the machine's memory;
        ``None``: no limit). At the limit the search stops with its best plan.
    warm_start:
        Seed solvers with a heuristic plan (True), not (False), or with a
        given :class:`Plan` (checked: an invalid one is an input error).
    budget:
        Fast-memory budget M: an integer size, or a ratio of the best
        baseline schedule's peak such as ``"0.8x"``. Defaults to the machine's.
    max_makespan:
        With ``objective="peak"``: the makespan limit T.
    recompute, offload:
        Allow recomputation / offloading (scheduling is always free).
    method_options:
        The method's parameters (``memopt solve -m METHOD --help-options``),
        e.g. ``backend="highs"``; an unknown one is an input error.
    """
    if isinstance(instance, (str, os.PathLike)):
        instance = load_instance(instance)
    elif not isinstance(instance, Instance):
        raise MemoptError(f"solve: instance must be an Instance or the path of an instance file, not "
                          f"{type(instance).__name__}")
    req = make_request(instance, objective, budget=budget, max_makespan=max_makespan,
                       recompute=recompute, offload=offload)
    return solve_request(req, method, time_limit=time_limit, memory_limit=memory_limit, warm_start=warm_start,
                         threads=threads, seed=seed, solver_log=solver_log, catalog=catalog, on_start=on_start,
                         **method_options)


def check_settings(time_limit: Any, threads: Any, seed: Any) -> float | None:
    """The time limit as seconds (``None``: none), after checking the run settings."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise MemoptError(f"threads must be an integer >= 1, got {threads!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise MemoptError(f"seed must be an integer >= 0, got {seed!r}")
    if time_limit is None:
        return None
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit > 0 \
            or math.isinf(time_limit):
        raise MemoptError(f"time limit must be a finite number of seconds > 0 (or None), got {time_limit!r}")
    return float(time_limit)


def prepare(req: Request, method: str, catalog: Catalog, method_options: dict[str, Any],
            warm_start: bool | Plan) -> tuple[MethodEntry, Any]:
    """Validate a run before any solving: the method, its options, the numbers, the warm start."""
    entry = catalog[method]
    why = entry.refuse(req)
    if why:
        raise MemoptError(why)
    params = entry.params.parse(method_options, method)
    check_numbers(req, entry.name, entry.numeric(getattr(params, "backend", None)))
    if isinstance(warm_start, Plan):
        ev = req.evaluate(warm_start)
        if not ev.valid:
            raise MemoptError(f"the warm-start plan is not valid for this request: {ev.violation}")
    elif not isinstance(warm_start, bool):
        raise MemoptError(f"warm_start must be True, False or a Plan, got {type(warm_start).__name__}")
    return entry, params


def solve_request(req: Request, method: str = "auto", *, time_limit: float | None = DEFAULT_TIME_LIMIT,
                  memory_limit: int | None | str = "default", warm_start: bool | Plan = True, threads: int = 2,
                  seed: int = 0, solver_log: bool = False, catalog: Catalog | None = None,
                  on_start: Callable[[Incumbent], None] | None = None,
                  on_second_interrupt: Callable[[Incumbent], None] | None = None, hard_exit: bool = False,
                  started: float | None = None, **method_options: Any) -> Result:
    """:func:`solve` for an already checked :class:`Request`.

    ``hard_exit`` (the command line): a second Ctrl-C, or memory still growing past the limit after the
    search was stopped, calls ``on_second_interrupt`` and ends the process (:func:`memopt.core.interrupt.guard`).
    ``started``: when the run began (a ``time.perf_counter()`` value; default: now). The time limit counts
    from then — the command line passes its own start, so reading the instance counts (5-6 s for Llama-2-70B's
    shape with its views, which ran ``memopt solve -t 60`` to 66 s) — with at least
    :data:`MIN_SEARCH_SHARE` of it left for the search.
    """
    catalog = catalog or CATALOG
    seconds = check_settings(time_limit, threads, seed)
    limit = default_memory_limit() if memory_limit == "default" else memory_limit
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise MemoptError(f"memory limit must be a number of bytes > 0 (or None), got {memory_limit!r}")
    entry, params = prepare(req, method, catalog, method_options, warm_start)
    now = time.perf_counter()
    start = now if started is None or seconds is None else max(started, now - (1 - MIN_SEARCH_SHARE) * seconds)
    deadline = Deadline(seconds, start=start)
    units = Units.of(req.instance)
    inc = Incumbent(req, deadline, formatter=units.formatter(str(req.objective)))
    inc.method = method
    settings = Settings(threads=threads, seed=seed, solver_log=solver_log, memory_limit=limit)
    warm = WarmStarts(warm_start if isinstance(warm_start, Plan) else None, enabled=warm_start is not False)
    ctx = Context(params, deadline, inc, settings=settings, warm=warm, catalog=catalog, name=method)
    if on_start is not None:
        on_start(inc)
    out = MethodOutput()
    bound, why = static_bound(req)
    inc.prove(bound, why)
    reason = static_infeasibility(req)
    second = (lambda: on_second_interrupt(inc)) if on_second_interrupt is not None else None
    with guard(memory_limit=limit, on_second=second, hard_exit=hard_exit) as watch:
        if reason is not None:
            inc.prove_infeasible(*reason)
            out = MethodOutput(status=Status.INFEASIBLE, message=reason[0])
        else:
            prove_offload_bounds(req, inc, deadline)
            ticker = _Ticker(inc)
            try:
                out = catalog.execute(entry, req, ctx, params)
            finally:
                ticker.stop()
        stop = STOP.reason
    return result_of(req, inc, out, method, stop, stats=ctx.stats, peak_memory=watch.peak_memory,
                     memory_limit=limit)


def result_of(req: Request, inc: Incumbent, out: MethodOutput, method: str, stop: str | None, *,
              stats: dict[str, Any] | None = None, peak_memory: int = 0, memory_limit: int | None = None) -> Result:
    """The honest :class:`Result`: the incumbent's best plan, the best proven bound, the status they prove.

    Also what a run that must end at once (a second Ctrl-C) writes: the incumbent as it is.
    """
    name = out.method or method
    stats = dict(stats or {})
    stats.update(out.stats)
    deadline = inc.deadline
    res = Result(instance=req.instance.name, objective=str(req.objective), status=Status.UNKNOWN, method=name,
                 budget=req.budget, max_makespan=req.max_makespan, recompute=req.recompute, offload=req.offload,
                 solve_seconds=deadline.elapsed(), message=out.message, stats=stats)
    res.units = Units.of(req.instance)
    res.bound = inc.bound
    if inc.infeasible is not None:
        res.status = Status.INFEASIBLE
        res.message = inc.infeasible
        # the bound that proves it, when it bounds the objective (a peak bound says nothing of a makespan)
        q = inc.infeasible_bound
        res.bound = q[1] if q is not None and q[0] == ("peak" if req.objective == Objective.PEAK else "makespan") \
            else None
    elif inc.plan is not None:
        res.plan, res.evaluation = inc.plan, inc.evaluation
        res.value, res.peak, res.makespan = inc.value, inc.evaluation.peak, inc.evaluation.makespan
        res.status = Status.OPTIMAL if inc.proven else Status.FEASIBLE
        if not inc.proven and res.message is None and stop not in (None, "interrupted"):
            res.message = f"stopped at the {stop}; best plan found so far"
    elif res.message is None:
        res.message = "no plan found" + (f" (stopped at the {stop})" if stop else " within the time limit")
    if stop == "interrupted" and res.status not in (Status.OPTIMAL, Status.INFEASIBLE):
        res.status = Status.INTERRUPTED
    reason = (StopReason.INTERRUPTED if stop == "interrupted" else StopReason.MEMORY_LIMIT if stop == "memory limit"
              else StopReason.TIME_LIMIT if deadline.limited and deadline.expired() else StopReason.DONE)
    first = None if inc.first_plan_seconds is None else round(inc.first_plan_seconds, 4)
    res.statistics = Statistics(seconds=round(res.solve_seconds, 4), first_plan_seconds=first,
                                improvements=list(inc.trajectory), stop_reason=reason, peak_memory=peak_memory or None,
                                memory_limit=memory_limit, time_limit=None if not deadline.limited else
                                round(deadline.end - deadline.start, 3), plans_offered=inc.offers,
                                model_vars=_int(stats.get("vars")), model_rows=_int(stats.get("rows")),
                                solver_status=_str(stats.get("model_status") or stats.get("cp_status")))
    if inc.first_plan_seconds is not None:
        res.stats.setdefault("first_plan_seconds", round(inc.first_plan_seconds, 4))
    return res


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _str(x: Any) -> str | None:
    return None if x is None else str(x)


class _Ticker:
    """Logs the incumbent's progress line every :data:`PROGRESS_SECONDS` while a method runs."""

    def __init__(self, inc: Incumbent):
        self.inc = inc
        self.done = threading.Event()
        self.thread = None
        progress = logging.getLogger("memopt.progress")
        if progress.isEnabledFor(logging.INFO):
            self.thread = threading.Thread(target=self._loop, args=(progress,), name="memopt-progress", daemon=True)
            self.thread.start()

    def _loop(self, progress: logging.Logger) -> None:
        while not self.done.wait(PROGRESS_SECONDS):
            progress.info("%s", self.inc.line())

    def stop(self) -> None:
        self.done.set()


__all__ = ["DEFAULT_TIME_LIMIT", "PROGRESS_SECONDS", "check_settings", "make_request", "parse_budget", "result_of",
           "parse_time_value", "solve", "solve_request", "static_bound", "static_infeasibility"]
