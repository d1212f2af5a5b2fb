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
4. **reduction** (:func:`memopt.transform.reduce_peak`): a graph reduced to
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

import math
import time
from typing import Any

from ..evaluate import schedule_peak
from ..instance import Instance
from ..plan import Plan
from ..solve import MethodOutput, Request, SolveOptions, register_method

DP_MAX_CLUSTERS = 4000     # beyond this the down-set search has no chance
CUT_MAX_TASKS = 200_000    # the min-cut network (a few arcs per arc of the graph)
TARGET_MAX_CLUSTERS = 4000  # target searches: a state is a bitmask over the clusters
MAX_SPLIT_DEPTH = 2        # splits of splits of the instance
JOINT_SIZES = (4, 8, 12, 16, 24)  # critical sets of the joint min-cut bound, tried in turn
JOINT_MAX_FLOWS = 3000     # per joint bound (milliseconds each on a thousand tasks)
CP_MAX_TASKS = 5000        # CP-SAT phase only for graphs it can hold
DEFAULT_MAX_STATES = 2_000_000
BEAM_SECONDS = 30.0        # beam phase without a time limit


class _Best:
    """The incumbent order and the best proven bound, with where each came from."""

    def __init__(self, inst: Instance, opts: SolveOptions):
        self.inst = inst
        self.opts = opts
        self.order: list[int] | None = None
        self.peak: float = math.inf
        self.source = ""
        self.bound = 0
        self.bound_source = ""

    def offer(self, order: list[int] | None, source: str, peak: int | None = None) -> None:
        if order is None:
            return
        p = schedule_peak(self.inst, order) if peak is None else peak
        if p < self.peak:
            self.order, self.peak, self.source = order, p, source
            self.opts.improved(value=p, what=source)

    def lower(self, value: int, source: str) -> None:
        if value > self.bound:
            self.bound, self.bound_source = value, source
            self.opts.improved(bound=value, what=source)

    @property
    def proven(self) -> bool:
        return self.order is not None and self.peak <= self.bound


def _remaining(opts: SolveOptions) -> float:
    return opts.remaining()


def _split_order(inst: Instance, D: set[int], order: list[int], seconds: float | None,
                 depth: int) -> list[int] | None:
    """An order through the down-set D: each part solved by ``auto`` (:mod:`memopt.exact.cut_split`),
    starting from ``order`` restricted to the part."""
    from ..exact.cut_split import join_orders, split_instance
    from ..solve import make_request

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
        o = SolveOptions(time_limit=left, extra={"split_depth": depth, "order": start})
        res = run_auto_peak(make_request(part.instance, "peak"), o)
        if res.plan is None:
            return None
        idx = part.instance.task_index
        orders.append([idx[t] for t in res.plan.compute_order()])
    return join_orders(pre, orders[0], suf, orders[1])


@register_method("auto-peak", objectives=("peak",), family="composite", exact=True,
                 description="reduction + polynomial cases + exact search, best plan found when time runs out")
def run_auto_peak(req: Request, opts: SolveOptions) -> MethodOutput:
    """Reduce, solve the polynomial cases, search exactly; fall back to the best plan found."""
    from ..exact.downset_dp import _order_of_plan, beam_search, downset_search
    from ..exact.peak_bounds import MAX_TASKS as LIFETIME_MAX_TASKS
    from ..exact.peak_bounds import lifetime_bound
    from ..exact.release_relaxation import release_relaxation
    from ..heuristics.orders import best_baseline
    from ..transform import reduce_peak

    inst = req.instance
    budget = req.budget
    best = _Best(inst, opts)
    stats: dict[str, Any] = {}
    t_start = time.perf_counter()

    def out() -> MethodOutput:
        stats["plan_by"] = best.source
        stats["bound_by"] = best.bound_source
        stats["auto_seconds"] = round(time.perf_counter() - t_start, 3)
        if budget is not None and best.bound > budget:
            return MethodOutput(None, "infeasible", bound=best.bound, stats=stats,
                                message=f"the optimal peak is at least {best.bound} > budget {budget} "
                                        f"({best.bound_source})")
        if best.order is None or (budget is not None and best.peak > budget):
            return MethodOutput(None, "unknown", bound=best.bound, stats=stats,
                                message=f"no plan within the budget {budget} found")
        status = "optimal" if best.proven else "feasible"
        return MethodOutput(Plan.from_order(inst, best.order), status, bound=best.bound, stats=stats)

    # option ``fit`` (auto-time's question "does some schedule fit the budget?"): any order within
    # the budget answers it, no need to minimise further
    fit = bool(opts.option("fit", False)) and budget is not None

    def done() -> bool:
        return best.proven or (budget is not None and best.bound > budget) or (fit and best.peak <= budget)

    if inst.n == 0:
        best.offer([], "empty")
        return out()

    # 1. bounds and baselines
    lb, _ = lifetime_bound(inst)
    best.lower(lb, "lifetime bound" if inst.n <= LIFETIME_MAX_TASKS else "footprint/results bound")
    if isinstance(opts.warm_start, Plan):
        best.offer(_order_of_plan(inst, opts.warm_start), "warm start")
    given = opts.option("order")  # an order handed down by a split (task indices of this instance)
    if given is not None:
        best.offer(list(given), "split (parent's order)")
    else:
        order, _, name = best_baseline(inst)
        best.offer(order, f"baseline ({name})")
    if done():
        return out()

    # 2. polynomial cases (exact with fixed effects, a relaxation otherwise)
    relax_deadline = time.perf_counter() + max(1.0, 0.25 * min(_remaining(opts), 60.0))
    rr = release_relaxation(inst, deadline=relax_deadline)
    if rr is not None:
        stats["structure"] = rr.structure
        what = ("liu" if "forest" in rr.structure else "series-parallel") if rr.ambiguous == 0 else \
            "release relaxation"
        best.offer(rr.order, what, rr.peak)
        best.lower(rr.lower, what)
        if done():
            return out()

    # 3. min-cut bound: one max-flow per task whose memory in the best order exceeds the bound
    net = None
    if inst.n <= CUT_MAX_TASKS:
        from ..exact.cut_bound import CutNetwork, cut_bound, joint_cut_bound

        share = min(0.2 * _remaining(opts), 30.0)
        net = CutNetwork(inst)
        cb = cut_bound(inst, [best.order], floor=best.bound, min_flows=JOINT_SIZES[-1], network=net,
                       deadline=None if math.isinf(share) else time.perf_counter() + share)
        stats["cut_flows"] = cb.flows
        best.lower(cb.value, "min-cut bound")
        if done():
            return out()
        # 3b. forests and series-parallel graphs: split at the critical task's least-memory down-set
        depth = int(opts.option("split_depth", 0))
        if rr is not None and cb.down_set is not None and depth < MAX_SPLIT_DEPTH:
            seconds = 0.7 * _remaining(opts) if opts.time_limit else None
            order = _split_order(inst, set(cb.down_set), best.order, seconds, depth + 1)
            best.offer(order, "split at the min-cut down-set")
            if done():
                return out()
        # 3c. the critical tasks together: their order is searched, each step costs a max-flow
        crit = sorted(cb.values, key=lambda v: -cb.values[v])
        jend = time.perf_counter() + min(0.15 * _remaining(opts), 20.0)
        for k in JOINT_SIZES:
            if k > len(crit) or time.perf_counter() >= jend:
                break
            jb = joint_cut_bound(inst, crit[:k], network=net, upper=int(best.peak), deadline=jend,
                                 max_flows=JOINT_MAX_FLOWS)
            best.lower(jb.value, f"joint min-cut bound ({k} tasks)")
            stats["joint_flows"] = stats.get("joint_flows", 0) + jb.flows
            if best.proven or not jb.complete:
                break
        if done():
            return out()

    # 4. reduction
    red = reduce_peak(inst, deadline=opts.start + 0.5 * opts.time_limit if opts.time_limit else None)
    stats["reduced_clusters"] = red.n
    if red.n == 1:
        only = red.expand([0])
        peak = schedule_peak(inst, only)
        best.offer(only, "reduction", peak)
        best.lower(peak, "reduction")  # the reduction keeps an optimal order, and only one order is left
        return out()

    # 5. exact search on the reduced graph
    if red.n <= DP_MAX_CLUSTERS:
        # large graphs rarely finish: keep time for the plan-improving phases
        share = (0.5 if red.n <= 500 else 0.25) * _remaining(opts)
        deadline = None if math.isinf(share) else time.perf_counter() + share
        cap = DEFAULT_MAX_STATES if red.n <= 500 else DEFAULT_MAX_STATES // 2  # ~400 bytes a state at 1,000 clusters
        res = downset_search(inst, red, incumbent=best.order, budget=budget, lower_bound=best.bound,
                             deadline=deadline, max_states=int(opts.option("max_states", cap)),
                             on_improve=lambda v, b: opts.improved(value=v, what="downset-dp"))
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
    if red.n <= TARGET_MAX_CLUSTERS and opts.time_limit and _remaining(opts) > 0.5:
        from ..exact.target_search import tighten

        tend = time.perf_counter() + 0.6 * _remaining(opts)
        tt = tighten(inst, best.bound, best.order, red, deadline=tend,
                     on_improve=lambda v, b: opts.improved(value=v, bound=b, what="target search"))
        stats["target_searches"] = len(tt.log)
        best.offer(tt.order, "target search", tt.peak)
        best.lower(tt.bound, "target search (exhausted)")
        if done():
            return out()

    # 7. improve the plan while time remains
    width = 16
    # without a time limit the beam phase still stops after BEAM_SECONDS (a width is not cut short)
    beam_end = time.perf_counter() + (0.5 * _remaining(opts) if opts.time_limit else BEAM_SECONDS)
    while width <= int(opts.option("max_beam", 256)) and time.perf_counter() < beam_end:
        o = beam_search(inst, red, width=width, deadline=beam_end if opts.time_limit else None)
        best.offer(o, f"beam search ({width})")
        width *= 4
    if opts.time_limit and inst.n <= CP_MAX_TASKS and _remaining(opts) > 1.0 and not best.proven:
        from ..formulations.linear import solve_linear
        from ..formulations.peak_common import PeakGraph, order_from_positions
        from ..formulations.peak_cp import peak_cp_model

        pg = PeakGraph(inst, red)
        cap = int(best.peak) if budget is None else min(int(best.peak), budget)
        model, pos = peak_cp_model(pg, best.bound, cap, best.order)
        sol = solve_linear(model, "cpsat", time_limit=max(0.5, _remaining(opts) - 0.5), threads=opts.threads,
                           seed=opts.seed, warm_start=True)
        stats["cp_status"] = sol.status
        if sol.status == "infeasible" and budget is not None and budget < best.peak:
            best.lower(budget + 1, "peak-cp (no plan within the budget)")
        if sol.values is not None:
            best.offer(order_from_positions(sol.values, pos), "peak-cp")
        if sol.bound is not None:
            best.lower(math.ceil(sol.bound - 1e-6) * pg.unit, "peak-cp")
    return out()


__all__ = ["run_auto_peak"]
