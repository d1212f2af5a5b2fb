"""The clusters of a reduction compiled for fast transitions on bitmask states.

A state is a down-set S of clusters (a Python int, bit c: cluster c has
run) with L(S) the memory resident once S has run. :class:`DownsetMoves`
gives, for a ready cluster c, its peak and the memory after it in O(size of
c) (O(1) when c's memory effect does not depend on S), and the ready set
after it. Shared by the down-set search (:mod:`memopt.exact.downset_dp`)
and the target searches (:mod:`memopt.exact.target_search`).
"""

from __future__ import annotations

from memopt.core.instance import Instance
from memopt.graph.masks import ancestor_masks, descendant_masks
from memopt.transforms.clusters import Reduction, member_positions, other_reader_clusters


class DownsetMoves:
    """The clusters of a reduction, compiled for fast transitions on bitmask states."""

    def __init__(self, inst: Instance, red: Reduction):
        N = red.n
        self.N = N
        where = member_positions(red)
        self.pred_mask = [0] * N
        for c in range(N):
            m = 0
            for x in red.preds[c]:
                m |= 1 << x
            self.pred_mask[c] = m
        self.succs = [tuple(s) for s in red.succs]
        # strict descendants and ancestors of each cluster: a free that waits for a
        # descendant never happens, one that waits only for ancestors always does
        if N <= 20000:  # clusters are listed topologically
            desc = descendant_masks(red.succs, range(N))
            anc = ancestor_masks(red.preds, range(N))
        else:
            desc = [0] * N
            anc = [0] * N
        size = inst.size
        self.fixed: list[tuple[int, int] | None] = [None] * N
        self.prof: list[list[tuple[int, int, tuple[tuple[int, int], ...]]]] = [[] for _ in range(N)]
        for c, members in enumerate(red.clusters):
            prof = []
            variable = False
            for u in members:
                gain = inst.output_size[u]
                cond: list[tuple[int, int]] = []
                for j in inst.inputs[u]:
                    s = size[j]
                    if s == 0:
                        continue
                    mask = other_reader_clusters(inst, where, u, j)
                    if mask is None or (mask & desc[c]):
                        continue
                    if mask & ~anc[c] == 0:
                        gain -= s
                    else:
                        cond.append((mask, s))
                if cond:
                    variable = True
                prof.append((inst.output_size[u] + inst.workspace[u], gain, tuple(cond)))
            self.prof[c] = prof
            if not variable:
                level = 0
                peak = None
                for p, gain, _ in prof:
                    x = level + p
                    peak = x if peak is None or x > peak else peak
                    level += gain
                self.fixed[c] = (peak if peak is not None else 0, level)
        self.full = (1 << N) - 1
        self.sources = 0
        for c in range(N):
            if not self.pred_mask[c]:
                self.sources |= 1 << c

    def step(self, c: int, S: int, L: int) -> tuple[int, int]:
        """(peak, resident memory after) of running cluster c when S is done and L resident."""
        f = self.fixed[c]
        if f is not None:
            return L + f[0], L + f[1]
        peak = None
        for p, gain, cond in self.prof[c]:
            x = L + p
            if peak is None or x > peak:
                peak = x
            L += gain
            for m, s in cond:
                if S & m == m:
                    L -= s
        return (peak if peak is not None else L), L

    def ready_after(self, c: int, S2: int, ready: int) -> int:
        """The ready set once c has run (S2 = S ∪ c)."""
        ready &= ~(1 << c)
        pm = self.pred_mask
        for w in self.succs[c]:
            m = pm[w]
            if S2 & m == m:
                ready |= 1 << w
        return ready


__all__ = ["DownsetMoves"]
