"""Is there an order with peak <= T?  Depth-first search over down-sets with a target (IDA*-style).

The down-set search of :mod:`memopt.exact.downset_dp` answers "what is the
least peak" best-first, and so visits every down-set cheaper than the
optimum. With a target T the question becomes a reachability one: a state
(a down-set S of the reduced graph) is *good* if some completion keeps every
step at most T. Whether S is good depends on S only, not on the path that
reached it, so a depth-first search marks the states it has exhausted
(``failed``) and never enters them again (Serenity, Ahn et al. MLSys 2020,
memoises the same way under a budget). Per state:

- **moves**: a ready cluster c whose run from S peaks at most T;
- **forced move**: if c frees at least what it allocates (L(S ∪ c) <= L(S))
  and peaks at most T, it is the only move tried. *Proof*: in a completion
  within T, moving c first keeps c's steps within T and lowers or keeps the
  memory of every task it overtakes (frees only grow with the set done);
- **cut pruning**: for the *critical* tasks v given (those with the largest
  min-cut bounds, :mod:`memopt.exact.cut_bound`), any completion of S runs
  v with a down-set Y ⊇ S, so it peaks at least at
  h_v(S) = min{ L(Y) : Y ⊇ S ∪ anc(v), v ∉ Y } + out(v) + w(v);
  S is dropped if h_v(S) > T. h_v only grows with S, and the minimiser Y
  found for the parent still serves the child when the move lies inside Y,
  so a flow is solved only when the move leaves Y;
- **order of the moves**: first those inside every critical minimiser (they
  keep the bounds), then by the memory they leave.

**What an exhausted search proves.** No order peaks at most T; moreover the
optimum is at least the least value that was cut off (a move's peak above T,
or a bound h_v(S) above T): take an optimal order, move forced clusters
first (its peak does not grow, as above); it follows explored or failed
states until its first cut-off value, which is at most its peak. This is
IDA*'s next threshold (Korf 1985). :func:`tighten` bisects between a bound
and an order with such searches.

Exponential in the worst case; ``max_states`` and ``deadline`` stop it
(then nothing is proven).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memopt.core.deadline import Deadline, as_deadline
from memopt.core.evaluate import schedule_peak
from memopt.core.instance import Instance
from memopt.exact.cut_bound import CutNetwork
from memopt.exact.cut_guard import CutGuard
from memopt.exact.downset_moves import DownsetMoves
from memopt.graph.masks import iter_bits
from memopt.transforms.clusters import Reduction, identity_reduction


@dataclass
class TargetResult:
    """The answer of :func:`target_search` for one target T.

    ``order``/``peak``: an order with peak <= T (None if none was found);
    ``infeasible``: the search was exhausted, no order has peak <= T, and
    ``bound`` (> T) is a proven lower bound on the optimum; ``stopped``: the
    limit that ended the search early (then nothing is proven).
    """

    target: int
    order: list[int] | None = None
    peak: int | None = None
    infeasible: bool = False
    bound: int | None = None
    stopped: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def target_search(inst: Instance, target: int, red: Reduction | None = None, *,
                  critical: list[int] | None = None, network: CutNetwork | None = None,
                  deadline: Deadline | float | None = None, max_states: int = 2_000_000,
                  moves: DownsetMoves | None = None) -> TargetResult:
    """Search for an order with peak <= ``target`` (module docstring); exact when not stopped.

    ``red``: the reduced graph to search (default: the tasks themselves);
    ``critical``: tasks whose min-cut bound prunes states (needs OR-Tools;
    default none); ``network``: a prebuilt :class:`CutNetwork`;
    ``max_states``: stop after that many failed states are stored.
    """
    t0 = time.perf_counter()
    red = red or identity_reduction(inst)
    mv = moves or DownsetMoves(inst, red)
    T = int(target)
    res = TargetResult(T)
    guard = CutGuard(inst, red, critical, network) if critical else None
    cut_min = None  # least value cut off (IDA*'s next threshold)

    def finish(stopped: str | None) -> TargetResult:
        res.stopped = stopped
        res.stats = {"failed_states": len(failed), "expanded": expanded,
                     "flows": guard.flows if guard else 0, "cut_prunes": guard.prunes if guard else 0,
                     "seconds": round(time.perf_counter() - t0, 3)}
        return res

    failed: set[int] = set()
    expanded = 0
    if mv.N == 0:
        res.order, res.peak = [], 0
        return finish(None)

    def options(S: int, L: int, ready: int, inter: int) -> list[tuple[int, int]]:
        """The moves from S within T, the best last (popped first)."""
        nonlocal cut_min
        out = []
        for c in iter_bits(ready):
            pk, L2 = mv.step(c, S, L)
            if pk > T:
                if cut_min is None or pk < cut_min:
                    cut_min = pk
                continue
            if L2 <= L:
                return [(c, L2)]
            outside = 0 if guard is None or guard.task_mask[c] & ~inter == 0 else 1
            out.append((outside, L2, c))
        out.sort(reverse=True)
        return [(c, L2) for _, L2, c in out]

    info: Any = None
    inter = -1
    if guard is not None:
        r = guard.root(T)
        if isinstance(r, int):
            res.infeasible, res.bound = True, r
            return finish(None)
        info, inter = r, r[1]
    stack: list[tuple] = [(0, 0, mv.sources, options(0, 0, mv.sources, inter), info)]
    path: list[int] = []
    while stack:
        S, L, ready, opts, info = stack[-1]
        if not opts:
            failed.add(S)
            stack.pop()
            if path:
                path.pop()
            continue
        c, L2 = opts.pop()
        S2 = S | (1 << c)
        if S2 in failed:
            continue
        if mv.full == S2:
            path.append(c)
            order = red.expand_order(path)
            res.order, res.peak = order, schedule_peak(inst, order)
            return finish(None)
        expanded += 1
        if expanded & 255 == 0:
            if as_deadline(deadline).expired():
                return finish("time")
            if len(failed) > max_states:
                return finish("states")
        info2 = info
        if guard is not None:
            r = guard.child(info, S2, c, T)
            if isinstance(r, int):
                if cut_min is None or r < cut_min:
                    cut_min = r
                failed.add(S2)
                continue
            info2 = r
        ready2 = mv.ready_after(c, S2, ready)
        path.append(c)
        stack.append((S2, L2, ready2, options(S2, L2, ready2, info2[1] if info2 is not None else -1), info2))
    res.infeasible = True
    res.bound = cut_min if cut_min is not None else T + 1
    return finish(None)


@dataclass
class Tightened:
    """What :func:`tighten` ends with: the best order, its peak, a proven lower bound, one row per search."""

    order: list[int] | None
    peak: int
    bound: int
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def optimal(self) -> bool:
        return self.order is not None and self.peak <= self.bound


def tighten(inst: Instance, lower: int, order: list[int], red: Reduction | None = None, *,
            deadline: Deadline | float | None = None, critical: list[int] | None = None,
            network: CutNetwork | None = None,
            max_states: int = 1_000_000, share: float = 0.25, resolution: float = 5e-4,
            on_order: Callable[[list[int], int], None] | None = None,
            on_bound: Callable[[int], None] | None = None) -> Tightened:
    """Narrow the gap between a proven bound and an order by target searches.

    Each search asks for an order within T = peak − step: one found lowers
    the peak and doubles the step; an exhausted search raises the bound to
    its next threshold; a search stopped by its time slice (``share`` of the
    time left) marks T as hard and halves the step towards the peak. Ends
    when the peak meets the bound, when the targets left are within
    ``resolution`` (relative) of the peak, or at the deadline.
    ``on_order(order, peak)`` and ``on_bound(bound)`` are called on every
    new order and bound.
    """
    deadline = as_deadline(deadline)
    red = red or identity_reduction(inst)
    mv = DownsetMoves(inst, red)
    best = list(order)
    hi = schedule_peak(inst, best)
    lo = int(lower)
    out = Tightened(best, hi, lo)
    hard = lo - 1  # targets at most this are infeasible or too hard for the time slices
    step = max(1, (hi - lo) // 8)
    while lo < hi:
        room = hi - 1 - hard
        if room <= 0 or room < resolution * hi:
            break
        if deadline.expired():
            break
        step = max(1, min(step, room))
        T = hi - step
        r = target_search(inst, T, red, critical=critical, network=network, deadline=deadline.share(share),
                          max_states=max_states, moves=mv)
        out.log.append({"target": T, "peak": r.peak, "infeasible": r.infeasible, "bound": r.bound,
                        "stopped": r.stopped, **r.stats})
        if r.order is not None:
            if r.peak < hi:
                best, hi = r.order, r.peak
                if on_order:
                    on_order(best, hi)
            step *= 2
        elif r.infeasible:
            if r.bound is not None and r.bound > lo:
                lo = r.bound
                if on_bound:
                    on_bound(lo)
            hard = max(hard, lo - 1)
        else:
            hard = T
            step = max(1, (hi - 1 - hard) // 2)
    out.order, out.peak, out.bound = best, hi, lo
    return out


__all__ = ["TargetResult", "Tightened", "target_search", "tighten"]
