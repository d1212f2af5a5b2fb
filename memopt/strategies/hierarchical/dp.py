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

**Memory grid.** Sizes are counted in units of ``unit`` bytes, each term
rounded up and the budget down (conservative: every plan the DP returns
fits); ``unit`` = the gcd of the sizes makes it exact. Arrays over m
(numpy): O(k² · (options + k) · M/unit) time, O(k² · M/unit) memory.
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

INF = np.int64(2 ** 62)


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


class ChainDP:
    """The tables A and Fst of one chain, budget and menu of options (module docstring)."""

    def __init__(self, ch: Chain, ops: Sequence[GroupOps], budget: int, unit: int = 1,
                 deadline: Deadline | None = None):
        self.ch, self.ops, self.unit = ch, list(ops), max(1, int(unit))
        k = ch.k
        self.k = k
        u = self.unit
        self.M = budget // u

        def up(x: int) -> int:
            return -(-int(x) // u)

        self.up = up
        self.x = [up(ch.x(g)) for g in range(k)]
        self.xb = [up(ch.xb(g)) for g in range(k)]
        self.base = [up(b) for b in ch.base]           # base(t) at t + 1
        self.first_base = [up(b) for b in ch.first_base]
        self.deadline = deadline
        S = self.M + 1
        self.S = S
        self.A: dict[tuple[int, int], np.ndarray] = {}
        self.F: dict[int, np.ndarray] = {}
        if self.M < 0:
            return
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

    def _shift(self, a: np.ndarray, c: int) -> np.ndarray:
        out = np.full(self.S, INF, dtype=np.int64)
        if c <= 0:
            return a.copy() if c == 0 else out  # (c < 0 never happens: sizes are >= 0)
        if c < self.S:
            out[c:] = a[: self.S - c]
        return out

    def _sub(self, s: int, t: int, first: bool) -> np.ndarray:
        """The groups s..t after the current one: A(s, t) or, in the first pass, Fst(s)."""
        if s > t:
            z = np.zeros(self.S, dtype=np.int64)
            return z
        return self.F[s] if first else self.A[s, t]

    def _tape_terms(self, s: int, t: int, first: bool):
        """(cost array without the sub-call, shift of the sub-call, threshold) per option of group s."""
        g = self.ops[s]
        xin = self.xin(s)
        fwd_base = self.first_base[s] if first else self.base[t + 1]
        out = []
        for i, o in enumerate(g.options):
            cf = o.cost_ft1 if first else o.cost_ft
            tape = self.up(o.tape_size)
            thr = max(xin + fwd_base + self.up(cf.peak),
                      xin + tape + self.xb[s] + self.base[s + 1] + self.up(o.cost_b.peak))
            out.append((i, cf.time + o.cost_b.time, xin + tape, thr))
        return out

    def _split_terms(self, s: int, t: int, first: bool):
        """(s', Σ FN time, threshold) for every split point s < s' ≤ t."""
        g_ops = self.ops
        xin = self.xin(s)
        out = []
        time = 0
        thr = 0
        for j in range(s, t):
            if j == s:  # the split's checkpoint X[s-1] stays
                c = g_ops[j].keep_fn1 if first else g_ops[j].keep_fn
            else:
                c = g_ops[j].cost_fn1 if first else g_ops[j].cost_fn
            fb = self.first_base[j] if first else self.base[t + 1]
            thr = max(thr, xin + (self.xin(j) if j > s else 0) + fb + self.up(c.peak))
            time += c.time
            out.append((j + 1, time, thr))
        return out

    def _solve(self, s: int, t: int, first: bool) -> np.ndarray:
        best = np.full(self.S, INF, dtype=np.int64)
        idx = np.arange(self.S)
        for _, cost, shift, thr in self._tape_terms(s, t, first):
            if thr >= self.S:
                continue
            cand = self._shift(self._sub(s + 1, t, first), shift) if s < t else np.zeros(self.S, dtype=np.int64)
            cand = np.where((idx >= thr) & (cand < INF), cand + cost, INF)
            np.minimum(best, cand, out=best)
        xin = self.xin(s)
        for sp, time, thr in self._split_terms(s, t, first):
            if thr >= self.S:
                continue
            a = self._shift(self._sub(sp, t, first), xin)
            b = self.A[s, sp - 1]
            ok = (idx >= thr) & (a < INF) & (b < INF)
            cand = np.where(ok, a + b + time, INF)
            np.minimum(best, cand, out=best)
        return best

    # ------------------------------------------------------------ answers
    def value(self) -> int | None:
        """The least makespan of the class (``None``: no rotor sequence fits)."""
        if self.M < 0 or 0 not in self.F:
            return None
        v = self.F[0][self.M]
        return None if v >= INF else int(v)

    def sequence(self) -> list[Op]:
        """The operations of an optimal rotor sequence (raises ``ValueError`` when none fits)."""
        if self.value() is None:
            raise ValueError("no rotor sequence fits the budget")
        out: list[Op] = []
        self._rebuild(0, self.k - 1, self.M, True, False, out)
        return out

    def _rebuild(self, s: int, t: int, m: int, first: bool, free_all: bool, out: list[Op]) -> None:
        target = (self.F[s] if first else self.A[s, t])[m]
        for i, cost, shift, thr in self._tape_terms(s, t, first):
            if m < thr:
                continue
            sub = int(self._sub(s + 1, t, first)[m - shift]) if s < t and m - shift >= 0 else (0 if s >= t else INF)
            if sub >= INF or sub + cost != target:
                continue
            out.append(Op("FT", s, i, first))
            if s < t:
                self._rebuild(s + 1, t, m - shift, first, False, out)
            out.append(Op("B", s, i, False, free_all))
            return
        xin = self.xin(s)
        for sp, time, thr in self._split_terms(s, t, first):
            if m < thr or m - xin < 0:
                continue
            a = int(self._sub(sp, t, first)[m - xin])
            b = int(self.A[s, sp - 1][m])
            if a >= INF or b >= INF or a + b + time != target:
                continue
            for j in range(s, sp):
                out.append(Op("FN", j, -1, first, j == s))
            self._rebuild(sp, t, m - xin, first, True, out)
            self._rebuild(s, sp - 1, m, False, free_all, out)
            return
        raise RuntimeError(f"chain DP: no choice reaches the table's value at ({s}, {t}, {m})")


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
            ext, keep, drop = forward_context(ch, g, op.first, ch.X[g], free_input=not op.flag)
            if not op.flag and g > 0:
                after = list(ch.X[g - 1])
        elif op.kind == "FT":
            o = ops[g].options[op.option]
            ext, keep, drop = forward_context(ch, g, op.first, set(ch.X[g]) | set(o.tape))
        else:
            o = ops[g].options[op.option]
            ext, keep, drop = backward_context(ch, g, o.tape)
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
