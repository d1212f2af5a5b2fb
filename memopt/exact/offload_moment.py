"""A lower bound on the makespan with offloading (and recomputation): one task's first computation, priced.

**Definition.** Fix a plan within the budget M and a task v; let τ be the
compute point of v's *first* computation, in v's stage. Let K(v) be the data
made by a (strict) ancestor of v and needed after τ — a result, or read by a
descendant of v — except v's own inputs (the retention bound's set,
:func:`memopt.exact.peak_bounds.held_data`). Each of them exists before τ
(its producer ran before v) and is needed after it, so at τ it is

- in fast memory;
- in slow memory only: it was offloaded in an *earlier* stage (an offload
  keeps its datum in fast memory until its own stage ends, SPEC §2), and if a
  descendant reads it, it comes back after v's stage (a reload in v's stage
  would hold its memory at τ) or is made again;
- nowhere: its producer — an ancestor of v, whose first run was before τ —
  runs again after τ (only if it may be recomputed).

At τ fast memory holds v's inputs, outputs and workspace beside the data of
K(v) it keeps, so at least E(v) = s(K(v)) + in(v) + out(v) + w(v) − M bytes
of K(v) are in slow memory or nowhere. Say B bytes are in slow memory and
y = E(v) − B are dropped. Then, with C_a, C_d the times of v's ancestors and
descendants (first runs), c = c(v), β the bandwidth, S_res the bytes of K(v)
that no descendant reads (results: in slow memory they need no reload), and
Q(y) the least Σ c(p) over producers p run again to drop y bytes (a covering
knapsack over the producers of K(v) that may rerun, each dropping all its
data of K(v), at most E(v) bytes, for c(p); its LP, as in
:func:`memopt.exact.recompute_bound.knapsack_bound`):

- every task runs once and the dropped data's producers once more:
  makespan ≥ Σ c + Q(y);
- the stages before v's last at least B/β (the offloads) or C_a (the
  ancestors not in v's stage), v's stage at least c plus the ancestors,
  descendants and recomputations it holds, the stages after it at least
  R/β (the reloads, R = max(0, B − S_res)) or C_d + Q(y) minus what v's
  stage holds. Summing and taking the cheapest split:
  makespan ≥ c + max(B/β, C_a) + max(R/β, C_d + Q(y)).

So makespan ≥ min over y of max(Σ c + Q(y), c + (B + R)/β, c + B/β + C_d +
Q(y), c + C_a + R/β) — a valid bound for every v (keeping a datum in slow
memory and making it again is dominated by dropping it, and pricing the
offloaded and the dropped bytes from two separate pools only lowers the
minimum). Every term is convex and piecewise linear in y, with kinks where
Q changes slope and at B = S_res: the minimum is found exactly by a binary
search over the kinks (convexity) and the crossings of the four terms on
the two segments around the best kink, in rational arithmetic.

Where it binds: activations that neither fit nor are worth recomputing
must go through the channel while only part of the step can run beside.
The Llama-style decoder with Adam at 0.4× its traced peak: 10.6 % above
Σ c at the backward pass of the loss, where Σ c and the transfer prefix
bound (:mod:`memopt.exact.transfer_prefix`) said 0; MobileNetV2: 8.5 %.
It generalises the recomputation knapsack (no offloading: B = 0) and the
transfer prefix bound (nothing may be dropped: y = 0, the last two terms).

**Recomputations priced by minimum cuts.** The knapsack lets a producer run
again as if its inputs were there. They must be: a task run after τ needs
each input held at τ (in fast or slow memory) or made again after τ, its
producer's inputs in turn; and a task neither before nor after v (an
optimizer step beside the backward pass) either has run — its results are
held — or has not — its inputs are. These are the rows of the recomputation
network of :mod:`memopt.exact.priced_moments`: pricing memory at λ per byte,
its minimum cut gives, for every plan holding at most room + b bytes at τ
(room = M − v's footprint, b in slow memory), a recomputation of at least
mincut(λ) − λ·(room + b): a line in b, for every λ ≥ 0. Q(b) is then also at
least the best of these lines. The bytes in slow memory may now be any held
data (an input of a recomputation, an optimizer step's inputs or results),
so b ranges over every byte and the results made beside v join S_res; the
minimum over b is exact as before (the lines' crossings are kinks). The
line's λ is searched at the best b of the knapsack's minimum, then at each
new minimum (:data:`PRICED_ROUNDS`), about 20 minimum cuts each (OR-Tools),
on the :data:`PRICED_MOMENTS` moments of largest knapsack value. On the
Llama-style decoder at 0.4× its traced peak the bound rises from 10.6 % to
21.7 % above Σ c at the backward pass of the loss: the log-softmax's
output is not made again without the logits back (the knapsack priced it
at the log-softmax alone); GPT-2 (batch 8) 2.0 → 5.3 %, ResNet-50 5.3 → 10.1 %.

**A head start.** The stages before v's are at least B/β or C_a; an
earlier task u may force more: X(u) bytes of data nothing makes again leave
before u first runs (the transfer prefix, :mod:`memopt.exact.transfer_prefix`)
while only the tasks before u can run. For u an ancestor of v, the stages
before u's last X(u)/β, u's stage up to v's the first runs of u, v and the
tasks between them, and v's stage on the descendants, the recomputations
and (after v's stage) the reloads:

    makespan ≥ H + c + max(R/β, C_d + Q(y)),   H = X(u)/β + c(u) + Σ c(desc(u) ∩ anc(v)),

two more convex terms of the same minimum (the best of the transfer prefix
bound's :data:`~memopt.exact.transfer_prefix.HEADS` heads that precede v).
ResNet-18 with Adam at 0.4× its traced peak: 30.1 → 33.6 % above Σ c, ViT
11.9 → 15.8 %, the 1.1B decoder 5.0 → 6.3 %.

**Computation**: the tasks whose lifetime estimate of E(v)
(:func:`~memopt.exact.peak_bounds.held_estimates`) is positive, by
decreasing upper estimate of their moment (its value with every excess
byte offloaded, C_a and C_d estimated in two orders), until no estimate
exceeds the best value or a bound proven otherwise, then the tasks that
only a head start's estimate puts above it; each by breadth-first
searches and a sort of its producers (O(n + e + m + k log k)), within a work
limit and a deadline (:data:`PRICED_SEARCH_SHARE` of it, the rest for the
priced moments): the best value examined is a bound. Tested against the
brute-force optimum of every plan (tests/test_offload_moment.py).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from memopt.core.deadline import Deadline, as_deadline
from memopt.core.instance import Instance
from memopt.exact.peak_bounds import DEFAULT_WORK, TaskSearch, held_data, held_estimates, search_reason
from memopt.exact.priced_moments import RecomputationNetwork, dyadic_price, priced_moment
from memopt.exact.transfer_prefix import PrefixHead, time_before_estimates, time_from_estimates, transfer_prefix_bound
from memopt.graph.csr import GraphArrays, graph_arrays

PRICED_ROUNDS = 3
"""Lagrangian lines per priced moment (each at the best b of the lines before)."""
PRICED_MOMENTS = 6
"""Moments priced with the recomputation network: those of largest knapsack value, best first."""
PRICED_SEARCH_SHARE = 0.6
"""Share of a limited time for the knapsack search over the tasks; the rest prices its best moments."""


@dataclass(frozen=True)
class OffloadMomentBound:
    """``value`` = max(Σ c, the best moment examined) rounded down."""

    value: int
    task: int | None
    excess: int        # E(task): bytes that are in slow memory or dropped at the task's first computation
    offloaded: int     # B at the minimum (rounded down), the rest dropped
    complete: bool     # every task whose estimate exceeds the budget was examined
    examined: int = 0
    priced: bool = False  # the value is a moment's with its recomputation priced by minimum cuts
    head: int | None = None     # the head start's task, when it binds
    head_offloaded: int = 0     # X of that task

    def reason(self, inst: Instance) -> str:
        priced = (" — and made again only with its inputs back, the recomputations priced by minimum cuts"
                  if self.priced else "")
        head = (f"; and before, task {inst.tasks[self.head].id!r} first runs only once {self.head_offloaded} bytes "
                f"that must outlive it have left (the transfer prefix), then the tasks from it to this one"
                if self.head is not None else "")
        return search_reason(inst, self.task, self.complete, lambda name: (
            f"at task {name!r}'s first computation, {self.excess} bytes of data made before it and needed after "
            f"it cannot stay in fast memory beside its footprint: each is offloaded before (and reloaded after if "
            f"read) or made again after{priced}; the cheapest mix ({self.offloaded} offloaded) of channel and "
            f"compute time{head}"))


@dataclass(frozen=True)
class Moment:
    """One task's priced moment: the least makespan the mix of offloading and dropping allows."""

    value: Fraction
    excess: int
    offloaded: Fraction
    head: int | None = None   # the head start's task, when it binds


class _Knapsack:
    """Q(y): the LP of the covering knapsack — producers by increasing c(p)/s(p), the last one fractionally."""

    def __init__(self, items: list[tuple[int, int]]):
        items = sorted(items, key=lambda cs: Fraction(cs[0], cs[1]))  # exact ratios: a true LP
        self.ratio = [Fraction(c, s) for c, s in items]
        self.y = [0]      # cumulative sizes (kinks of Q)
        self.q = [0]      # Q at the kinks
        for c, s in items:
            self.y.append(self.y[-1] + s)
            self.q.append(self.q[-1] + c)

    @property
    def capacity(self) -> int:
        return self.y[-1]

    def __call__(self, y: Fraction) -> Fraction:
        i = min(bisect_right(self.y, y) - 1, len(self.ratio) - 1)
        if i < 0:
            return Fraction(0)
        return self.q[i] + (y - self.y[i]) * self.ratio[i]


def _minimize(terms: Callable[[Fraction], tuple[Fraction, ...]], kinks: set[Fraction]) -> tuple[Fraction, Fraction]:
    """The least max(terms(b)) over [min kinks, max kinks] and where it is reached, exactly, for terms that are
    linear between consecutive kinks and whose max is convex: a binary search over the kinks (their values fall,
    then rise), then the crossings of two terms on the segments on either side of the best kink."""
    xs = sorted(kinks)

    def phi(b: Fraction) -> Fraction:
        return max(terms(b))

    a, z = 0, len(xs) - 1
    while a < z:
        mid = (a + z) // 2
        if phi(xs[mid + 1]) >= phi(xs[mid]):
            z = mid
        else:
            a = mid + 1
    best_b, best = xs[a], phi(xs[a])
    for s in (a - 1, a):
        if s < 0 or s + 1 >= len(xs):
            continue
        lo_b, hi_b = xs[s], xs[s + 1]
        t0, t1 = terms(lo_b), terms(hi_b)
        width = hi_b - lo_b
        slopes = [(u1 - u0) / width for u0, u1 in zip(t0, t1)]
        for i in range(len(t0)):  # where two terms cross inside the segment
            for j in range(i + 1, len(t0)):
                ds = slopes[i] - slopes[j]
                if ds:
                    b = lo_b + (t0[j] - t0[i]) / ds
                    if lo_b < b < hi_b:
                        val = phi(b)
                        if val < best:
                            best, best_b = val, b
    return best_b, best


@dataclass(frozen=True)
class _Line:
    """Q(b) ≥ value − slope·(b − at): a priced moment's Lagrangian line in the bytes b held in slow memory."""

    at: Fraction
    value: Fraction
    slope: Fraction

    def __call__(self, b: Fraction) -> Fraction:
        return self.value - self.slope * (b - self.at)


def price_moment(inst: Instance, ga: GraphArrays, v: int, budget: int, *, recompute: bool,
                 beta: Fraction, times: np.ndarray | None = None, network: RecomputationNetwork | None = None,
                 rounds: int = PRICED_ROUNDS, deadline: Deadline | float | None = None,
                 heads: Sequence[HeadStart] = ()) -> Moment | None:
    """The least makespan at v's first computation (module docstring); ``None`` when nothing must leave or
    v's footprint alone exceeds ``budget`` (the footprint bound's case). O(n + e + m + k log k); with
    ``network`` (and ``recompute``) also the priced recomputation of the module docstring, ``rounds`` lines
    of about 20 minimum cuts each, within ``deadline``; with ``heads``, the best head start before v
    (:func:`head_starts`; O(n) each)."""
    k = held_data(ga, v, None, skip_inputs=True)
    size = ga.size[k]
    foot = int(ga.in_size[v]) + int(ga.out_size[v]) + int(ga.workspace[v])
    s_k = int(size.sum())
    excess = s_k + foot - budget
    if excess <= 0 or foot > budget:
        return None
    desc = ga.descendants(v)
    anc = ga.ancestors(v)
    time = _times(inst) if times is None else times
    c_d, c_a, c_v = int(time[desc].sum()), int(time[anc].sum()), int(inst.time[v])
    s_res = int(size[~ga.any_reader(k, desc)].sum())
    head, head_task = _head_before(heads, v, anc, time)
    items: list[tuple[int, int]] = []
    if recompute:
        prod = ga.prod[k]
        may = np.asarray(inst.can_recompute, dtype=bool)[prod]
        if may.any():
            p, inv = np.unique(prod[may], return_inverse=True)
            s_p = np.zeros(len(p), dtype=object)
            np.add.at(s_p, inv, size[may].astype(object))
            # sizes capped at the excess: no more is ever dropped, the integer solutions are the same and the LP
            # is tighter
            items = [(int(inst.time[u]), min(int(s), excess)) for u, s in zip(p.tolist(), s_p.tolist())]
    q = _Knapsack(items)
    total = inst.total_time
    # b: the bytes in slow memory at v's first computation; the knapsack drops y = excess − b of K(v)
    b_lo, b_hi = excess - min(excess, q.capacity), min(excess, s_k)
    lines: list[_Line] = []

    def q_of(b: Fraction) -> Fraction:
        return max([q(excess - b)] + [ln(b) for ln in lines])

    def priced(res: int) -> Callable[[Fraction], tuple[Fraction, ...]]:
        def terms(b: Fraction) -> tuple[Fraction, ...]:
            qb = q_of(b)
            r = max(Fraction(0), b - res)
            plain = (total + qb, c_v + (b + r) / beta, c_v + b / beta + c_d + qb, c_v + c_a + r / beta)
            if head is None:
                return plain
            # the head start, then the tasks from its task to v's first computation, then what follows
            return plain + (head + c_v + r / beta, head + c_v + c_d + qb)
        return terms

    def moment(value: Fraction, b: Fraction, res: int) -> Moment:
        # the head start is named when one of its terms is the maximum at the minimum
        headed = head is not None and max(priced(res)(b)[4:]) >= value
        return Moment(value, excess, b, head_task if headed else None)

    # the kinks of every term: φ is linear between two consecutive ones
    kinks = {Fraction(b_lo), Fraction(b_hi)} | {Fraction(excess - y) for y in q.y if b_lo < excess - y < b_hi}
    if b_lo < s_res < b_hi:
        kinks.add(Fraction(s_res))
    best_b, best = _minimize(priced(s_res), kinks)
    found = moment(best, best_b, s_res)
    if network is None or not recompute:
        return found
    # priced recomputation (module docstring): the slow-memory bytes may also be data beyond K(v) — inputs of
    # recomputations, a pending task's inputs or results — so b ranges up to every byte, and the results made
    # by the tasks neither before nor after v need no reload either
    room = budget - foot
    pending = ~(anc | desc)
    pending[v] = False
    res = s_res + int(ga.size[ga.result & pending[ga.prod]].sum())
    top = Fraction(max(b_hi, ga.total_size))
    dl = as_deadline(deadline)
    b_star = best_b
    for _ in range(rounds):
        line = _priced_line(network, v, room, math.floor(b_star), dl)
        if line is None or line(line.at) <= q_of(line.at):
            break
        lines.append(line)
        kinks = _line_kinks(q, excess, lines, Fraction(b_lo), top)
        kinks |= {Fraction(excess - y) for y in q.y if b_lo < excess - y < top}
        if b_lo < res < top:
            kinks.add(Fraction(res))
        if b_lo < excess < top:
            kinks.add(Fraction(excess))  # where the knapsack's part ends (nothing of K(v) need be dropped)
        b_star, value = _minimize(priced(res), kinks)
        if value > found.value:
            found = moment(value, b_star, res)
    return found


@dataclass(frozen=True)
class HeadStart:
    """A task u whose first computation waits for X(u) bytes to leave (:mod:`memopt.exact.transfer_prefix`)."""

    task: int
    offloaded: int
    lead: Fraction       # X(u)/β + c(u)
    desc: np.ndarray     # u's descendants (a mask over the tasks)
    before: int          # Σ c over u's ancestors


def head_starts(inst: Instance, ga: GraphArrays, heads: Sequence[PrefixHead], beta: Fraction,
                times: np.ndarray) -> list[HeadStart]:
    """The transfer prefix bound's heads, with what the moments need of them: two breadth-first searches each."""
    return [HeadStart(h.task, h.offloaded, Fraction(h.offloaded) / beta + int(times[h.task]),
                      ga.descendants(h.task), int(times[ga.ancestors(h.task)].sum())) for h in heads]


def _head_before(heads: Sequence[HeadStart], v: int, anc: np.ndarray,
                 times: np.ndarray) -> tuple[Fraction | None, int | None]:
    """The longest head start before v's stage: X(u)/β + c(u) + Σ c over the tasks between u and v, over the
    heads u that are ancestors of v (``None`` when none is)."""
    best: tuple[Fraction | None, int | None] = (None, None)
    for h in heads:
        if h.desc[v]:
            value = h.lead + int(times[anc & h.desc].sum())
            if best[0] is None or value > best[0]:
                best = (value, h.task)
    return best


def _priced_line(net: RecomputationNetwork, v: int, room: int, b: int, deadline: Deadline) -> _Line | None:
    """The best Lagrangian line the price search finds at b bytes in slow memory (``None``: none positive)."""
    _, t = priced_moment(net, v, room + b, deadline=deadline)
    if t is None:
        return None
    lam = dyadic_price(t)
    value = net.lagrangian(v, room + b, lam)
    if value is None or value <= 0:
        return None
    return _Line(Fraction(b), value, lam)


def _line_kinks(q: _Knapsack, excess: int, lines: list[_Line], lo: Fraction, hi: Fraction) -> set[Fraction]:
    """The ends and the points of [lo, hi] where a line crosses another or a piece of the knapsack (as a
    function of b = excess − y, 0 beyond the excess)."""
    pieces: list[tuple[Fraction, Fraction, Fraction, Fraction]] = []  # (from, to, value at from, slope in b)
    for i, r in enumerate(q.ratio):
        pieces.append((Fraction(excess - q.y[i + 1]), Fraction(excess - q.y[i]), Fraction(q.q[i + 1]), -r))
    pieces.append((Fraction(excess), hi, Fraction(0), Fraction(0)))
    out = {lo, hi}
    for i, ln in enumerate(lines):
        for a0, a1, val, slope in pieces:
            ds = slope + ln.slope
            if ds:
                b = a0 + (ln(a0) - val) / ds
                if max(a0, lo) < b < min(a1, hi):
                    out.add(b)
        for other in lines[:i]:
            if ln.slope != other.slope:
                b = ln.at + (ln.value - other(ln.at)) / (ln.slope - other.slope)
                if lo < b < hi:
                    out.add(b)
    return out


def _times(inst: Instance) -> np.ndarray:
    """Task times as an array whose sums are exact (int64 while Σ c fits)."""
    return np.asarray(inst.time, dtype=np.int64 if inst.total_time < 2 ** 62 else object)


def offload_moment_bound(inst: Instance, budget: int, *, recompute: bool,
                         deadline: Deadline | float | None = None, work: int = DEFAULT_WORK,
                         floor: int = 0, priced: int = PRICED_MOMENTS,
                         heads: Sequence[PrefixHead] | None = None) -> OffloadMomentBound:
    """max(Σ c, max_v moment(v)) with offloading under ``budget`` (module docstring), rounded down.

    Σ c alone when the instance has no finite bandwidth (transfers free or impossible). The tasks go by
    decreasing upper estimate of their moment — its value when every excess byte is offloaded, max(Σ c,
    c + E/β + max(E/β, C_a, C_d), H + c + max(E/β, C_d)) with the lifetime estimate of E, the order
    estimates of C_a and C_d, and H that of the head start — and the search stops once no estimate exceeds
    the best value or ``floor`` (a bound proven otherwise), at ``work`` element visits, or at ``deadline``:
    the best moment examined is still a bound. ``heads``: the transfer prefix bound's (``None``: computed
    here, within the same limits).
    """
    total = inst.total_time
    beta = inst.machine.bandwidth
    plain = OffloadMomentBound(total, None, 0, 0, True)
    if inst.n == 0 or beta is None or math.isinf(beta) or beta <= 0:
        return plain
    ga = graph_arrays(inst)
    if ga.dtype is object:
        return plain
    times = _times(inst)
    bw = Fraction(beta)
    dl = as_deadline(deadline)
    if heads is None:
        heads = transfer_prefix_bound(inst, budget, recompute=recompute, deadline=dl, work=work).heads
    starts = head_starts(inst, ga, heads, bw, times)
    excess = held_estimates(ga, inst) + ga.in_size + ga.out_size + ga.workspace - budget
    cand = np.flatnonzero(excess > 0)
    # upper estimates of each moment (floats, for the order and the stop; the values compared are exact)
    x = excess[cand].astype(float) / float(beta)
    c = times[cand].astype(float)
    before = time_before_estimates(inst, times)[cand].astype(float)
    after = (time_from_estimates(inst, times)[cand] - times[cand]).astype(float)
    upper = np.maximum(float(total), c + x + np.maximum(x, np.maximum(before, after))) * (1 + 1e-9)
    # with a head start: its term with the reloads (the other, H + c + C_d, is at most the transfer prefix of
    # its task); the tasks between u and v are v's ancestors, not u's nor u: at most C_a(v) − Σ c(anc u) − c(u)
    headed = upper.copy()
    for h in starts:
        lead = float(h.lead) - float(h.before) - float(times[h.task])
        headed = np.where(h.desc[cand], np.maximum(headed, (lead + before + c + x) * (1 + 1e-9)), headed)
    pricing = recompute and priced > 0
    # the knapsack search leaves a share of the time to the minimum cuts, which raise the bound most
    search = TaskSearch(ga, work, dl.share(PRICED_SEARCH_SHARE) if pricing and dl.limited else dl)
    best = plain
    seen: list[tuple[Fraction, int]] = []
    examined = np.zeros(len(cand), dtype=bool)

    def offer(v: int, m: Moment, priced: bool = False) -> None:
        nonlocal best
        value = math.floor(m.value)  # (a makespan may be fractional: transfer times are s/β)
        if value > best.value:
            x_head = next((h.offloaded for h in starts if h.task == m.head), 0)
            best = OffloadMomentBound(value, v, m.excess, math.floor(m.offloaded), True, priced=priced,
                                      head=m.head, head_offloaded=x_head)

    # first by the estimates without head starts (their moments examined with them), then the tasks only a head
    # start's estimate puts above the best value: a loose head estimate spends the work on the tasks left over
    for estimate in (upper, headed):
        for i in np.argsort(-estimate, kind="stable").tolist():
            if estimate[i] <= max(best.value, floor):
                break
            if examined[i]:
                continue
            if not search.take():
                break
            examined[i] = True
            v = int(cand[i])
            m = price_moment(inst, ga, v, budget, recompute=recompute, beta=bw, times=times, heads=starts)
            if m is not None:
                seen.append((m.value, v))
                offer(v, m)
        if not starts:
            break
    complete, examined = search.complete, search.examined
    if pricing and seen:
        # the recomputation priced by minimum cuts, on the moments of largest knapsack value
        net = RecomputationNetwork(ga, inst)
        for _, v in sorted(seen, key=lambda x: (-x[0], x[1]))[:priced]:
            if dl.expired():
                break
            m = price_moment(inst, ga, v, budget, recompute=True, beta=bw, times=times, network=net, deadline=dl,
                             heads=starts)
            if m is not None:
                offer(v, m, priced=True)
    return replace(best, complete=complete, examined=examined)


__all__ = ["HeadStart", "Moment", "OffloadMomentBound", "head_starts", "offload_moment_bound", "price_moment"]
