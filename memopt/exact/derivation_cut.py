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

import math
from dataclasses import dataclass
from fractions import Fraction

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


def _max_flow(tails: np.ndarray, heads: np.ndarray, caps: np.ndarray, source: int, sink: int) -> int | None:
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
        return _max_flow(tails, heads, all_caps, self.source, self.sink)


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





class RecomputationNetwork:
    """The closure network of the recomputation a moment forces, priced by a multiplier λ on memory.

    Nodes: per datum y_d (d is needed after v's first compute) and z_d (needed
    and not held: its producer runs after v), per task x_p (p runs after v).
    Arcs of infinite capacity z_d → x_{p(d)} and x_p → y_{d'} for each input
    d' of p; per moment: source → y_d for the needed data, y_d → z_d of
    capacity λ·s(d) (holding d; 0 for v's inputs, infinite for data not made
    yet), x_p → sink of capacity c(p) for a task of anc(v) that may rerun
    (infinite if it may not; 0 for the others, which may run for the first
    time). A closed set of requirements is what a plan does after v, so the
    minimum cut is at most c(R) + λ·s(H) for every plan's recomputed set R and
    held set H.
    """

    def __init__(self, ga: GraphArrays, inst: Instance):
        n, m = ga.n, ga.m
        self.ga, self.inst = ga, inst
        self.fixed = ~np.asarray(inst.can_recompute, dtype=bool)
        self.time = np.asarray(inst.time, dtype=np.int64)
        self.total_time = int(sum(inst.time))
        self.source, self.sink = 2 * m + n, 2 * m + n + 1
        d = np.arange(m, dtype=np.int64)
        self.tails = np.concatenate((m + d, 2 * m + ga.rd_task))
        self.heads = np.concatenate((2 * m + ga.prod, ga.rd_datum))

    def lagrangian(self, v: int, room: int, lam: Fraction) -> Fraction | None:
        """min-cut(λ) − λ·room: a lower bound on the recomputation time after v's first compute for every plan
        holding at most ``room`` there (``None``: the capacities would overflow)."""
        ga, m = self.ga, self.ga.m
        a, b = lam.numerator, lam.denominator
        # every finite capacity and their sum stay below ``inf`` < 2**62: checked in Python integers before any
        # int64 product (numpy would wrap around silently, and a wrapped capacity is a wrong bound)
        inf = int(ga.total_size) * a + self.total_time * b + 1
        if inf >= 2**62:
            return None
        anc = ga.ancestors(v)
        late = ga.descendants(v)
        late[v] = True
        hold = ga.size.astype(np.int64) * np.int64(a)
        task = np.where(anc & ~self.fixed, self.time * np.int64(b), 0)
        hold[late[ga.prod]] = inf
        hold[ga.in_data[ga.in_ptr[v]:ga.in_ptr[v + 1]]] = 0
        task[anc & self.fixed] = inf
        needed = ga.result.copy()
        needed[ga.in_data[row_entries(ga.in_ptr, np.flatnonzero(late))]] = True
        needed = np.flatnonzero(needed)
        d = np.arange(m, dtype=np.int64)
        t = np.flatnonzero(task)
        if inf * (len(needed) + 1) >= 2**62:  # what may leave the source must fit in int64
            return None
        tails = np.concatenate((self.tails, d, 2 * m + t, np.full(len(needed), self.source), [self.source]))
        heads = np.concatenate((self.heads, m + d, np.full(len(t), self.sink), needed, [self.sink]))
        caps = np.concatenate((np.full(len(self.tails), inf, dtype=np.int64), hold, task[t],
                               np.full(len(needed), inf, dtype=np.int64), [0]))
        value = _max_flow(tails, heads, caps, self.source, self.sink)
        return None if value is None else Fraction(value - a * room, b)


def _power(t: float) -> Fraction:
    """2**t as a fraction with a numerator and a denominator below 2**31 (keeps the capacities in int64)."""
    if t == int(t):
        k = int(t)
        return Fraction(2) ** k if k >= 0 else Fraction(1, 2 ** -k)
    return Fraction(2 ** t).limit_denominator(2 ** 30)


def priced_moment_bound(net: RecomputationNetwork, v: int, room: int, *,
                        deadline: Deadline | float | None = None, lo: int = -40, hi: int = 24,
                        refine: int = 6) -> int:
    """max over λ ≥ 0 of :meth:`RecomputationNetwork.lagrangian` (rounded up: times are integers), 0 if none is
    positive.

    The Lagrangian dual is concave in λ, so a ternary search over λ = 2^k,
    k in [lo, hi], finds the best power of two (about 13 flows), and a golden
    section over the exponent around it refines (``refine`` flows). A
    deadline stops the search with the best value so far (each is a bound).
    """
    dl = as_deadline(deadline)
    vals: dict[float, Fraction] = {}

    def f(t: float) -> Fraction:
        if t not in vals:
            if dl.expired():
                return Fraction(-1)
            x = net.lagrangian(v, room, _power(t))
            vals[t] = Fraction(-1) if x is None else x
        return vals[t]

    a, b = lo, hi
    while b - a > 2:
        m1, m2 = a + (b - a) // 3, b - (b - a) // 3
        if f(m1) < f(m2):
            a = m1
        else:
            b = m2
    k = max(range(a, b + 1), key=f)
    ga_, gb = k - 1.0, k + 1.0
    phi = (5 ** 0.5 - 1) / 2
    for _ in range(refine // 2):
        m1, m2 = gb - phi * (gb - ga_), ga_ + phi * (gb - ga_)
        if f(m1) < f(m2):
            ga_ = m1
        else:
            gb = m2
    best = max(vals.values(), default=Fraction(0))
    return max(0, math.ceil(best))


__all__ = ["DEFAULT_FLOWS", "DerivationCut", "DerivationNetwork", "RecomputationNetwork", "derivation_cut_bound",
           "priced_moment_bound"]
