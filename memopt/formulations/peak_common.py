"""Builders shared by the peak formulations (CP-SAT intervals, time-indexed MILP).

Both formulations of the ``peak`` objective decide the position pos(v) in
0..n-1 of every task and bound the memory of every step by a variable P;
they share, through these builders on a
:class:`~memopt.backends.linear.LinearModel`:

- :func:`add_positions`: pos(v) with the bounds |anc(v)| <= pos(v) <=
  n - 1 - |desc(v)|, the precedences pos(v) >= pos(u) + 1, and — when a
  :class:`~memopt.transforms.reduction.Reduction` is given — its clusters as
  contiguity rows pos(u_{k+1}) = pos(u_k) + 1 and its arcs;
- :func:`lifetimes`: how each datum's lifetime ends (never: a result; at
  its fixed release task; at the last of several readers: ambiguous), read
  by both models to state "datum d is resident at step k";
- :func:`add_peak`: the variable P with its proven bounds;
- :func:`hint_positions` / :func:`order_from_positions`: warm starts and
  decoding.

A datum d is resident during step k iff pos(p(d)) <= k <= max over its
readers c of pos(c) (or to the end, for a result): that is SPEC §2's memory
at the compute of step k (outputs being written and inputs being read
included); the task's workspace adds w(v) at its own step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from memopt.backends.linear import LinearModel
from memopt.core.instance import Instance
from memopt.graph.masks import ancestor_masks, descendant_masks
from memopt.graph.release import AMBIGUOUS, RESULT, release_tasks
from memopt.transforms.clusters import Reduction
from memopt.transforms.scaling import size_gcd


@dataclass
class Lifetime:
    """Datum ``j`` (size > 0, ``size`` in the graph's unit): produced by ``producer``; ends at
    ``release`` (a task), never (``RESULT``) or at the last of ``readers`` (``AMBIGUOUS``)."""

    j: int
    size: int
    producer: int
    release: int
    readers: tuple[int, ...]


class PeakGraph:
    """The instance, optionally reduced: the arcs and position bounds the formulations use."""

    def __init__(self, inst: Instance, red: Reduction | None = None):
        self.inst = inst
        self.red = red
        n = inst.n
        arcs: set[tuple[int, int]] = {(u, v) for u in range(n) for v in inst.succs[u]}
        self.chains: list[tuple[int, ...]] = []
        if red is not None:
            for members in red.clusters:
                if len(members) > 1:
                    self.chains.append(members)
                    arcs.update(zip(members, members[1:]))
            for c, ss in enumerate(red.succs):
                for d in ss:
                    arcs.add((red.clusters[c][-1], red.clusters[d][0]))
        self.arcs = sorted(arcs)
        succs: list[list[int]] = [[] for _ in range(n)]
        preds: list[list[int]] = [[] for _ in range(n)]
        for u, v in self.arcs:
            succs[u].append(v)
            preds[v].append(u)
        self.lo, self.hi = _position_bounds(n, preds, succs, inst.topological_order if red is None else None)
        self.release = release_tasks(inst)
        # every memory amount is a multiple of the gcd of the sizes and workspaces: the models count
        # in that unit, which keeps byte-sized coefficients (10^9..10^10) within solver tolerances
        self.unit = size_gcd(inst)
        self.work = [w // self.unit for w in inst.workspace]

    @property
    def n(self) -> int:
        return self.inst.n


def _position_bounds(n: int, preds, succs, topo) -> tuple[list[int], list[int]]:
    """|anc(v)| and n - 1 - |desc(v)| by bitsets (O(n·e/64)); trivial bounds past 20,000 tasks."""
    if n > 20000:
        return [0] * n, [n - 1] * n
    if topo is None:
        indeg = [len(p) for p in preds]
        stack = [v for v in range(n) if indeg[v] == 0]
        topo = []
        while stack:
            v = stack.pop()
            topo.append(v)
            for w in succs[v]:
                indeg[w] -= 1
                if indeg[w] == 0:
                    stack.append(w)
    anc = ancestor_masks(preds, topo)
    desc = descendant_masks(succs, topo)
    return [a.bit_count() for a in anc], [n - 1 - d.bit_count() for d in desc]


def add_positions(model: LinearModel, pg: PeakGraph) -> list[int]:
    """pos(v) for every task, with precedence and cluster-contiguity rows; returns the variable indices."""
    pos = [model.var(f"pos[{pg.inst.tasks[v].id}]", pg.lo[v], pg.hi[v]) for v in range(pg.n)]
    in_chain: set[tuple[int, int]] = set()
    for members in pg.chains:
        for a, b in zip(members, members[1:]):
            model.add_eq([(pos[b], 1), (pos[a], -1)], 1, name=f"contiguous[{a},{b}]")
            in_chain.add((a, b))
    for u, v in pg.arcs:
        if (u, v) not in in_chain:
            model.add_ge([(pos[v], 1), (pos[u], -1)], 1, name=f"prec[{u},{v}]")
    return pos


def lifetimes(pg: PeakGraph) -> list[Lifetime]:
    """The data of positive size with how their lifetime ends."""
    inst = pg.inst
    out = []
    for j in range(inst.m):
        s = inst.size[j]
        if s > 0:
            out.append(Lifetime(j, s // pg.unit, inst.producer[j], pg.release[j], inst.consumers[j]))
    return out


def add_peak(model: LinearModel, pg: PeakGraph, lb: int, ub: int | None) -> int:
    """The peak variable P, in units of ``pg.unit``, within [lb, ub] (ub: the incumbent's peak or the budget)."""
    lo = -(-lb // pg.unit)
    hi = ub // pg.unit if ub is not None else 10**15
    return model.var("peak", lo, max(lo, hi))


def hint_positions(order: Sequence[int], n: int) -> list[int]:
    """pos(v) of a task order."""
    pos = [0] * n
    for k, v in enumerate(order):
        pos[v] = k
    return pos


def order_from_positions(values: Sequence[float], pos: Sequence[int]) -> list[int]:
    """The task order of a solution (ties, impossible in a valid solution, broken by index)."""
    return sorted(range(len(pos)), key=lambda v: (round(values[pos[v]]), v))


def respects(pg: PeakGraph, order: Sequence[int]) -> bool:
    """Does the order satisfy the position bounds, arcs and clusters of ``pg``?"""
    pos = hint_positions(order, pg.n)
    if any(not (pg.lo[v] <= pos[v] <= pg.hi[v]) for v in range(pg.n)):
        return False
    if any(pos[u] >= pos[v] for u, v in pg.arcs):
        return False
    return all(pos[b] == pos[a] + 1 for m in pg.chains for a, b in zip(m, m[1:]))


def lifetime_end_hint(lt: Lifetime, position: Sequence[int], n: int) -> int:
    """The step after the last one where the datum is resident (n for a result)."""
    if lt.release == RESULT:
        return n
    if lt.release == AMBIGUOUS:
        return max(position[c] for c in lt.readers) + 1
    return position[lt.release] + 1


__all__ = ["Lifetime", "PeakGraph", "add_peak", "add_positions", "hint_positions", "lifetime_end_hint", "lifetimes",
           "order_from_positions", "respects"]
