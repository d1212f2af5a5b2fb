"""One description of a MILP, solved by CP-SAT, CBC or HiGHS.

Every formulation of memopt that has both a CP-SAT and a MILP encoding
builds its variables and constraints *once*, in a :class:`LinearModel`, and
chooses the backend at solve time; the encodings cannot drift apart.

- ``cpsat``: OR-Tools CP-SAT (:mod:`.cpsat`; coefficients are scaled to
  integers row by row; every variable must be integer). Formulation-specific global
  constraints (cumulative, intervals...) may be added for CP-SAT only with
  :meth:`LinearModel.add_cp_hook`; they must be *redundant or equivalent*
  to the linear rows, so both backends solve the same problem.
- ``highs``: HiGHS (:mod:`.highs`) through ``highspy`` directly (the model is passed as a
  sparse matrix; much faster to build than through a modelling layer for
  models of 10^5–10^6 nonzeros). Warm start with ``setSolution``.
- ``cbc``: COIN-OR CBC (:mod:`.cbc`) through PuLP (``PULP_CBC_CMD``, the binary shipped
  with PuLP), warm start with ``warmStart=True`` (an ``.mst`` file); the
  bound is read from CBC's log.

Indicator constraints (``b = 1 ⇒ lo ≤ Σ a x ≤ hi``) are native in CP-SAT
(``OnlyEnforceIf``) and linearised with big-M constants computed from the
variable bounds for the MILP backends.

Every backend honours the run's :class:`~memopt.core.deadline.Deadline`:
its time limit, and the stop signal of Ctrl-C and the memory limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from memopt.backends.cbc import solve_cbc
from memopt.backends.cpsat import solve_cpsat
from memopt.backends.highs import Relaxation, solve_highs, solve_relaxation
from memopt.backends.model import BACKENDS, INF, LinearModel, LinearSolution
from memopt.core.deadline import Deadline
from memopt.core.errors import MemoptError


def solve_linear(
    model: LinearModel,
    backend: str = "cpsat",
    *,
    deadline: Deadline | None = None,
    time_limit: float | None = None,
    threads: int = 2,
    seed: int = 0,
    warm_start: bool = True,
    log: bool = False,
    gap: float = 0.0,
    on_solution: Callable[[float, float], None] | None = None,
    on_values: Callable[[list[float]], None] | None = None,
    params: Mapping[str, Any] | None = None,
    stop_if: Callable[[list[float]], bool] | None = None,
    memory_limit: int | None = None,
) -> LinearSolution:
    """Solve ``model`` with ``backend`` (``cpsat``, ``highs`` or ``cbc``).

    ``deadline`` (or ``time_limit`` seconds from now; neither: no limit,
    the stop signal still applies); the best solution found is returned
    with status ``feasible`` when time runs out. ``gap`` is the relative
    gap at which to stop (0: prove optimality). ``on_solution(objective,
    seconds)`` is called on each improving solution where the backend
    reports them (CP-SAT, HiGHS); ``on_values(values)`` (CP-SAT) gets the
    solution itself, so a caller can offer its plan at once. ``params`` are
    extra backend parameters: CP-SAT ``SatParameters`` fields (e.g.
    ``{"linearization_level": 2}``) or HiGHS options; CBC ignores them.
    ``stop_if(values)`` (CP-SAT only) is asked at each improving solution
    whether to stop there: the solution is returned with status
    ``feasible`` and ``stats["stopped"]``. ``memory_limit``: bytes the
    process may hold (CP-SAT's own limit is set from it).
    """
    if backend not in BACKENDS:
        raise MemoptError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if model.infeasible_reason is not None:
        return LinearSolution("infeasible", None, None, None, 0.0, backend,
                              stats={"reason": model.infeasible_reason})
    dl = deadline if deadline is not None else Deadline(time_limit)
    if backend == "cpsat":
        return solve_cpsat(model, dl, threads=threads, seed=seed, warm_start=warm_start, log=log, gap=gap,
                           on_solution=on_solution, params=params, stop_if=stop_if, on_values=on_values,
                           memory_limit=memory_limit)
    fn = solve_highs if backend == "highs" else solve_cbc
    return fn(model, dl, threads=threads, seed=seed, warm_start=warm_start, log=log, gap=gap,
              on_solution=on_solution, params=params)


__all__ = ["BACKENDS", "INF", "LinearModel", "LinearSolution", "Relaxation", "solve_linear", "solve_relaxation"]
