"""CP-SAT: the one way memopt runs OR-Tools' CP-SAT, and the translation of a linear model into it.

:func:`run_cpsat` sets a solver up for a run of memopt — its time limit
from the run's :class:`~memopt.core.deadline.Deadline`, threads, seed, its
memory limit, its own Ctrl-C handling off (memopt's is in charge:
:mod:`memopt.core.interrupt`) — and stops it through the stop signal's hook
(``stop_search``). A ``MODEL_INVALID`` answer is a bug in memopt and
raises, never "feasible".

:func:`solve_cpsat` translates a :class:`~memopt.backends.model.LinearModel`
(coefficients scaled to integers row by row; every variable integer),
filling the proto directly (2-3× faster than the expression API on 10⁴-10⁶
rows) and giving up at the time limit rather than overrunning it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from memopt.backends.model import INF, LinearModel, LinearSolution
from memopt.core.deadline import Deadline
from memopt.core.interrupt import process_memory

MIN_MEMORY_MB = 512
log = logging.getLogger("memopt")


def run_cpsat(model: Any, deadline: Deadline, *, threads: int = 2, seed: int = 0, log: bool = False,
              gap: float = 0.0, params: Mapping[str, Any] | None = None, callback: Any = None,
              memory_limit: int | None = None) -> tuple[Any, int]:
    """Solve a ``CpModel`` within ``deadline``; returns ``(solver, status)``.

    ``params``: extra ``SatParameters`` fields; ``callback``: a
    ``CpSolverSolutionCallback``; ``memory_limit``: bytes the whole process
    may hold (CP-SAT gets what is left, at least :data:`MIN_MEMORY_MB`).
    """
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    p = solver.parameters
    left = deadline.seconds()
    if left is not None:
        p.max_time_in_seconds = max(0.01, left)
    p.num_workers = max(1, int(threads))
    p.random_seed = int(seed)
    p.log_search_progress = bool(log)
    p.catch_sigint_signal = False  # memopt's guard turns Ctrl-C into a stop (core.interrupt)
    if memory_limit is not None:
        p.max_memory_in_mb = max(MIN_MEMORY_MB, (memory_limit - process_memory()) // 2**20)
    if gap > 0:
        p.relative_gap_limit = gap
    for key, val in (params or {}).items():
        fld = getattr(p, key)
        if isinstance(val, (list, tuple)):
            fld.clear()
            fld.extend(val)
        else:
            setattr(p, key, val)
    with deadline.stop.hook(solver.stop_search):
        status = solver.solve(model, callback)
    if status == cp_model.MODEL_INVALID:
        raise RuntimeError(f"CP-SAT rejected a model of memopt as invalid (a bug): {model.validate()}")
    return solver, status


def status_name(status: int) -> str:
    """CP-SAT's status as memopt's words (UNKNOWN: no proof, no solution)."""
    from ortools.sat.python import cp_model

    return {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible",
            cp_model.INFEASIBLE: "infeasible"}.get(status, "unknown")


def integer_row(coef: Sequence[float], lo: float, hi: float) -> tuple[list[int], float, float]:
    """Scale a row to integer coefficients (CP-SAT needs them)."""
    if all(float(a).is_integer() for a in coef):
        lo2 = -INF if lo == -INF else math.ceil(lo - 1e-9)
        hi2 = INF if hi == INF else math.floor(hi + 1e-9)
        return [int(a) for a in coef], lo2, hi2
    fr = [Fraction(a).limit_denominator(10**6) for a in coef]
    mult = 1
    for f in fr:
        mult = mult * f.denominator // math.gcd(mult, f.denominator)
    ic = [int(f * mult) for f in fr]
    lo2 = -INF if lo == -INF else math.ceil(lo * mult - 1e-9)
    hi2 = INF if hi == INF else math.floor(hi * mult + 1e-9)
    return ic, lo2, hi2


#: CP-SAT's integers are int64; a row whose activity could leave this range is refused before solving
ROW_LIMIT = 2**62


def solve_cpsat(model: LinearModel, deadline: Deadline, *, threads: int, seed: int, warm_start: bool, log: bool,
                gap: float, on_solution: Callable[[float, float], None] | None, params: Mapping[str, Any] | None,
                stop_if: Callable[[list[float]], bool] | None = None,
                on_values: Callable[[list[float]], None] | None = None,
                memory_limit: int | None = None) -> LinearSolution:
    """Solve ``model`` with CP-SAT (see :func:`memopt.backends.linear.solve_linear`)."""
    from ortools.sat.python import cp_model

    t0 = time.perf_counter()
    m = cp_model.CpModel()
    proto = m.proto
    pvars = proto.variables
    for i in range(model.num_vars):
        if not model.integer[i]:
            raise ValueError(f"CP-SAT needs integer variables; {model.names[i]} is continuous")
        v = pvars.add()
        if log:
            v.name = model.names[i]
        v.domain.extend((int(math.ceil(model.lb[i])), int(math.floor(model.ub[i]))))

    def bounded(lo, hi):
        return (-ROW_LIMIT if lo == -INF else int(lo)), (ROW_LIMIT if hi == INF else int(hi))

    # translating a model of millions of rows takes tens of seconds in Python: give up at the time
    # limit (the caller keeps its warm start) instead of overrunning it
    def out_of_time(k: int) -> bool:
        return k % 5000 == 0 and deadline.expired()

    def aborted() -> LinearSolution:
        return LinearSolution("unknown", None, None, None, time.perf_counter() - t0, "cpsat", None,
                              {"aborted": "time limit reached while building the CP-SAT model",
                               "vars": model.num_vars, "rows": model.num_rows})

    def add_linear(lin, idx, ic, lo2, hi2, k):
        lo_act, hi_act = model.activity_range(idx, ic)
        if max(abs(lo_act), abs(hi_act)) >= ROW_LIMIT:
            raise OverflowError(f"row {model.row_names[k] if k < len(model.row_names) else k} of model "
                                f"{model.name}: its activity reaches {max(abs(lo_act), abs(hi_act)):.3g}, past "
                                "CP-SAT's int64 range")
        lin.vars.extend(idx)
        lin.coeffs.extend(ic)
        lin.domain.extend(bounded(lo2, hi2))

    cons = proto.constraints
    try:
        for k, (idx, coef, lo, hi) in enumerate(model.rows):
            if out_of_time(k):
                return aborted()
            ic, lo2, hi2 = integer_row(coef, lo, hi)
            add_linear(cons.add().linear, idx, ic, lo2, hi2, k)
        for k, (bvar, val, idx, coef, lo, hi) in enumerate(model.indicators):
            if out_of_time(k):
                return aborted()
            ic, lo2, hi2 = integer_row(coef, lo, hi)
            c = cons.add()
            c.enforcement_literal.append(bvar if val else -bvar - 1)
            add_linear(c.linear, idx, ic, lo2, hi2, len(model.row_names))
    except OverflowError as e:
        # the pipeline's number check (memopt.core.numbers) should have refused the instance; never solve a
        # model whose sums CP-SAT would get wrong
        log.warning("CP-SAT not run: %s", e)
        return LinearSolution("unknown", None, None, None, time.perf_counter() - t0, "cpsat", None,
                              {"refused": str(e), "vars": model.num_vars, "rows": model.num_rows})
    for hook in model.cp_hooks:
        hook(m, [m.get_int_var_from_proto_index(i) for i in range(model.num_vars)])
    obj_idx = list(model.objective)
    oc, _, _ = integer_row([model.objective[i] for i in obj_idx], 0, 0)
    scale = (oc[0] / model.objective[obj_idx[0]]) if obj_idx and model.objective[obj_idx[0]] else 1
    if obj_idx:
        proto.objective.vars.extend(obj_idx)
        proto.objective.coeffs.extend(oc)
    if warm_start and model.hint:
        keys = sorted(model.hint)
        proto.solution_hint.vars.extend(keys)
        proto.solution_hint.values.extend(int(round(model.hint[i])) for i in keys)
    build = time.perf_counter() - t0
    first: list[float] = []
    stopped: list[float] = []

    class _CB(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            now = time.perf_counter() - t0
            if not first:
                first.append(now)
            if on_solution is not None:
                on_solution(self.objective_value / scale + model.objective_constant, now)
            if stop_if is None and on_values is None:
                return
            values = [float(x) for x in list(self.response_proto.solution)[:model.num_vars]]
            if on_values is not None:
                on_values(values)
            if stop_if is not None and stop_if(values):
                stopped.append(now)
                self.stop_search()

    solver, status = run_cpsat(m, deadline, threads=threads, seed=seed, log=log, gap=gap, params=params,
                               callback=_CB(), memory_limit=memory_limit)
    seconds = time.perf_counter() - t0
    st = status_name(status)
    values = None
    obj = bound = None
    if st in ("optimal", "feasible"):
        values = [float(x) for x in list(solver.response_proto.solution)[:model.num_vars]]
        obj = sum(model.objective.get(i, 0) * values[i] for i in model.objective) + model.objective_constant
        bound = solver.best_objective_bound / scale + model.objective_constant if obj_idx else obj
        if st == "optimal":
            bound = obj
    # with status UNKNOWN (e.g. time out in presolve) CP-SAT's bound field is
    # not a proven bound (it can be a default 0): never report it
    return LinearSolution(st, values, obj, bound, seconds, "cpsat", first[0] if first else None,
                          {"build_seconds": round(build, 4), "vars": model.num_vars, "rows": model.num_rows,
                           "branches": solver.num_branches, "conflicts": solver.num_conflicts,
                           "stopped": bool(stopped)})


__all__ = ["integer_row", "run_cpsat", "solve_cpsat", "status_name"]
