"""CBC: COIN-OR's branch and cut, through PuLP (the ``cbc`` binary of ``pulp[cbc]``), run as a child process.

The warm start goes through an ``.mst`` file, the bound is read from CBC's
log; PuLP's files and the log live in one temporary directory per solve,
removed when it ends (a killed CBC leaves none behind). The child process
is killed when the run is stopped and at the deadline plus
:data:`KILL_GRACE` seconds; a point CBC returns at its time limit that
breaks a row once rounded is no solution.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from memopt.backends.model import INF, LinearModel, LinearSolution
from memopt.core.deadline import Deadline
from memopt.core.errors import SolverUnavailableError
from memopt.core.interrupt import child_pids, kill_children

KILL_GRACE = 5.0
"""At most this many seconds past the deadline before the CBC process is killed (0.2 s + 5 % of the limit)."""
OWN_RESERVE = 0.1, 1.0
"""CBC's own time limit is the time left less this share of it, at most this many seconds (it overruns its
limit: starting, stopping, writing its solution; layered-100 with ``peak-milp``: 1.46 s for ``-t 0.5``,
4.2 s for ``-t 3`` with a whole-second limit and a kill 1 s past the deadline)."""


def cbc_result(text: str) -> str:
    m = re.search(r"Result - (.*)", text)
    return m.group(1) if m else ""


def _own_limit(seconds: float) -> float:
    share, most = OWN_RESERVE
    return round(max(0.1, seconds - min(share * seconds, most)), 2)


def cbc_solver(**kw):
    """CBC through PuLP: the ``cbc`` binary of ``pulp[cbc]`` (COIN_CMD), else PuLP's bundled one."""
    import warnings

    import pulp

    solver = pulp.COIN_CMD(**kw)
    if solver.available():
        return solver
    with warnings.catch_warnings():  # PULP_CBC_CMD is deprecated in PuLP 3.x but still shipped
        warnings.simplefilter("ignore", DeprecationWarning)
        solver = pulp.PULP_CBC_CMD(**kw)
    if not solver.available():
        raise SolverUnavailableError("CBC is not available: pip install 'pulp[cbc]'")
    return solver


def solve_cbc(model: LinearModel, deadline: Deadline, *, threads: int, seed: int, warm_start: bool, log: bool,
              gap: float, on_solution: Callable[[float, float], None] | None = None,
              params: Mapping[str, Any] | None = None) -> LinearSolution:
    """Solve ``model`` with CBC (see :func:`memopt.backends.linear.solve_linear`; ``params`` are ignored)."""
    import pulp

    t0 = time.perf_counter()
    prob = pulp.LpProblem(model.name.replace(" ", "_") or "model", pulp.LpMinimize)
    xs = []
    for i in range(model.num_vars):
        lb = None if model.lb[i] == -INF else model.lb[i]
        ub = None if model.ub[i] == INF else model.ub[i]
        cat = pulp.LpInteger if model.integer[i] else pulp.LpContinuous
        if cat == pulp.LpInteger and lb == 0 and ub == 1:
            cat = pulp.LpBinary
        if hasattr(prob, "add_variable"):  # PuLP >= 3.3
            xs.append(prob.add_variable(f"x{i}", lb, ub, cat))
        else:  # pragma: no cover - older PuLP
            xs.append(pulp.LpVariable(f"x{i}", lb, ub, cat))
    prob += pulp.LpAffineExpression([(xs[i], a) for i, a in model.objective.items()]) + model.objective_constant
    for k, (idx, coef, lo, hi) in enumerate(model.linearized_rows()):
        if k % 5000 == 0 and deadline.expired():
            return LinearSolution("unknown", None, None, None, time.perf_counter() - t0, "cbc", None,
                                  {"aborted": "time limit reached while building the CBC model",
                                   "vars": model.num_vars, "rows": model.num_rows})
        expr = pulp.LpAffineExpression([(xs[i], a) for i, a in zip(idx, coef)])
        if lo == hi:
            prob += pulp.LpConstraint(expr, pulp.LpConstraintEQ, f"r{k}", lo)
            continue
        if lo > -INF:
            prob += pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{k}l", lo)
        if hi < INF:
            prob += pulp.LpConstraint(expr, pulp.LpConstraintLE, f"r{k}u", hi)
    if warm_start and model.hint:
        for i, v in model.hint.items():
            xs[i].setInitialValue(v)
    build = time.perf_counter() - t0
    time_limit = deadline.seconds()
    # PuLP writes the model, the warm start and the solution into its temp dir and deletes them only when CBC
    # returns a solution file: a killed CBC (deadline, Ctrl-C) left ~1 MB of .mps/.mst per solve in /tmp
    # (110 files after a day of benchmarks). One private directory per solve, removed whatever happens.
    work = tempfile.mkdtemp(prefix="memopt-cbc-")
    log_path = os.path.join(work, "cbc.log")
    solver = cbc_solver(
        msg=bool(log), timeLimit=None if time_limit is None else _own_limit(time_limit),
        threads=max(1, int(threads)), warmStart=bool(warm_start and model.hint), gapRel=gap if gap > 0 else None,
        logPath=log_path, options=[f"randomSeed {int(seed) + 1}", f"randomCbcSeed {int(seed) + 1}"],
    )
    solver.tmpDir = work
    # CBC runs as a child process: the stop signal kills it (memopt.core.interrupt), and so does a timer
    # at the deadline + KILL_GRACE (CBC has overrun its own limit by minutes on 150k-row models)
    killed: list[str] = []
    done = [False]
    lock = threading.Lock()
    before = child_pids()  # the children that are not CBC (a caller's, the planner's walker...): never killed

    def kill(reason: str) -> None:
        # under the lock, and only while this solve runs: a timer that fires as CBC returns must not kill the
        # next CBC process of the run (the next round of a lazy model), whose solve would then fail as a bug
        with lock:
            if not done[0]:
                killed.append(reason)
                kill_children(besides=before)

    timer = None
    if time_limit is not None:
        timer = threading.Timer(time_limit + min(KILL_GRACE, 0.2 + 0.05 * time_limit), kill, args=("deadline",))
        timer.daemon = True
        timer.start()
    text = ""
    try:
        with deadline.stop.hook(lambda: kill("stopped")):
            try:
                prob.solve(solver)
            except pulp.PulpSolverError:
                with lock:
                    done[0] = True
                if not killed:
                    raise
                prob.status, prob.sol_status = pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound
            with lock:
                done[0] = True
        if os.path.exists(log_path):
            with open(log_path) as f:
                text = f.read()
    finally:
        if timer is not None:
            timer.cancel()
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - t0
    # a variable in no row and not in the objective is not written to CBC: any value in its bounds
    values = [x.varValue if x.varValue is not None else (model.lb[i] if model.lb[i] > -INF else 0.0)
              for i, x in enumerate(xs)]
    # PuLP reads CBC's solution file: sol_status 1 = proven optimal, 2 = integer
    # feasible (e.g. stopped on the time limit), status -1 = infeasible
    if prob.status == pulp.LpStatusInfeasible or "infeasible" in cbc_result(text).lower():
        st = "infeasible"
    elif prob.sol_status == pulp.LpSolutionOptimal and prob.status == pulp.LpStatusOptimal:
        st = "optimal"
    elif prob.sol_status in (pulp.LpSolutionIntegerFeasible, pulp.LpSolutionOptimal):
        st = "feasible"
    else:
        st = "unknown"
    obj = bound = None
    if st in ("optimal", "feasible"):
        values = [float(v) for v in values]
        # CBC can return values slightly off integrality; round integers
        values = [round(v) if model.integer[i] else v for i, v in enumerate(values)]
        obj = sum(model.objective.get(i, 0) * values[i] for i in model.objective) + model.objective_constant
    rejected = None
    if st == "feasible":
        # CBC stopped at its time limit may hand back a point that, rounded, breaks rows (seen once on a
        # 150k-row stage model): that is no solution; an optimal one is CBC's proof and is kept
        broken = model.check(values)
        if broken:
            rejected = f"{len(broken)} rows broken once rounded, e.g. {broken[0]}"
            st = "unknown"
    if st not in ("optimal", "feasible"):
        values = obj = None
    if st == "optimal":
        bound = obj
    else:
        mb = re.search(r"Lower bound:\s*([-+0-9.eE]+)", text)
        if mb:
            bound = float(mb.group(1))
    first = None
    # CBC 2.10 prints "Integer solution of X found ... (T seconds)"; newer builds mark it with "★ ... solution X T"
    mf = (re.search(r"Integer solution of [-+0-9.eE]+ found.*?\(([0-9.]+) seconds\)", text)
          or re.search(r"\u2605.*?solution\s+[-+0-9.eE]+\s+([0-9.]+)\s*$", text, re.M))
    if mf:
        first = build + float(mf.group(1))
    return LinearSolution(st, values, obj, bound, seconds, "cbc", first,
                          {"build_seconds": round(build, 4), "vars": model.num_vars,
                           "rows": model.num_rows, "rejected_solution": rejected,
                           "killed": killed[0] if killed else None})


__all__ = ["KILL_GRACE", "cbc_result", "cbc_solver", "solve_cbc"]
