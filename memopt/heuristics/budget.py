"""The budget planner: fit a memory budget by evicting data (the warm start of every time model).

Given an order of *first* computations, :func:`plan_under_budget` builds a
SPEC plan whose peak stays within the budget M, using only what the request
allows (recomputation, offloading, or neither). It works in two phases.

**Phase 1, eviction** (:class:`_Simulation`). The tasks run in the given
order. Before a compute, its missing inputs are brought back (reloaded from
slow memory, or recomputed: their producer runs again, which needs *its*
inputs, recursively); then, while the memory of the compute would exceed M,
a resident datum that no pending compute pins is *evicted*:

- a datum nobody needs any more is freed (this happens eagerly anyway);
- a datum with a copy in slow memory is freed (it comes back by a reload);
- otherwise it is *offloaded* then freed, or *dropped* (freed, to be
  recomputed), whichever is cheaper: an offload costs ``w·2·s(d)/β`` (out
  and back), a drop costs the time of recomputing its producer plus the
  evicted inputs that recomputation needs, recursively (the "evicted
  neighbourhood" e* of DTR). ``w`` (``transfer_weight``) discounts transfers,
  which mostly run hidden beside the computes (SPEC §2: a stage lasts
  max(compute, transfer)).

Which datum is evicted is decided by a score (``score=``):

- ``"lookahead"`` (default): the smallest cost / (size × distance to the
  next use), the distance measured in positions of the order. With equal
  costs per byte this is Belady's farthest-next-use rule (Belady 1966);
  with recomputation it weighs what the eviction costs;
- ``"belady"``: the farthest next use (ties: the larger datum), ignoring cost;
- ``"dtr"``: the smallest cost / (size × staleness), staleness being the
  number of computes since the datum was last used — the heuristic of
  Dynamic Tensor Rematerialization (Kirisame et al., ICLR 2021), which does
  not look ahead.

A datum is dropped only if it can be recomputed later: its producer may run
again and every input of the producer is resident, in slow memory, or
itself recomputable (an invariant kept for every dropped datum that is
still needed). Freed data are freed as early as possible (right after
their last use) and reloads are prefetched as far back as the memory
allows and the transfer needs, so that transfers can hide behind computes.

**Phase 2, stage packing** (:func:`_pack`). Phase 1 yields a sequence of
computes (with the memory at every compute and between computes) and a
list of transfers, each with a window of stages where it may run (an
offload after its datum is resident and before it is freed, a reload after
the offload and the free and before the first use). The transfers go
through the channel in earliest-deadline order; a dynamic program over
(computes placed, transfers placed) chooses the stages — several computes
and several transfers per stage where that hides the transfers — minimising
Σ max(Σ c, Σ s/β), subject to the exact memory of every stage (a reload
holds its memory from the start of its stage; an offloaded datum stays
resident until the stage after its offload). Placing each transfer alone
in its own stage is always a feasible path, so phase 2 never fails where
phase 1 succeeded.

**Guarantees.** Every returned plan has been accepted by the evaluator
with the request's budget and techniques. A plan is always found when the
budget is at least the order's pure-schedule peak (it is that schedule, no
overhead), and, with offloading and enough slow memory, whenever the budget
is at least the task footprint bound max_v (inputs + outputs + workspace)
(every datum can then be offloaded, and the ``transfer_weight=0`` run of the
portfolio evicts by offloading only). With recomputation only a plan may not
be found near the lowest feasible budget (that question is PSPACE-hard in
general: it contains pebbling).

**Complexity.** Phase 1 is O(E · R · D) for E evictions, R resident data and
D the depth of the recompute-cost recursion (memoised per eviction);
phase 2 visits O(K · W) states for K computes and W transfers live at
once. :func:`plan_under_budget` runs a small portfolio (orders × scores ×
transfer weights, with and without *anchors* — see :class:`PlannerConfig`),
then randomised restarts of the best run, and keeps the plan with the
least evaluated makespan. The whole design is documented in
``docs/planner.md``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

from ..evaluate import schedule_peak
from ..instance import Instance
from ..plan import COMPUTE, FREE, OFFLOAD, RELOAD, Event, Plan
from ..solve import MethodOutput, Request, SolveOptions, register_method

SCORES = ("lookahead", "belady", "dtr")
DEFAULT_WARM_SECONDS = 5.0  # plan_under_budget's default effort (a warm start, not the answer)
DEFAULT_RESTARTS = 20
DEFAULT_METHOD_RESTARTS = 200  # the ``planner`` method (within its time limit; option ``restarts``)
_MAX_DEPTH = 150  # nested recomputations before a run gives up (keeps Python's stack safe)


@dataclass(frozen=True)
class PlannerConfig:
    """One run of the planner.

    ``score``: eviction score (``lookahead``, ``belady``, ``dtr``);
    ``transfer_weight``: the factor w by which a transfer's time counts
    against a recomputation's (1: at face value; 0: transfers are free);
    ``prefetch``: start reloads early when memory allows;
    ``early_free``: move the free of an evicted datum back to its last use.
    """

    score: str = "lookahead"
    transfer_weight: float = 1.0
    prefetch: bool = True
    early_free: bool = True
    max_recompute_factor: int = 4  # a run gives up beyond this many computes per task (thrashing)
    distance: str = "positions"  # next-use distance in positions of the order, or in compute "time"
    keep_anchors: bool = False  # keep the outputs of tasks that cannot rerun (their descendants stay recomputable)
    noise: float = 0.0  # randomised restarts: each score is multiplied by a factor in [1 - noise, 1 + noise]
    seed: int = 0

    def label(self) -> str:
        s = f"{self.score}/w={self.transfer_weight:g}"
        if self.distance != "positions":
            s += f"/{self.distance}"
        if self.keep_anchors:
            s += "/anchors"
        if self.noise:
            s += f"/noise={self.noise:g}#{self.seed}"
        if not self.prefetch:
            s += "/no-prefetch"
        if not self.early_free:
            s += "/late-free"
        return s


class _Stuck(Exception):
    """Phase 1 cannot make room (every resident datum is pinned or cannot be evicted)."""


@dataclass
class _Transfer:
    kind: str          # OFFLOAD or RELOAD
    datum: int
    size: int
    seconds: float     # s(d)/β
    release: int       # earliest gap at which its stage may start
    deadline: int      # latest gap at which its stage may end
    gap: int           # offload: f+1 (its datum is freed after compute f); reload: logical gap r
    seq: int


@dataclass
class _Logical:
    """Phase 1's output: the computes, the memory profile, the frees and the transfers."""

    computes: list[int]
    ctime: list[int]
    cmp_mem: list[int]            # memory at compute k
    gap_mem: list[int]            # memory between compute k-1 and compute k (k = 0..K)
    frees_after: list[list[int]]  # data freed right after compute k
    transfers: list[_Transfer]
    evictions: int = 0
    recomputes: int = 0


# ---------------------------------------------------------------- phase 1
class _Simulation:
    """Run an order of first computations under the budget, evicting as needed."""

    def __init__(self, req: Request, order: Sequence[int], cfg: PlannerConfig):
        inst = req.instance
        self.inst = inst
        self.cfg = cfg
        self.M = req.budget if req.budget is not None else math.inf
        self.rc = req.recompute
        bw = inst.machine.bandwidth
        self.off = bool(req.offload and bw is not None)
        self.beta = bw
        self.slow_cap = inst.machine.slow_capacity
        self.w = cfg.transfer_weight
        n, m = inst.n, inst.m
        pos = [0] * n
        for t, v in enumerate(order):
            pos[v] = t
        self.order = list(order)
        self.end = n  # the "position" of the end (results are needed there)
        self.use_pos = [sorted(pos[c] for c in inst.consumers[d]) for d in range(m)]
        self.pre_time = [0]
        for v in self.order:
            self.pre_time.append(self.pre_time[-1] + inst.time[v])
        self.used = [0] * m          # consumers whose first computation happened
        self.result = [not inst.consumers[d] for d in range(m)]
        # anchors: data of tasks that cannot rerun, kept so that the results after them stay recomputable
        self.anchor = [False] * m
        if cfg.keep_anchors and self.rc:
            has_result = [bool(inst.outputs[v]) and any(self.result[d] for d in inst.outputs[v]) for v in range(n)]
            below = [False] * n  # some result is produced by v or a descendant
            for v in reversed(inst.topological_order):
                below[v] = has_result[v] or any(below[w] for w in inst.succs[v])
            for d in range(m):
                p = inst.producer[d]
                if not inst.can_recompute[p] and inst.consumers[d] and any(below[c] for c in inst.consumers[d]):
                    self.anchor[d] = True
        self.fast = [False] * m
        self.slow = [False] * m
        self.lost = [False] * m      # needed, gone, and recomputable (invariant)
        self.dep = [0] * m           # lost data whose producer reads this datum
        self.pin = [0] * m
        self.since = [0] * m         # compute index (or reload gap) where the current copy appeared
        self.last_use = [0] * m
        self.last_free = [-1] * m    # compute after which the datum was last freed
        self.pending_reload: dict[int, _Transfer] = {}
        self._just_offloaded: dict[int, int] = {}  # datum -> gap of its offload's free
        self.cur = 0
        self.slow_used = 0
        self.t = 0
        self.depth = 0
        self.out = _Logical([], [], [], [], [], [])
        self.max_computes = cfg.max_recompute_factor * n + 50
        self.rng = None
        if cfg.noise:
            import random

            self.rng = random.Random(cfg.seed)
        self._memo_cost: dict[int, float] = {}
        self._memo_regen: dict[int, bool] = {}
        self._memo_need: dict[int, int] = {}
        self._memo_need_mem: dict[int, int] = {}

    # ------------------------------------------------------------ queries
    def tt(self, d: int) -> float:
        b = self.beta
        if b is None:
            return math.inf
        if math.isinf(b):
            return 0.0
        return self.inst.size[d] / b

    def needed(self, d: int) -> bool:
        return self.used[d] < len(self.use_pos[d]) or self.result[d] or self.dep[d] > 0 or self.anchor[d]

    def _reset_memos(self) -> None:
        self._memo_cost.clear()
        self._memo_regen.clear()
        self._memo_need.clear()
        self._memo_need_mem.clear()

    def regen_gone(self, d: int, depth: int = 0) -> bool:
        """Can d be recomputed later (its producer may rerun, its inputs can be had)?"""
        if not self.rc:
            return False
        memo = self._memo_regen
        if d in memo:
            return memo[d]
        inst = self.inst
        p = inst.producer[d]
        ok = inst.can_recompute[p] and depth < _MAX_DEPTH
        if ok:
            memo[d] = False  # guard (the graph is acyclic; this is only a safety net)
            for g in inst.inputs[p]:
                if self.fast[g] or self.slow[g] or self.lost[g]:
                    continue
                if not self.regen_gone(g, depth + 1):
                    ok = False
                    break
        memo[d] = ok
        return ok

    def rc_cost(self, d: int, depth: int = 0) -> float:
        """Time to recompute d: its producer plus the inputs it lacks (recursively)."""
        memo = self._memo_cost
        if d in memo:
            return memo[d]
        inst = self.inst
        p = inst.producer[d]
        c = float(inst.time[p])
        memo[d] = c
        if depth < 8:  # deeper chains are rare and the estimate is only a guide
            for g in inst.inputs[p]:
                if self.fast[g]:
                    continue
                alt = math.inf
                if self.slow[g]:
                    alt = self.w * self.tt(g)
                if self.rc and inst.can_recompute[inst.producer[g]]:
                    alt = min(alt, self.rc_cost(g, depth + 1))
                c += alt if math.isfinite(alt) else 0.0
        memo[d] = c
        return c

    def next_need(self, d: int, depth: int = 0) -> int:
        """Order position where d is next needed (the end for results)."""
        memo = self._memo_need
        if d in memo:
            return memo[d]
        memo[d] = self.end
        best = self.end + 1
        k = self.used[d]
        if k < len(self.use_pos[d]):
            best = self.use_pos[d][k]
        else:
            if self.result[d]:
                best = self.end
            if self.dep[d] > 0 and depth < 50:
                inst = self.inst
                for c in inst.consumers[d]:
                    for e in inst.outputs[c]:
                        if self.lost[e]:
                            best = min(best, self.next_need(e, depth + 1))
        memo[d] = best
        return best

    def regen_need(self, d: int, depth: int = 0) -> int:
        """Memory above the resident data needed to bring the gone datum d back (an estimate).

        Reloading needs s(d); recomputing needs, for the producer p, its missing
        inputs brought back one after the other (the most demanding first,
        each then held) and then its outputs and workspace.
        """
        inst = self.inst
        if self.off and self.slow[d]:
            return inst.size[d]
        memo = self._memo_need_mem
        if d in memo:
            return memo[d]
        p = inst.producer[d]
        memo[d] = inst.output_size[p] + inst.workspace[p]
        items = []
        if depth < 50:
            for g in inst.inputs[p]:
                if not self.fast[g]:
                    items.append((self.regen_need(g, depth + 1), inst.size[g]))
        items.sort(key=lambda x: x[1] - x[0])
        held = peak = 0
        for need, s in items:
            peak = max(peak, held + need)
            held += s
        peak = max(peak, held + inst.output_size[p] + inst.workspace[p])
        memo[d] = peak
        return peak

    # ------------------------------------------------------------ lost data
    def mark_lost(self, d: int) -> None:
        self.lost[d] = True
        for g in self.inst.inputs[self.inst.producer[d]]:
            self.inc_dep(g)

    def inc_dep(self, g: int) -> None:
        was = self.needed(g)
        self.dep[g] += 1
        if not was and not self.fast[g] and not self.slow[g] and not self.lost[g]:
            # a gone datum becomes needed again: it is recomputable (checked by the caller)
            self.mark_lost(g)

    def dec_dep(self, g: int, maybe_dead: list[int]) -> None:
        self.dep[g] -= 1
        if not self.needed(g):
            if self.lost[g]:
                self.lost[g] = False
                for h in self.inst.inputs[self.inst.producer[g]]:
                    self.dec_dep(h, maybe_dead)
            elif self.fast[g]:
                maybe_dead.append(g)

    # ------------------------------------------------------------ memory
    def _retro_free(self, d: int, f: int) -> None:
        """Free d after compute f (f < K): it no longer counts in later memory points."""
        s = self.inst.size[d]
        out = self.out
        K = len(out.computes)
        for k in range(f + 1, K):
            out.cmp_mem[k] -= s
            out.gap_mem[k] -= s
        out.frees_after[f].append(d)
        self.cur -= s
        self.fast[d] = False
        self.last_free[d] = f

    def free_now(self, d: int) -> None:
        """Free d right after the last compute."""
        K = len(self.out.computes)
        self._retro_free(d, K - 1)

    def _victim(self):
        """The resident datum to evict and how (``free``, ``offload``, ``drop``), or None."""
        inst = self.inst
        size = inst.size
        K = len(self.out.computes)
        self._reset_memos()
        score = self.cfg.score
        rng, noise = self.rng, self.cfg.noise
        best = None
        best_key = None
        for d in range(inst.m):
            if not self.fast[d] or self.pin[d] or size[d] == 0:
                continue
            if self.since[d] >= K and d in self.pending_reload:
                continue  # reloaded for the compute being gathered
            if not self.needed(d):
                mode, cost = "free", 0.0
            elif self.slow[d]:
                cost = self.w * self.tt(d)
                if self.regen_gone(d):
                    cost = min(cost, self.rc_cost(d))
                mode = "free"
            else:
                mode, cost = None, math.inf
                if self.off and (self.slow_cap is None or self.slow_used + size[d] <= self.slow_cap):
                    mode, cost = "offload", self.w * 2 * self.tt(d)
                if self.rc and self.regen_gone(d):
                    c = self.rc_cost(d)
                    if c < cost or mode is None:
                        mode, cost = "drop", c
                if mode is None:
                    continue
            f = 1.0 if rng is None else 1.0 + noise * (2 * rng.random() - 1)
            if score == "dtr":
                stale = K - self.last_use[d] + 1
                key = (f * cost / (size[d] * stale), -size[d], d)
            else:
                nn = self.next_need(d)
                if self.cfg.distance == "time":
                    dist = max(1, self.pre_time[min(nn, self.end)] - self.pre_time[self.t]) + (nn > self.end)
                else:
                    dist = max(1, nn - self.t)
                if score == "belady":
                    key = (0 if cost == 0 else 1, -dist * f, -size[d], d)
                else:
                    key = (f * cost / (size[d] * dist), -dist, -size[d], d)
            if best_key is None or key < best_key:
                best_key, best = key, (d, mode)
        return best

    def ensure(self, need: int) -> None:
        """Evict until ``need`` more fits under the budget at the current gap."""
        while self.cur + need > self.M:
            v = self._victim()
            if v is None:
                raise _Stuck(f"no datum can be evicted to make room for {need} (memory {self.cur}, budget {self.M})")
            self.evict(*v)

    def evict(self, d: int, mode: str) -> None:
        inst = self.inst
        out = self.out
        K = len(out.computes)
        s = inst.size[d]
        out.evictions += 1
        start = self.since[d]
        if mode == "offload":
            f = K - 1
            if self.cfg.early_free:
                f = max(self.last_use[d], start)
                need = self.tt(d)
                acc = sum(out.ctime[start + 1:f + 1])
                while acc < need and f < K - 1:
                    f += 1
                    acc += out.ctime[f]
            f = min(f, K - 1)
            tr = _Transfer(OFFLOAD, d, s, self.tt(d), release=start + 1, deadline=f + 1, gap=f + 1,
                           seq=len(out.transfers))
            self._just_offloaded[d] = f + 1
            out.transfers.append(tr)
            self.slow[d] = True
            self.slow_used += s
        else:
            f = max(self.last_use[d], start) if self.cfg.early_free else K - 1
        f = min(f, K - 1)
        self._retro_free(d, f)
        if self.needed(d) and not self.slow[d]:
            self.mark_lost(d)

    # ------------------------------------------------------------ computing
    def bring(self, d: int) -> None:
        """Make the gone datum d resident again (reload or recompute)."""
        if self.off and self.slow[d]:
            self._reset_memos()
            K = len(self.out.computes)
            f0 = self.last_free[d]
            too_soon = f0 + (2 if self._just_offloaded.get(d) == f0 + 1 else 1) > K
            if self.rc and self.regen_gone(d) and (too_soon or self.rc_cost(d) < self.w * self.tt(d)):
                self.compute(self.inst.producer[d], first=False)
            elif too_soon:
                raise _Stuck(f"datum {self.inst.data[d].id!r} is needed again in the gap where it was offloaded")
            else:
                self.reload(d)
            return
        if not (self.rc and self.inst.can_recompute[self.inst.producer[d]]):
            raise _Stuck(f"datum {self.inst.data[d].id!r} is gone and cannot be brought back")
        self.compute(self.inst.producer[d], first=False)

    def reload(self, d: int) -> None:
        inst = self.inst
        out = self.out
        s = inst.size[d]
        self.ensure(s)
        K = len(out.computes)
        self.cur += s
        self.fast[d] = True
        self.since[d] = K
        self.last_use[d] = K
        r = K
        f0 = self.last_free[d]
        # the reload's stage starts after the stage that frees d; that free waits for
        # d's offload's stage when the offload was the one just before it
        release = f0 + (2 if self._just_offloaded.get(d) == f0 + 1 else 1)
        if self.cfg.prefetch and r > release:
            need = self.tt(d)
            acc = 0.0
            M = self.M
            while r - 1 >= release and acc < need:
                k = r - 1
                if out.cmp_mem[k] + s > M or out.gap_mem[k] + s > M:
                    break
                r = k
                acc += out.ctime[k]
            for k in range(r, K):
                out.cmp_mem[k] += s
                out.gap_mem[k] += s
        tr = _Transfer(RELOAD, d, s, self.tt(d), release=release, deadline=K, gap=r, seq=len(out.transfers))
        out.transfers.append(tr)
        self.pending_reload[d] = tr

    def compute(self, v: int, first: bool) -> None:
        inst = self.inst
        out = self.out
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _Stuck("recomputation chain too deep")
        if len(out.computes) >= self.max_computes:
            raise _Stuck(f"more than {self.max_computes} computes: the eviction thrashes")
        ins = inst.inputs[v]
        pinned: list[int] = []
        for d in ins:
            if self.fast[d]:
                self.pin[d] += 1
                pinned.append(d)
        # recompute first, reload last (reloaded data then hold memory for less long); among the
        # recomputations, the most demanding first while the fewest inputs are pinned (Sethi & Ullman 1970)
        missing = [d for d in ins if not self.fast[d]]
        if len(missing) > 1:
            self._reset_memos()
            missing.sort(key=lambda d: (1, 0) if (self.off and self.slow[d])
                         else (0, -(self.regen_need(d) - inst.size[d])))
        for d in missing:
            if not self.fast[d]:
                self.bring(d)
            self.pin[d] += 1
            pinned.append(d)
        for o in inst.outputs[v]:  # outputs already resident must stay (they are not counted again)
            if self.fast[o]:
                self.pin[o] += 1
                pinned.append(o)
        new = [o for o in inst.outputs[v] if not self.fast[o]]
        need = sum(inst.size[o] for o in new) + inst.workspace[v]
        self.ensure(need)
        K = len(out.computes)
        out.gap_mem.append(self.cur)
        out.cmp_mem.append(self.cur + need)
        out.computes.append(v)
        out.ctime.append(inst.time[v])
        out.frees_after.append([])
        if not first:
            out.recomputes += 1
        for o in new:
            self.fast[o] = True
            self.since[o] = K
            self.last_use[o] = K
            self.cur += inst.size[o]
        for d in pinned:
            self.pin[d] -= 1
        for o in inst.outputs[v]:
            # a resident output is "touched": freeing it before this compute would make the compute produce it again
            self.last_use[o] = K
        for d in ins:
            self.last_use[d] = K
            tr = self.pending_reload.pop(d, None)
            if tr is not None:
                tr.deadline = K
        if first:
            for d in ins:
                self.used[d] += 1
        maybe: list[int] = list(ins) + list(inst.outputs[v])
        for o in new:
            if self.lost[o]:
                self.lost[o] = False
                for g in ins:
                    self.dec_dep(g, maybe)
        for d in maybe:
            if self.fast[d] and self.pin[d] == 0 and not self.needed(d):
                self.free_now(d)
        self.depth -= 1

    def run(self) -> _Logical:
        inst = self.inst
        for t, v in enumerate(self.order):
            self.t = t
            self.compute(v, first=True)
        self.t = self.end
        # bring back the dropped results, the most demanding producer first (memory is then the emptiest);
        # a result brought back is kept, one still resident may be evicted meanwhile and joins the queue
        kept: list[int] = []
        foot = [inst.input_size[v] + inst.output_size[v] + inst.workspace[v] for v in range(inst.n)]
        for _ in range(3 * len(inst.results) + 1):
            gone = [d for d in inst.results if not self.fast[d] and not self.slow[d]]
            if not gone:
                break
            d = max(gone, key=lambda d: (foot[inst.producer[d]], -d))
            self.bring(d)
            self.pin[d] += 1
            kept.append(d)
        else:
            raise _Stuck("the results do not fit together")
        for d in kept:
            self.pin[d] -= 1
        self.out.gap_mem.append(self.cur)
        return self.out


# ---------------------------------------------------------------- phase 2
@dataclass
class _Stage:
    lo: int   # computes [lo, hi)
    hi: int
    tlo: int  # transfers [tlo, thi) (in channel order)
    thi: int


def _pack(lp: _Logical, M: float, max_computes: int = 64, max_transfers: int = 8) -> list[_Stage] | None:
    """Choose stages minimising Σ max(Σ c, Σ s/β) — dynamic program over (computes, transfers) placed."""
    K = len(lp.computes)
    T = sorted(lp.transfers, key=lambda x: (x.deadline, 0 if x.kind == OFFLOAD else 1, x.release, x.seq))
    lp.transfers = T
    J = len(T)
    ctime = lp.ctime
    cmp_mem, gap_mem = lp.cmp_mem, lp.gap_mem
    if J == 0:
        return [_Stage(k, k + 1, 0, 0) for k in range(K)]
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
    # best[i][j] = (cost, prev state, stage)
    best: list[dict[int, tuple[float, tuple[int, int] | None, _Stage | None]]] = [dict() for _ in range(K + 1)]
    best[0][0] = (0.0, None, None)
    for i in range(K + 1):
        row = best[i]
        if not row:
            continue
        for j in range(min(row), J + 1):  # transfer-only stages add states (i, j') with j' > j as we go
            if j not in row:
                continue
            cost0 = row[j][0]
            # a stage of one compute and no transfer
            if i < K and (j == J or T[j].deadline >= i + 1):
                c = cost0 + ctime[i]
                cell = best[i + 1].get(j)
                if cell is None or c < cell[0] - 1e-12:
                    best[i + 1][j] = (c, (i, j), _Stage(i, i + 1, j, j))
            # stages with transfers j..j2-1
            X = 0.0
            min_deadline = INF
            for j2 in range(j + 1, min(J, j + max_transfers) + 1):
                tr = T[j2 - 1]
                if tr.release > i:
                    break
                X += tr.seconds
                min_deadline = min(min_deadline, tr.deadline)
                if min_deadline < i:
                    break
                min_end = max((T[x].gap for x in range(j, j2) if T[x].kind == RELOAD), default=i)
                nxt_deadline = T[j2].deadline if j2 < J else INF
                if start_mem(i, j, j2) > M:
                    continue
                hi_max = min(K, int(min(min_deadline, nxt_deadline)), i + max_computes)
                for i2 in range(i, hi_max + 1):
                    if i2 > i:
                        p = i2 - 1
                        m = cmp_mem[p]
                        for x in range(j, j2):
                            if T[x].kind == RELOAD and T[x].gap > p:
                                m += T[x].size
                        for idx in live_reloads.get(p, ()):
                            if idx >= j2 and T[idx].gap <= p:
                                m -= T[idx].size
                        if m > M:
                            break
                    if i2 < min_end:
                        continue
                    C = prefix[i2] - prefix[i]
                    c = cost0 + max(C, X)
                    cell = best[i2].get(j2)
                    if cell is None or c < cell[0] - 1e-12:
                        best[i2][j2] = (c, (i, j), _Stage(i, i2, j, j2))
                    if C >= X:
                        break
    if J not in best[K]:
        return None
    stages: list[_Stage] = []
    state: tuple[int, int] | None = (K, J)
    while state is not None and state != (0, 0):
        _, prev, st = best[state[0]][state[1]]
        assert st is not None
        stages.append(st)
        state = prev
    stages.reverse()
    return stages


def _build_plan(inst: Instance, lp: _Logical, stages: list[_Stage]) -> Plan:
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


# ---------------------------------------------------------------- driver
def run_planner(req: Request, order: Sequence[int], cfg: PlannerConfig = PlannerConfig()) -> Plan | None:
    """One planner run: phase 1 with ``cfg`` on ``order``, then phase 2. ``None`` when stuck.

    The plan is *not* checked here; :func:`plan_under_budget` checks every
    plan with the evaluator.
    """
    inst = req.instance
    if req.pure or req.budget is None:
        if req.budget is None or schedule_peak(inst, order) <= req.budget:
            return Plan.from_order(inst, order)
        return None
    try:
        lp = _Simulation(req, order, cfg).run()
    except (_Stuck, RecursionError):
        return None
    M = req.budget
    stages = _pack(lp, M)
    if stages is None:
        return None
    return _build_plan(inst, lp, stages)


def peak_order(inst: Instance, time_limit: float = 1.0) -> list[int] | None:
    """A least-peak order from the peak objective's ``auto-peak`` method (``None`` if absent or empty-handed).

    Optimal when that method proves it within ``time_limit``, else its best order.
    """
    from ..solve import SolveOptions, methods

    info = methods().get("auto-peak")
    if info is None:
        return None
    try:
        out = info.run(Request(inst, "peak"), SolveOptions(time_limit=time_limit, warm_start=False))
    except Exception:  # a failure of an optional helper must not cost the planner its plan
        return None
    if out.plan is None:
        return None
    ids = out.plan.compute_order()
    if len(ids) != inst.n:
        return None
    return [inst.task_index[t] for t in ids]


def candidate_orders(inst: Instance, limit: int = 5, peak_time: float | None = 1.0) -> list[tuple[str, list[int]]]:
    """Distinct orders to try, lowest pure peak first: the baselines and (if ``peak_time``) ``auto-peak``'s."""
    from .orders import BASELINES

    found: list[tuple[int, str, list[int]]] = []
    seen: set[tuple[int, ...]] = set()
    named = [(name, list(fn(inst))) for name, fn in BASELINES.items()]
    if peak_time:
        po = peak_order(inst, peak_time)
        if po is not None:
            named.insert(0, ("auto-peak", po))
    for name, o in named:
        key = tuple(o)
        if key in seen:
            continue
        seen.add(key)
        found.append((schedule_peak(inst, o), name, o))
    found.sort(key=lambda x: (x[0], x[1]))
    return [(name, o) for _, name, o in found[:limit]]


def default_configs(req: Request) -> list[PlannerConfig]:
    """The portfolio's configurations for a request (most useful first)."""
    if req.pure:
        return [PlannerConfig()]
    weights = [1.0]
    if req.offload:
        weights = [1.0, 0.25, 0.0] if req.recompute else [1.0]
    cfgs = [PlannerConfig(score=s, transfer_weight=w) for w in weights for s in SCORES]
    cfgs.insert(1, PlannerConfig(score="lookahead", distance="time"))
    if req.recompute and not all(req.instance.can_recompute):
        cfgs += [PlannerConfig(score=s, keep_anchors=True) for s in SCORES]
    if req.offload:  # without transfers, prefetching and early frees change nothing
        cfgs.append(PlannerConfig(score="lookahead", transfer_weight=weights[-1], prefetch=False, early_free=False))
    return cfgs


@dataclass
class PlannerResult:
    """The best plan of a portfolio run, its evaluation and what produced it."""

    plan: Plan | None
    makespan: float | None = None
    peak: int | None = None
    order: str | None = None
    config: PlannerConfig | None = None
    runs: int = 0
    failures: int = 0
    invalid: list[str] = field(default_factory=list)
    seconds: float = 0.0
    improved_by_restarts: int = 0


def plan_portfolio(req: Request, orders: Iterable[tuple[str, Sequence[int]]] | None = None,
                   configs: Iterable[PlannerConfig] | None = None, *, time_limit: float | None = None,
                   restarts: int | None = None,
                   on_improve: Callable[[float], None] | None = None) -> PlannerResult:
    """Run the planner for every (order, configuration) and keep the least makespan.

    Then, while ``time_limit`` allows (or ``restarts`` times), rerun the best
    configuration on its order with randomised scores (±30 %, seeds 1, 2, …)
    and keep any improvement.

    Every plan is checked by the evaluator (``req.evaluate``); an invalid
    one (a bug) is recorded in ``invalid`` and skipped. ``on_improve(makespan)``
    is called at every improvement (a caller's progress and time to the
    first plan).
    """
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + time_limit
    inst = req.instance
    if orders is None:
        orders = candidate_orders(inst)
    cfgs = list(configs) if configs is not None else default_configs(req)
    res = PlannerResult(None)
    lb = inst.total_time
    orders = list(orders)
    # every order with the first configuration, then the next configuration...: the most useful runs first
    runs = [(oname, order, cfg) for cfg in cfgs for oname, order in orders]
    for oname, order, cfg in runs:
        if time.perf_counter() > deadline and res.plan is not None:
            break
        res.runs += 1
        plan = run_planner(req, order, cfg)
        if plan is None:
            res.failures += 1
            continue
        ev = req.evaluate(plan)
        if not ev.valid:
            res.invalid.append(f"{oname} {cfg.label()}: {ev.violation}")
            continue
        if res.makespan is None or ev.makespan < res.makespan:
            res.plan, res.makespan, res.peak = plan, ev.makespan, ev.peak
            res.order, res.config = oname, cfg
            if on_improve is not None:
                on_improve(ev.makespan)
        if req.pure or res.makespan <= lb:
            break  # nothing beats Σ c
    # randomised restarts of the best configuration while time remains (only with a time limit)
    seed = 0
    if restarts is None:
        restarts = 0 if time_limit is None else 10**9
    while (res.plan is not None and not req.pure and res.makespan > lb and seed < restarts
           and time.perf_counter() < deadline):
        seed += 1
        cfg = replace(res.config, noise=0.3, seed=seed + 1000 * res.config.seed)
        order = dict((n_, o) for n_, o in orders)[res.order]
        res.runs += 1
        plan = run_planner(req, order, cfg)
        if plan is None:
            res.failures += 1
            continue
        ev = req.evaluate(plan)
        if not ev.valid:
            res.invalid.append(f"{res.order} {cfg.label()}: {ev.violation}")
            continue
        if ev.makespan < res.makespan:
            res.plan, res.makespan, res.peak, res.config = plan, ev.makespan, ev.peak, cfg
            res.improved_by_restarts += 1
            if on_improve is not None:
                on_improve(ev.makespan)
    res.seconds = time.perf_counter() - t0
    return res


def plan_under_budget(req: Request, order: Sequence[int] | None = None, **options: Any) -> Plan | None:
    """A valid plan with peak ≤ ``req.budget``, or ``None`` when the planner finds none.

    ``order``: the order of first computations (task indices); default:
    the baseline orders, lowest pure-schedule peak first. Options:
    ``score`` (``lookahead``/``belady``/``dtr``) and ``transfer_weight``
    fix one configuration instead of the portfolio; ``time_limit``
    (seconds, default ``DEFAULT_WARM_SECONDS`` = 5; ``None``: the whole
    portfolio) bounds the portfolio — past it, the runs stop at the first
    plan found; ``restarts`` (default 20) randomised reruns of the best
    configuration follow, within the same time. Uses only what ``req`` allows (``req.recompute``,
    ``req.offload``; pure scheduling when neither). Every returned plan was
    accepted by the evaluator.
    """
    if req.budget is None:
        raise ValueError("plan_under_budget needs a request with a budget")
    orders = None if order is None else [("given", list(order))]
    configs = None
    if "score" in options or "transfer_weight" in options:
        configs = [PlannerConfig(score=options.get("score", "lookahead"),
                                 transfer_weight=float(options.get("transfer_weight", 1.0)),
                                 prefetch=bool(options.get("prefetch", True)),
                                 early_free=bool(options.get("early_free", True)))]
    res = plan_portfolio(req, orders, configs, time_limit=options.get("time_limit", DEFAULT_WARM_SECONDS),
                         restarts=options.get("restarts", DEFAULT_RESTARTS), on_improve=options.get("on_improve"))
    return res.plan


# ---------------------------------------------------------------- methods
def _planner_time(req: Request, opts: SolveOptions) -> MethodOutput:
    limit = opts.time_limit
    configs = None
    if opts.option("score") is not None or opts.option("transfer_weight") is not None:
        configs = [PlannerConfig(score=opts.option("score", "lookahead"),
                                 transfer_weight=float(opts.option("transfer_weight", 1.0)))]
    orders = None
    if isinstance(opts.warm_start, Plan):
        ids = opts.warm_start.compute_order()
        orders = [("warm-start", [req.instance.task_index[t] for t in ids])] + candidate_orders(req.instance)
    res = plan_portfolio(req, orders, configs, time_limit=limit,
                         restarts=int(opts.option("restarts", DEFAULT_METHOD_RESTARTS)))
    stats = {"runs": res.runs, "failures": res.failures, "order": res.order,
             "improved_by_restarts": res.improved_by_restarts,
             "config": res.config.label() if res.config else None}
    if res.invalid:
        stats["invalid"] = res.invalid[:3]
    if res.plan is None:
        return MethodOutput(None, "unknown", message=f"the planner found no plan within the budget {req.budget}",
                            stats=stats)
    opts.improved(value=res.makespan, what="planner")
    return MethodOutput(res.plan, "feasible", stats=stats)


def _planner_peak(req: Request, opts: SolveOptions) -> MethodOutput:
    """Bisection on the budget: the least budget whose planned makespan meets the limit."""
    from ..bounds import budget_lower_bound
    from .orders import best_baseline

    inst = req.instance
    T = req.max_makespan if req.max_makespan is not None else math.inf
    order, hi, name = best_baseline(inst)
    best_plan = Plan.from_order(inst, order)
    best_peak = hi
    if req.pure:
        return MethodOutput(best_plan, "feasible", stats={"order": name})
    lo, _ = budget_lower_bound(inst, recompute=req.recompute, offload=req.offload)
    orders = candidate_orders(inst)
    deadline = opts.deadline
    probes = 0
    lo_b, hi_b = lo, best_peak - 1  # look for a budget in [lo_b, hi_b] better than best_peak
    while lo_b <= hi_b and time.perf_counter() < deadline:
        mid = (lo_b + hi_b) // 2
        probes += 1
        sub = replace(req, objective="time", budget=mid, max_makespan=None)
        left = max(0.05, deadline - time.perf_counter()) if math.isfinite(deadline) else None
        res = plan_portfolio(sub, orders, time_limit=None if left is None else left / 4,
                             restarts=int(opts.option("restarts", 3)))
        if res.plan is not None and res.makespan is not None and res.makespan <= T:
            if res.peak is not None and res.peak < best_peak:
                best_plan, best_peak = res.plan, res.peak
                opts.improved(value=best_peak, what=f"planner budget {mid}")
            hi_b = min(mid, best_peak) - 1
        else:
            lo_b = mid + 1
    return MethodOutput(best_plan, "feasible", stats={"probes": probes})


@register_method("planner", objectives=("time", "peak"), pure=True, recompute=True, offload=True, both=True,
                 family="heuristic")
def run_planner_method(req: Request, opts: SolveOptions) -> MethodOutput:
    """Eviction planner: Belady/DTR-style eviction with recompute or offload, stages packed to hide transfers."""
    if req.objective == "time":
        return _planner_time(req, opts)
    return _planner_peak(req, opts)


__all__ = [
    "plan_under_budget", "plan_portfolio", "run_planner", "PlannerConfig", "PlannerResult", "SCORES",
    "candidate_orders", "default_configs",
]
