"""Recomputations turned into reloads: more offloading in a plan that recomputes.

A plan that only recomputes leaves the channel idle; the planner's plans with
both techniques leave most of it idle too. The plan's own reloads stay
(their offloads are placed again, one per datum). A recomputation of a
task v at position i of the plan's compute sequence can be replaced by a
*reload* of the outputs of v read after i — provided a copy of them went to
slow memory before (an offload of one of their earlier copies, in that
copy's lifetime; docs/spec.md §2: a slow copy stays for the rest of the plan, so one
offload serves every later reload). Recomputations that then feed nothing
(the inputs recomputed for v alone) go too. The plan loses c(v) of compute
and gains s/β of channel time per datum moved, which the stages hide behind
the computes where the channel has room: the rematerialisation-plus-offloading
trade-off of Beaumont et al. ("Efficient combination of rematerialization
and offloading for training DNNs", NeurIPS 2021), here as a pass over any
plan that recomputes — the chain DP's (``hierarchical``) and the planner's.

:func:`offload_recomputations` ranks the recomputations by the compute time
they save per second of channel time they need, and tries prefixes of that
ranking: each prefix becomes the planner's logical plan (the kept computes,
their memory with liveness frees, the transfers with their windows;
reloads prefetched as far as the memory allows and their transfer needs),
packed into stages by the planner's phase 2 (:func:`.packing.pack_stages`,
exact memory) and judged by the evaluator. The best prefix is found by a
halving search from the whole ranking, refined around it; then the
recomputations whose transfers stand in stages that the channel makes
longer than their computes are left out while that helps. The best plan is
the answer when it beats the plan it started from.

Complexity: O(L + Σ reads) per prefix for a sequence of L computes, plus the
packing's dynamic program over (computes, transfers) placed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from memopt.core.deadline import Deadline
from memopt.core.instance import Instance
from memopt.core.plan import COMPUTE, OFFLOAD, RELOAD, Plan
from memopt.core.request import Request
from memopt.heuristics.planner.packing import build_plan, pack_stages
from memopt.heuristics.planner.simulation import LogicalPlan, Transfer, prefetch

_C, _R = 0, 1  # a step of the mixed sequence: compute a task, or reload a datum
MAX_EXPOSURE_ROUNDS = 4
"""Rounds of the last step of the search: the best set without its recomputations whose transfers stall."""


class _Unpackable(Exception):
    """A reload whose window is empty (its datum is needed again right where its offload must end)."""

    def __init__(self, positions: set[int]):
        super().__init__("empty reload window")
        self.positions = positions


def offload_recomputations(req: Request, plan: Plan, *, deadline: Deadline | None = None,
                           on_improve: Callable[[Plan, float], None] | None = None) -> tuple[Plan, float] | None:
    """The plan with some of ``plan``'s recomputations replaced by reloads, and its makespan; ``None`` when no
    such plan (judged by the evaluator under ``req``) is faster than ``plan``.

    ``req`` must allow offloading (its machine has a bandwidth); ``plan`` is a valid plan of ``req``. Its
    reloads stay (their offloads are placed again, one per datum); each better plan found is passed to
    ``on_improve`` as it comes.
    """
    inst = req.instance
    beta = inst.machine.bandwidth
    if not req.offload or beta is None or req.budget is None:
        return None
    base = req.evaluate(plan)
    if not base.valid:
        return None
    seq = plan_steps(inst, plan)
    seen: set[int] = set()
    cands: list[int] = []
    for i, (kind, v) in enumerate(seq):
        if kind == _C:
            if v in seen:
                cands.append(i)
            seen.add(v)
    if not cands:
        return None
    size, time_ = inst.size, inst.time

    def channel(i: int) -> float:
        s = sum(size[d] for d in inst.outputs[seq[i][1]])
        return 2 * s / beta if not math.isinf(beta) else 0.0

    # most compute saved per second of channel first (a recomputation of outputs of size 0 costs no channel)
    cands.sort(key=lambda i: (-(time_[seq[i][1]] / channel(i)) if channel(i) > 0 else -math.inf, i))
    best_value = float(base.makespan)
    best: tuple[Plan, float] | None = None
    best_set: set[int] = set()
    tried: dict[int, float] = {0: best_value}  # prefix length -> makespan
    exposed: dict[frozenset[int], set[int]] = {}  # a set tried -> its recomputations whose transfers stall

    def judge(chosen: set[int]) -> tuple[float, set[int]]:
        """The makespan of ``chosen`` turned into reloads (inf: no plan), and the set it really was."""
        nonlocal best, best_value, best_set, cands
        while True:
            out: set[int] = set()
            try:
                built = _convert(req, seq, chosen, deadline, exposed=out)
                break
            except _Unpackable as e:  # drop what cannot move (from the ranking too), and try again
                chosen = chosen - e.positions
                cands = [i for i in cands if i not in e.positions]
                if not chosen:
                    return float(base.makespan), chosen
        exposed[frozenset(chosen)] = out
        v = math.inf
        if built is not None:
            ev = req.evaluate(built)
            if ev.valid:
                v = float(ev.makespan)
                if v < best_value - 1e-9:
                    best_value, best, best_set = v, (built, v), set(chosen)
                    if on_improve is not None:
                        on_improve(built, v)
        return v, chosen

    def value(p: int) -> float:
        if p not in tried:
            n = len(cands)
            v, _ = judge(set(cands[:p]))
            if len(cands) < n:  # the ranking lost what could not move: the prefixes tried are other sets now
                tried.clear()
                tried[0] = float(base.makespan)
            tried[min(p, len(cands))] = v
        return tried[min(p, len(cands))]

    # every recomputation first (where the channel has room, the best: Llama-2-70B's shape at 0.8x), then
    # halving, then bisections between the best prefix and its neighbours
    p = len(cands)
    while p > 0 and not _expired(deadline):
        value(min(p, len(cands)))
        p //= 2
    for _ in range(8):
        if _expired(deadline):
            break
        known = sorted(tried)
        at = known.index(min(known, key=lambda q: (tried[q], q)))
        mids = [(known[at - 1] + known[at]) // 2] if at > 0 else []
        mids += [(known[at] + known[at + 1]) // 2] if at + 1 < len(known) else []
        mids = [q for q in mids if q not in tried and 0 < q <= len(cands)]
        if not mids:
            break
        for q in mids:
            if not _expired(deadline):
                value(q)
    # then leave out, from the best set, the recomputations whose transfers stand in stages that the channel
    # makes longer than their computes, while that helps (the ranking does not see where the channel is busy)
    for _ in range(MAX_EXPOSURE_ROUNDS):
        stall = exposed.get(frozenset(best_set), set())
        if not stall or _expired(deadline):
            break
        before = best_value
        judge(best_set - stall)
        if best_value >= before:
            break
    return best


def _expired(deadline: Deadline | None) -> bool:
    return deadline is not None and deadline.expired()


def plan_steps(inst: Instance, plan: Plan) -> list[tuple[int, int]]:
    """A plan as steps ``(_C, task)`` and ``(_R, datum)`` in order: each stage's reloads, then its computes
    (its frees and offloads are left out: :func:`_convert` places them again)."""
    tix, dix = inst.task_index, inst.datum_index
    out: list[tuple[int, int]] = []
    for stage in plan:
        out += [(_R, dix[e.target]) for e in stage if e.kind == RELOAD]
        out += [(_C, tix[e.target]) for e in stage if e.kind == COMPUTE]
    return out


def _convert(req: Request, seq: Sequence[tuple[int, int]], chosen: set[int], deadline: Deadline | None,
             exposed: set[int] | None = None) -> Plan | None:
    """The plan of the steps ``seq`` (:func:`plan_steps`) with the recomputations at ``chosen`` replaced by
    reloads (``None``: no packing); the reloads of ``seq`` stay where something reads them.

    ``exposed`` receives the positions whose transfers (a reload, or its datum's offload) are packed in a
    stage that lasts longer than its computes."""
    inst = req.instance
    size, M = inst.size, req.budget
    results = set(inst.results)
    # backwards: which steps stay, which outputs each chosen position reloads, and the liveness frees
    steps: list[tuple[int, int, int]] = []  # (kind, task or datum, position in seq), backwards
    frees: dict[int, list[int]] = {}        # index in ``steps`` (backwards) -> data freed after that compute
    state: dict[int, str] = {}              # "read" / "made" / absent (the end)
    first = {}
    for i, (kind, v) in enumerate(seq):
        if kind == _C:
            first.setdefault(v, i)

    def live(d: int) -> bool:
        s = state.get(d)
        return s == "read" or (s is None and d in results)

    for i in range(len(seq) - 1, -1, -1):
        kind, v = seq[i]
        if kind == _R:  # a reload of the plan: kept when something reads it
            if live(v):
                steps.append((_R, v, i))
                state[v] = "made"
            continue
        outs = inst.outputs[v]
        if i in chosen or (first[v] != i and not any(live(d) for d in outs)):
            # a reload of the live outputs (a recomputation that feeds nothing is dropped)
            if i in chosen:
                for d in outs:
                    if live(d):
                        steps.append((_R, d, i))
                        state[d] = "made"
            continue
        at = len(steps)
        steps.append((_C, v, i))
        fr = frees.setdefault(at, [])
        for d in outs:
            if not live(d):
                fr.append(d)  # nothing reads it before it is made again: freed right away
            state[d] = "made"
        for d in inst.inputs[v]:
            if not live(d):
                fr.append(d)  # its last read
            state[d] = "read"
    steps.reverse()
    n_steps = len(steps)
    frees = {n_steps - 1 - k: fr for k, fr in frees.items()}
    # forwards: the logical plan (computes, memory, frees) and every copy's life
    lp = LogicalPlan([], [], [], [], [], [])
    resident: set[int] = set()
    cur = 0
    copies: dict[int, list[list]] = {}  # d -> [kind, made (compute index or gap), freed after (or None), first read]
    reloads: list[tuple[int, int, int]] = []  # (datum, index of its copy, position in seq)
    for at, (kind, x, i) in enumerate(steps):
        k = len(lp.computes)
        if kind == _R:
            resident.add(x)
            cur += size[x]
            copies.setdefault(x, []).append([_R, k, None, None])
            reloads.append((x, len(copies[x]) - 1, i))
            continue
        v = x
        new = [d for d in inst.outputs[v] if d not in resident]
        lp.gap_mem.append(cur)
        lp.cmp_mem.append(cur + sum(size[d] for d in new) + inst.workspace[v])
        lp.computes.append(v)
        lp.add_compute(inst.time[v])
        for d in inst.inputs[v]:
            c = copies[d][-1]
            if c[3] is None:
                c[3] = k
        for d in new:
            resident.add(d)
            cur += size[d]
            copies.setdefault(d, []).append([_C, k, None, None])
        fr = frees.get(at, [])
        for d in fr:
            resident.discard(d)
            cur -= size[d]
            copies[d][-1][2] = k
        lp.frees_after.append(list(fr))
    K = len(lp.computes)
    lp.gap_mem.append(cur)
    beta = inst.machine.bandwidth
    tt = (lambda d: 0.0) if math.isinf(beta) else (lambda d: size[d] / beta)
    # the offloads: for each reloaded datum, the earlier computed copy with the most compute time to hide in
    prefix = [0]
    for c in lp.ctime:
        prefix.append(prefix[-1] + c)
    offloaded: dict[int, int] = {}  # d -> index of its offloaded copy
    bad: set[int] = set()
    for d, ci, _ in reloads:
        if d in offloaded:
            continue
        opts = [j for j in range(ci) if copies[d][j][0] == _C]
        j = max(opts, key=lambda j: (prefix[copies[d][j][2] + 1] - prefix[copies[d][j][1] + 1], j))
        offloaded[d] = j
        _, a, f, _ = copies[d][j]
        # kept resident past its last read while its offload needs computes to hide behind and the memory
        # allows (as the planner's late free): freed at once, its offload would have a stage of its own
        nxt = copies[d][j + 1]
        limit = nxt[1] - 1 if nxt[0] == _C else min(nxt[1] - 1, (K if nxt[3] is None else nxt[3]) - 2)
        s, acc, f0 = size[d], prefix[f + 1] - prefix[a + 1], f
        while acc < tt(d) and f < limit and lp.cmp_mem[f + 1] + s <= M and lp.gap_mem[f + 1] + s <= M:
            f += 1
            acc += lp.ctime[f]
        if f > f0:
            for k in range(f0 + 1, f + 1):
                lp.cmp_mem[k] += s
                lp.gap_mem[k] += s
            lp.frees_after[f0].remove(d)
            lp.frees_after[f].append(d)
            copies[d][j][2] = f
        lp.book(a + 1, f, tt(d))
        lp.transfers.append(Transfer(OFFLOAD, d, size[d], tt(d), release=a + 1, deadline=f + 1, gap=f + 1,
                                     seq=len(lp.transfers)))
    # the reloads, each prefetched as far as the memory allows and its transfer needs (as phase 1 does)
    for d, ci, i in reloads:
        _, r, _, q = copies[d][ci]
        prev = copies[d][ci - 1]
        f0 = prev[2]
        release = f0 + (2 if offloaded.get(d) == ci - 1 else 1)
        if q is None:
            q = K  # a result, read by no compute: needed at the end
        if q < release:
            bad.add(i)
            continue
        r = prefetch(lp, r, release, size[d], tt(d), M)
        lp.transfers.append(Transfer(RELOAD, d, size[d], tt(d), release=release, deadline=q, gap=r,
                                     seq=len(lp.transfers)))
    if bad:
        raise _Unpackable(bad)
    cap = inst.machine.slow_capacity
    if cap is not None and sum(size[d] for d in offloaded) > cap:
        return None
    if max(lp.cmp_mem, default=0) > M or max(lp.gap_mem) > M:
        return None
    stages = pack_stages(lp, M, deadline=deadline)
    if stages is None:
        return None
    if exposed is not None:
        T = lp.transfers  # (in the packing's channel order)
        busy = set()
        for st in stages:
            if sum(T[x].seconds for x in range(st.tlo, st.thi)) > sum(lp.ctime[st.lo:st.hi]):
                busy.update(T[x].datum for x in range(st.tlo, st.thi))
        exposed.update(i for d, _, i in reloads if d in busy)
    return build_plan(inst, lp, stages)


__all__ = ["offload_recomputations"]
