"""Phase 2 of the planner: pack the computes and transfers of phase 1 into stages, and build the SPEC plan.

See :mod:`memopt.heuristics.planner` for the dynamic program.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left
from dataclasses import dataclass
from heapq import heappop, heappush

from memopt.core.deadline import Deadline
from memopt.core.instance import Instance
from memopt.core.plan import COMPUTE, FREE, OFFLOAD, RELOAD, Event, Plan
from memopt.heuristics.planner.simulation import LogicalPlan


@dataclass
class Stage:
    lo: int   # computes [lo, hi)
    hi: int
    tlo: int  # transfers [tlo, thi) (in channel order)
    thi: int


def pack_stages(lp: LogicalPlan, M: float, max_computes: int = 64, max_transfers: int = 8,
                deadline: Deadline | None = None) -> list[Stage] | None:
    """Choose stages minimising Σ max(Σ c, Σ s/β) — dynamic program over (computes, transfers) placed.

    ``None`` when no packing fits, or when the run's time is up (``deadline.run_expired()``: thousands of
    computes and transfers make the program a minute long, GPT-2 medium offloading at 0.2x).
    """
    K = len(lp.computes)
    T = sorted(lp.transfers, key=lambda x: (x.deadline, 0 if x.kind == OFFLOAD else 1, x.release, x.seq))
    lp.transfers = T
    J = len(T)
    ctime = lp.ctime
    cmp_mem, gap_mem = lp.cmp_mem, lp.gap_mem
    if J == 0:
        return [Stage(k, k + 1, 0, 0) for k in range(K)]
    prefix = [0]
    for c in ctime:
        prefix.append(prefix[-1] + c)
    # Per gap g, the reloads live at g (logical gap at or before g, deadline at or after it) and the offloads
    # whose datum phase 1 frees at g, each as increasing indices of T with the suffix sums of their sizes: the
    # DP asks "how much of it is at index >= j" for every state, and windows span thousands of gaps (Llama-2-70B
    # with Adam: 1,400 reloads live over ~3,000 gaps each), so a scan per question was most of phase 2.
    gaps = max(K, max(max(tr.deadline, tr.gap) for tr in T)) + 1
    live_reloads = _IndexSums(gaps)
    offl_at = _IndexSums(gaps)   # gap f+1 -> offloads whose datum is freed after compute f
    for idx, tr in enumerate(T):
        if tr.kind == RELOAD:
            for g in range(tr.gap, tr.deadline + 1):
                live_reloads.add(g, idx, tr.size)
        else:
            offl_at.add(tr.gap, idx, tr.size)
    live_reloads.close()
    offl_at.close()
    unplaced_live = live_reloads.from_index
    unplaced_offl = offl_at.from_index

    INF = math.inf
    is_reload = [tr.kind == RELOAD for tr in T]
    t_gap = [tr.gap for tr in T]
    t_size = [tr.size for tr in T]
    t_dead = [tr.deadline for tr in T]
    # computes whose memory in phase 1 is over M (none when phase 1 kept to its budget): once a stage's reloads
    # have all reached their logical gaps, only these can break the budget in it
    over = [p for p in range(K) if cmp_mem[p] > M]
    # best[i][j] = (cost, i0, j0): the cheapest packing of computes [0, i) and transfers [0, j), its last stage
    # being computes [i0, i) with transfers [j0, j) (the stage is rebuilt from the two states at the end)
    best: list[dict[int, tuple[float, int, int]]] = [dict() for _ in range(K + 1)]
    best[0][0] = (0.0, -1, -1)
    # Offers to later rows, made as ranges: a stage whose transfers outlast its computes costs the same
    # (its transfers' time) whichever of many rows it ends at, and long transfers (an optimizer state of a 70B
    # model) made one offer per row most of phase 2's time. opened[r]: (j2, cost, seq, last row, i0, j0) offered
    # to rows r..last; heaps[j2]: the open offers to column j2, cheapest (then first made) on top.
    opened: list[list[tuple[int, float, int, int, int, int]]] = [[] for _ in range(K + 1)]
    heaps: dict[int, list[tuple[float, int, int, int, int]]] = {}
    seq = itertools.count()
    for i in range(K + 1):
        if deadline is not None and i & 15 == 0 and deadline.run_expired():
            return None
        row = best[i]
        for j2, c, n, last, i0, j0 in opened[i]:
            heap = heaps.get(j2)
            if heap is None:
                heaps[j2] = heap = []
            heappush(heap, (c, n, last, i0, j0))
        opened[i] = []
        for j2 in list(heaps):
            heap = heaps[j2]
            while heap and heap[0][2] < i:
                heappop(heap)
            if not heap:
                del heaps[j2]
                continue
            c, _, _, i0, j0 = heap[0]
            row[j2] = (c, i0, j0)
        if not row:
            continue
        columns = sorted(row)  # transfer-only stages add states (i, j') with j' > j as we go
        # A state (i, j) need not be extended when a state (i, j') with j' > j costs no more: any packing from
        # (i, j) is matched from (i, j') by the same stages without the transfers [j, j'). Each stage's
        # transfers take no longer; its memory is no higher (its own reloads are fewer, the offloads are done,
        # the later reloads are as placed as before, and an early reload of [j, j') has reached its gap by
        # row i); every release, deadline and limit still holds (transfers go in deadline order); a stage left
        # without transfers is a run of compute-only stages of the same total. The least cost after j is
        # taken at the start of the row: both sides may still fall while the row is extended, so the test
        # uses the state's final cost (every cost is that of a packing: the test stays sound). Exact for this
        # program; on Llama-2-70B with Adam at 0.4x the states reached fall from 690,000 to 138,000.
        dominator: dict[int, float] = {}
        run = INF
        for j in reversed(columns):
            dominator[j] = run
            run = min(run, row[j][0])
        while columns:
            j = heappop(columns)
            cost0 = row[j][0]  # final: the row's own offers to (i, j) came from states before j
            if dominator.get(j, INF) <= cost0:
                continue
            # a stage of one compute and no transfer
            if i < K and (j == J or t_dead[j] >= i + 1):
                opened[i + 1].append((j, cost0 + ctime[i], next(seq), i + 1, i, j))
            # stages with transfers j..j2-1
            X = 0.0
            min_deadline = INF
            reload_end = -1          # the latest logical gap of the stage's reloads (-1: none)
            batch: list[tuple[int, int]] = []   # (gap, size) of the stage's reloads
            # the stage's start memory, kept as j2 grows: phase 1's at gap i, plus the reloads of [j, j2) whose
            # logical gap is later (reloaded earlier than phase 1 assumed), minus the reloads live at i not placed
            # by j2, plus the offloads not placed before j (their data are freed only after their offload's
            # stage). Comparisons inline: this loop runs millions of times on the largest graphs.
            held = gap_mem[i]
            still_out = unplaced_offl(i, j)
            j_end = j + max_transfers if j + max_transfers < J else J
            for j2 in range(j + 1, j_end + 1):
                tr = T[j2 - 1]
                if tr.release > i:
                    break
                X += tr.seconds
                if tr.deadline < min_deadline:
                    min_deadline = tr.deadline
                if min_deadline < i:
                    break
                if is_reload[j2 - 1]:
                    g = t_gap[j2 - 1]
                    batch.append((g, t_size[j2 - 1]))
                    if g > reload_end:
                        reload_end = g
                    if g > i:
                        held += t_size[j2 - 1]   # reloaded earlier than phase 1 assumed
                min_end = reload_end if batch else i
                nxt_deadline = t_dead[j2] if j2 < J else INF
                if held - unplaced_live(i, j2) + still_out > M:
                    continue
                hi_max = int(min_deadline if min_deadline < nxt_deadline else nxt_deadline)
                if hi_max > K:
                    hi_max = K
                if hi_max > i + max_computes:
                    hi_max = i + max_computes
                # the stage ends at row i2 in [i, hi_max]; its memory is checked at each compute p = i2 - 1 in
                # turn, and it stops at the first over M or once its computes outlast its transfers.
                # Rows up to min_end one by one (the stage's early reloads weigh on those computes):
                a_end = min(hi_max, max(i, min_end))
                done = False
                for i2 in range(i, a_end + 1):
                    if i2 > i:
                        p = i2 - 1
                        m = cmp_mem[p] - unplaced_live(p, j2)  # (a reload live at gap p has its gap <= p)
                        for g, sz in batch:
                            if g > p:
                                m += sz
                        if m > M:
                            done = True
                            break
                    if i2 < min_end:
                        continue
                    C = prefix[i2] - prefix[i]
                    c = cost0 + (C if C > X else X)
                    if i2 == i:
                        cell = row.get(j2)
                        if cell is None or c < cell[0] - 1e-12:
                            if cell is None:
                                heappush(columns, j2)
                            row[j2] = (c, i, j)
                    else:
                        opened[i2].append((j2, c, next(seq), i2, i, j))
                    if C >= X:
                        done = True
                        break
                if done or a_end == hi_max:
                    continue
                # then the rows after it at once: the reloads have reached their gaps, so only the computes of
                # `over` can break the budget, and every row before the computes outlast the transfers costs X
                last = hi_max
                for p in over[bisect_left(over, a_end):]:
                    if p >= last:
                        break
                    if cmp_mem[p] - unplaced_live(p, j2) > M:
                        last = p
                        break
                target = prefix[i] + X
                i_x = bisect_left(prefix, target, a_end + 1, last + 1)
                while i_x > a_end + 1 and prefix[i_x - 1] - prefix[i] >= X:   # (exact, whatever the float rounding)
                    i_x -= 1
                while i_x <= last and prefix[i_x] - prefix[i] < X:
                    i_x += 1
                if i_x > a_end + 1:
                    opened[a_end + 1].append((j2, cost0 + X, next(seq), min(i_x - 1, last), i, j))
                if i_x <= last:
                    opened[i_x].append((j2, cost0 + (prefix[i_x] - prefix[i]), next(seq), i_x, i, j))
    if J not in best[K]:
        return None
    stages: list[Stage] = []
    i, j = K, J
    while (i, j) != (0, 0):
        _, i0, j0 = best[i][j]
        stages.append(Stage(i0, i, j0, j))
        i, j = i0, j0
    stages.reverse()
    return stages


class _IndexSums:
    """Per key ``g`` (0..n-1), indices added in increasing order with a size each; :meth:`from_index` gives the
    total size of those at index ``>= j`` by bisection over suffix sums."""

    def __init__(self, n: int) -> None:
        self.idx: list[list[int]] = [[] for _ in range(n)]
        self.suffix: list[list[int]] = [[] for _ in range(n)]

    def add(self, g: int, idx: int, size: int) -> None:
        self.idx[g].append(idx)
        self.suffix[g].append(size)

    def close(self) -> None:
        for sizes in self.suffix:
            acc = 0
            for k in range(len(sizes) - 1, -1, -1):
                acc += sizes[k]
                sizes[k] = acc
            sizes.append(0)

    def from_index(self, g: int, j: int) -> int:
        idx = self.idx[g]
        if not idx or idx[-1] < j:
            return 0
        return self.suffix[g][bisect_left(idx, j)]


def build_plan(inst: Instance, lp: LogicalPlan, stages: list[Stage]) -> Plan:
    """Turn the packed stages into SPEC events (frees wait for their datum's offload stage)."""
    tids = [t.id for t in inst.tasks]
    dids = [d.id for d in inst.data]
    T = lp.transfers
    off_stage: dict[int, int] = {}
    delayed = {(tr.datum, tr.gap - 1) for tr in T if tr.kind == OFFLOAD}  # (datum, compute after which it is freed)
    for s, st in enumerate(stages):
        for x in range(st.tlo, st.thi):
            if T[x].kind == OFFLOAD:
                off_stage[T[x].datum] = s
    pending: list[tuple[int, int]] = []  # (datum, stage after which it may be freed)
    out: list[list[Event]] = []
    for s, st in enumerate(stages):
        ev: list[Event] = []
        keep = []
        for d, after in pending:
            if after < s:
                ev.append(Event(FREE, dids[d]))
            else:
                keep.append((d, after))
        pending = keep
        for k in range(st.lo, st.hi):
            ev.append(Event(COMPUTE, tids[lp.computes[k]]))
            for d in lp.frees_after[k]:
                os_ = off_stage.get(d)
                if os_ is not None and os_ >= s and (d, k) in delayed:
                    pending.append((d, os_))
                else:
                    ev.append(Event(FREE, dids[d]))
        for x in range(st.tlo, st.thi):
            ev.append(Event(T[x].kind, dids[T[x].datum]))
        out.append(ev)
    if pending:
        out.append([Event(FREE, dids[d]) for d, _ in pending])
    return Plan(out)


__all__ = ["Stage", "build_plan", "pack_stages"]
