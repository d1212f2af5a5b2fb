"""Clusters: fixed sequences of tasks, the nodes of a reduced graph.

A reduction rule replaces tasks by *clusters* (sequences of tasks always run
back to back, in that order) and may add arcs between clusters, each time
proving that some schedule of minimum peak respects them. The result is a
:class:`Reduction`: a smaller DAG of clusters plus the map
(:meth:`Reduction.expand`) from an order of the clusters back to an order of
the tasks. Any order of the clusters expands to a valid order of the tasks,
and the best one expands to an optimal order.

:class:`ClusterGraph` is the mutable structure the rules work on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from memopt.core.instance import Instance
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.graph.blocks import flatten
from memopt.graph.reach import Reachability
from memopt.graph.release import impact_bounds, release_tasks, task_reachability
from memopt.transforms.base import Transform


class ClusterGraph:
    """A DAG of clusters over ``inst``; cluster ids are the ids of their first task at creation.

    Per cluster: ``members`` (a rope of task indices), ``preds``/``succs``
    (sets of cluster ids), ``pos`` (a position in some topological order,
    kept valid by every merge) and the bounds of its memory effect over all
    orders: ``pmin/imin/pmax/imax`` (see :mod:`memopt.transforms.chains`).
    """

    def __init__(self, inst: Instance, *, release: list[int] | None = None, reach: Reachability | None = None):
        self.inst = inst
        n = inst.n
        self.task_reach = reach or task_reachability(inst)
        self.release = release if release is not None else release_tasks(inst, self.task_reach)
        imin, imax = impact_bounds(inst, self.release, self.task_reach)
        p = [inst.output_size[v] + inst.workspace[v] for v in range(n)]
        self.task_p = p
        self.task_imin = imin
        self.task_imax = imax
        self.members: list[Any] = list(range(n))
        self.preds: list[set[int]] = [set(x) for x in inst.preds]
        self.succs: list[set[int]] = [set(x) for x in inst.succs]
        self.alive = [True] * n
        self.pos = list(self.task_reach.pos)
        self.count = [1] * n
        self.pmin = list(p)
        self.pmax = list(p)
        self.imin = list(imin)
        self.imax = list(imax)
        self._parent = list(range(n))  # union-find over tasks: the root is the cluster id
        self.num_clusters = n

    # ------------------------------------------------------------ queries
    def cluster_of(self, v: int) -> int:
        """The cluster holding task v."""
        parent = self._parent
        root = v
        while parent[root] != root:
            root = parent[root]
        while parent[v] != root:
            parent[v], v = root, parent[v]
        return root

    def clusters(self) -> list[int]:
        return [c for c in range(len(self.alive)) if self.alive[c]]

    def num_arcs(self) -> int:
        return sum(len(self.succs[c]) for c in range(len(self.alive)) if self.alive[c])

    def tasks(self, c: int) -> list[int]:
        return list(flatten(self.members[c]))

    def reachability(self, **kw) -> Reachability:
        """Reachability between the current clusters (rebuild after merges)."""
        succs = [list(s) if a else [] for s, a in zip(self.succs, self.alive)]
        return Reachability(succs, self.pos, **kw)

    # ------------------------------------------------------------ merging
    def merge(self, c: int, d: int, keep: int) -> int:
        """Glue cluster ``d`` right after cluster ``c``; the result has id ``keep`` (c or d).

        The caller guarantees the result is acyclic (c and d adjacent, and no
        other path from c to d) and chooses ``keep`` so that its ``pos`` stays
        a valid topological position (see the rules).
        """
        drop = d if keep == c else c
        self.members[keep] = (self.members[c], self.members[d])
        self.pmin[keep], self.imin[keep] = (max(self.pmin[c], self.imin[c] + self.pmin[d]),
                                            self.imin[c] + self.imin[d])
        self.pmax[keep], self.imax[keep] = (max(self.pmax[c], self.imax[c] + self.pmax[d]),
                                            self.imax[c] + self.imax[d])
        self.count[keep] = self.count[c] + self.count[d]
        preds = (self.preds[c] | self.preds[d]) - {c, d}
        succs = (self.succs[c] | self.succs[d]) - {c, d}
        for x in self.preds[drop]:
            if x != keep:
                self.succs[x].discard(drop)
                self.succs[x].add(keep)
        for x in self.succs[drop]:
            if x != keep:
                self.preds[x].discard(drop)
                self.preds[x].add(keep)
        self.preds[keep] = preds
        self.succs[keep] = succs
        self.preds[drop] = set()
        self.succs[drop] = set()
        self.members[drop] = None
        self.alive[drop] = False
        self._parent[drop] = keep
        self.num_clusters -= 1
        return keep

    def merge_many(self, cs: Sequence[int], pos: int) -> int:
        """Glue the clusters ``cs`` in this order into one, placed at topological position ``pos``.

        Only for clusters that form a module whose internal arcs are
        replaced by this order (the series-parallel rule rewires the arcs).
        """
        keep = cs[0]
        for d in cs[1:]:
            self.members[keep] = (self.members[keep], self.members[d])
            self.pmin[keep], self.imin[keep] = (max(self.pmin[keep], self.imin[keep] + self.pmin[d]),
                                                self.imin[keep] + self.imin[d])
            self.pmax[keep], self.imax[keep] = (max(self.pmax[keep], self.imax[keep] + self.pmax[d]),
                                                self.imax[keep] + self.imax[d])
            self.count[keep] += self.count[d]
            self.members[d] = None
            self.alive[d] = False
            self._parent[d] = keep
            self.num_clusters -= 1
        self.pos[keep] = pos
        return keep

    # ------------------------------------------------------------- result
    def to_reduction(self, steps: list[RuleStep]) -> Reduction:
        alive = sorted(self.clusters(), key=self.pos.__getitem__)
        index = {c: k for k, c in enumerate(alive)}
        clusters = [tuple(flatten(self.members[c])) for c in alive]
        preds = [tuple(sorted(index[x] for x in self.preds[c])) for c in alive]
        succs = [tuple(sorted(index[x] for x in self.succs[c])) for c in alive]
        return Reduction(self.inst, clusters, preds, succs, steps)


@dataclass
class RuleStep:
    """One rule applied: the size of the graph before and after, and the time taken."""

    rule: str
    clusters_before: int
    clusters_after: int
    arcs_before: int
    arcs_after: int
    seconds: float
    applied: int = 0  # how many times the rule fired

    def row(self) -> dict[str, Any]:
        return {"rule": self.rule, "clusters_before": self.clusters_before, "clusters_after": self.clusters_after,
                "arcs_before": self.arcs_before, "arcs_after": self.arcs_after, "applied": self.applied,
                "seconds": round(self.seconds, 4)}


@dataclass
class Reduction(Transform):
    """A reduced graph: clusters (task sequences) in a topological order, with their arcs.

    ``expand_order(order)`` maps an order of the clusters (indices) to an
    order of the tasks. Every rule that built it preserves the optimal peak.

    As a :class:`~memopt.transforms.base.Transform` (made by
    :func:`memopt.transforms.reduction.reduce_request`): the request is
    unchanged — a reduction restricts the *orders* a search considers to
    those that run each cluster back to back, which keeps an optimal one —,
    so :meth:`expand` and :meth:`unscale` are the identity; the methods that
    search over clusters read ``clusters``, ``preds`` and ``succs``.
    """

    instance: Instance
    clusters: list[tuple[int, ...]]
    preds: list[tuple[int, ...]]
    succs: list[tuple[int, ...]]
    steps: list[RuleStep] = field(default_factory=list)
    original: Request | None = None
    request: Request | None = None

    @property
    def n(self) -> int:
        return len(self.clusters)

    @property
    def num_arcs(self) -> int:
        return sum(len(s) for s in self.succs)

    def expand(self, plan: Plan) -> Plan:
        """Plans of the reduced request are plans of the original (the instance is the same)."""
        return plan

    def expand_order(self, order: Iterable[int]) -> list[int]:
        """The task order of a cluster order."""
        out: list[int] = []
        for c in order:
            out.extend(self.clusters[c])
        return out

    def is_chain(self) -> bool:
        """True when the reduced graph has a single topological order."""
        return all(len(p) <= 1 for p in self.preds) and all(len(s) <= 1 for s in self.succs) and \
            sum(1 for p in self.preds if not p) <= 1

    def topological_order(self) -> list[int]:
        """The clusters' own order (they are listed topologically)."""
        return list(range(self.n))


def member_positions(red: Reduction) -> dict[int, tuple[int, int]]:
    """Task -> (its cluster, its index among the cluster's members)."""
    where: dict[int, tuple[int, int]] = {}
    for c, members in enumerate(red.clusters):
        for k, v in enumerate(members):
            where[v] = (c, k)
    return where


def other_reader_clusters(inst: Instance, where: dict[int, tuple[int, int]], u: int, j: int) -> int | None:
    """When task ``u`` reads datum ``j``: the bitmask of the other clusters that read ``j``.

    ``j`` is freed right after ``u`` iff all of them are done by then. ``None``
    when a later task of ``u``'s own cluster reads ``j`` (never freed at ``u``).
    ``where`` is :func:`member_positions` of the reduction.
    """
    c, k = where[u]
    mask = 0
    for o in inst.consumers[j]:
        if o == u:
            continue
        oc, ok = where[o]
        if oc == c:
            if ok > k:
                return None
        else:
            mask |= 1 << oc
    return mask


def identity_reduction(inst: Instance) -> Reduction:
    """The unreduced graph: one cluster per task (in a topological order)."""
    topo = list(inst.topological_order)
    index = {v: k for k, v in enumerate(topo)}
    return Reduction(inst, [(v,) for v in topo],
                     [tuple(sorted(index[u] for u in inst.preds[v])) for v in topo],
                     [tuple(sorted(index[w] for w in inst.succs[v])) for v in topo], [])


__all__ = ["ClusterGraph", "Reduction", "RuleStep", "identity_reduction", "member_positions",
           "other_reader_clusters"]
