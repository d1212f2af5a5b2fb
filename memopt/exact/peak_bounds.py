"""Lower bounds on the peak from the data that must be resident at each task, whatever the order.

**Lifetime bound** (pure scheduling). When task v runs, every datum d
produced by an ancestor of v and still needed then — d is a result, or some
reader of d is v or a descendant of v — is resident, whatever the order. So

    peak >= max_v  held(v) + Σ outputs(v) + w(v),   held(v) = Σ{ s(d) : v ∈ needed_at(d) }

with ``needed_at`` of :mod:`memopt.graph.masks`. It contains the classic
footprint bound (the inputs are read by v itself).

**Retention bound** (with recomputation, without offloading). The same sum
restricted to the data whose producer cannot rerun — nothing can bring
them back —, beside v's whole footprint (inputs + outputs + workspace).
Without recomputation every producer runs once: it is the lifetime bound.

With recomputation the retention bound also takes the derivation cut bound
of :mod:`memopt.exact.derivation_cut` (what must stay for the data still
needed to be made again: an updated parameter needs itself or its old value).

:func:`budget_lower_bound` is the best of these and the simple bounds of
:mod:`memopt.core.bounds` for the techniques a request allows.

**Computation: a pruned maximisation, O(n + e) memory.** For any
topological order σ, held(v) ≤ held_σ(v), the data produced before v in σ
and read at v or later (they include every datum that must be held):
one difference array gives held_σ for every task in O(m + Σ|C(d)|)
(:meth:`~memopt.graph.csr.GraphArrays.held_in_order`; the least over the
instance's order and the best baseline order). At a task comparable to
every other one (:meth:`~memopt.graph.csr.GraphArrays.universal`: the loss
of a training graph, the joints of a chain of blocks) held_σ(v) = held(v)
exactly. The other tasks are examined by decreasing estimate — one
breadth-first search each way from v and a pass over the data, O(n + e +
m + Σ|C(d)|) — until no estimate is above the best value found: the
maximum is then exact (``complete``). A work limit (:data:`DEFAULT_WORK`
element visits, deterministic) or a deadline may stop the search first:
the best value examined is still a valid bound (each value examined is
exact). Nothing of size n² is built (the bitmask version needed n²/8 bytes
and stopped at 6,000 tasks); measured in ``results/scale.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from memopt.core.bounds import end_bound, peak_lower_bound, task_footprint_bound
from memopt.core.deadline import Deadline, as_deadline
from memopt.core.instance import Instance
from memopt.exact.derivation_cut import derivation_cut_bound
from memopt.graph.csr import GraphArrays, graph_arrays

DEFAULT_WORK = 200_000_000
"""Element visits the pruned search may spend (it runs before every solve): about 30 tasks examined
at 50,000 tasks and 2.7M arcs (1–2 s), 120 at 20,000, every task that can matter up to a few thousand."""

MAX_TASKS = 10**9
"""Kept for callers of the bitmask era: the lifetime bound is now computed at every size."""


def search_reason(inst: Instance, task: int | None, complete: bool, why: Callable[[str], str]) -> str:
    """Why a makespan bound found by a search over tasks holds: Σ c when no task beat it, else ``why(task id)``,
    said to be the best of the tasks examined when the search stopped early."""
    if task is None:
        return f"every task runs at least once: Σ time = {inst.total_time}"
    return why(inst.tasks[task].id) + ("" if complete else " (the largest of the tasks examined)")


class TaskSearch:
    """The limits of a search that examines tasks one by one, each by breadth-first searches and a pass over the
    data (``2 (n + e) + m`` element visits): :meth:`take` is False once the next task would pass ``work`` visits
    or ``deadline`` has passed, and the search is then not ``complete``."""

    def __init__(self, ga: GraphArrays, work: int, deadline: Deadline | float | None):
        self.cost = 2 * (ga.n + len(ga.arc_src)) + ga.m
        self.work = work
        self.deadline = as_deadline(deadline)
        self.spent = 0
        self.examined = 0
        self.complete = True

    def take(self) -> bool:
        """Account for one more task, or say (False) that the limits stop the search here."""
        if self.spent + self.cost > self.work or self.deadline.expired():
            self.complete = False
            return False
        self.spent += self.cost
        self.examined += 1
        return True


@dataclass
class HeldBound:
    """The best ``value`` = held(task) + extra(task) found, and how the search ended.

    ``complete``: every task whose estimate exceeds ``value`` was examined
    (``value`` is the maximum over all tasks); ``examined``: tasks given a
    breadth-first search; ``universal``: tasks valued exactly by the sweep.
    """

    value: int
    task: int | None
    held: int
    complete: bool
    examined: int = 0
    universal: int = 0


def bound_orders(inst: Instance) -> list[list[int]]:
    """The orders whose sums estimate each task's held data: the instance's and the best baseline (memoised)."""
    from memopt.heuristics.orders import best_baseline

    return inst.memo("bound_orders", lambda: [list(inst.topological_order), best_baseline(inst)[0]])


def held_estimates(ga: GraphArrays, inst: Instance, data: np.ndarray | None = None) -> np.ndarray:
    """Per task, the least held_σ(v) over the orders of :func:`bound_orders`."""
    est = None
    for order in bound_orders(inst):
        h = ga.held_in_order(order, data)
        est = h if est is None else np.minimum(est, h)
    return est


def held_data(ga: GraphArrays, v: int, data: np.ndarray | None = None, skip_inputs: bool = False) -> np.ndarray:
    """The data (indices) held at v in every order: made by an ancestor of v, a result or read at v or later
    (only those of the mask ``data``; ``skip_inputs``: not v's inputs). O(n + e + m + Σ|C|)."""
    live = ga.live_at(v)  # every datum held at v in all orders is live at v in the instance's order
    if data is not None:
        live = live[data[live]]
    live = live[ga.ancestors(v)[ga.prod[live]]]
    if not len(live):
        return live
    later = ga.descendants(v)
    if skip_inputs:
        live = live[~ga.any_reader(live, _one(ga.n, v))]
    else:
        later[v] = True
    return live[ga.result[live] | ga.any_reader(live, later)]


def held_at(ga: GraphArrays, v: int, data: np.ndarray | None = None, skip_inputs: bool = False) -> int:
    """held(v): Σ sizes of :func:`held_data`."""
    return int(ga.size[held_data(ga, v, data, skip_inputs)].sum())


def _one(n: int, v: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[v] = True
    return mask


def held_terms(inst: Instance, fixed_only: bool) -> tuple[GraphArrays, np.ndarray | None, np.ndarray, np.ndarray]:
    """The pieces of the pruned search: the graph arrays, the data counted (``None``: all), per task an
    estimate ≥ held(v) and the extra term (outputs + workspace; with ``fixed_only`` also every input, the
    fixed inputs left out of the estimate). O(m + Σ|C(d)|) beside the baseline orders."""
    n = inst.n
    ga = graph_arrays(inst)
    extra = ga.out_size + ga.workspace
    data = None
    if fixed_only:
        data = ~np.asarray(inst.can_recompute, dtype=bool)[ga.prod] & ga.sized
        extra = extra + ga.in_size
    est = held_estimates(ga, inst, data)
    if fixed_only:  # v's own inputs are in its footprint, not in held(v)
        fixed_in = np.zeros(n, dtype=ga.dtype)
        k = data[ga.rd_datum]
        np.add.at(fixed_in, ga.rd_task[k], ga.size[ga.rd_datum[k]])
        est = est - fixed_in
    return ga, data, est, extra


def held_bound(inst: Instance, *, fixed_only: bool = False, deadline: Deadline | float | None = None,
               work: int = DEFAULT_WORK) -> HeldBound:
    """max_v held(v) + outputs(v) + w(v) (``fixed_only``: over the data of tasks that cannot rerun, v's
    inputs apart, plus v's inputs) by the pruned search of the module docstring."""
    n = inst.n
    if n == 0:
        return HeldBound(0, None, 0, True)
    ga, data, est, extra = held_terms(inst, fixed_only)
    total = est + extra
    univ = ga.universal()
    best_v, best = None, -1
    if univ.any():
        u = np.flatnonzero(univ)
        i = int(np.argmax(total[u]))
        best_v, best = int(u[i]), int(total[u][i])
    cand = np.flatnonzero(~univ)
    cand = cand[np.argsort(-total[cand].astype(float), kind="stable")]
    search = TaskSearch(ga, work, deadline)
    held = int(est[best_v]) if best_v is not None else 0
    for v in cand.tolist():
        if int(total[v]) <= best:
            break
        if not search.take():
            break
        h = held_at(ga, v, data, skip_inputs=fixed_only)
        x = h + int(extra[v])
        if x > best:
            best_v, best, held = v, x, h
    return HeldBound(max(best, 0), best_v, held, search.complete, search.examined, int(univ.sum()))


def _memo_held(inst: Instance, fixed_only: bool, deadline: Deadline | float | None) -> HeldBound:
    """:func:`held_bound` once per instance (again under a new deadline when the kept one was cut short)."""
    cache = inst.memo("held_bounds", dict)
    hb = cache.get(fixed_only)
    if hb is None or (not hb.complete and deadline is not None):
        hb = held_bound(inst, fixed_only=fixed_only, deadline=deadline)
        if hb.complete or deadline is None:
            cache[fixed_only] = hb
    return hb


def lifetime_bound(inst: Instance, *, deadline: Deadline | float | None = None) -> tuple[int, str]:
    """The lifetime bound (see the module docstring) and its reason, or the simple bounds when higher."""
    simple = peak_lower_bound(inst)
    if inst.n == 0:
        return simple
    hb = _memo_held(inst, False, deadline)
    if hb.value <= simple[0] or hb.task is None:
        return simple
    arg = hb.task
    part = "" if hb.complete else " (the largest of the tasks examined)"
    return hb.value, (f"when task {inst.tasks[arg].id!r} runs, {hb.held} of data produced by its ancestors is "
                      f"still needed by it, its descendants or the end, plus its outputs and workspace "
                      f"({hb.value - hb.held}){part}")


def retention_bound(inst: Instance, *, recompute: bool = True,
                    deadline: Deadline | float | None = None) -> tuple[int, str]:
    """Without offloading: at v's first compute, the data of ancestors that cannot be recomputed and are still needed.

    A datum whose producer runs once (``recompute: false``, or every task in
    pure scheduling) and that is a result or read by v or a descendant of v
    is resident when v first runs: it was made before, it is needed after,
    and nothing can bring it back. Adding v's footprint bounds the peak. In
    pure scheduling this is :func:`lifetime_bound`. With recomputation, the
    larger of this and the derivation cut bound (memoised per instance).
    """
    if not recompute:
        return lifetime_bound(inst, deadline=deadline)
    simple = task_footprint_bound(inst)
    if all(inst.can_recompute[inst.producer[j]] or not inst.size[j] for j in range(inst.m)):
        return simple
    hb = _memo_held(inst, True, deadline)
    cands = [simple]
    if hb.value > simple[0] and hb.task is not None:
        part = "" if hb.complete else " (the largest of the tasks examined)"
        why = (f"when task {inst.tasks[hb.task].id!r} first runs, {hb.held} of data made by tasks that cannot rerun "
               f"is still needed, beside its footprint ({hb.value - hb.held}){part}")
        cands.append((hb.value, why))
    dc = inst.memo("derivation_cut", lambda: derivation_cut_bound(inst, held=held_estimates(graph_arrays(inst), inst)))
    if dc.task is not None and dc.cut > 0:
        part = "" if dc.complete else " (the largest of the tasks examined)"
        why = (f"when task {inst.tasks[dc.task].id!r} first runs, {dc.cut} of data must be in memory for what is "
               f"needed later to be made again from data still there (a minimum cut of the derivations from data "
               f"of tasks that cannot rerun), beside its footprint ({dc.value - dc.cut}){part}")
        cands.append((dc.value, why))
    return max(cands, key=lambda c: c[0])


def budget_lower_bound(inst: Instance, *, recompute: bool, offload: bool) -> tuple[int, str]:
    """The best lower bound on the peak of every plan using (only) these techniques, and why.

    With offloading: the footprint bound (results may end in slow memory,
    anything may leave). Without: also the results bound, the end bound and
    the retention bound (the lifetime bound in pure scheduling).
    """
    cands = [peak_lower_bound(inst, offload=offload)]
    if not offload:
        cands += [end_bound(inst, recompute=recompute), retention_bound(inst, recompute=recompute)]
    return max(cands, key=lambda c: c[0])


__all__ = ["DEFAULT_WORK", "MAX_TASKS", "HeldBound", "TaskSearch", "bound_orders", "budget_lower_bound", "held_at",
           "held_bound", "held_data", "held_estimates", "held_terms", "lifetime_bound", "retention_bound",
           "search_reason"]
