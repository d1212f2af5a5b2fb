"""Reachability queries on a DAG, exact when cheap and conservative otherwise.

The reduction rules need to know whether one task (or cluster) must run
before another. :class:`Reachability` answers ``reaches(a, b)`` (is there a
path a -> ... -> b?) with ``True``, ``False`` or ``None`` (*unknown*: the
search was cut short). Every caller treats ``None`` as "may go either way",
which only makes a rule apply less often, never wrongly.

- Up to ``BITSET_LIMIT`` nodes: descendant bitsets (Python ints), built in
  one pass in reverse topological order, O(n·e/64) words; every query O(1).
- Above: a depth-first search from ``a`` that only visits nodes placed
  before ``b`` in a topological order (no path can leave that range and come
  back), stopped after ``work`` visits.
"""

from __future__ import annotations

from collections.abc import Sequence

from memopt.graph.masks import descendant_masks

BITSET_LIMIT = 6000


class Reachability:
    """``reaches(a, b)`` on the DAG ``succs`` (lists of successor ids).

    ``topo_pos[v]`` must be the position of v in some topological order.
    """

    def __init__(self, succs: Sequence[Sequence[int]], topo_pos: Sequence[int], *, work: int = 4000,
                 bitsets: bool | None = None):
        self.succs = succs
        self.pos = topo_pos
        self.work = work
        n = len(succs)
        self._desc: list[int] | None = None
        if bitsets is None:
            bitsets = n <= BITSET_LIMIT
        if bitsets:
            order = sorted(range(n), key=topo_pos.__getitem__)
            self._desc = descendant_masks(succs, order)

    @property
    def exact(self) -> bool:
        return self._desc is not None

    def descendants_mask(self, a: int) -> int | None:
        """Bitmask of the strict descendants of ``a`` (``None`` without bitsets)."""
        return None if self._desc is None else self._desc[a]

    def reaches(self, a: int, b: int) -> bool | None:
        """Is there a path of length >= 1 from ``a`` to ``b``? (``None``: unknown)."""
        if a == b:
            return False
        pos = self.pos
        if pos[a] >= pos[b]:
            return False
        if self._desc is not None:
            return bool(self._desc[a] >> b & 1)
        limit = pos[b]
        seen = {a}
        stack = [a]
        budget = self.work
        succs = self.succs
        while stack:
            v = stack.pop()
            for w in succs[v]:
                if w == b:
                    return True
                if w not in seen and pos[w] < limit:
                    seen.add(w)
                    stack.append(w)
            budget -= 1
            if budget <= 0:
                return None
        return False


__all__ = ["Reachability", "BITSET_LIMIT"]
