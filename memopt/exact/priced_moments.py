"""Priced moments: Lagrangian min-cut bounds on the recomputation a budget forces (no offloading).

**One moment** (the program OPT(v) of :mod:`memopt.exact.recompute_bound`).
At v's first compute a plan holds a set H of data, at most ``room`` bytes
besides v's footprint, and recomputes afterwards a set R of v's ancestors.
Every datum needed later is held or made again, and a task made again
needs its own inputs, held or made again. Pricing memory at λ per byte
turns min c(R) + λ·s(H) over these rows into a closure problem, one
minimum cut (:class:`RecomputationNetwork`), and

    OPT(v) ≥ mincut(λ) − λ·room    for every λ ≥ 0,

a Lagrangian dual, concave in λ: :func:`priced_moment_bound` searches it
over powers of two, then refines by golden section.

**A chain of moments.** Take tasks v₁, …, v_k, each an ancestor of the
next, so that in every plan their first computes come in that order. Let
R_j be the tasks run after v_j's first compute. A task run after v_{j+1}
runs after v_j, so R_{j+1} ⊆ R_j — an implication x_{j+1,p} ⇒ x_{j,p},
which a closure problem keeps. A task of anc(v_j) \\ anc(v_{j−1}) in R_j ran
before v_j and runs again: each such task is recomputed at least once, and
these sets are disjoint over j. So

    recomputation ≥ Σ_j c(R_j ∩ (anc(v_j) \\ anc(v_{j−1})))

and with the k moments' networks side by side, joined by the implication
arcs, priced by one λ_j per moment, the minimum cut minus Σ λ_j·room_j is a
lower bound on the recomputation of every plan that fits (for every λ ≥ 0).
It is at least the best single moment of the chain (λ_j = 0 elsewhere),
and larger when the moments need different recomputations: a forward
moment that must drop early activations and a backward one that must drop
late ones pay for both. :func:`chained_moment` searches the prices one
coordinate at a time.

Sizes: k(n + 2m) + 3 nodes, k(n + 2m + Σ|C(d)|) + (k−1)n arcs, one
max-flow (OR-Tools push-relabel) per λ evaluated. Capacities are integers:
λ is a dyadic fraction and every capacity is scaled by the common
denominator, checked below 2**62 in Python integers before any int64
product (a wrapped capacity would be a wrong bound; an evaluation that
would overflow gives no value).

The arguments are ours (a min-cut relaxation of the recomputation program,
in the spirit of the pebbling lower bounds of Hong & Kung, STOC 1981).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np

from memopt.core.deadline import Deadline, as_deadline
from memopt.core.instance import Instance
from memopt.exact.derivation_cut import max_flow_value
from memopt.graph.csr import GraphArrays, row_entries

MANTISSA_BITS = 20
"""Bits of a non-integer power 2**t kept in λ (λ is m·2**e with m < 2**21): keeps the common denominator small."""


def dyadic_price(t: float) -> Fraction:
    """2**t as a dyadic fraction (exact for an integer t, else rounded to :data:`MANTISSA_BITS` bits)."""
    if t == int(t):
        k = int(t)
        return Fraction(2) ** k
    e = math.floor(t) - MANTISSA_BITS
    return Fraction(round(2 ** (t - e))) * Fraction(2) ** e


class RecomputationNetwork:
    """The closure networks of the recomputation moments force, priced by a multiplier λ per moment on memory.

    Per moment v, nodes: per datum y_d (d is needed after v's first compute)
    and z_d (needed and not held: its producer runs after v), per task x_p (p
    runs after v). Arcs of infinite capacity z_d → x_{p(d)} and x_p → y_{d'}
    for each input d' of p; y_d → z_d of capacity λ·s(d) (holding d; 0 for
    v's inputs, infinite for data not made yet), x_p → sink of capacity c(p)
    for a task of anc(v) that may rerun (infinite if it may not; 0 for the
    others, which may run for the first time), and from the source to y_d for
    each needed datum. A closed set of requirements is what a plan does after
    v, so the minimum cut is at most c(R) + λ·s(H) for every plan's
    recomputed set R and held set H. A chain of moments adds x_{j+1,p} →
    x_{j,p} and charges each task in the first moment it is an ancestor of
    (module docstring).
    """

    def __init__(self, ga: GraphArrays, inst: Instance):
        n, m = ga.n, ga.m
        self.ga, self.inst = ga, inst
        self.fixed = ~np.asarray(inst.can_recompute, dtype=bool)
        self.time = np.asarray(inst.time, dtype=np.int64)
        self.total_time = int(sum(inst.time))
        self.width = 2 * m + n  # nodes per moment
        d = np.arange(m, dtype=np.int64)
        self.tails = np.concatenate((m + d, 2 * m + ga.rd_task))
        self.heads = np.concatenate((2 * m + ga.prod, ga.rd_datum))
        self._anc: dict[int, np.ndarray] = {}

    def ancestors(self, v: int) -> np.ndarray:
        """Boolean mask of the strict ancestors of ``v`` (cached: the chains reuse them)."""
        if v not in self._anc:
            self._anc[v] = self.ga.ancestors(v)
        return self._anc[v]

    def chain_lagrangian(self, chain: Sequence[int], rooms: Sequence[int],
                         prices: Sequence[Fraction]) -> Fraction | None:
        """min-cut − Σ λ_j·room_j: a lower bound on the recomputation of every plan holding at most ``rooms[j]``
        besides the footprint at ``chain[j]``'s first compute; each task of ``chain`` an ancestor of the next
        (``None``: the capacities would overflow)."""
        ga, m, n, w = self.ga, self.ga.m, self.ga.n, self.width
        k = len(chain)
        den = max(p.denominator for p in prices)  # dyadic: the largest denominator is a common one
        nums = [int(p * den) for p in prices]
        # every finite capacity and their sum stay below ``inf`` < 2**62: checked in Python integers before any
        # int64 product (numpy would wrap around silently, and a wrapped capacity is a wrong bound)
        inf = int(ga.total_size) * sum(nums) + self.total_time * den + 1
        if inf >= 2**62:
            return None
        hub, source, sink = k * w, k * w + 1, k * w + 2
        d = np.arange(m, dtype=np.int64)
        tails, heads, caps = [np.array([source])], [np.array([hub])], [np.array([inf], dtype=np.int64)]
        before = np.zeros(n, dtype=bool)
        for j, v in enumerate(chain):
            off = j * w
            anc = self.ancestors(v)
            late = ga.descendants(v)
            late[v] = True
            hold = ga.size.astype(np.int64) * np.int64(nums[j])
            hold[late[ga.prod]] = inf
            hold[ga.in_data[ga.in_ptr[v]:ga.in_ptr[v + 1]]] = 0
            task = np.where(anc & ~self.fixed & ~before, self.time * np.int64(den), 0)
            task[anc & self.fixed] = inf
            needed = ga.result.copy()
            needed[ga.in_data[row_entries(ga.in_ptr, np.flatnonzero(late))]] = True
            needed = np.flatnonzero(needed)
            t = np.flatnonzero(task)
            tails += [self.tails + off, d + off, 2 * m + t + off, np.full(len(needed), hub)]
            heads += [self.heads + off, m + d + off, np.full(len(t), sink), needed + off]
            caps += [np.full(len(self.tails), inf, dtype=np.int64), hold, task[t],
                     np.full(len(needed), inf, dtype=np.int64)]
            if j:  # what runs after v_j runs after v_{j-1}
                p = np.arange(n, dtype=np.int64)
                tails.append(off + 2 * m + p)
                heads.append(off - w + 2 * m + p)
                caps.append(np.full(n, inf, dtype=np.int64))
            before = anc
        value = max_flow_value(np.concatenate(tails), np.concatenate(heads), np.concatenate(caps), source, sink)
        if value is None:
            return None
        return Fraction(value - sum(a * r for a, r in zip(nums, rooms, strict=True)), den)

    def lagrangian(self, v: int, room: int, lam: Fraction) -> Fraction | None:
        """min-cut(λ) − λ·room for one moment: a lower bound on the recomputation after v's first compute for
        every plan holding at most ``room`` there (``None``: the capacities would overflow)."""
        return self.chain_lagrangian([v], [room], [lam])


def _concave_max(f: Callable[[float], Fraction], lo: int, hi: int, refine: int) -> None:
    """Search a concave ``f`` of the exponent t (λ = 2**t): ternary over the integers of [lo, hi], then a golden
    section of ``refine`` steps around the best integer (``f`` records its values)."""
    a, b = lo, hi
    while b - a > 2:
        m1, m2 = a + (b - a) // 3, b - (b - a) // 3
        if f(m1) < f(m2):
            a = m1
        else:
            b = m2
    k = max(range(a, b + 1), key=f)
    phi = (5 ** 0.5 - 1) / 2
    a2, b2 = k - 1.0, k + 1.0
    for _ in range(refine // 2):
        m1, m2 = b2 - phi * (b2 - a2), a2 + phi * (b2 - a2)
        if f(m1) < f(m2):
            a2 = m1
        else:
            b2 = m2


def _price(t: float | None) -> Fraction:
    return Fraction(0) if t is None else dyadic_price(t)


def chained_moment(net: RecomputationNetwork, chain: Sequence[int], rooms: Sequence[int],
                   start: Sequence[float | None] | None = None, *, deadline: Deadline | float | None = None,
                   rounds: int = 2, lo: int = -40, hi: int = 24, refine: int = 6) -> tuple[int, list[float | None]]:
    """max over the prices tried of :meth:`RecomputationNetwork.chain_lagrangian` (rounded up: times are
    integers; 0 if none is positive) and the exponents of the best prices (``None``: λ = 0).

    The dual is concave in (λ_1, …, λ_k); from ``start`` (default: every λ
    = 0), ``rounds`` passes of a coordinate search: for each moment λ_j = 0,
    then a ternary search over λ_j = 2^t, t in [lo, hi] (about 13 flows) and
    a golden section around the best power (``refine`` flows), the others
    fixed. Every value tried is a bound; a deadline stops the search with
    the best so far.
    """
    dl = as_deadline(deadline)
    ts: list[float | None] = list(start) if start is not None else [None] * len(chain)
    best, best_ts = Fraction(-1), list(ts)
    for _ in range(rounds if len(chain) > 1 else 1):
        for j in range(len(chain)):
            vals: dict[float | None, Fraction] = {}

            def f(t: float | None, j: int = j, vals: dict[float | None, Fraction] = vals) -> Fraction:
                if t not in vals:
                    if dl.expired():
                        return Fraction(-1)
                    x = net.chain_lagrangian(chain, rooms, [_price(s) for s in ts[:j] + [t] + ts[j + 1:]])
                    vals[t] = Fraction(-1) if x is None else x
                return vals[t]

            if len(chain) > 1:
                f(None)
                f(ts[j])
            _concave_max(f, lo, hi, refine)
            if not vals:
                return max(0, math.ceil(best)), best_ts
            ts[j] = max(vals, key=lambda s: vals[s])
            if vals[ts[j]] > best:
                best, best_ts = vals[ts[j]], list(ts)
    return max(0, math.ceil(best)), best_ts


def priced_moment(net: RecomputationNetwork, v: int, room: int, *,
                  deadline: Deadline | float | None = None) -> tuple[int, float | None]:
    """:func:`chained_moment` of the one moment v: a lower bound on OPT(v) and the exponent of its price."""
    value, ts = chained_moment(net, [v], [room], deadline=deadline)
    return value, ts[0]


def priced_moment_bound(net: RecomputationNetwork, v: int, room: int, *,
                        deadline: Deadline | float | None = None) -> int:
    """The value of :func:`priced_moment`: a lower bound on OPT(v)."""
    return priced_moment(net, v, room, deadline=deadline)[0]


__all__ = ["MANTISSA_BITS", "RecomputationNetwork", "chained_moment", "dyadic_price", "priced_moment",
           "priced_moment_bound"]
