"""Brute-force optimum of the ``time`` objective on tiny instances (tests only).

Dijkstra over every SPEC plan (§2), stage by stage: at a stage boundary
choose the stage's offloads Off, reloads R and leading frees; inside the
stage take computes and frees one at a time, in any order (a task may even
run twice in a stage); a stage costs max(Σ c, X) with X = Σ s/β of its
transfers. A node's priority is the cost of the closed stages plus the
current stage's duration so far, which never decreases along a path, so
the first goal popped is optimal. Inside a stage only min(Σ c, X) is
kept in the node (beyond X every compute adds its full time), so the graph
is finite and an infeasible budget ends the search. The goal: every task ran and every result is in fast
or slow memory.

Complete for SPEC plans (every plan is such a path; trailing frees of a
stage are its in-stage frees), exponential: use it on ≤ 4–5 tasks and
≤ 5–6 data. Returns ``(makespan, plan)`` or ``None`` when no plan exists.
"""

from __future__ import annotations

import heapq
import itertools
import math
from fractions import Fraction

from memopt import Instance, Plan
from memopt.core.plan import Event


def _subsets(bits: int):
    """Every subset of the bitmask ``bits``."""
    sub = bits
    while True:
        yield sub
        if sub == 0:
            return
        sub = (sub - 1) & bits


def brute_time(inst: Instance, budget: int, *, recompute: bool, offload: bool, max_nodes: int = 400_000):
    n, m = inst.n, inst.m
    size = inst.size
    beta = inst.machine.bandwidth
    if offload and beta is None:
        raise ValueError("offload needs a bandwidth")
    if beta is None or math.isinf(beta):
        bw = None
    else:
        bw = Fraction(repr(beta)) if isinstance(beta, float) else Fraction(beta)
    ins_mask = [sum(1 << d for d in inst.inputs[v]) for v in range(n)]
    out_list = [inst.outputs[v] for v in range(n)]
    all_done = (1 << n) - 1
    res_mask = sum(1 << d for d in inst.results)

    def mem(bits: int) -> int:
        return sum(size[d] for d in range(m) if bits >> d & 1)

    def xfer(bits: int) -> Fraction:
        if bw is None or not bits:
            return Fraction(0)
        return Fraction(mem(bits)) / bw

    # node: ("B", fast, slow, done) or ("S", fast, slow, done, Off, R, csum)
    start = ("B", 0, 0, 0)
    counter = itertools.count()
    heap = [(Fraction(0), next(counter), start)]
    best = {start: Fraction(0)}
    parent: dict = {start: None}
    popped = 0
    while heap:
        g, _, node = heapq.heappop(heap)
        if best.get(node) != g:
            continue
        popped += 1
        if popped > max_nodes:
            raise RuntimeError("brute force: too many nodes")
        if node[0] == "B":
            _, fast, slow, done = node
            if done == all_done and (res_mask & ~(fast | slow)) == 0:
                return g, _plan(inst, node, parent)
            offs = fast & ~slow if offload else 0
            rels = slow & ~fast if offload else 0
            for Off in _subsets(offs):
                for R in _subsets(rels):
                    X = xfer(Off | R)
                    for L in _subsets(fast & ~(Off | R)):
                        f2 = fast & ~L
                        if mem(f2) + mem(R) > budget:
                            continue
                        nxt = ("S", f2, slow, done, Off, R, Fraction(0))
                        ng = g + X
                        _push(heap, best, parent, counter, nxt, ng, node, ("open", Off, R, L))
            continue
        _, fast, slow, done, Off, R, csum = node  # csum: the stage's compute time, capped at X
        X = xfer(Off | R)
        # close the stage
        nb = ("B", fast | R, slow | Off, done)  # (an empty stage closes back to where it started: harmless)
        _push(heap, best, parent, counter, nb, g, node, ("close",))
        # free a datum
        for d in range(m):
            if fast >> d & 1 and not ((Off | R) >> d & 1):
                nxt = ("S", fast & ~(1 << d), slow, done, Off, R, csum)
                _push(heap, best, parent, counter, nxt, g, node, ("free", d))
        # compute a task
        reloading = mem(R)
        for v in range(n):
            if done >> v & 1 and (not recompute or not inst.can_recompute[v]):
                continue
            if ins_mask[v] & ~fast:
                continue
            new = [d for d in out_list[v] if not fast >> d & 1]
            peak = mem(fast) + reloading + sum(size[d] for d in new) + inst.workspace[v]
            if peak > budget:
                continue
            f2 = fast
            for d in new:
                f2 |= 1 << d
            # the stage lasts max(Σ c, X): a compute adds what exceeds X; capping csum at X keeps the graph finite
            c2 = csum + inst.time[v]
            nxt = ("S", f2, slow, done | (1 << v), Off, R, min(c2, X))
            _push(heap, best, parent, counter, nxt, g + max(0, c2 - X), node, ("compute", v))
    return None


def _push(heap, best, parent, counter, node, g, prev, move):
    if node not in best or g < best[node]:
        best[node] = g
        parent[node] = (prev, move)
        heapq.heappush(heap, (g, next(counter), node))


def _plan(inst: Instance, goal, parent) -> Plan:
    moves = []
    node = goal
    while parent[node] is not None:
        prev, move = parent[node]
        moves.append(move)
        node = prev
    moves.reverse()
    tids = [t.id for t in inst.tasks]
    dids = [d.id for d in inst.data]
    stages: list[list[Event]] = []
    cur: list[Event] = []
    for mv in moves:
        if mv[0] == "open":
            _, Off, R, L = mv
            cur = [Event("free", dids[d]) for d in range(inst.m) if L >> d & 1]
            cur += [Event("offload", dids[d]) for d in range(inst.m) if Off >> d & 1]
            cur += [Event("reload", dids[d]) for d in range(inst.m) if R >> d & 1]
        elif mv[0] == "compute":
            cur.append(Event("compute", tids[mv[1]]))
        elif mv[0] == "free":
            cur.append(Event("free", dids[mv[1]]))
        else:
            stages.append(cur)
            cur = []
    return Plan(_leading_frees_first(st) for st in stages)


def _leading_frees_first(stage: list[Event]) -> list[Event]:
    """Transfers are listed after the leading frees; order among computes/frees is kept."""
    transfers = [e for e in stage if e.kind in ("offload", "reload")]
    rest = [e for e in stage if e.kind not in ("offload", "reload")]
    return rest + transfers


def recompute_case(inst: Instance, frac: int) -> tuple[int, int | None]:
    """A budget ``frac`` % of the way from the footprint bound to the best order's peak (negative:
    below the bound, where no plan exists), and the least makespan with recomputation (None: no plan)."""
    from memopt.core.bounds import task_footprint_bound
    from memopt.heuristics.orders import best_baseline

    lb, _ = task_footprint_bound(inst)
    _, peak, _ = best_baseline(inst)
    budget = max(0, lb + (peak - lb) * frac // 100)
    return budget, brute_time(inst, budget, recompute=True, offload=False)


def brute_time_or_reject(inst: Instance, budget: int, *, recompute: bool, offload: bool):
    """:func:`brute_time` inside a hypothesis test: a draw past the exhaustive search's node cap (a 4-task draw
    with 7 data, a 5-task one with 6, can be) gets no verdict and is rejected, not failed (failing, hypothesis
    spends minutes shrinking it)."""
    from hypothesis import reject

    try:
        return brute_time(inst, budget, recompute=recompute, offload=offload)
    except RuntimeError:
        reject()


def check_makespan_bound(bound_of, inst: Instance, budget: int, recompute: bool, *, binding: bool = False) -> None:
    """``bound_of(inst, budget, recompute=...)`` (a makespan bound with offloading: ``value``, ``complete``,
    ``reason``) is at least Σ c and at most the brute-force optimum over every plan; with ``binding``, only the
    draws where it exceeds Σ c count (hypothesis ``assume``)."""
    from hypothesis import assume

    b = bound_of(inst, budget, recompute=recompute)
    assert b.value >= inst.total_time and b.complete
    if binding:
        assume(b.value > inst.total_time)  # the cases that test something beyond Σ c
    best = brute_time_or_reject(inst, budget, recompute=recompute, offload=True)
    if best is not None:
        assert best[0] >= b.value, (b, b.reason(inst))
