"""CP-SAT model of the peak: positions, lifetimes as intervals, a cumulative with the peak as capacity.

Variables: the position pos(v) of every task (shared builder
:func:`~memopt.formulations.peak_common.add_positions`: bounds, precedences,
clusters of the reduction as contiguity rows), and the peak P. Every datum d
of positive size is an interval [pos(p(d)), end(d)) with demand s(d), where

- end(d) = n for a result,
- end(d) = pos(r(d)) + 1 for a fixed release task r(d),
- end(d) = max over its readers c of pos(c) + 1 otherwise (a variable with
  rows end(d) >= pos(c) + 1 and, in CP-SAT, a max-equality);

every task with a workspace adds the interval [pos(v), pos(v) + 1) with
demand w(v). Then the demand at point k is exactly the memory of step k
(SPEC §2), and ``cumulative(intervals, demands, capacity=P)`` with
``AllDifferent(pos)`` and ``minimize P`` is the problem. The model has
O(n + m) variables, so it scales to graphs the time-indexed MILP cannot
hold; its linear relaxation alone is weak, the cumulative does the work.

It is CP-only (the intervals and the cumulative are added with
:meth:`~memopt.backends.linear.LinearModel.add_cp_hook`); the MILP of the
same problem is :mod:`memopt.formulations.peak_milp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memopt.backends.linear import LinearModel
from memopt.core.method import Context, MethodOutput
from memopt.core.request import Request
from memopt.formulations.peak_common import (
    PeakGraph,
    add_peak,
    add_positions,
    hint_positions,
    lifetime_end_hint,
    lifetimes,
)
from memopt.formulations.peak_run import PeakFormulationParams, run_peak_formulation
from memopt.graph.release import AMBIGUOUS, RESULT


def peak_cp_model(pg: PeakGraph, lb: int, ub: int | None, hint: list[int] | None) -> tuple[LinearModel, list[int]]:
    """The interval/cumulative model (see the module docstring); returns (model, pos variables)."""
    n = pg.n
    inst = pg.inst
    model = LinearModel("peak-cp")
    pos = add_positions(model, pg)
    P = add_peak(model, pg, lb, ub)
    items: list[tuple[str, Any, int, int]] = []  # (kind, data, size var or const, demand)
    lts = lifetimes(pg)
    ends: dict[int, int] = {}
    for lt in lts:
        p = pos[lt.producer]
        if lt.release == RESULT:
            sz = model.var(f"len[{lt.j}]", 1, n - pg.lo[lt.producer])
            model.add_eq([(sz, 1), (p, 1)], n)
            items.append(("result", lt, sz, lt.size))
        elif lt.release == AMBIGUOUS:
            e = model.var(f"end[{lt.j}]", pg.lo[lt.producer] + 2, n)
            for c in lt.readers:
                model.add_ge([(e, 1), (pos[c], -1)], 1)
            sz = model.var(f"len[{lt.j}]", 1, n)
            model.add_eq([(sz, 1), (e, -1), (p, 1)], 0)
            ends[lt.j] = e
            items.append(("ambiguous", lt, sz, lt.size))
        else:
            sz = model.var(f"len[{lt.j}]", 1, n)
            model.add_eq([(sz, 1), (pos[lt.release], -1), (p, 1)], 1)
            items.append(("fixed", lt, sz, lt.size))
    work = [v for v in range(n) if inst.workspace[v] > 0]

    def hook(cp, xs) -> None:
        cp.add_all_different([xs[i] for i in pos])
        intervals, demands = [], []
        for kind, lt, sz, dem in items:
            start = xs[pos[lt.producer]]
            if kind == "result":
                end = n
            elif kind == "ambiguous":
                end = xs[ends[lt.j]]
                cp.add_max_equality(end, [xs[pos[c]] + 1 for c in lt.readers])
            else:
                end = xs[pos[lt.release]] + 1
            intervals.append(cp.new_interval_var(start, xs[sz], end, f"life[{lt.j}]"))
            demands.append(dem)
        for v in work:
            intervals.append(cp.new_fixed_size_interval_var(xs[pos[v]], 1, f"work[{v}]"))
            demands.append(pg.work[v])
        if intervals:
            cp.add_cumulative(intervals, demands, xs[P])

    model.add_cp_hook(hook)
    model.minimize({P: 1})
    if hint is not None:
        hp = hint_positions(hint, n)
        h = {pos[v]: hp[v] for v in range(n)}
        from memopt.core.evaluate import schedule_peak

        h[P] = max(model.lb[P], min(schedule_peak(inst, hint) // pg.unit, model.ub[P]))
        for kind, lt, sz, _ in items:
            end = lifetime_end_hint(lt, hp, n)
            h[sz] = end - hp[lt.producer]
            if kind == "ambiguous":
                h[ends[lt.j]] = end
        model.set_hint(h)
    return model, pos


@dataclass(frozen=True)
class PeakCPParams(PeakFormulationParams):
    pass


def run_peak_cp(req: Request, ctx: Context) -> MethodOutput:
    """CP-SAT: positions, lifetimes as intervals, cumulative with the peak as capacity (reduce=false: no reduction)."""
    return run_peak_formulation(req, ctx, peak_cp_model, "cpsat")


__all__ = ["PeakCPParams", "peak_cp_model", "run_peak_cp"]
