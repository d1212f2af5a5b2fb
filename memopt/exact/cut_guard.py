"""The cut bound as a guard inside the exact peak searches: h_v(S) for a few critical tasks.

**Definition.** In a search over down-sets (:mod:`memopt.exact.downset_dp`,
:mod:`memopt.exact.target_search`), a state S (the clusters already run)
can only complete to orders that peak at least at

    h_v(S) = min{ L(S') : S' down-set, S ∪ anc(v) ⊆ S', S' ∩ ({v} ∪ desc(v)) = ∅ } + out(v) + w(v)

for every critical task v not yet run (L and the cut network as in
:mod:`memopt.exact.cut_bound`). A state whose largest h_v(S) exceeds the
target T is pruned.

**Inheritance.** The minimiser S'_v found for a state stays a minimiser for
a child state S ∪ {c} when cluster c lies inside S'_v (adding tasks that the
minimiser already contains changes neither the feasible set's optimum nor
its witness), so a child recomputes only the rows whose minimiser misses c,
and none at all when c lies in the intersection of every minimiser. One
max-flow per recomputed row on the whole-graph network
(:class:`~memopt.exact.cut_bound.CutNetwork`).
"""

from __future__ import annotations

from memopt.core.instance import Instance
from memopt.exact.cut_bound import CutNetwork
from memopt.graph.masks import iter_bits
from memopt.transforms.clusters import Reduction


class CutGuard:
    """h_v(S) for a list of critical tasks, with the minimisers kept for inheritance (module docstring)."""

    def __init__(self, inst: Instance, red: Reduction, critical: list[int], network: CutNetwork | None = None):
        self.inst = inst
        self.net = network or CutNetwork(inst)
        self.critical = list(critical)
        self.tasks_of = [tuple(c) for c in red.clusters]
        self.task_mask = []
        for c in red.clusters:
            m = 0
            for v in c:
                m |= 1 << v
            self.task_mask.append(m)
        self.cluster_of = [0] * inst.n
        for k, c in enumerate(red.clusters):
            for v in c:
                self.cluster_of[v] = k
        self.p = [inst.output_size[v] + inst.workspace[v] for v in range(inst.n)]
        self.flows = 0
        self.prunes = 0

    def _solve(self, done_tasks: list[int], v: int) -> tuple[int, int] | None:
        self.flows += 1
        m = self.net.min_memory(done_tasks + list(self.inst.preds[v]), (v,))
        if m is None:
            return None
        y = 0
        for x in self.net.source_side():
            y |= 1 << x
        return m + self.p[v], y

    def root(self, T: int) -> tuple[tuple, int, int] | int:
        """The critical tasks' bounds from the empty state, or the value of the first above T."""
        rows = []
        for v in self.critical:
            r = self._row([], v, T)
            if isinstance(r, tuple):
                rows.append(r)
            elif r is not None:
                return r  # a bound above T: prune
        return self._pack(rows)

    def _row(self, done: list[int], v: int, T: float) -> tuple[int, int, int] | float | None:
        """v's row (v, bound, minimiser) given the tasks ``done``; its bound when above T (a prune);
        None when v has no interval left."""
        r = self._solve(done, v)
        if r is None:
            return None
        if r[0] > T:
            self.prunes += 1
            return r[0]
        return (v, r[0], r[1])

    @staticmethod
    def _pack(rows: list[tuple[int, int, int]]) -> tuple[tuple, int, int]:
        """(rows, the intersection of the minimisers, the largest bound h(S))."""
        inter = -1
        h = 0
        for _, val, y in rows:
            inter &= y
            if val > h:
                h = val
        return tuple(rows), inter, h

    def child(self, info: tuple[tuple, int, int], S2: int, c: int, T: float) -> tuple[tuple, int, int] | int:
        """The bounds after running cluster c (S2 includes it), or the first value above T."""
        rows, inter, _ = info
        cm = self.task_mask[c]
        if cm & ~inter == 0:
            return info  # inside every minimiser (so no critical task runs): every bound is unchanged
        out = []
        done: list[int] | None = None
        for v, val, y in rows:
            if self.cluster_of[v] == c:
                continue  # v has run
            if cm & ~y == 0:
                out.append((v, val, y))
                continue
            if done is None:
                done = []
                for k in iter_bits(S2):
                    done.extend(self.tasks_of[k])
            r = self._row(done, v, T)
            if isinstance(r, tuple):
                out.append(r)
            elif r is not None:
                return r  # a bound above T: prune
        return self._pack(out)


__all__ = ["CutGuard"]
