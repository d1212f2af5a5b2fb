"""A min-cut lower bound on the peak of every plan with recomputation (no offloading): the derivation cut.

**Definition.** Fix a plan (recomputation allowed, no offloading) and a
task v. At v's *first* computation, the tasks run so far form a down-set S
with anc(v) ⊆ S and S ∩ ({v} ∪ desc(v)) = ∅, and the data then in memory
form a set H made in S, with in(v) ⊆ H. From then on a datum can only come
from H or from a computation whose inputs can, in turn, be had: it is
*derivable* if it is in H, or its producer may still run (it is not in S,
or it may be recomputed) and all its inputs are derivable. Every datum
needed later — a result, or an input of v or of a descendant of v — must
be derivable. So H meets every *derivation path* d₀ ← d₁ ← … ← d_k (each
d_{i+1} an input of d_i's producer) from a needed datum d₀ to a datum d_k
made by a task of S that cannot rerun.

Relax S to its part every plan shares: the blocked data are those made by
the tasks of anc(v) that cannot rerun, and a path may run through any other
producer (a path through a non-rerunnable task of S already has a blocked
prefix that H must meet). Then

    peak ≥ cut(v) + in(v) + out(v) + w(v),

where cut(v) is the least Σ s(d) over d ∉ in(v) of a set meeting every
path from a needed datum to a blocked one, data made by v or a descendant
excluded (they do not exist yet). The **derivation cut bound** is the
largest over the tasks examined. It contains the retention bound of
:mod:`memopt.exact.peak_bounds` (a blocked datum still needed is a path of
length 0) and adds what that bound misses on a training step: an updated
parameter or optimizer state (a result made by a task that can rerun) still
needs, at every moment, itself or the old value it is computed from — so a
late backward task holds every parameter and state, whether updated yet or
not, beside its own footprint.

**Computation.** cut(v) is a minimum s–t cut (vertex capacities): a node
per task and two per datum (d_in → d_out of capacity s(d), 0 for the inputs
of v, infinite for the data of v and its descendants), d_out → reader and
producer → d_in arcs of infinite capacity, the source to each blocked
task, each needed datum to the sink. One max-flow per task examined
(OR-Tools push-relabel) on n + 2m nodes, O(n + e + m) memory. The memory
at v in any order without recomputation is an upper estimate of the bound
at v (what such an order holds there meets every path), so tasks are
examined by decreasing estimate, alternating with decreasing footprint (the
bound peaks where a large task runs late), until no estimate is above the
best value found (``complete``) or the flow budget or the deadline ends the
search (the best value is still a bound: each value examined is exact).

The argument is ours: a recomputation analogue of the min-cut bound of
docs/peak.md §8 (cut sets of derivations, as in the red-blue pebble game
lower bounds of Hong & Kung, STOC 1981).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memopt.core.deadline import Deadline, as_deadline
from memopt.core.instance import Instance
from memopt.graph.csr import GraphArrays, graph_arrays, row_entries

DEFAULT_FLOWS = 64
"""Max-flows a bound may run (each on the whole graph: about 1 ms at 2,000 tasks, 10 ms at 23,000)."""


@dataclass
class DerivationCut:
    """The bound (memory at the task's first compute), the task where it is reached and how the search ended."""

    value: int
    task: int | None
    cut: int
    complete: bool
    flows: int = 0


def max_flow_value(tails: np.ndarray, heads: np.ndarray, caps: np.ndarray, source: int, sink: int) -> int | None:
    """The maximum flow (= the minimum cut) from ``source`` to ``sink``; ``None`` if OR-Tools gives no optimum
    (the callers keep every capacity sum below 2**62, so it should not happen: the bound then skips the task)."""
    from ortools.graph.python import max_flow

    flow = max_flow.SimpleMaxFlow()
    flow.add_arcs_with_capacity(tails.astype(np.int32), heads.astype(np.int32), caps)
    if flow.solve(source, sink) != flow.OPTIMAL:  # pragma: no cover - see above
        return None
    return int(flow.optimal_flow())


class DerivationNetwork:
    """The arcs shared by every task's network (module docstring), built once: O(n + m + Σ|C(d)|)."""

    def __init__(self, ga: GraphArrays, can_recompute: list[bool]):
        n, m = ga.n, ga.m
        self.ga = ga
        self.fixed = ~np.asarray(can_recompute, dtype=bool)
        self.inf = int(ga.total_size) + 1
        self.source, self.sink = n + 2 * m, n + 2 * m + 1
        d = np.arange(m, dtype=np.int64)
        # d_out -> each reader; producer -> d_in; d_in -> d_out (capacity set per task)
        self.tails = np.concatenate((n + 2 * ga.rd_datum + 1, ga.prod, n + 2 * d))
        self.heads = np.concatenate((ga.rd_task, n + 2 * d, n + 2 * d + 1))
        self.n_fixed_arcs = len(ga.rd_datum) + m

    def cut(self, v: int) -> int | None:
        """cut(v): the least size of a set meeting every derivation path (module docstring); ``None`` if the
        capacities would overflow int64."""
        ga, n = self.ga, self.ga.n
        anc = ga.ancestors(v)
        late = ga.descendants(v)
        late[v] = True
        inf = self.inf
        caps = ga.size.astype(np.int64).copy()
        caps[late[ga.prod]] = inf  # not made yet: cannot be held
        own = ga.in_data[ga.in_ptr[v]:ga.in_ptr[v + 1]]
        caps[own] = 0  # held at v's compute: counted in its footprint
        blocked = np.flatnonzero(anc & self.fixed)
        needed = ga.result.copy()
        needed[ga.in_data[row_entries(ga.in_ptr, np.flatnonzero(late))]] = True
        needed = np.flatnonzero(needed)
        if inf * (len(blocked) + 1) >= 2**62:  # what may leave the source must fit in int64
            return None
        tails = np.concatenate((self.tails, np.full(len(blocked), self.source), n + 2 * needed + 1, [self.source]))
        heads = np.concatenate((self.heads, blocked, np.full(len(needed), self.sink), [self.sink]))
        all_caps = np.concatenate((np.full(self.n_fixed_arcs, inf, dtype=np.int64), caps,
                                   np.full(len(blocked) + len(needed), inf, dtype=np.int64), [0]))
        return max_flow_value(tails, heads, all_caps, self.source, self.sink)


def derivation_cut_bound(inst: Instance, *, deadline: Deadline | float | None = None,
                         max_flows: int = DEFAULT_FLOWS, held: np.ndarray | None = None) -> DerivationCut:
    """max over the tasks examined of cut(v) + in(v) + out(v) + w(v) (module docstring).

    ``held``: per task, the data an order without recomputation holds at it
    (:func:`~memopt.exact.peak_bounds.held_estimates`; default: the instance's order).
    """
    n = inst.n
    if n == 0:
        return DerivationCut(0, None, 0, True)
    ga = graph_arrays(inst)
    if ga.dtype is object:  # sizes beyond int64: no flow
        return DerivationCut(0, None, 0, False)
    foot = ga.in_size + ga.out_size + ga.workspace
    if held is None:
        held = ga.held_in_order(inst.topological_order)
    est = held + ga.out_size + ga.workspace
    est = np.maximum(est, foot)
    by_est = np.argsort(-est.astype(float), kind="stable")
    by_foot = np.argsort(-foot.astype(float), kind="stable")
    net = DerivationNetwork(ga, inst.can_recompute)
    dl = as_deadline(deadline)
    best = DerivationCut(int(foot.max()), int(np.argmax(foot)), 0, True)
    seen = np.zeros(n, dtype=bool)
    i = j = 0
    turn = 0
    while True:
        # the next unexamined task of each ranking whose estimate can still beat the best value
        while i < n and (seen[by_est[i]] or est[by_est[i]] <= best.value):
            i += 1
        while j < n and (seen[by_foot[j]] or est[by_foot[j]] <= best.value):
            j += 1
        if i >= n and j >= n:
            break
        if best.flows >= max_flows or dl.expired():
            best.complete = False
            break
        v = int(by_est[i] if (turn == 0 and i < n) or j >= n else by_foot[j])
        turn ^= 1
        seen[v] = True
        c = net.cut(v)
        best.flows += 1
        if c is None:
            best.complete = False
            continue
        x = c + int(foot[v])
        if x > best.value:
            best.value, best.task, best.cut = x, v, c
    return best


__all__ = ["DEFAULT_FLOWS", "DerivationCut", "DerivationNetwork", "derivation_cut_bound", "max_flow_value"]
