"""A lower bound on the makespan with offloading: the bytes already in slow memory when a task first runs.

**Definition.** For a task v let H(v) be the data *held at v* (as in the
retention bound of :mod:`memopt.exact.peak_bounds`): made by an ancestor of v
whose producer runs once — ``recompute: false``, or any task when
recomputation is not allowed — and a result or read by v or a descendant of
v. When v first runs every datum of H(v) exists (it was made before, is
needed after, and nothing can make it again): in fast memory, or in slow
memory only. Only if it was offloaded in an *earlier* stage: an offload
keeps its datum in fast memory until its own stage ends (SPEC §2). At v's
compute point fast memory holds v's inputs, its outputs (not resident before
its first computation) and its workspace within the budget M, so at least

    X(v) = s(H(v) ∪ inputs(v)) + s(outputs(v)) + w(v) − M

bytes were offloaded in the stages before v's first: those stages last at
least X(v)/β. v and its descendants first run in v's stage or later, so the
stages from there last at least C(v) = c(v) + Σ c(descendants of v). Every
other task runs at least once before or after, hence

    makespan ≥ max( Σ_u c(u),  max_v X(v)/β + C(v) ).

Where it binds: a training step whose sources (parameters, optimizer state,
which the importers run before the graph's first input) exceed the budget.
Their excess leaves on the channel while nothing with a cost can run —
Llama-2-70B's shape with Adam at 0.4× its traced peak: 386 GB before the
first input, 24.1 s at 16 bytes/ns, 25 % over Σ c(u), the whole of a plan's
head start that the bound Σ c(u) alone called overhead.

**Computation**: the pruned search of :func:`memopt.exact.peak_bounds.held_bound`
with the score X(v)/β + C(v). Each task's estimate uses held_σ(v) ≥ held(v)
and C(v) ≤ the time of the tasks from v on in a topological order (v's
descendants all come after it), the least over the instance's order and the
best baseline; the tasks comparable to every other one are valued exactly at
once, the others examined by decreasing estimate, each by one breadth-first
search each way (O(n + e + m + Σ|C(d)|)), until no estimate exceeds the best
value. A work limit or a deadline may stop the search first: the best value
examined is still a bound. Tested against the brute-force optimum of every
plan (tests/test_transfer_prefix.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from memopt.core.deadline import Deadline
from memopt.core.instance import Instance
from memopt.exact.peak_bounds import DEFAULT_WORK, TaskSearch, bound_orders, held_at, held_terms, search_reason


@dataclass(frozen=True)
class PrefixHead:
    """A task u valued exactly: X(u) > 0 bytes are in slow memory before its first computation."""

    task: int
    offloaded: int


@dataclass(frozen=True)
class TransferPrefixBound:
    """``value`` = max(Σ c, X(task)/β + C(task)) rounded down; ``offloaded`` = X(task) (0 when Σ c wins)."""

    value: int
    task: int | None
    offloaded: int
    after: int  # C(task)
    complete: bool
    examined: int = 0
    # the tasks valued exactly with X > 0 that leave most of the step after their head start (X(u)/β − the time
    # of the tasks before u, estimated): the head starts of the offload moment bound (memopt.exact.offload_moment)
    heads: tuple[PrefixHead, ...] = ()

    def reason(self, inst: Instance) -> str:
        return search_reason(inst, self.task, self.complete, lambda name: (
            f"before task {name!r} first runs, {self.offloaded} of the data that must outlive it (made by tasks "
            f"that cannot rerun, still needed) cannot stay in fast memory beside its footprint: offloaded before, "
            f"while only the tasks that need not follow it can run; then it and its descendants run "
            f"({self.after})"))


def _suffix_times(order: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Per task (by index): Σ c over the tasks at or after it in ``order``."""
    t = time[order]
    suffix = np.cumsum(t[::-1])[::-1]
    out = np.empty_like(suffix)
    out[order] = suffix
    return out


def time_from_estimates(inst: Instance, time: np.ndarray) -> np.ndarray:
    """Per task v: an upper estimate of c(v) + Σ c(descendants of v) — the least Σ c from v on over the orders
    of :func:`~memopt.exact.peak_bounds.bound_orders` (v's descendants follow it in every order). O(n)."""
    return np.minimum(*[_suffix_times(np.asarray(o, dtype=np.int64), time) for o in bound_orders(inst)])


def time_before_estimates(inst: Instance, time: np.ndarray) -> np.ndarray:
    """Per task v: an upper estimate of Σ c(ancestors of v) — the least Σ c before v over the same orders."""
    total = time.sum()
    return np.minimum(*[total - _suffix_times(np.asarray(o, dtype=np.int64), time) for o in bound_orders(inst)])


def transfer_prefix_bound(inst: Instance, budget: int, *, recompute: bool,
                          deadline: Deadline | float | None = None,
                          work: int = DEFAULT_WORK) -> TransferPrefixBound:
    """max(Σ c, max_v X(v)/β + C(v)) with offloading under ``budget`` (module docstring), rounded down.

    Σ c alone when the instance has no finite bandwidth (transfers free or impossible) or no task forces an
    offload. O(n + e + m + Σ|C(d)|) per task examined.
    """
    total = inst.total_time
    beta = inst.machine.bandwidth
    plain = TransferPrefixBound(total, None, 0, total, True)
    if inst.n == 0 or beta is None or math.isinf(beta) or beta <= 0:
        return plain
    fixed_only = recompute and any(not r for r in inst.can_recompute)
    if recompute and not fixed_only:
        return plain  # every datum can be made again: nothing must be held
    ga, data, est, extra = held_terms(inst, fixed_only)
    bw = Fraction(beta)
    time = np.asarray(inst.time, dtype=ga.dtype)
    after_est = time_from_estimates(inst, time)

    def score(x: int, after: int) -> int:
        return math.floor(Fraction(x) / bw) + after if x > 0 else total

    best = plain
    found: list[tuple[int, int]] = []   # (task, X) of every task valued exactly with X > 0
    over = est + extra - budget
    forced = np.asarray(over > 0, dtype=bool)  # (sizes beyond int64 are Python ints in object arrays)
    univ = ga.universal()
    for v in np.flatnonzero(univ & forced).tolist():  # held and C exact there
        x, c = int(over[v]), int(after_est[v])
        found.append((v, x))
        s = score(x, c)
        if s > best.value:
            best = TransferPrefixBound(s, v, x, c, True)
    cand = np.flatnonzero(~univ & forced)
    if not len(cand):
        return replace(best, heads=_heads(inst, time, found, float(beta)))
    # an upper estimate of each score (floats for the sort only; the comparison below is exact)
    upper = over[cand].astype(float) / float(beta) + after_est[cand].astype(float)
    cand = cand[np.argsort(-upper, kind="stable")]
    search = TaskSearch(ga, work, deadline)
    for v in cand.tolist():
        if score(int(over[v]), int(after_est[v])) <= best.value:
            continue  # (the sort is by floats: no early stop on a near tie)
        if not search.take():
            break
        x = held_at(ga, v, data, skip_inputs=fixed_only) + int(extra[v]) - budget
        if x <= 0:
            continue
        found.append((v, x))
        c = int(time[v]) + int(time[ga.descendants(v)].sum())
        s = score(x, c)
        if s > best.value:
            best = TransferPrefixBound(s, v, x, c, True)
    return TransferPrefixBound(best.value, best.task, best.offloaded, best.after, search.complete,
                               search.examined, _heads(inst, time, found, float(beta)))


HEADS = 4
"""Head starts kept for the offload moment bound: each costs it a breadth-first search and O(n) per moment."""


def _heads(inst: Instance, time: np.ndarray, found: list[tuple[int, int]], beta: float) -> tuple[PrefixHead, ...]:
    """The :data:`HEADS` tasks of ``found`` with the largest X(u)/β − (an upper estimate of) Σ c(ancestors of u):
    a head start's gain over the tasks that could run in its place."""
    if not found:
        return ()
    before = time_before_estimates(inst, time)
    top = sorted(found, key=lambda vx: (-(vx[1] / beta - float(before[vx[0]])), vx[0]))[:HEADS]
    return tuple(PrefixHead(v, x) for v, x in top)


__all__ = ["HEADS", "PrefixHead", "TransferPrefixBound", "time_before_estimates", "time_from_estimates",
           "transfer_prefix_bound"]
