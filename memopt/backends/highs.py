"""HiGHS: MILPs through highspy directly (a sparse matrix: fast to build at 10⁵-10⁶ nonzeros), and LP relaxations.

HiGHS checks its own time limit between phases only: a root node's cut
loop can run far past it (measured: 20 s for a 10 s limit). Its interrupt
callbacks (:func:`stop_callbacks`) therefore stop it at the deadline, and
at once when the run is stopped (Ctrl-C, the memory limit).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from memopt.backends.model import INF, LinearModel, LinearSolution
from memopt.core.deadline import Deadline
from memopt.core.errors import SolverUnavailableError


@contextmanager
def stop_callbacks(h: Any, deadline: Deadline,
                   improving: Callable[[float], None] | None = None) -> Iterator[None]:
    """While the block runs, HiGHS stops when ``deadline`` expires; ``improving(objective)`` at each MIP solution."""
    import highspy

    CB = highspy.cb.HighsCallbackType
    interrupts = (CB.kCallbackMipInterrupt, CB.kCallbackSimplexInterrupt, CB.kCallbackIpmInterrupt)

    def cb(callback_type, message, data_out, data_in, user_data):
        if callback_type in interrupts:
            if deadline.expired():
                data_in.user_interrupt = True
        elif improving is not None:
            improving(data_out.objective_function_value)

    h.setCallback(cb, None)
    for c in interrupts:
        h.startCallback(c)
    if improving is not None:
        h.startCallback(CB.kCallbackMipImprovingSolution)
    try:
        yield
    finally:
        for c in interrupts:
            h.stopCallback(c)
        if improving is not None:
            h.stopCallback(CB.kCallbackMipImprovingSolution)


def csr_rows(model: LinearModel, rows):
    import numpy as np

    start = [0]
    index: list[int] = []
    value: list[float] = []
    lower, upper = [], []
    for idx, coef, lo, hi in rows:
        index.extend(idx)
        value.extend(coef)
        start.append(len(index))
        lower.append(lo)
        upper.append(hi)
    return (np.array(start, dtype=np.int32), np.array(index, dtype=np.int32), np.array(value, dtype=np.float64),
            np.array(lower, dtype=np.float64), np.array(upper, dtype=np.float64))


_HIGHS_THREADS: list[int] = []


def set_highs_threads(highspy, threads: int) -> None:
    """HiGHS's task scheduler is global: changing the thread count needs a reset, else run() fails."""
    if _HIGHS_THREADS and _HIGHS_THREADS[0] != threads:
        highspy.Highs.resetGlobalScheduler(True)
    _HIGHS_THREADS[:] = [threads]


def new_highs(log: bool):
    """A Highs object; its constructor prints a banner on stdout, which we hide unless logging."""
    import sys

    import highspy

    if log:
        return highspy.Highs()
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout
        return highspy.Highs()
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        return highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class Relaxation:
    """The LP relaxation of a :class:`LinearModel` that only grows (variables and rows appended).

    HiGHS keeps the model and its basis between solves: after new rows (cuts,
    lazy rows) a solve restarts from the last optimal basis (dual simplex),
    several times faster than a fresh solve. Its optimum is a lower bound of
    the model's; its solution feeds cut separation
    (:mod:`memopt.formulations.stage.cuts`).
    """

    def __init__(self, model: LinearModel, threads: int = 1):
        if model.indicators:
            raise ValueError("Relaxation: models with indicators are not supported")
        self.model = model
        self.threads = threads
        self.h = None
        self.cols = 0
        self.rows = 0

    def solve(self, deadline: Deadline | float | None = None) -> LinearSolution:
        """Solve (again, from the last basis) within ``deadline`` (a Deadline, or seconds from now)."""
        dl = deadline if isinstance(deadline, Deadline) else Deadline(deadline)
        import highspy
        import numpy as np

        model = self.model
        t0 = time.perf_counter()
        if model.infeasible_reason is not None:
            return LinearSolution("infeasible", None, None, None, 0.0, "highs-lp",
                                  stats={"reason": model.infeasible_reason})
        inf = highspy.kHighsInf

        def clip(a):
            a = np.array(a, dtype=np.float64)
            a[a == -INF] = -inf
            a[a == INF] = inf
            return a

        if self.h is None:
            self.h = new_highs(False)
            self.h.setOptionValue("output_flag", False)
            set_highs_threads(highspy, max(1, int(self.threads)))
            self.h.setOptionValue("threads", max(1, int(self.threads)))
        h = self.h
        n = model.num_vars
        if n > self.cols:
            k = n - self.cols
            cost = np.array([float(model.objective.get(i, 0.0)) for i in range(self.cols, n)])
            h.addCols(k, cost, clip(model.lb[self.cols:]), clip(model.ub[self.cols:]), 0,
                      np.zeros(k, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))
            self.cols = n
        if len(model.rows) > self.rows:
            new = model.rows[self.rows:]
            start, index, value, lower, upper = csr_rows(model, new)
            h.addRows(len(new), clip(lower), clip(upper), len(index), start[:-1], index, value)
            self.rows = len(model.rows)
        if self.cols == n and model.objective_constant:
            h.changeObjectiveOffset(model.objective_constant)
        left = dl.seconds()
        h.setOptionValue("time_limit", 1e30 if left is None else max(0.01, left))
        with stop_callbacks(h, dl):
            h.run()
        ms = h.getModelStatus()
        K = highspy.HighsModelStatus
        seconds = time.perf_counter() - t0
        if ms == K.kInfeasible:
            return LinearSolution("infeasible", None, None, None, seconds, "highs-lp")
        if ms != K.kOptimal:
            return LinearSolution("unknown", None, None, None, seconds, "highs-lp")
        values = list(h.getSolution().col_value)
        obj = sum(model.objective.get(i, 0) * values[i] for i in model.objective) + model.objective_constant
        return LinearSolution("optimal", values, obj, obj, seconds, "highs-lp")


def solve_relaxation(model: LinearModel, *, deadline: Deadline | float | None = None,
                     threads: int = 1) -> LinearSolution:
    """The LP relaxation of ``model`` (integrality dropped), solved once by HiGHS."""
    return Relaxation(model, threads).solve(deadline)


def solve_highs(model: LinearModel, deadline: Deadline, *, threads: int, seed: int, warm_start: bool, log: bool,
                gap: float, on_solution: Callable[[float, float], None] | None,
                params: Mapping[str, Any] | None = None) -> LinearSolution:
    """Solve ``model`` with HiGHS (see :func:`memopt.backends.linear.solve_linear`)."""
    try:
        import highspy
        import numpy as np
    except ImportError as e:  # pragma: no cover - highspy is a dependency
        raise SolverUnavailableError(f"the HiGHS backend needs highspy ({e})") from None
    t0 = time.perf_counter()
    rows = model.linearized_rows()
    n = model.num_vars
    h = new_highs(log)
    h.setOptionValue("output_flag", bool(log))
    time_limit = deadline.seconds()
    if time_limit is not None:
        h.setOptionValue("time_limit", max(0.01, float(time_limit)))
    set_highs_threads(highspy, max(1, int(threads)))
    h.setOptionValue("threads", max(1, int(threads)))
    h.setOptionValue("random_seed", int(seed))
    h.setOptionValue("mip_rel_gap", float(gap))
    for key, val in (params or {}).items():
        h.setOptionValue(key, val)
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = len(rows)
    cost = np.zeros(n)
    for i, a in model.objective.items():
        cost[i] = a
    lp.col_cost_ = cost
    lp.offset_ = model.objective_constant
    lp.col_lower_ = np.array([-highspy.kHighsInf if x == -INF else x for x in model.lb], dtype=np.float64)
    lp.col_upper_ = np.array([highspy.kHighsInf if x == INF else x for x in model.ub], dtype=np.float64)
    start, index, value, lower, upper = csr_rows(model, rows)
    lower[lower == -INF] = -highspy.kHighsInf
    upper[upper == INF] = highspy.kHighsInf
    lp.row_lower_ = lower
    lp.row_upper_ = upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = len(rows)
    lp.integrality_ = [highspy.HighsVarType.kInteger if z else highspy.HighsVarType.kContinuous
                       for z in model.integer]
    h.passModel(lp)
    first: list[float] = []

    def improving(objective: float) -> None:
        now = time.perf_counter() - t0
        if not first:
            first.append(now)
        if on_solution is not None:
            on_solution(objective, now)

    if warm_start and model.hint:
        keys = sorted(model.hint)
        h.setSolution(len(keys), np.array(keys, dtype=np.int32),
                      np.array([float(model.hint[k]) for k in keys], dtype=np.float64))
    build = time.perf_counter() - t0
    with stop_callbacks(h, deadline, improving):
        run_status = h.run()
    seconds = time.perf_counter() - t0
    ms = h.getModelStatus()
    if run_status == highspy.HighsStatus.kError and ms == highspy.HighsModelStatus.kNotset:
        raise RuntimeError("HiGHS failed to run the model (status kError); rerun with log=True to see why")
    info = h.getInfo()
    K = highspy.HighsModelStatus
    has_sol = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if ms == K.kOptimal:
        st = "optimal"
    elif ms == K.kInfeasible:
        st = "infeasible"
    elif has_sol:
        st = "feasible"
    else:
        st = "unknown"
    values = obj = None
    bound = None
    if st in ("optimal", "feasible"):
        values = list(h.getSolution().col_value)
        obj = sum(model.objective.get(i, 0) * values[i] for i in model.objective) + model.objective_constant
    if st == "optimal" and warm_start and model.hint:
        reported = info.objective_function_value
        if abs(obj - reported) > 1e-6 * max(1.0, abs(reported)):
            # HiGHS (highspy 1.16) may solve a model to optimality from the presolved image of the
            # MIP start ("feasible in the reduced space") yet return the start itself as the
            # solution: that point is not its optimum. Solve again without the start.
            again = solve_highs(model, deadline, threads=threads, seed=seed, warm_start=False, log=log,
                                gap=gap, on_solution=on_solution, params=params)
            again.seconds += seconds
            again.stats["highs_start_returned"] = True
            return again
    if st == "optimal":
        bound = obj
    else:
        b = getattr(info, "mip_dual_bound", None)
        if b is not None and math.isfinite(b) and abs(b) < 1e300:
            bound = b
    return LinearSolution(st, values, obj, bound, seconds, "highs", first[0] if first else None,
                          {"build_seconds": round(build, 4), "vars": n, "rows": len(rows),
                           "model_status": h.modelStatusToString(ms),
                           "nodes": getattr(info, "mip_node_count", None)})


__all__ = ["Relaxation", "csr_rows", "new_highs", "set_highs_threads", "solve_highs", "solve_relaxation",
           "stop_callbacks"]
