"""Numbers a solver can hold exactly, checked before any model is built.

CP-SAT computes in int64: the sums a model forms (memory: sizes; time:
times × computations) must stay well inside it — we allow 2^62. HiGHS and
CBC compute in doubles, exact on integers up to 2^53. The models divide
sizes and times by their gcds first (:mod:`memopt.transforms.scaling`), so
the check is on the scaled numbers. Methods that compute on Python integers
(the exact searches, the planner, the evaluator) need no check: they
answer for any size.
"""

from __future__ import annotations

import math

from memopt.core.errors import MemoptError
from memopt.core.request import Request

SOLVER_INT_LIMITS = {"int64": 2**62, "double": 2**53}
RECOMPUTE_FACTOR = 5  # a model's makespan sums count each task at most this many times


def _excess(req: Request, kind: str) -> str | None:
    """Why ``req``'s numbers do not fit ``kind`` arithmetic (``None``: they fit)."""
    limit = SOLVER_INT_LIMITS[kind]
    inst = req.instance
    gs = math.gcd(*inst.size, *inst.workspace) or 1
    gt = math.gcd(*inst.time) or 1
    mem = (sum(inst.size) + max(inst.workspace, default=0)) // gs
    span = (inst.total_time // gt) * (RECOMPUTE_FACTOR if req.recompute else 1)
    if mem > limit:
        j = max(range(inst.m), key=lambda d: inst.size[d], default=None)
        big = f"datum {inst.data[j].id!r} (size {inst.size[j]})" if j is not None else "a workspace"
        return (f"the sizes sum to {sum(inst.size)}, more than {kind} arithmetic holds exactly even after "
                f"dividing by their gcd {gs} (the largest is {big})")
    if span > limit:
        v = max(range(inst.n), key=lambda t: inst.time[t])
        return (f"the task times sum to {inst.total_time}, more than {kind} arithmetic holds exactly (the "
                f"largest is task {inst.tasks[v].id!r}, time {inst.time[v]})")
    if req.budget is not None and req.budget // gs > limit:
        return f"the budget {req.budget} is more than {kind} arithmetic holds exactly"
    return None


def numbers_fit(req: Request, kind: str | None) -> bool:
    """Whether a solver of ``kind`` arithmetic (``None``: Python integers) holds ``req``'s numbers."""
    return kind is None or _excess(req, kind) is None


def check_numbers(req: Request, method: str, kind: str | None) -> None:
    """Raise an input error naming the datum when ``method``'s solver cannot hold ``req``'s numbers."""
    if kind is None:
        return
    why = _excess(req, kind)
    if why:
        raise MemoptError(f"{req.instance.where}: method {method!r} cannot solve this instance exactly: {why}. "
                          "Use larger units, or a method that computes on exact integers (auto for the peak, "
                          "downset-dp, liu, series-parallel, planner)")


__all__ = ["SOLVER_INT_LIMITS", "check_numbers", "numbers_fit"]
