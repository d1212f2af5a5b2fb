"""Phase 1 of the planner: run an order of first computations under the budget, evicting as needed.

See :mod:`memopt.heuristics.planner` for the eviction rules and scores.
Its output, a :class:`LogicalPlan`, is packed into stages by
:mod:`.packing`.

Why this module is long: it is one state machine, :class:`Simulation`, whose
methods share the residency, the reference counts and the memos of the
regeneration costs; split across modules they would pass that state around
in every call (the hot loop of the planner) for no reader's gain.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from memopt.core.deadline import Deadline
from memopt.core.plan import OFFLOAD, RELOAD
from memopt.core.request import Request
from memopt.heuristics.planner.config import PlannerConfig

MAX_DEPTH = 150  # nested recomputations before a run gives up (keeps Python's stack safe)


class Stuck(Exception):
    """Phase 1 cannot make room (every resident datum is pinned or cannot be evicted).

    ``over``: the bytes the run lacked (memory + what it had to place − budget) when it could not make room;
    ``task``: the first computation it was serving (``None``: another cause, or after the order);
    ``at``: its position in the order; ``chain``: the data being brought back then that an eviction had
    dropped (the outermost first), each with the position whose first computation last made it resident.
    """

    def __init__(self, message: str, over: int | None = None, task: int | None = None, at: int | None = None,
                 chain: tuple[tuple[int, int], ...] = ()):
        super().__init__(message)
        self.over, self.task, self.at, self.chain = over, task, at, chain


@dataclass
class Transfer:
    kind: str          # OFFLOAD or RELOAD
    datum: int
    size: int
    seconds: float     # s(d)/β
    release: int       # earliest gap at which its stage may start
    deadline: int      # latest gap at which its stage may end
    gap: int           # offload: f+1 (its datum is freed after compute f); reload: logical gap r
    seq: int


@dataclass
class LogicalPlan:
    """Phase 1's output: the computes, the memory profile, the frees and the transfers."""

    computes: list[int]
    ctime: list[int]
    cmp_mem: list[int]            # memory at compute k
    gap_mem: list[int]            # memory between compute k-1 and compute k (k = 0..K)
    frees_after: list[list[int]]  # data freed right after compute k
    transfers: list[Transfer]
    evictions: int = 0
    recomputes: int = 0
    # Phase 1's estimate of the channel: the transfer seconds already booked behind each compute, so that a
    # transfer hides only behind the compute time no earlier transfer took (``spare``); ``_ahead[k]`` leads to
    # the first compute at or after k that still has some (booked-out computes and those of no time skipped,
    # as in a union-find: a window over thousands of them is crossed in a few steps).
    busy: list[float] = field(default_factory=list)
    _ahead: list[int] = field(default_factory=list)

    def add_compute(self, seconds: int) -> None:
        """Append the time of the next compute (its channel not yet booked)."""
        k = len(self.ctime)
        self.ctime.append(seconds)
        self.busy.append(0.0)
        self._ahead.append(k if seconds > 0 else k + 1)

    def spare(self, k: int) -> float:
        """The time of compute ``k`` that no booked transfer hides behind yet."""
        x = self.ctime[k] - self.busy[k]
        return x if x > 0 else 0.0

    def next_spare(self, k: int) -> int:
        """The first compute at or after ``k`` with spare time (``len(ctime)``: none yet)."""
        ahead, n = self._ahead, len(self._ahead)
        r = k
        while r < n and ahead[r] != r:
            r = ahead[r]
        while k < n and ahead[k] != k and ahead[k] < r:   # path compression
            ahead[k], k = r, ahead[k]
        return r

    def book(self, lo: int, hi: int, seconds: float) -> None:
        """Book ``seconds`` of channel time behind computes ``lo..hi``, the earliest first, as room allows."""
        k = self.next_spare(lo)
        while seconds > 0 and k <= hi:
            x = self.ctime[k] - self.busy[k]
            if x <= seconds:
                self.busy[k] = self.ctime[k]
                self._ahead[k] = k + 1
                seconds -= x
            else:
                self.busy[k] += seconds
                return
            k = self.next_spare(k + 1)

    def book_back(self, lo: int, hi: int, seconds: float) -> None:
        """Book ``seconds`` behind computes ``hi`` down to ``lo`` (a prefetched reload: the latest first)."""
        ctime, busy = self.ctime, self.busy
        for k in range(hi, lo - 1, -1):
            if seconds <= 0:
                return
            x = ctime[k] - busy[k]
            if x > 0:
                take = x if x < seconds else seconds
                busy[k] += take
                seconds -= take
                if busy[k] >= ctime[k]:
                    self._ahead[k] = k + 1

    def hidden(self, lo: int, hi: int, need: float) -> tuple[float, int]:
        """The spare time of computes ``lo..hi`` counted until it reaches ``need``; and the compute where it
        did (``hi``: not reached)."""
        acc, k = 0.0, self.next_spare(lo)
        while k <= hi:
            acc += self.ctime[k] - self.busy[k]
            if acc >= need:
                return acc, k
            k = self.next_spare(k + 1)
        return acc, hi


def prefetch(out: LogicalPlan, r: int, release: int, size: int, seconds: float, M: float) -> int:
    """The logical gap of a reload first counted at gap ``r``, moved back ("prefetched") while its transfer
    (``seconds``) needs computes to hide behind and the memory allows, not before ``release``; the memory
    profile counts the datum from there on."""
    acc, r0 = 0.0, r
    while r - 1 >= release and acc < seconds:
        k = r - 1
        if out.cmp_mem[k] + size > M or out.gap_mem[k] + size > M:
            break
        r = k
        acc += out.spare(k)
    out.book_back(r, r0 - 1, seconds)
    for k in range(r, r0):
        out.cmp_mem[k] += size
        out.gap_mem[k] += size
    return r


# ---------------------------------------------------------------- phase 1
class Simulation:
    """Run an order of first computations under the budget, evicting as needed."""

    def __init__(self, req: Request, order: Sequence[int], cfg: PlannerConfig, deadline: Deadline | None = None):
        inst = req.instance
        self.deadline = deadline
        self.ticks = 0
        self.inst = inst
        self.cfg = cfg
        self.M = req.budget if req.budget is not None else math.inf
        self.rc = req.recompute
        bw = inst.machine.bandwidth
        self.off = bool(req.offload and bw is not None)
        self.beta = bw
        self._tt = ([math.inf] * inst.m if bw is None else [0.0] * inst.m if math.isinf(bw)
                    else [s / bw for s in inst.size])
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
        self.made = [-1] * m         # position of the first computation being served when d last became resident
        self.evicted = [False] * m   # d's last copy went by an eviction (not freed as no longer needed)
        self.bringing: list[int] = []  # the gone data being brought back, outermost first
        self.keep: dict[int, list[tuple[int, int]]] = {}
        for d, lo, hi in cfg.keep:
            self.keep.setdefault(d, []).append((lo, hi))
        self.pending_reload: dict[int, Transfer] = {}
        self._just_offloaded: dict[int, int] = {}  # datum -> gap of its offload's free
        self.cur = 0
        self.slow_used = 0
        self.t = 0
        self.depth = 0
        self.out = LogicalPlan([], [], [], [], [], [])
        self.max_computes = cfg.max_recompute_factor * n + 50
        self.rng = None
        if cfg.noise:
            self.rng = random.Random(cfg.seed)
        self._memo_cost: dict[int, float] = {}
        # regenerability, kept across evictions: d -> (regenerable, height of its chain of gone inputs),
        # dropped downstream of every datum whose availability changes (:meth:`_changed`)
        self._regen: dict[int, tuple[bool, int]] = {}
        self.avail = [False] * m     # fast or slow or lost: a recomputation may use it without recomputing it
        self.resident: set[int] = set()  # the data in fast memory (the eviction candidates)
        self._memo_need: dict[int, int] = {}
        self._memo_need_mem: dict[int, int] = {}

    # ------------------------------------------------------------ queries
    def tt(self, d: int) -> float:
        """s(d)/β (inf without a bandwidth, 0 with an infinite one), computed once per datum: millions of
        calls on a 70B model's training step."""
        return self._tt[d]

    def needed(self, d: int) -> bool:
        return self.used[d] < len(self.use_pos[d]) or self.result[d] or self.dep[d] > 0 or self.anchor[d]

    def _reset_memos(self) -> None:
        self._memo_cost.clear()
        self._memo_need.clear()
        self._memo_need_mem.clear()

    def _changed(self, d: int) -> None:
        """After fast/slow/lost of d changed: the resident set, and the regenerability of the data downstream.

        Whether x can be recomputed depends on the availability of the inputs of its producer and, for
        the unavailable ones, on their own regenerability: when d's availability flips, the entries of
        the outputs of d's readers go, and further down through the unavailable ones (an entry only
        ever rests on memoised entries of its unavailable inputs, so the cascade reaches every stale one).
        """
        if self.fast[d]:
            self.resident.add(d)
        else:
            self.resident.discard(d)
        a = self.fast[d] or self.slow[d] or self.lost[d]
        if a == self.avail[d]:
            return
        self.avail[d] = a
        memo = self._regen
        if not memo:
            return
        inst = self.inst
        avail = self.avail
        stack = [d]
        while stack:
            x = stack.pop()
            for c in inst.consumers[x]:
                for o in inst.outputs[c]:
                    if o in memo:
                        del memo[o]
                        if not avail[o]:
                            stack.append(o)

    def regen_gone(self, d: int, depth: int = 0) -> bool:
        """Can d be recomputed later (its producer may rerun, its inputs can be had), within a chain of
        fewer than :data:`MAX_DEPTH` nested recomputations?"""
        if not self.rc:
            return False
        ok, h = self._regen_height(d)
        return ok and depth + h < MAX_DEPTH

    def _regen_height(self, d: int) -> tuple[bool, int]:
        """(regenerable, h): h the longest chain of unavailable inputs below d (capped at MAX_DEPTH), kept in
        ``_regen`` for every datum explored.

        One iterative search, each unavailable datum once: a search cut at MAX_DEPTH and not kept (as before)
        went through every path of a deep region again at each eviction — exponential in its diamonds, a
        planner run 30 s past its limit on Llama-2-70B's shape. The answers of :meth:`regen_gone` are the same
        (a chain too deep to follow is not regenerable either way).
        """
        memo = self._regen
        r = memo.get(d)
        if r is not None:
            return r
        inst = self.inst
        avail, producer, inputs, can = self.avail, inst.producer, inst.inputs, inst.can_recompute
        stack = [(d, False)]
        while stack:
            x, ready = stack.pop()
            if x in memo:
                continue
            p = producer[x]
            if not can[p]:
                memo[x] = (False, 0)
                continue
            if not ready:  # its unavailable inputs first (a DAG: none of them waits on x)
                stack.append((x, True))
                stack.extend((g, False) for g in inputs[p] if not avail[g] and g not in memo)
                continue
            ok, h = True, 0
            for g in inputs[p]:
                if avail[g]:
                    continue
                gok, gh = memo[g]
                if not gok:
                    ok, h = False, 0
                    break
                if gh + 1 > h:
                    h = gh + 1
            memo[x] = (ok, min(h, MAX_DEPTH))
        return memo[d]

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
        self._changed(d)
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
                self._changed(g)
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
        self._changed(d)
        self.last_free[d] = f

    def free_now(self, d: int) -> None:
        """Free d right after the last compute."""
        K = len(self.out.computes)
        self._retro_free(d, K - 1)

    def _victim(self):
        """The resident datum to evict and how (``free``, ``offload``, ``drop``), or None.

        Every resident datum is scored at every eviction (thousands of them, thousands of times on a 70B
        model's training step): the loop reads the state through locals and inlines the common cases of
        :meth:`needed`, :meth:`regen_gone` and :meth:`next_need` — the same scores, drawn in the same order.
        """
        inst = self.inst
        size = inst.size
        K = len(self.out.computes)
        self._reset_memos()
        cfg = self.cfg
        score, by_time = cfg.score, cfg.distance == "time"
        rng, noise = self.rng, cfg.noise
        best = None
        best_key = None
        keep, t = self.keep, self.t
        pin, since, pending, slow = self.pin, self.since, self.pending_reload, self.slow
        used, use_pos, result, dep, anchor = self.used, self.use_pos, self.result, self.dep, self.anchor
        w, tts, rc, regen = self.w, self._tt, self.rc, self._regen
        can_offload = self.off and self.slow_cap is None
        room = None if self.slow_cap is None else self.slow_cap - self.slow_used
        for d in sorted(self.resident):  # in index order, as the noise's draws expect
            s = size[d]
            if pin[d] or s == 0:
                continue
            if keep and d in keep and any(lo <= t <= hi for lo, hi in keep[d]):
                continue
            if since[d] >= K and d in pending:
                continue  # reloaded for the compute being gathered
            k = used[d]
            uses = use_pos[d]
            if not (k < len(uses) or result[d] or dep[d] > 0 or anchor[d]):  # not needed
                mode, cost = "free", 0.0
            else:
                regenerable = False
                if rc:
                    r = regen.get(d)
                    ok, h = r if r is not None else self._regen_height(d)
                    regenerable = ok and h < MAX_DEPTH
                if slow[d]:
                    cost = w * tts[d]
                    if regenerable:
                        cost = min(cost, self.rc_cost(d))
                    mode = "free"
                else:
                    mode, cost = None, math.inf
                    if can_offload or (self.off and room is not None and s <= room):
                        mode, cost = "offload", w * 2 * tts[d]
                    if regenerable:
                        c = self.rc_cost(d)
                        if c < cost or mode is None:
                            mode, cost = "drop", c
                    if mode is None:
                        continue
            f = 1.0 if rng is None else 1.0 + noise * (2 * rng.random() - 1)
            if score == "dtr":
                stale = K - self.last_use[d] + 1
                key = (f * cost / (s * stale), -s, d)
            else:
                nn = uses[k] if k < len(uses) else self.next_need(d)
                if by_time:
                    dist = max(1, self.pre_time[min(nn, self.end)] - self.pre_time[t]) + (nn > self.end)
                else:
                    dist = max(1, nn - t)
                if score == "belady":
                    key = (0 if cost == 0 else 1, -dist * f, -s, since[d], d)
                else:
                    key = (f * cost / (s * dist), -dist, -s, since[d], d)
            if best_key is None or key < best_key:
                best_key, best = key, (d, mode)
        return best

    def tick(self, every: int = 128) -> None:
        """Every ``every``-th call: stop if the run's time is up (one first computation may set off thousands
        of nested recomputations and evictions, seconds on thousands of tasks)."""
        self.ticks += 1
        if self.ticks % every == 0 and self.deadline is not None and self.deadline.run_expired():
            raise Stuck("out of time")

    def ensure(self, need: int) -> None:
        """Evict until ``need`` more fits under the budget at the current gap."""
        while self.cur + need > self.M:
            # at every eviction: choosing a victim scans the resident data (128 of them took 0.7-1.5 s past
            # the limit on a 20,005-task training graph); reading the clock costs nothing next to it
            self.tick(every=1)
            v = self._victim()
            if v is None:
                raise Stuck(f"no datum can be evicted to make room for {need} (memory {self.cur}, budget {self.M})",
                            over=self.cur + need - self.M, task=self.order[self.t] if self.t < self.end else None,
                            at=self.t, chain=tuple((d, self.made[d]) for d in self.bringing if self.evicted[d]))
            self.evict(*v)

    def evict(self, d: int, mode: str) -> None:
        inst = self.inst
        out = self.out
        K = len(out.computes)
        s = inst.size[d]
        out.evictions += 1
        start = self.since[d]
        self.evicted[d] = True
        if mode == "offload":
            f = K - 1
            if self.cfg.early_free:
                f = max(self.last_use[d], start)
                need = self.tt(d)
                acc, _ = out.hidden(start + 1, f, need)
                if acc < need and f < K - 1:
                    _, f = out.hidden(f + 1, K - 1, need - acc)
            f = min(f, K - 1)
            out.book(start + 1, f, self.tt(d))
            tr = Transfer(OFFLOAD, d, s, self.tt(d), release=start + 1, deadline=f + 1, gap=f + 1,
                           seq=len(out.transfers))
            self._just_offloaded[d] = f + 1
            out.transfers.append(tr)
            self.slow[d] = True
            self._changed(d)
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
        self.bringing.append(d)
        try:
            self._bring(d)
        finally:
            self.bringing.pop()

    def _bring(self, d: int) -> None:
        if self.off and self.slow[d]:
            self._reset_memos()
            K = len(self.out.computes)
            f0 = self.last_free[d]
            too_soon = f0 + (2 if self._just_offloaded.get(d) == f0 + 1 else 1) > K
            if self.rc and self.regen_gone(d) and (too_soon or self.rc_cost(d) < self.w * self.tt(d)):
                self.compute(self.inst.producer[d], first=False)
            elif too_soon:
                raise Stuck(f"datum {self.inst.data[d].id!r} is needed again in the gap where it was offloaded")
            else:
                self.reload(d)
            return
        if not (self.rc and self.inst.can_recompute[self.inst.producer[d]]):
            raise Stuck(f"datum {self.inst.data[d].id!r} is gone and cannot be brought back")
        self.compute(self.inst.producer[d], first=False)

    def reload(self, d: int) -> None:
        inst = self.inst
        out = self.out
        s = inst.size[d]
        self.ensure(s)
        K = len(out.computes)
        self.cur += s
        self.fast[d] = True
        self._changed(d)
        self.since[d] = K
        self.last_use[d] = K
        self.made[d] = self.t
        self.evicted[d] = False
        r = K
        f0 = self.last_free[d]
        # the reload's stage starts after the stage that frees d; that free waits for
        # d's offload's stage when the offload was the one just before it
        release = f0 + (2 if self._just_offloaded.get(d) == f0 + 1 else 1)
        if self.cfg.prefetch:
            r = prefetch(out, r, release, s, self.tt(d), self.M)
        tr = Transfer(RELOAD, d, s, self.tt(d), release=release, deadline=K, gap=r, seq=len(out.transfers))
        out.transfers.append(tr)
        self.pending_reload[d] = tr

    def compute(self, v: int, first: bool) -> None:
        self.tick()
        inst = self.inst
        out = self.out
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Stuck("recomputation chain too deep")
        if len(out.computes) >= self.max_computes:
            raise Stuck(f"more than {self.max_computes} computes: the eviction thrashes")
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
        out.add_compute(inst.time[v])
        out.frees_after.append([])
        if not first:
            out.recomputes += 1
        for o in new:
            self.fast[o] = True
            self._changed(o)
            self.since[o] = K
            self.last_use[o] = K
            self.made[o] = self.t
            self.evicted[o] = False
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
                self._changed(o)
                for g in ins:
                    self.dec_dep(g, maybe)
        size = inst.size
        bringing = self.bringing
        for d in maybe:
            # a size-0 datum stays: holding it costs nothing, and freeing it could leave a later recomputation
            # without an input whose producer cannot run again (a persistent source's token). A datum being
            # brought back stays too: the compute that wants it has not run yet, and nothing else may need it
            # (an offloaded datum made again instead of reloaded, from an input no other task still reads)
            if self.fast[d] and self.pin[d] == 0 and size[d] and not self.needed(d) and d not in bringing:
                self.free_now(d)
        self.depth -= 1

    def run(self) -> LogicalPlan:
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
            raise Stuck("the results do not fit together")
        for d in kept:
            self.pin[d] -= 1
        self.out.gap_mem.append(self.cur)
        return self.out


__all__ = ["MAX_DEPTH", "LogicalPlan", "Simulation", "Stuck", "Transfer", "prefetch"]
