"""Exact search over down-sets (ready sets), as in Serenity and HMCOS.

The memory resident once a set S of tasks has run, L(S), depends only on S
(a datum is resident iff its producer is in S and it is a result or some
reader is not). A down-set S (closed under predecessors) is a state; running
a ready cluster c from S costs the peak L(S) + P_c(S) and leads to S ∪ c.
The optimal peak is the bottleneck shortest path from ∅ to all tasks:

    opt(S ∪ c) = min over such c of max(opt(S), L(S) + P_c(S)).

Serenity (Ahn et al., MLSys 2020) solves this recurrence by dynamic
programming over the "zero-indegree sets" with memoisation and a budget;
HMCOS (Wang et al., 2022) on a hierarchical graph. Here:

- **best-first order** (Dijkstra on the bottleneck): states are expanded in
  order of opt(S), each once; the first complete state reached is optimal.
  If the search stops early, the smallest opt(S) still waiting is a proven
  lower bound on the optimum;
- **budget pruning**: moves reaching the incumbent's peak (or the machine
  budget + 1) are dropped: only strictly better plans are searched;
- **dominance (forced moves)**: if a ready cluster c frees at least what it
  allocates (L(S ∪ c) <= L(S)) and its peak fits under max(opt(S), lower
  bound), it is the only move kept from S. *Proof*: in any completion,
  moving c first lowers (or keeps) the memory of every task it overtakes,
  since frees only grow with the set done, and c's own peak is below what
  the schedule pays anyway;
- **reduction**: the search runs on the clusters of
  :func:`memopt.transforms.reduction.reduce_peak` (fewer, larger moves);
- **dives**: from time to time a greedy completion of the current state
  improves the incumbent.

Memory grows with the number of states kept (``max_states``); the worst
case is exponential in the width of the graph.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memopt.core.deadline import Deadline, as_deadline
from memopt.core.evaluate import schedule_peak
from memopt.core.instance import Instance
from memopt.core.method import Context, MethodOutput
from memopt.core.params import Params, option
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.status import Status
from memopt.exact.downset_moves import DownsetMoves
from memopt.exact.peak_bounds import lifetime_bound
from memopt.graph.masks import iter_bits
from memopt.heuristics.orders import best_baseline
from memopt.transforms.clusters import Reduction, identity_reduction
from memopt.transforms.reduction import reduce_peak

if TYPE_CHECKING:
    from memopt.exact.lookahead import Lookahead

@dataclass
class SearchResult:
    """What :func:`downset_search` found.

    ``order``/``peak``: the best task order found (None if none under the
    threshold); ``bound``: a proven lower bound on the optimal peak;
    ``optimal``: ``peak`` is proven optimal; ``infeasible``: proven that no
    order fits the budget; ``stopped``: why the search ended early.
    """

    order: list[int] | None
    peak: int | None
    bound: int
    optimal: bool = False
    infeasible: bool = False
    stopped: str | None = None
    states: int = 0
    expanded: int = 0
    seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)


def _greedy_path(mv: DownsetMoves, S: int, L: int, g: int, ready: int, thresh: float,
                 deadline: Deadline | float | None = None) -> tuple[int, list[int]] | None:
    """Complete state S greedily: always the move with the smallest (peak so far, memory after).

    None if the peak reaches ``thresh`` or the deadline passes. O(N · ready · cluster size).
    """
    path: list[int] = []
    while mv.full != S:
        if len(path) & 255 == 255 and as_deadline(deadline).expired():
            return None
        choice = None
        for c in iter_bits(ready):
            pk, L2 = mv.step(c, S, L)
            key = (pk if pk > g else g, L2)
            if choice is None or key < choice[0]:
                choice = (key, c, L2)
        if choice is None:
            return None
        (g2, _), c, L2 = choice
        if g2 >= thresh:
            return None
        g = g2
        S |= 1 << c
        ready = mv.ready_after(c, S, ready)
        L = L2
        path.append(c)
    return g, path


def beam_search(inst: Instance, red: Reduction | None = None, *, width: int = 64,
                deadline: Deadline | float | None = None, floor: int = 0) -> list[int] | None:
    """A heuristic order: breadth-first over the down-sets, keeping the ``width`` best per level.

    States at depth k (k clusters run) are ranked by (peak so far, resident
    memory), the peak so far counted from ``floor`` (a proven lower bound:
    below it every peak is as good, so the states are ranked by the memory
    they hold); duplicates are merged. Not exact (states are dropped), but
    usually much better than the baseline orders. O(N · width · ready).
    Returns None if the deadline passes first.
    """
    red = red or identity_reduction(inst)
    mv = DownsetMoves(inst, red)
    level: dict[int, tuple[int, int, int, tuple]] = {0: (max(0, floor), 0, mv.sources, ())}
    for _ in range(mv.N):
        if as_deadline(deadline).expired():
            return None
        nxt: dict[int, tuple[int, int, int, tuple]] = {}
        for S, (g, L, ready, path) in level.items():
            for c in iter_bits(ready):
                pk, L2 = mv.step(c, S, L)
                g2 = pk if pk > g else g
                S2 = S | (1 << c)
                old = nxt.get(S2)
                if old is None or (g2, L2) < (old[0], old[1]):
                    nxt[S2] = (g2, L2, ready, (path, c))
        if len(nxt) > width:
            nxt = dict(sorted(nxt.items(), key=lambda kv: (kv[1][0], kv[1][1]))[:width])
        level = {S2: (g2, L2, mv.ready_after(pc[1], S2, ready), pc)
                 for S2, (g2, L2, ready, pc) in nxt.items()}
    (S, (g, L, _, path)), = [min(level.items(), key=lambda kv: (kv[1][0], kv[1][1]))]
    clusters: list[int] = []
    while path:
        path, c = path
        clusters.append(c)
    clusters.reverse()
    return red.expand_order(clusters)


def greedy_cluster_order(inst: Instance, red: Reduction) -> list[int]:
    """A greedy task order that respects the clusters of ``red`` (a warm start for the models)."""
    mv = DownsetMoves(inst, red)
    res = _greedy_path(mv, 0, 0, 0, mv.sources, float("inf"))
    assert res is not None
    return red.expand_order(res[1])


def downset_search(
    inst: Instance,
    red: Reduction | None = None,
    *,
    incumbent: list[int] | None = None,
    budget: int | None = None,
    lower_bound: int = 0,
    deadline: Deadline | float | None = None,
    max_states: int = 3_000_000,
    dive_every: int = 20000,
    lookahead: Lookahead | bool | None = None,
    critical: list[int] | None = None,
    network: Any = None,
    on_order: Callable[[list[int], int], None] | None = None,
) -> SearchResult:
    """Minimum peak by best-first search over the down-sets of ``red`` (default: no reduction).

    ``incumbent``: a task order to beat (its peak prunes the search);
    ``budget``: only plans with peak <= budget count (proves infeasibility
    otherwise); ``lower_bound``: a proven bound used by the dominance rule
    and the final bound; ``deadline``: a ``time.perf_counter()`` value;
    ``max_states``: stop when that many states are stored; ``lookahead``:
    True (or a :class:`~memopt.exact.lookahead.Lookahead`) orders and prunes
    states by max(g, h) with the lookahead bound h (A*); ``critical``: tasks
    whose min-cut bound h_v(S) (:class:`~memopt.exact.cut_guard.CutGuard`,
    over ``network`` if given) orders and prunes the states the same way.
    """
    t0 = time.perf_counter()
    red = red or identity_reduction(inst)
    mv = DownsetMoves(inst, red)
    if lookahead is True:
        from memopt.exact.lookahead import Lookahead

        lookahead = Lookahead(inst, red) if inst.n <= Lookahead.MAX_TASKS else None
    elif lookahead is False:
        lookahead = None
    N = mv.N
    INF = float("inf")
    best_order: list[int] | None = None
    ub: float = INF
    if incumbent is not None:
        best_order = list(incumbent)
        ub = schedule_peak(inst, best_order)
    thresh = ub if budget is None else min(ub, budget + 1)
    lb0 = lower_bound
    result = SearchResult(None, None, lb0)
    if N == 0:
        result.order, result.peak, result.optimal = [], 0, True
        return result

    # g is clamped at the proven bound: below it every path is as good, and the
    # ties are broken by depth, so the search dives instead of sweeping the cheap states
    g0 = max(0, int(lb0))
    best: dict[int, int] = {0: g0}
    parent: dict[int, tuple[int, int]] = {}

    def path_to(S: int) -> list[int]:
        out: list[int] = []
        while S:
            S, c = parent[S]
            out.append(c)
        out.reverse()
        return out

    def dive(S: int, L: int, g: int, ready: int) -> tuple[int, list[int]] | None:
        return _greedy_path(mv, S, L, g, ready, thresh, deadline)

    def improve(g: int, clusters: list[int]) -> None:
        nonlocal best_order, ub, thresh
        order = red.expand_order(clusters)
        peak = schedule_peak(inst, order)  # the real peak of the expanded order
        if peak < ub:
            best_order, ub = order, peak
            thresh = min(thresh, peak)
            if on_order:
                on_order(order, peak)

    d = dive(0, 0, 0, mv.sources)
    if d is not None:
        improve(d[0], d[1])

    look = lookahead
    h0 = look.h(0, 0) if look is not None else 0
    guard = None
    info0 = None
    if critical:
        from memopt.exact.cut_guard import CutGuard

        guard = CutGuard(inst, red, critical, network)
        r = guard.root(thresh - 1 if thresh != INF else INF)
        if isinstance(r, int):
            h0 = max(h0, r)
        else:
            info0 = r
            h0 = max(h0, r[2])
    # heap entries: (priority f = max(g, h), -depth, state, resident memory, ready set, g, resident data, cut info)
    heap: list[tuple] = [(max(g0, h0), 0, 0, 0, mv.sources, g0, 0, info0)]
    expanded = 0
    stopped = None
    f_top = 0
    while heap:
        f, negdepth, S, L, ready, g, live, info = heapq.heappop(heap)
        if best.get(S, -1) != g:
            continue
        f_top = f
        if f >= thresh:
            break
        expanded += 1
        if expanded & 1023 == 0:
            if as_deadline(deadline).expired():
                stopped = "time"
                break
            if len(best) > max_states:
                stopped = "states"
                break
        if dive_every and expanded % dive_every == 0:
            d = dive(S, L, g, ready)
            if d is not None:
                improve(d[0], path_to(S) + d[1])
                if f >= thresh:
                    break
        moves = []
        floor = g if g > lb0 else lb0
        forced = None
        for c in iter_bits(ready):
            pk, L2 = mv.step(c, S, L)
            if L2 <= L and pk <= floor:
                forced = (c, pk, L2)
                break
            moves.append((c, pk, L2))
        if forced is not None:
            moves = [forced]
        for c, pk, L2 in moves:
            g2 = pk if pk > g else g
            if g2 >= thresh:
                continue
            S2 = S | (1 << c)
            if mv.full == S2:
                improve(g2, path_to(S) + [c])
                continue
            old = best.get(S2)
            if old is not None and old <= g2:
                continue
            if look is not None:
                live2 = look.live_after(c, S, live)
                h2 = look.h(S2, live2)
                f2 = h2 if h2 > g2 else g2
                if f2 >= thresh:
                    continue
            else:
                live2, f2 = 0, g2
            info2 = None
            if guard is not None:
                r = guard.child(info, S2, c, thresh - 1 if thresh != INF else INF)
                if isinstance(r, int):
                    continue  # every completion of S2 peaks above the threshold
                info2 = r
                if r[2] > f2:
                    f2 = r[2]
            best[S2] = g2
            parent[S2] = (S, c)
            heapq.heappush(heap, (f2, negdepth - 1, S2, L2, mv.ready_after(c, S2, ready), g2, live2, info2))
    else:
        f_top = INF  # the heap is empty: every state below the threshold was expanded
    g_top = f_top

    result.states = len(best)
    result.expanded = expanded
    result.seconds = time.perf_counter() - t0
    result.stopped = stopped
    if stopped is None:
        # nothing strictly below the threshold remains: the incumbent is optimal, or nothing fits the budget
        if best_order is not None and (budget is None or ub <= budget):
            result.order, result.peak, result.optimal = best_order, int(ub), True
            result.bound = int(ub)
        else:
            result.order = best_order
            result.peak = None if ub == INF else int(ub)
            result.infeasible = True
            result.bound = max(lb0, budget + 1) if budget is not None else lb0
    else:
        result.order = best_order
        result.peak = None if ub == INF else int(ub)
        low = min(g_top, ub)
        result.bound = int(max(lb0, low))
        if result.peak is not None and result.bound >= result.peak:
            result.optimal = True
            result.bound = result.peak
    result.stats = {"states": result.states, "expanded": expanded, "clusters": N}
    if guard is not None:
        result.stats.update(flows=guard.flows, cut_prunes=guard.prunes)
    return result


@dataclass(frozen=True)
class DownsetParams(Params):
    reduce: bool = option(True, "search the clusters of the peak-preserving reduction (false: the tasks)")
    max_states: int = option(3_000_000, "stop after this many states (the bound found so far stands)")
    lookahead: bool = option(False, "A* with the lookahead bound of memopt.exact.lookahead")


def run_downset_dp(req: Request, ctx: Context) -> MethodOutput:
    """Best-first search over down-sets after the reduction (Serenity/HMCOS-style), exact."""
    p: DownsetParams = ctx.params
    inst = req.instance
    if p.reduce:
        red = reduce_peak(inst, deadline=ctx.deadline)
        ctx.stats["reduced_clusters"] = red.n
    else:
        red = identity_reduction(inst)
    # one cluster: its order is the optimum (the reduction preserves it), no bound needed to prove it
    lb = lifetime_bound(inst)[0] if red.n > 1 else 0
    start = None
    known, _ = ctx.best_known(req)
    if known is not None:
        start = known.task_order(inst)
    elif ctx.warm is None or ctx.warm.enabled:
        start = best_baseline(inst)[0]
    last: list[tuple[list[int], Plan]] = []  # the last order offered, with its plan (built and evaluated once)

    def offer(order: list[int]) -> None:
        """An order found by the search, to the incumbent when it fits the budget."""
        plan = Plan.from_order(inst, order)
        ev = req.evaluate(plan)
        if ev.valid:
            ctx.offer(plan, evaluation=ev)
            last[:] = [(list(order), plan)]

    if start is not None and red.n > 1:
        offer(start)  # a plan from the start: a stopped search still has one (one cluster: the answer is at hand)
    res = downset_search(inst, red, incumbent=start, budget=req.budget, lower_bound=lb, deadline=ctx.deadline,
                         max_states=p.max_states, lookahead=p.lookahead, on_order=lambda order, _: offer(order))
    ctx.stats.update(res.stats)
    return search_output(req, res, ctx.stats, offered=last[0] if last else None)


def search_output(req: Request, res: SearchResult, stats: dict[str, Any],
                  offered: tuple[list[int], Plan] | None = None) -> MethodOutput:
    """A :class:`SearchResult` as a :class:`MethodOutput` (plan, honest status and bound).

    ``offered``: an order already offered with its plan; when it is the result's, that plan object is the
    output (the catalog then neither rebuilds nor evaluates it again: 50,000 tasks take a second each).
    """
    inst = req.instance
    if res.stopped:
        stats["stopped"] = res.stopped
    if res.infeasible:
        return MethodOutput(status=Status.INFEASIBLE, bound=res.bound,
                            message=f"no order has a peak within the budget {req.budget}")
    if res.order is None or (req.budget is not None and res.peak is not None and res.peak > req.budget):
        return MethodOutput(bound=res.bound, message=f"stopped ({res.stopped}) before finding a plan within the "
                                                     "budget")
    status = Status.OPTIMAL if res.optimal else Status.FEASIBLE
    same = offered is not None and offered[0] == list(res.order)
    return MethodOutput(offered[1] if same else Plan.from_order(inst, res.order), status, bound=res.bound)


__all__ = ["DownsetParams", "SearchResult", "beam_search", "downset_search", "greedy_cluster_order", "run_downset_dp",
           "search_output"]
