"""The chain DP: optimal persistent checkpointing over the groups of a chain, one option per group.

After Beaumont, Eyraud-Dubois, Herrmann, Joly and Shilova, "Optimal
checkpointing for heterogeneous chains: how to train deep neural networks
with limited memory" (rotor, 2021), with Rockmate's menu of options per
block (Zhao et al., ICML 2023); written for memopt's chains
(:mod:`.chain`: pinned data, gradients that cross groups, results).

**The class of plans.** A *rotor sequence* processes the groups s..t
(frontier t: the backward of every group > t is done) with ``X[s−1]``
resident, by one of

- *tape*: ``FT_s(o)`` (forward keeping ``X[s]`` and the tape of option o),
  the groups s+1..t, then ``B_s(o)``;
- *split* at s < s' ≤ t: ``FN_s … FN_{s'−1}`` (forwards without tape, each
  freeing its input except ``X[s−1]``), the groups s'..t, then the groups
  s..s'−1 again (their forwards recomputed from ``X[s−1]``).

The first pass over the suffix s..k−1 (:math:`\\mathrm{Fst}(s)`) is the
same with the first-pass operations (``FN1``, ``FT1``: pinned tasks run
there, once). Conventions fix every free: an operation frees what it
makes at its last use except what it leaves (:mod:`.options`); ``B_g``
frees the tape, ``X[g]``, the data released at g, and ``X[g−1]`` except
what ``B_{g−1}`` reads — all of it when its groups were the first half of a
split (the caller recomputes them). :func:`conventional_plan` writes
exactly that plan.

**The recurrence** (m: memory left for ``X[s−1]`` and what the groups s..t
make; base(t), first_base(s): :class:`~.chain.Chain`; x(j) = |X[j]|):

    A(s,t,m) = min( min_o [ FT_s(o) + A(s+1, t, m − x(s−1) − tape_o) + B_s(o) ]
                           if m ≥ x(s−1) + base(t) + peak(FT_s(o))
                           and m ≥ x(s−1) + tape_o + xb(s) + base(s) + peak(B_s(o)),
                    min_{s'} [ Σ_{j<s'} FN_j + A(s', t, m − x(s−1)) + A(s, s'−1, m) ]
                           if m ≥ x(s−1) + [j>s]·x(j−1) + base(t) + peak(FN_j) for s ≤ j < s' )

(A(t+1, t, ·) = 0), and Fst(s, m) alike with FT1/FN1, first_base(j) for the
forward operations and Fst(s', ·) for the first half; the answer is
Fst(0, M). Every term is a sum of measured operations above disjoint
resident sets, so the DP's memory at each compute is the evaluator's
memory of :func:`conventional_plan` exactly, and its value the plan's
makespan: **the DP is exact for its class** (the rotor sequences over the
given options), which the tests check against an enumeration of the class.

**Step functions.** Each table entry, a function of m, is nonincreasing
and piecewise constant: it is kept as its breakpoints (:class:`Step`),
exactly — memory is never rounded. Combining entries is a merge of
breakpoints (numpy): O(k² · (options + k) · B log B) for B breakpoints per
entry (B is the number of memory/time trade-offs of a sub-chain: tens to
a few hundred on the networks measured).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memopt.core.deadline import Deadline
from memopt.core.instance import Instance
from memopt.core.plan import COMPUTE, FREE, Event, Plan
from memopt.strategies.hierarchical.chain import Chain
from memopt.strategies.hierarchical.options import GroupOps, backward_context, forward_context
from memopt.strategies.hierarchical.sequence import simulate

INF = np.int64(2 ** 61)  # INF + INF + a time stays below 2**63


@dataclass(frozen=True)
class Op:
    """One operation of a rotor sequence: ``kind`` FN, FT or B; group; option; first pass; convention flag.

    ``flag``: for FN, keep its input (the split's checkpoint); for B, free
    all of its input ``X[g−1]`` (its groups were the first half of a split).
    """

    kind: str
    group: int
    option: int = -1
    first: bool = False
    flag: bool = False


class DPInterrupted(Exception):
    """The deadline expired while the tables were filled."""


class Step:
    """A nonincreasing step function of the memory m: f(m) = ``ts[i]`` for ``ms[i]`` ≤ m < ``ms[i+1]``,
    infinite below ``ms[0]`` (``ms`` increasing, ``ts`` strictly decreasing; numpy int64)."""

    __slots__ = ("ms", "ts")

    def __init__(self, ms: np.ndarray, ts: np.ndarray):
        self.ms, self.ts = ms, ts

    def at(self, x: np.ndarray | int) -> np.ndarray | int:
        i = np.searchsorted(self.ms, x, side="right") - 1
        if np.ndim(i) == 0:
            return int(self.ts[i]) if i >= 0 else int(INF)
        return np.where(i >= 0, self.ts[np.maximum(i, 0)], INF) if len(self.ms) else np.full(len(x), INF)


EMPTY = Step(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


def _envelope(cands: list[tuple[np.ndarray, np.ndarray]], eps: float, cap: int = 0) -> Step:
    """The lower envelope of nonincreasing step functions given as (breakpoints, values) lists.

    A nonincreasing step function's value at m is the least value of its
    breakpoints at or below m, so the envelope's is the least of *all*
    breakpoints at or below m: one sort of the pooled breakpoints and a
    running minimum, O(N log N). ``eps`` > 0 drops the decreases smaller
    than that fraction; ``cap`` > 0 keeps at most that many breakpoints (the
    least memory that fits, and the largest decreases). Dropping a
    breakpoint only raises the function: every plan the DP builds still fits.
    """
    if not cands:
        return EMPTY
    ms = np.concatenate([c[0] for c in cands])
    ts = np.concatenate([c[1] for c in cands])
    order = np.lexsort((ts, ms))
    ms, ts = ms[order], ts[order]
    run = np.minimum.accumulate(ts)
    prev = np.concatenate([[INF], run[:-1]])
    keep = (ts < prev) & (ts < INF)
    if eps > 0 and keep.any():
        first = int(np.argmax(keep))
        keep &= ts < prev * (1.0 - eps)
        keep[first] = True  # the least memory that fits always stays
    ms, ts = ms[keep], ts[keep]
    if cap and len(ms) > cap:
        drop = np.concatenate([[INF], ts[:-1] - ts[1:]])  # the first (least memory) always stays
        idx = np.sort(np.argsort(-drop, kind="stable")[:cap])
        ms, ts = ms[idx], ts[idx]
    return Step(ms, ts)


class ChainDP:
    """The tables A and Fst of one chain, budget and menu of options (module docstring).

    Each table entry is a :class:`Step` function of the memory m — exact:
    memory is never rounded (``unit`` only divides every size by a common
    factor, 1 by default). ``eps`` > 0 drops breakpoints that gain less
    than that fraction of time (an approximation for very long chains).
    """

    def __init__(self, ch: Chain, ops: Sequence[GroupOps], budget: int, unit: int | None = None,
                 deadline: Deadline | None = None, eps: float = 0.0, cap: int = 0):
        self.ch, self.ops = ch, list(ops)
        k = ch.k
        self.k = k
        self.eps, self.cap = eps, cap
        b0 = min(min(ch.base), min(ch.first_base))
        self.unit = u = max(1, int(unit or 1))
        self.offset = b0
        self.M = (budget - b0) // u if budget >= b0 else -1

        def up(x: int) -> int:
            return -(-int(x) // u)

        self.up = up
        self.x = [up(ch.x(g)) for g in range(k)]
        self.xb = [up(ch.xb(g)) for g in range(k)]
        self.base = [up(b - b0) for b in ch.base]           # base(t) at t + 1
        self.first_base = [up(b - b0) for b in ch.first_base]
        self.deadline = deadline
        self.A: dict[tuple[int, int], Step] = {}
        self.F: dict[int, Step] = {}
        self.breakpoints = 0
        if self.M < 0:
            return
        self._tapes = [self._tape_list(s) for s in range(k)]
        self._splits = {first: [self._split_list(s, first) for s in range(k)] for first in (False, True)}
        for length in range(k):
            for s in range(k - length):
                if deadline is not None and deadline.expired():
                    raise DPInterrupted()
                self.A[s, s + length] = self._solve(s, s + length, first=False)
        for s in range(k - 1, -1, -1):
            self.F[s] = self._solve(s, k - 1, first=True)

    # ------------------------------------------------------------ helpers
    def xin(self, s: int) -> int:
        return self.x[s - 1] if s > 0 else 0

    def _sub(self, s: int, t: int, first: bool) -> Step | None:
        """The groups s..t after the current one: A(s, t) or, in the first pass, Fst(s) (``None``: none)."""
        if s > t:
            return None
        return self.F[s] if first else self.A[s, t]

    def _tape_list(self, s: int):
        """Per option of group s: (index, time again, time first, shift, forward peak again/first, threshold of B)."""
        up, xin = self.up, self.xin(s)
        out = []
        for i, o in enumerate(self.ops[s].options):
            tape = up(o.tape_size)
            thr_b = xin + tape + self.xb[s] + self.base[s + 1] + up(o.cost_b.peak)
            out.append((i, o.cost_ft.time + o.cost_b.time, o.cost_ft1.time + o.cost_b.time, xin + tape,
                        xin + up(o.cost_ft.peak), xin + up(o.cost_ft1.peak), thr_b))
        return out

    def _tape_terms(self, s: int, t: int, first: bool):
        """(option, time without the sub-call, shift of the sub-call, threshold) per option of group s."""
        fwd_base = self.first_base[s] if first else self.base[t + 1]
        for i, ta, tf, shift, pa, pf, thr_b in self._tapes[s]:
            yield i, (tf if first else ta), shift, max((pf if first else pa) + fwd_base, thr_b)

    def _split_list(self, s: int, first: bool):
        """Per split point s' (s < s' < k): (s', Σ FN time, threshold without base(t) when not ``first``)."""
        g_ops, up, xin = self.ops, self.up, self.xin(s)
        out = []
        time = thr = 0
        for j in range(s, self.k - 1):
            if j == s:  # the split's checkpoint X[s-1] stays
                c = g_ops[j].keep_fn1 if first else g_ops[j].keep_fn
            else:
                c = g_ops[j].cost_fn1 if first else g_ops[j].cost_fn
            thr = max(thr, xin + (self.xin(j) if j > s else 0) + (self.first_base[j] if first else 0) + up(c.peak))
            time += c.time
            out.append((j + 1, time, thr))
        return out

    def _split_terms(self, s: int, t: int, first: bool):
        """(s', Σ FN time, threshold) for every split point s < s' ≤ t."""
        add = 0 if first else self.base[t + 1]
        for sp, time, thr in self._splits[first][s]:
            if sp > t:
                break
            yield sp, time, thr + add

    def _solve(self, s: int, t: int, first: bool) -> Step:
        M = self.M
        cands: list[tuple[np.ndarray, np.ndarray]] = []
        for _, cost, shift, thr in self._tape_terms(s, t, first):
            lo = max(thr, shift)
            if lo > M:
                continue
            sub = self._sub(s + 1, t, first)
            if sub is None:
                cands.append((np.array([lo], dtype=np.int64), np.array([cost], dtype=np.int64)))
            else:
                cands.append(_shifted(sub, shift, lo, M, cost))
        xin = self.xin(s)
        for sp, time, thr in self._split_terms(s, t, first):
            lo = max(thr, xin)
            if lo > M:
                continue
            a, b = self._sub(sp, t, first), self.A[s, sp - 1]
            bp = np.concatenate([[lo], a.ms + xin, b.ms])
            bp = bp[(bp >= lo) & (bp <= M)]
            cands.append((bp, a.at(bp - xin) + b.at(bp) + time))
        f = _envelope(cands, self.eps, self.cap)
        self.breakpoints += len(f.ms)
        return f

    # ------------------------------------------------------------ answers
    def value(self) -> int | None:
        """The least makespan of the class (``None``: no rotor sequence fits)."""
        if self.M < 0 or 0 not in self.F:
            return None
        v = self.F[0].at(self.M)
        return None if v >= INF else int(v)

    def sequence(self) -> list[Op]:
        """The operations of an optimal rotor sequence (raises ``ValueError`` when none fits)."""
        if self.value() is None:
            raise ValueError("no rotor sequence fits the budget")
        out: list[Op] = []
        self._rebuild(0, self.k - 1, self.M, True, False, out)
        return out

    def _rebuild(self, s: int, t: int, m: int, first: bool, free_all: bool, out: list[Op]) -> None:
        """The choice of least time at memory m (with ``eps``/``cap`` the stored entry may exceed it: any
        choice at or below the entry is a plan no longer than the DP's value)."""
        target = (self.F[s] if first else self.A[s, t]).at(m)
        best = None  # (time, kind, data)
        for i, cost, shift, thr in self._tape_terms(s, t, first):
            if m < max(thr, shift):
                continue
            sub = self._sub(s + 1, t, first).at(m - shift) if s < t else 0
            if sub < INF and (best is None or sub + cost < best[0]):
                best = (sub + cost, "tape", (i, shift))
        xin = self.xin(s)
        for sp, time, thr in self._split_terms(s, t, first):
            if m < thr or m - xin < 0:
                continue
            a = self._sub(sp, t, first).at(m - xin)
            b = self.A[s, sp - 1].at(m)
            if a < INF and b < INF and (best is None or a + b + time < best[0]):
                best = (a + b + time, "split", sp)
        if best is None or best[0] > target:
            raise RuntimeError(f"chain DP: no choice reaches the table's value at ({s}, {t}, {m})")
        if best[1] == "tape":
            i, shift = best[2]
            out.append(Op("FT", s, i, first))
            if s < t:
                self._rebuild(s + 1, t, m - shift, first, False, out)
            out.append(Op("B", s, i, False, free_all))
            return
        sp = best[2]
        for j in range(s, sp):
            out.append(Op("FN", j, -1, first, j == s))
        self._rebuild(sp, t, m - xin, first, True, out)
        self._rebuild(s, sp - 1, m, False, free_all, out)


def _shifted(f: Step, shift: int, lo: int, M: int, add: int) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints and values of m -> f(m − shift) + add on [lo, M]."""
    bp = f.ms + shift
    bp = np.concatenate([[lo], bp[(bp > lo) & (bp <= M)]])
    return bp, f.at(bp - shift) + add


# ------------------------------------------------------------ plans of a rotor sequence
def op_sequence(ops: Sequence[GroupOps], op: Op) -> list[int]:
    """The computes of one operation."""
    g = ops[op.group]
    if op.kind == "FN":
        return g.fn1 if op.first else g.fn
    o = g.options[op.option]
    if op.kind == "FT":
        return o.ft1 if op.first else o.ft
    return o.b


def compute_sequence(ops: Sequence[GroupOps], seq: Sequence[Op]) -> list[int]:
    """The compute sequence of a rotor sequence (its plan: :func:`.sequence.plan_from_sequence`)."""
    out: list[int] = []
    for op in seq:
        out.extend(op_sequence(ops, op))
    return out


def conventional_plan(ch: Chain, ops: Sequence[GroupOps], seq: Sequence[Op]) -> Plan:
    """The plan of a rotor sequence with the DP's conventions for every free (module docstring).

    Its evaluated peak and makespan are the DP's numbers (tests); the
    method returns the liveness plan of the same computes instead, whose
    memory is never higher.
    """
    inst: Instance = ch.inst
    dids = [d.id for d in inst.data]
    tids = [t.id for t in inst.tasks]
    stages: list[list[Event]] = []
    resident: set[int] = set()
    for op in seq:
        g = op.group
        body = op_sequence(ops, op)
        lead: list[int] = []
        after: list[int] = []
        if op.kind == "FN":
            ext, keep, drop = forward_context(ch, g, op.first, ch.X[g], body, free_input=not op.flag)
            if not op.flag and g > 0:
                after = list(ch.X[g - 1])
        elif op.kind == "FT":
            o = ops[g].options[op.option]
            ext, keep, drop = forward_context(ch, g, op.first, set(ch.X[g]) | set(o.tape), body)
        else:
            o = ops[g].options[op.option]
            ext, keep, drop = backward_context(ch, g, o.tape, body)
            xbg = set(ch.XB[g])
            lead = [d for d in ch.X[g] if d not in xbg]
            after = list(o.tape) + list(ch.XB[g])
            if g > 0:
                xbp = set(ch.XB[g - 1])
                after += [d for d in ch.X[g - 1] if op.flag or d not in xbp]
            after += [d for d, r in ch.release.items() if r == g]
        piece = simulate(inst, body, ext, keep, drop)
        lead = [d for d in lead if d in resident]
        if not body:
            stages.append([Event(FREE, dids[d]) for d in lead])
        for i, v in enumerate(body):
            st = [Event(FREE, dids[d]) for d in lead] if i == 0 else []
            resident.difference_update(lead if i == 0 else ())
            st.append(Event(COMPUTE, tids[v]))
            resident.update(inst.outputs[v])
            for d in piece.frees[i]:
                if d in resident:
                    st.append(Event(FREE, dids[d]))
                    resident.discard(d)
            stages.append(st)
        resident.difference_update(lead)
        tail = [d for d in dict.fromkeys(after) if d in resident]
        if tail and not stages:
            stages.append([])
        if tail:
            stages[-1].extend(Event(FREE, dids[d]) for d in tail)
            resident.difference_update(tail)
    return Plan([st for st in stages if st])


def grid_unit(inst: Instance, budget: int, slots: int) -> int:
    """The memory unit of the DP: the gcd of the sizes and workspaces if the budget then has at most
    ``slots`` units (exact), else the budget split in ``slots`` (conservative)."""
    g = 0
    for s in inst.size:
        g = math.gcd(g, s)
    for w in inst.workspace:
        g = math.gcd(g, w)
    g = max(1, g)
    if budget // g <= slots:
        return g
    return max(g, -(-budget // slots))


__all__ = ["ChainDP", "DPInterrupted", "Op", "compute_sequence", "conventional_plan", "grid_unit", "op_sequence"]
