"""A lower bound on the peak still to come from a state of the down-set search (A* lookahead).

For a state S (the tasks done) and a task u not done yet: when u runs, every
datum produced by an ancestor of u, or already resident in S, that is still
needed then — a result, or read by u or a descendant of u — is resident;
so is everything u writes and its workspace. Hence

    h_u(S) = base(u) + Σ{ s(d) : d resident in S, d ∈ X(u) }

where base(u) is the lifetime bound at u (:mod:`memopt.exact.peak_bounds`)
and X(u) the data needed at u that an ancestor of u does not produce. Every
completion of S peaks at least at h(S) = max over u ∉ S of h_u(S). To keep
the search fast only the ``k`` tasks with the largest base(u) are examined
(any subset gives a valid bound).

The lookahead pays off on training graphs, where gradients (results) pile up
and the last tasks bind; on random layered graphs it rarely prunes.
"""

from __future__ import annotations

from memopt.core.instance import Instance
from memopt.graph.masks import iter_bits, needed_at, readers_mask, task_ancestors
from memopt.transforms.clusters import Reduction, member_positions, other_reader_clusters


class Lookahead:
    """h(S, resident data) for the down-set search on ``red``; tracks the resident data as a bitmask."""

    MAX_TASKS = 6000

    def __init__(self, inst: Instance, red: Reduction, k: int = 24):
        n, m = inst.n, inst.m
        self.size = size = inst.size
        anc = task_ancestors(inst)
        base = [inst.output_size[u] + inst.workspace[u] for u in range(n)]
        # per datum: tasks at whose step it is needed once produced
        need_at = [readers_mask(inst, j) for j in range(m)]
        for j in range(m):
            if size[j]:
                for u in iter_bits(needed_at(inst, j)):
                    base[u] += size[j]
        order = sorted(range(n), key=lambda u: -base[u])[:k]
        self.cands: list[tuple[int, int, int]] = []  # (base, data mask X(u), task u)
        for u in order:
            xmask = 0
            not_from_anc = ~(anc[u] | (1 << u))
            for j in range(m):
                if size[j] and (need_at[j] >> u) & 1 and (not_from_anc >> inst.producer[j]) & 1:
                    xmask |= 1 << j
            self.cands.append((base[u], xmask, u))
        self.static = max(base) if base else 0
        where = member_positions(red)
        self.cluster_of = [where[v][0] for v in range(n)]
        # per cluster: data written (size > 0), frees as (cluster mask that must be done, data bit)
        self.out_mask: list[int] = []
        self.frees: list[list[tuple[int, int]]] = []
        for members in red.clusters:
            om = 0
            fr: list[tuple[int, int]] = []
            for u in members:
                for j in inst.outputs[u]:
                    if size[j]:
                        om |= 1 << j
                for j in inst.inputs[u]:
                    if not size[j]:
                        continue
                    mask = other_reader_clusters(inst, where, u, j)
                    if mask is not None:
                        fr.append((mask, 1 << j))
            self.out_mask.append(om)
            self.frees.append(fr)

    def live_after(self, c: int, S: int, live: int) -> int:
        """Resident data once cluster c has run from state S (S without c)."""
        live |= self.out_mask[c]
        for mask, bit in self.frees[c]:
            if S & mask == mask:
                live &= ~bit
        return live

    def h(self, S: int, live: int) -> int:
        """A lower bound on the peak of any completion of state S with resident data ``live``."""
        best = 0
        size = self.size
        cl = self.cluster_of
        for base, xmask, u in self.cands:
            if (S >> cl[u]) & 1:
                continue
            x = base
            inter = live & xmask
            while inter:
                low = inter & -inter
                x += size[low.bit_length() - 1]
                inter ^= low
            if x > best:
                best = x
        return best


__all__ = ["Lookahead"]
