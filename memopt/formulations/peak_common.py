"""Builders shared by the peak formulations (CP-SAT intervals, time-indexed MILP).

Both formulations of the ``peak`` objective decide the position pos(v) in
0..n-1 of every task and bound the memory of every step by a variable P;
they share, through these builders on a
:class:`~memopt.formulations.linear.LinearModel`:

- :func:`add_positions`: pos(v) with the bounds |anc(v)| <= pos(v) <=
  n - 1 - |desc(v)|, the precedences pos(v) >= pos(u) + 1, and — when a
  :class:`~memopt.transform.Reduction` is given — its clusters as
  contiguity rows pos(u_{k+1}) = pos(u_k) + 1 and its arcs;
- :func:`lifetimes`: how each datum's lifetime ends (never: a result; at
  its fixed release task; at the last of several readers: ambiguous), read
  by both models to state "datum d is resident at step k";
- :func:`add_peak`: the variable P with its proven bounds;
- :func:`hint_positions` / :func:`order_from_positions`: warm starts and
  decoding.

A datum d is resident during step k iff pos(p(d)) <= k <= max over its
readers c of pos(c) (or to the end, for a result): that is SPEC §2's memory
at the compute of step k (outputs being written and inputs being read
included); the task's workspace adds w(v) at its own step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ..graph import ancestor_masks, descendant_masks
from ..instance import Instance
from ..transform.clusters import Reduction
from ..transform.release import AMBIGUOUS, RESULT, release_tasks
from .linear import LinearModel


@dataclass
class Lifetime:
    """Datum ``j`` (size > 0, ``size`` in the graph's unit): produced by ``producer``; ends at
    ``release`` (a task), never (``RESULT``) or at the last of ``readers`` (``AMBIGUOUS``)."""

    j: int
    size: int
    producer: int
    release: int
    readers: tuple[int, ...]


class PeakGraph:
    """The instance, optionally reduced: the arcs and position bounds the formulations use."""

    def __init__(self, inst: Instance, red: Reduction | None = None):
        self.inst = inst
        self.red = red
        n = inst.n
        arcs: set[tuple[int, int]] = {(u, v) for u in range(n) for v in inst.succs[u]}
        self.chains: list[tuple[int, ...]] = []
        if red is not None:
            for members in red.clusters:
                if len(members) > 1:
                    self.chains.append(members)
                    arcs.update(zip(members, members[1:]))
            for c, ss in enumerate(red.succs):
                for d in ss:
                    arcs.add((red.clusters[c][-1], red.clusters[d][0]))
        self.arcs = sorted(arcs)
        succs: list[list[int]] = [[] for _ in range(n)]
        preds: list[list[int]] = [[] for _ in range(n)]
        for u, v in self.arcs:
            succs[u].append(v)
            preds[v].append(u)
        self.lo, self.hi = _position_bounds(n, preds, succs, inst.topological_order if red is None else None)
        self.release = release_tasks(inst)
        # every memory amount is a multiple of the gcd of the sizes and workspaces: the models count
        # in that unit, which keeps byte-sized coefficients (10^9..10^10) within solver tolerances
        unit = 0
        for x in list(inst.size) + list(inst.workspace):
            unit = math.gcd(unit, x)
        self.unit = unit or 1
        self.work = [w // self.unit for w in inst.workspace]

    @property
    def n(self) -> int:
        return self.inst.n


def _position_bounds(n: int, preds, succs, topo) -> tuple[list[int], list[int]]:
    """|anc(v)| and n - 1 - |desc(v)| by bitsets (O(n·e/64)); trivial bounds past 20,000 tasks."""
    if n > 20000:
        return [0] * n, [n - 1] * n
    if topo is None:
        indeg = [len(p) for p in preds]
        stack = [v for v in range(n) if indeg[v] == 0]
        topo = []
        while stack:
            v = stack.pop()
            topo.append(v)
            for w in succs[v]:
                indeg[w] -= 1
                if indeg[w] == 0:
                    stack.append(w)
    anc = ancestor_masks(preds, topo)
    desc = descendant_masks(succs, topo)
    return [a.bit_count() for a in anc], [n - 1 - d.bit_count() for d in desc]


def add_positions(model: LinearModel, pg: PeakGraph) -> list[int]:
    """pos(v) for every task, with precedence and cluster-contiguity rows; returns the variable indices."""
    pos = [model.var(f"pos[{pg.inst.tasks[v].id}]", pg.lo[v], pg.hi[v]) for v in range(pg.n)]
    in_chain: set[tuple[int, int]] = set()
    for members in pg.chains:
        for a, b in zip(members, members[1:]):
            model.add_eq([(pos[b], 1), (pos[a], -1)], 1, name=f"contiguous[{a},{b}]")
            in_chain.add((a, b))
    for u, v in pg.arcs:
        if (u, v) not in in_chain:
            model.add_ge([(pos[v], 1), (pos[u], -1)], 1, name=f"prec[{u},{v}]")
    return pos


def lifetimes(pg: PeakGraph) -> list[Lifetime]:
    """The data of positive size with how their lifetime ends."""
    inst = pg.inst
    out = []
    for j in range(inst.m):
        s = inst.size[j]
        if s > 0:
            out.append(Lifetime(j, s // pg.unit, inst.producer[j], pg.release[j], inst.consumers[j]))
    return out


def add_peak(model: LinearModel, pg: PeakGraph, lb: int, ub: int | None) -> int:
    """The peak variable P, in units of ``pg.unit``, within [lb, ub] (ub: the incumbent's peak or the budget)."""
    lo = -(-lb // pg.unit)
    hi = ub // pg.unit if ub is not None else 10**15
    return model.var("peak", lo, max(lo, hi))


def hint_positions(order: Sequence[int], n: int) -> list[int]:
    """pos(v) of a task order."""
    pos = [0] * n
    for k, v in enumerate(order):
        pos[v] = k
    return pos


def order_from_positions(values: Sequence[float], pos: Sequence[int]) -> list[int]:
    """The task order of a solution (ties, impossible in a valid solution, broken by index)."""
    return sorted(range(len(pos)), key=lambda v: (round(values[pos[v]]), v))


def respects(pg: PeakGraph, order: Sequence[int]) -> bool:
    """Does the order satisfy the position bounds, arcs and clusters of ``pg``?"""
    pos = hint_positions(order, pg.n)
    if any(not (pg.lo[v] <= pos[v] <= pg.hi[v]) for v in range(pg.n)):
        return False
    if any(pos[u] >= pos[v] for u, v in pg.arcs):
        return False
    return all(pos[b] == pos[a] + 1 for m in pg.chains for a, b in zip(m, m[1:]))


def lifetime_end_hint(lt: Lifetime, position: Sequence[int], n: int) -> int:
    """The step after the last one where the datum is resident (n for a result)."""
    if lt.release == RESULT:
        return n
    if lt.release == AMBIGUOUS:
        return max(position[c] for c in lt.readers) + 1
    return position[lt.release] + 1


__all__ = ["PeakGraph", "Lifetime", "respects", "add_positions", "lifetimes", "add_peak", "hint_positions",
           "order_from_positions", "lifetime_end_hint"]


# ------------------------------------------------------------------ running
def warm_order(req, opts, red: Reduction | None) -> list[int] | None:
    """The warm-start order: a given plan's, else the best of the baselines and (with a
    reduction) a greedy order of the clusters, which respects the reduction."""
    from ..evaluate import schedule_peak
    from ..exact.downset_dp import _order_of_plan, greedy_cluster_order
    from ..heuristics.orders import best_baseline

    inst = req.instance
    warm = opts.warm_start
    if warm is False:
        return None
    if warm is not True:
        order = _order_of_plan(inst, warm)
        if order is not None:
            return order
    order, peak, _ = best_baseline(inst)
    if red is not None:
        g = greedy_cluster_order(inst, red)
        if g is not None and schedule_peak(inst, g) <= peak:
            return g
    return order


def run_peak_formulation(req, opts, build, name: str, backend: str):
    """Build (``build(pg, lb, ub, hint) -> (model, pos)``), solve and decode a peak formulation.

    Options: ``reduce`` (default true) builds the model on the reduced graph;
    ``gap`` a relative gap to stop at. The plan returned is the decoded order,
    or the warm start if the solver found nothing better; the bound is the
    solver's (rounded up: peaks are integers) merged with the lifetime bound.
    """
    import math

    from ..evaluate import schedule_peak
    from ..exact.peak_bounds import lifetime_bound
    from ..plan import Plan
    from ..solve import MethodOutput
    from ..transform import reduce_peak
    from .linear import solve_linear

    inst = req.instance
    red = reduce_peak(inst, deadline=opts.deadline) if opts.option("reduce", True) else None
    pg = PeakGraph(inst, red)
    lb, _ = lifetime_bound(inst)
    warm = warm_order(req, opts, red)
    hint = warm
    if hint is not None and not respects(pg, hint):
        from ..exact.downset_dp import greedy_cluster_order

        hint = greedy_cluster_order(inst, red)  # a hint must satisfy the reduction's rows
    ub = min(schedule_peak(inst, o) for o in (warm, hint)) if hint is not None else None
    cap = ub
    if req.budget is not None:
        cap = req.budget if cap is None else min(cap, req.budget)
    stats = {"backend": backend, "reduced_clusters": red.n if red is not None else inst.n}
    if cap is not None and cap < lb:
        return MethodOutput(None, "infeasible", bound=lb, stats=stats,
                            message=f"the lower bound {lb} exceeds the budget {req.budget}")
    model, pos = build(pg, lb, cap, hint)
    stats.update(vars=model.num_vars, rows=model.num_rows)
    remaining = opts.remaining()
    sol = solve_linear(model, backend, time_limit=None if math.isinf(remaining) else remaining,
                       threads=opts.threads, seed=opts.seed, warm_start=hint is not None, log=opts.log,
                       gap=float(opts.option("gap", 0.0)))
    stats["solver_status"] = sol.status
    stats["solver_seconds"] = round(sol.seconds, 3)
    bound = lb
    if sol.bound is not None and sol.status != "infeasible":
        bound = max(bound, math.ceil(sol.bound - 1e-6) * pg.unit)
    if sol.status == "infeasible":
        if req.budget is not None and (ub is None or req.budget < ub):
            return MethodOutput(None, "infeasible", bound=max(bound, req.budget + 1), stats=stats,
                                message=f"no order has a peak within the budget {req.budget}")
        # the warm start is a feasible point: the solver is wrong (numerics); keep the warm start
        stats["warning"] = f"{backend} reported the model infeasible although the warm start is feasible"
    order = None
    if sol.values is not None:
        order = order_from_positions(sol.values, pos)
    candidates = [o for o in (order, hint, warm) if o is not None]
    if not candidates:
        return MethodOutput(None, "unknown", bound=bound, stats=stats, message=f"{name}: no solution found in time")
    best = min(candidates, key=lambda o: schedule_peak(inst, o))
    peak = schedule_peak(inst, best)
    opts.improved(value=peak, bound=bound, what=name)
    if req.budget is not None and peak > req.budget:
        return MethodOutput(None, "unknown", bound=bound, stats=stats,
                            message=f"{name}: no plan within the budget {req.budget} found in time")
    # the models are exact, so the solver's bound is a bound on the optimal peak; an order
    # whose evaluated peak reaches it is proven optimal
    status = "optimal" if peak <= bound else "feasible"
    return MethodOutput(Plan.from_order(inst, best), status, bound=bound, stats=stats)
