"""``auto`` for the peak objective: the fastest exact route, the best plan found when time runs out.

The strategy (each step only if the previous ones did not prove the optimum):

1. **bounds and baselines**: the lifetime lower bound
   (:mod:`memopt.exact.peak_bounds`) and the best baseline order; equal
   means optimal;
2. **polynomial cases**: a forest or a series-parallel graph is solved by
   Liu's or the series-parallel algorithm when its tasks have fixed memory
   effects, else bounded by the release relaxation
   (:mod:`memopt.exact.release_relaxation`), which often proves optimality;
3. **min-cut bounds** (:mod:`memopt.exact.cut_bound`): the least memory any
   order holds at each task, one max-flow per task near the peak of the
   best order; then the critical tasks taken together (their relative
   order searched). On forests and series-parallel graphs, the schedule is
   also **split** at the critical task's least-memory down-set and both
   parts solved by ``auto`` (:mod:`memopt.exact.cut_split`);
4. **reduction** (:func:`memopt.transforms.reduction.reduce_peak`): a graph reduced to
   one cluster is solved;
5. **exact search** over the down-sets of the reduced graph
   (:mod:`memopt.exact.downset_dp`), best-first from the bound, about half
   of the time left (a quarter above 500 clusters);
6. when the search stops early: **target searches**
   (:func:`memopt.exact.target_search.tighten`: "is there an order within
   T?", bisecting between the bound and the best peak; an exhausted search
   raises the bound), then **beam search** and, with a time limit,
   **CP-SAT** (:mod:`memopt.formulations.peak_cp`) improve the plan.

The status is ``optimal`` only when a lower bound meets the evaluated peak,
``infeasible`` when a lower bound (or the exhaustive search) exceeds the
budget.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from memopt.backends.linear import solve_linear
from memopt.core.evaluate import schedule_peak
from memopt.core.incumbent import Incumbent
from memopt.core.method import Context, MethodOutput
from memopt.core.numbers import numbers_fit
from memopt.core.params import Params, option
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.status import Objective, Status
from memopt.exact.cut_bound import CutNetwork, cut_bound, joint_cut_bound
from memopt.exact.cut_split import join_orders, split_instance
from memopt.exact.downset_dp import beam_search, downset_search
from memopt.exact.peak_bounds import MAX_TASKS as LIFETIME_MAX_TASKS
from memopt.exact.peak_bounds import lifetime_bound
from memopt.exact.release_relaxation import release_relaxation
from memopt.exact.target_search import tighten
from memopt.formulations.peak_common import PeakGraph, order_from_positions
from memopt.formulations.peak_cp import peak_cp_model
from memopt.heuristics.orders import best_baseline
from memopt.transforms.reduction import reduce_peak

DP_MAX_CLUSTERS = 4000     # beyond this the down-set search has no chance
CUT_MAX_TASKS = 200_000    # the min-cut bound (interval networks, O(n + e) memory)
JOINT_NETWORK_MAX_TASKS = 20_000  # the joint bound's whole-graph network: a flow on it takes seconds beyond
TARGET_MAX_CLUSTERS = 4000  # target searches: a state is a bitmask over the clusters
MAX_SPLIT_DEPTH = 2        # splits of splits of the instance
JOINT_SIZES = (4, 8, 12, 16, 24)  # critical sets of the joint min-cut bound, tried in turn
JOINT_MAX_FLOWS = 3000     # per joint bound (milliseconds each on a thousand tasks)
CP_MAX_TASKS = 5000        # CP-SAT phase only for graphs it can hold
DEFAULT_MAX_STATES = 2_000_000
BEAM_SECONDS = 30.0        # beam phase without a time limit


@dataclass(frozen=True)
class AutoPeakParams(Params):
    fit: bool = option(False, "with a budget: stop at the first order within it, or once a bound exceeds it")
    target: int | None = option(None, "stop once an order has a peak within this, or a bound exceeds it")
    max_states: int | None = option(None, "states of the down-set search (default 2,000,000; half above 500 "
                                          "clusters)")
    max_beam: int = option(256, "widest beam of the beam-search phase")


class _Best:
    """The best order found (whatever its peak: the searches start from it) and the incumbent it feeds.

    Orders within the request's budget are offered to the run's incumbent,
    whose bound is the one proven lower bound.
    """

    def __init__(self, req: Request, ctx: Context):
        self.req = req
        self.ctx = ctx
        self.inc: Incumbent = ctx.incumbent
        self.order: list[int] | None = None
        self.peak: float = math.inf
        self.source = ""

    def offer(self, order: list[int] | None, source: str, peak: int | None = None) -> None:
        if order is None:
            return
        p = schedule_peak(self.req.instance, order) if peak is None else peak
        if p < self.peak:
            self.order, self.peak, self.source = order, p, source
            if self.req.budget is None or p <= self.req.budget:
                self.ctx.offer(Plan.from_order(self.req.instance, order), source)

    def lower(self, value: int, source: str) -> None:
        self.inc.prove(value, source)

    @property
    def bound(self) -> int:
        b = self.inc.bound
        return 0 if b is None else int(b)

    @property
    def proven(self) -> bool:
        return self.order is not None and self.peak <= self.bound


def _split_order(req: Request, ctx: Context, D: set[int], order: list[int], seconds: float | None,
                 depth: int) -> list[int] | None:
    """An order through the down-set D: each part solved by this strategy (:mod:`memopt.exact.cut_split`),
    starting from ``order`` restricted to the part."""
    inst = req.instance
    if not D or len(D) == inst.n:
        return None
    pre, suf = split_instance(inst, D)
    orders = []
    t0 = time.perf_counter()
    pos = [0] * inst.n
    for k, v in enumerate(order):
        pos[v] = k
    for k, part in enumerate((pre, suf)):
        left = None if seconds is None else max(0.1, (seconds - (time.perf_counter() - t0)) / (2 - k))
        tm = part.task_map
        start = sorted(range(part.instance.n), key=lambda x: -1 if tm[x] < 0 else pos[tm[x]])
        sub_req = Request(part.instance, Objective.PEAK)
        dl = ctx.deadline if left is None else ctx.deadline.capped(left)
        sub = ctx.child(deadline=dl, incumbent=Incumbent(sub_req, dl, level=logging.DEBUG), params=AutoPeakParams())
        _search(sub_req, sub, start=start, depth=depth)
        if sub.incumbent.plan is None:
            return None
        idx = part.instance.task_index
        orders.append([idx[t] for t in sub.incumbent.plan.compute_order()])
    return join_orders(pre, orders[0], suf, orders[1])


def run_auto_peak(req: Request, ctx: Context) -> MethodOutput:
    """Reduce, solve the polynomial cases, search exactly; fall back to the best plan found."""
    return _search(req, ctx)


def _search(req: Request, ctx: Context, start: list[int] | None = None, depth: int = 0) -> MethodOutput:
    p: AutoPeakParams = ctx.params
    inst = req.instance
    budget = req.budget
    dl = ctx.deadline
    best = _Best(req, ctx)
    stats: dict[str, Any] = ctx.stats
    t_start = time.perf_counter()
    target = p.target if p.target is not None else (budget if p.fit else None)

    def out() -> MethodOutput:
        stats["plan_by"] = best.source
        stats["bound_by"] = best.inc.bound_source
        stats["auto_seconds"] = round(time.perf_counter() - t_start, 3)
        if budget is not None and best.bound > budget:
            return MethodOutput(status=Status.INFEASIBLE, bound=best.bound,
                                message=f"no order fits: the optimal peak is at least {best.bound} > budget "
                                        f"{budget} ({best.inc.bound_source})")
        if best.order is None or (budget is not None and best.peak > budget):
            return MethodOutput(message=f"no plan within the budget {budget} found")
        return MethodOutput(status=Status.OPTIMAL if best.proven else Status.FEASIBLE)

    def done() -> bool:
        if best.proven or (budget is not None and best.bound > budget):
            return True
        return target is not None and (best.peak <= target or best.bound > target)

    if inst.n == 0:
        best.offer([], "empty")
        best.lower(0, "empty")
        return out()

    # 1. baselines (the lifetime bound comes after the polynomial cases, which prove theirs without it:
    # 1.3 s of 50,000-task series-parallel graphs)
    known, _ = ctx.best_known(req)
    if known is not None:
        best.offer(known.task_order(inst), "warm start")
    if start is not None:
        best.offer(list(start), "split (parent's order)")
    else:
        order, _, name = best_baseline(inst)
        best.offer(order, f"baseline ({name})")
    if done():
        return out()

    # 2. polynomial cases (exact with fixed effects, a relaxation otherwise)
    rr = release_relaxation(inst, deadline=dl.share(0.25, 15.0, floor=1.0))
    if rr is not None:
        stats["structure"] = rr.structure
        what = ("liu" if "forest" in rr.structure else "series-parallel") if rr.ambiguous == 0 else \
            "release relaxation"
        best.offer(rr.order, what, rr.peak)
        best.lower(rr.lower, what)
        if done():
            return out()
    lb, _ = lifetime_bound(inst)
    best.lower(lb, "lifetime bound" if inst.n <= LIFETIME_MAX_TASKS else "footprint/results bound")
    if done():
        return out()

    # 3. min-cut bound: one max-flow per task whose memory in the best order exceeds the bound
    if inst.n <= CUT_MAX_TASKS and not dl.expired() and sum(inst.size) + max(inst.workspace, default=0) < 2**62:
        # int64 capacities: skipped when the sizes are beyond int64; one small network per task (its interval)
        cb = cut_bound(inst, [best.order], floor=best.bound, min_flows=JOINT_SIZES[-1], deadline=dl.share(0.2, 30.0))
        stats["cut_flows"] = cb.flows
        best.lower(cb.value, "min-cut bound")
        if done():
            return out()
        # 3b. forests and series-parallel graphs: split at the critical task's least-memory down-set
        if rr is not None and cb.down_set is not None and depth < MAX_SPLIT_DEPTH:
            seconds = 0.7 * dl.remaining() if dl.limited else None
            order = _split_order(req, ctx, set(cb.down_set), best.order, seconds, depth + 1)
            best.offer(order, "split at the min-cut down-set")
            if done():
                return out()
        # 3c. the critical tasks together: their order is searched, each step costs a max-flow
        crit = sorted(cb.values, key=lambda v: -cb.values[v])
        jdl = dl.share(0.15, 20.0)
        net = None
        for k in JOINT_SIZES:
            if k > len(crit) or jdl.expired() or inst.n > JOINT_NETWORK_MAX_TASKS:
                break
            net = net or CutNetwork(inst)
            jb = joint_cut_bound(inst, crit[:k], network=net, upper=int(best.peak), deadline=jdl,
                                 max_flows=JOINT_MAX_FLOWS)
            best.lower(jb.value, f"joint min-cut bound ({k} tasks)")
            stats["joint_flows"] = stats.get("joint_flows", 0) + jb.flows
            if best.proven or not jb.complete:
                break
        if done():
            return out()

    # 4. reduction
    red = reduce_peak(inst, deadline=dl.share(0.5) if dl.limited else None)
    stats["reduced_clusters"] = red.n
    if red.n == 1:
        only = red.expand_order([0])
        peak = schedule_peak(inst, only)
        best.offer(only, "reduction", peak)
        best.lower(peak, "reduction")  # the reduction keeps an optimal order, and only one order is left
        return out()

    # 5. exact search on the reduced graph
    if red.n <= DP_MAX_CLUSTERS and not dl.expired():
        # large graphs rarely finish: keep time for the plan-improving phases
        cap = DEFAULT_MAX_STATES if red.n <= 500 else DEFAULT_MAX_STATES // 2  # ~400 bytes a state at 1,000 clusters
        res = downset_search(inst, red, incumbent=best.order, budget=budget, lower_bound=best.bound,
                             deadline=dl.share(0.5 if red.n <= 500 else 0.25),
                             max_states=p.max_states if p.max_states is not None else cap,
                             on_order=lambda o, pk: best.offer(o, "downset-dp", pk))
        stats.update(states=res.states, search_stopped=res.stopped)
        if res.order is not None:
            best.offer(res.order, "downset-dp")
        if res.infeasible:
            best.lower(res.bound, "downset-dp (exhausted)")
            return out()
        if res.optimal:
            best.lower(int(res.peak), "downset-dp")
            return out()
        best.lower(res.bound, "downset-dp frontier")

    # 6. target searches between the bound and the best peak (they may also raise the bound)
    if red.n <= TARGET_MAX_CLUSTERS and dl.limited and dl.remaining() > 0.5:
        tt = tighten(inst, best.bound, best.order, red, deadline=dl.share(0.6),
                     on_order=lambda o, pk: best.offer(o, "target search", pk),
                     on_bound=lambda b: best.lower(b, "target search (exhausted)"))
        stats["target_searches"] = len(tt.log)
        best.offer(tt.order, "target search", tt.peak)
        best.lower(tt.bound, "target search (exhausted)")
        if done():
            return out()

    # 7. improve the plan while time remains
    width = 16
    # without a time limit the beam phase still stops after BEAM_SECONDS (a width is not cut short)
    beam_dl = dl.share(0.5) if dl.limited else dl.capped(BEAM_SECONDS)
    while width <= p.max_beam and not beam_dl.expired():
        o = beam_search(inst, red, width=width, deadline=beam_dl if dl.limited else None)
        best.offer(o, f"beam search ({width})")
        width *= 4
    if dl.limited and inst.n <= CP_MAX_TASKS and dl.remaining() > 1.0 and not best.proven \
            and numbers_fit(req, "int64"):
        pg = PeakGraph(inst, red)
        cap = int(best.peak) if budget is None else min(int(best.peak), budget)
        model, pos = peak_cp_model(pg, best.bound, cap, best.order)
        sol = solve_linear(model, "cpsat", deadline=dl.capped(max(0.5, dl.remaining() - 0.5)), threads=ctx.threads,
                           seed=ctx.seed, warm_start=True, log=ctx.solver_log, memory_limit=ctx.settings.memory_limit)
        stats["cp_status"] = sol.status
        if sol.status == "infeasible" and budget is not None and budget < best.peak:
            best.lower(budget + 1, "peak-cp (no plan within the budget)")
        if sol.values is not None:
            best.offer(order_from_positions(sol.values, pos), "peak-cp")
        if sol.bound is not None:
            best.lower(math.ceil(sol.bound - 1e-6) * pg.unit, "peak-cp")
    return out()


__all__ = ["AutoPeakParams", "run_auto_peak"]
