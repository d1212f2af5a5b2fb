"""Phase 2 of the planner: pack the computes and transfers of phase 1 into stages, and build the SPEC plan.

See :mod:`memopt.heuristics.planner` for the dynamic program.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    # reloads whose logical gap is at or before g but which may still be unplaced at gap g
    live_reloads: dict[int, list[int]] = {}
    offl_at: dict[int, list[int]] = {}  # gap f+1 -> offloads whose datum is freed after compute f
    for idx, tr in enumerate(T):
        if tr.kind == RELOAD:
            for g in range(tr.gap, tr.deadline + 1):
                live_reloads.setdefault(g, []).append(idx)
        else:
            offl_at.setdefault(tr.gap, []).append(idx)

    def start_mem(g: int, j: int, j2: int) -> float:
        m = gap_mem[g]
        for idx in live_reloads.get(g, ()):
            if idx >= j2:
                m -= T[idx].size  # counted by phase 1 but not reloaded yet
        for idx in range(j, j2):
            tr = T[idx]
            if tr.kind == RELOAD and tr.gap > g:
                m += tr.size      # reloaded earlier than phase 1 assumed
        for idx in offl_at.get(g, ()):
            if idx >= j:
                m += T[idx].size  # still resident: freed only after its offload's stage
        return m

    INF = math.inf
    is_reload = [tr.kind == RELOAD for tr in T]
    t_gap = [tr.gap for tr in T]
    t_size = [tr.size for tr in T]
    t_dead = [tr.deadline for tr in T]
    # best[i][j] = (cost, i0, j0): the cheapest packing of computes [0, i) and transfers [0, j), its last stage
    # being computes [i0, i) with transfers [j0, j) (the stage is rebuilt from the two states at the end)
    best: list[dict[int, tuple[float, int, int]]] = [dict() for _ in range(K + 1)]
    best[0][0] = (0.0, -1, -1)
    for i in range(K + 1):
        if deadline is not None and i & 15 == 0 and deadline.run_expired():
            return None
        row = best[i]
        if not row:
            continue
        for j in range(min(row), J + 1):  # transfer-only stages add states (i, j') with j' > j as we go
            cell0 = row.get(j)
            if cell0 is None:
                continue
            cost0 = cell0[0]
            # a stage of one compute and no transfer
            if i < K and (j == J or t_dead[j] >= i + 1):
                c = cost0 + ctime[i]
                nxt = best[i + 1]
                cell = nxt.get(j)
                if cell is None or c < cell[0] - 1e-12:
                    nxt[j] = (c, i, j)
            # stages with transfers j..j2-1
            X = 0.0
            min_deadline = INF
            reload_end = -1          # the latest logical gap of the stage's reloads (-1: none)
            batch: list[tuple[int, int]] = []   # (gap, size) of the stage's reloads
            for j2 in range(j + 1, min(J, j + max_transfers) + 1):
                tr = T[j2 - 1]
                if tr.release > i:
                    break
                X += tr.seconds
                min_deadline = min(min_deadline, tr.deadline)
                if min_deadline < i:
                    break
                if is_reload[j2 - 1]:
                    batch.append((t_gap[j2 - 1], t_size[j2 - 1]))
                    reload_end = max(reload_end, t_gap[j2 - 1])
                min_end = reload_end if batch else i
                nxt_deadline = t_dead[j2] if j2 < J else INF
                if start_mem(i, j, j2) > M:
                    continue
                hi_max = min(K, int(min(min_deadline, nxt_deadline)), i + max_computes)
                for i2 in range(i, hi_max + 1):
                    if i2 > i:
                        p = i2 - 1
                        m = cmp_mem[p]
                        for g, sz in batch:
                            if g > p:
                                m += sz
                        for idx in live_reloads.get(p, ()):
                            if idx >= j2:  # (a reload live at gap p has its gap at or before p)
                                m -= t_size[idx]
                        if m > M:
                            break
                    if i2 < min_end:
                        continue
                    C = prefix[i2] - prefix[i]
                    c = cost0 + (C if C > X else X)
                    target = best[i2]
                    cell = target.get(j2)
                    if cell is None or c < cell[0] - 1e-12:
                        target[j2] = (c, i, j)
                    if C >= X:
                        break
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
