"""GCD scaling of sizes and times: smaller coefficients, the same plans.

:func:`gcd_scale` divides every size (data sizes, workspaces) by their
greatest common divisor g_s and every task time by theirs, g_t. Budget and
slow capacity become ⌊M / g_s⌋, the bandwidth β·g_t/g_s (so that a
transfer takes s/β / g_t), a makespan limit T / g_t.

**Exact.** Plans name tasks and data by id, so a plan of one instance is a
plan of the other, and for every plan

    peak' = peak / g_s,   makespan' = makespan / g_t,

because every memory amount of SPEC §2 is a sum of sizes and workspaces
(a multiple of g_s) and every stage duration is max(Σ c, Σ s/β). A plan is
valid for one iff it is valid for the other: peak ≤ M ⟺ peak/g_s ≤ ⌊M/g_s⌋
since peak/g_s is an integer (the same for slow memory), and makespan ≤ T
⟺ makespan/g_t ≤ T/g_t. Optima and bounds therefore scale back exactly:
multiply by g_s (peak) or g_t (time).

A factor is dropped (set to 1) when the scaled bandwidth or makespan limit
would not be an exact number (a float that does not represent β·g_t/g_s
exactly would make the scaling inexact). O(n + m).
"""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from functools import reduce
from typing import NamedTuple

from memopt.core.instance import Datum, Instance, Task
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.transforms.base import Transform


class Scaled(NamedTuple):
    """A scaled instance and its factors: real = scaled × factor."""

    instance: Instance
    size_factor: int
    time_factor: int


def _gcd(values) -> int:
    g = reduce(math.gcd, (int(v) for v in values), 0)
    return g or 1


def _exact(x: Fraction) -> int | float | None:
    """``x`` as an int, or a float that is exactly ``x``; ``None`` if neither exists."""
    if x.denominator == 1:
        return int(x.numerator)
    f = float(x)
    if Fraction(repr(f)) == x:
        return f
    return None


def _as_fraction(x: int | float) -> Fraction:
    return Fraction(x) if isinstance(x, int) else Fraction(repr(x))


def size_gcd(inst: Instance) -> int:
    """The gcd of every size and workspace (1 when all are 0): the one memory unit of every model."""
    return _gcd(list(inst.size) + list(inst.workspace))


def time_gcd(inst: Instance) -> int:
    """The gcd of every task time (1 when all are 0)."""
    return _gcd(inst.time)


def scale_factors(inst: Instance, max_makespan: float | None = None) -> tuple[int, int]:
    """(g_s, g_t): the gcds of the sizes/workspaces and of the times, reduced to keep the scaling exact."""
    gs, gt = size_gcd(inst), time_gcd(inst)
    for cand in ((gs, gt), (gs, 1), (1, gt), (1, 1)):
        if _fits(inst, cand[0], cand[1], max_makespan):
            return cand
    return 1, 1  # pragma: no cover - (1, 1) always fits


def _fits(inst: Instance, gs: int, gt: int, max_makespan: float | None) -> bool:
    beta = inst.machine.bandwidth
    if beta is not None and not math.isinf(beta) and (gs, gt) != (1, 1):
        if _exact(_as_fraction(beta) * gt / gs) is None:
            return False
    return not (max_makespan is not None and gt != 1 and _exact(_as_fraction(max_makespan) / gt) is None)


def gcd_scale(inst: Instance, max_makespan: float | None = None) -> Scaled:
    """The instance with sizes divided by g_s and times by g_t (see the module docstring)."""
    gs, gt = scale_factors(inst, max_makespan)
    if (gs, gt) == (1, 1):
        return Scaled(inst, 1, 1)
    tasks = [Task(t.id, t.time // gt, t.workspace // gs, t.recompute, t.meta) for t in inst.tasks]
    data = [Datum(d.id, d.producer, d.consumers, d.size // gs) for d in inst.data]
    m = inst.machine
    beta = m.bandwidth
    if beta is not None and not math.isinf(beta):
        beta = _exact(_as_fraction(beta) * gt / gs)
    machine = replace(m, budget=None if m.budget is None else m.budget // gs,
                      slow_capacity=None if m.slow_capacity is None else m.slow_capacity // gs,
                      bandwidth=beta)
    return Scaled(inst.replace(tasks=tasks, data=data, machine=machine), gs, gt)


class Scaling(Transform):
    """The gcd scaling of a request as a :class:`~memopt.transforms.base.Transform` (exact).

    The budget becomes ⌊M/g_s⌋ and a makespan limit T/g_t; an objective
    value or bound v of the scaled request is v·g_s (peak) or v·g_t (time)
    of the original. Plans carry over unchanged (they name tasks and data by id).
    """

    def __init__(self, req: Request):
        sc = gcd_scale(req.instance, req.max_makespan)
        self.original = req
        self.size_factor, self.time_factor = sc.size_factor, sc.time_factor
        if (sc.size_factor, sc.time_factor) == (1, 1):
            self.request = req
            return
        budget = None if req.budget is None else req.budget // sc.size_factor
        T = req.max_makespan
        if T is not None:
            T = _exact(_as_fraction(T) / sc.time_factor)
        self.request = replace(req, instance=sc.instance, budget=budget, max_makespan=T)

    def expand(self, plan: Plan) -> Plan:
        return plan

    def unscale(self, value: int | float) -> int | float:
        return value * (self.size_factor if self.original.objective == "peak" else self.time_factor)


def scale(req: Request) -> Scaling:
    """Apply the gcd scaling to ``req`` (see :class:`Scaling`)."""
    return Scaling(req)


__all__ = ["Scaled", "Scaling", "gcd_scale", "scale", "scale_factors", "size_gcd", "time_gcd"]
