"""Rules 3 and 4: independent clusters in their optimal order; series-parallel parts as block chains.

**Rule 3 — independent clusters** (Fradet, Girault & Honorat, TECS 2024:
"simple criteria to schedule optimally independent tasks"). Clusters that
share their predecessors and successors and have fixed memory effects are
run in the order of :func:`memopt.graph.blocks.block_key` (those that
free memory first by increasing peak, then the others by decreasing
peak − impact); each cluster may moreover be cut into its normal blocks and
the blocks of all of them merged by key (Liu's segments). This is the
parallel step of rule 4.

**Rule 4 — series-parallel parts.** The series and parallel reductions of
:mod:`memopt.graph.series_parallel` leave arcs u -> y carrying a series-parallel
region R (tasks reached only from u, leading only to y). If every task of R
has a fixed memory effect *in the context of R*, R is replaced by its
normal block chain u -> B1 -> ... -> Bk -> y (each block a cluster); a
whole series-parallel graph becomes one chain, i.e. one optimal order, as
in the TECS 2024 paper.

*Exactness condition in our data model.* For every datum d of positive
size read by a task of R, either (a) some reader of d runs after R (it is y
or a descendant of y), so no task of R frees d; or (b) the reader that frees
d is fixed by the current clusters and arcs. A tensor produced by u and read
by two parallel branches of R and by nothing after R breaks the condition
(which branch frees it is a decision); a datum read only inside R with one
last reader, or any buffer (one reader), satisfies it.

*Proof sketch.* Under the condition the tasks of R have fixed (peak,
impact) in every order, and no task outside R reads a datum whose release
depends on R's progress (a datum shared with an independent task is of kind
(a) or freed after R). R is a module of the order: every other task is
before u, after y or independent of all of R. Every exchange used by
Abdel-Wahab & Kameda (1978) to prove the block-chain order optimal moves a
contiguous group Z of independent tasks across a block of R; since the
effects of Z and of the blocks do not depend on each other, the (peak,
impact) exchange inequality of :mod:`memopt.graph.blocks` holds
unchanged, bottom-up over R's decomposition (series: glue out-of-order
adjacent blocks; parallel: sort), so some optimal order of the whole graph
runs R as its chain, block by block. ∎
"""

from __future__ import annotations

from collections.abc import Hashable

from memopt.graph.blocks import Block, flatten
from memopt.graph.reach import Reachability
from memopt.graph.series_parallel import SINK, SOURCE, expr_chain, expr_nodes, tt_reduce
from memopt.transforms.clusters import ClusterGraph

_VIRTUAL = (SOURCE, SINK)


class _Context:
    """What the region checks need: cluster reachability and each task's rank in its cluster."""

    def __init__(self, g: ClusterGraph):
        self.g = g
        self.reach: Reachability = g.reachability(work=300)
        self.rank: dict[int, int] = {}
        for c in g.clusters():
            self._rank(c)

    def _rank(self, c: int) -> None:
        for k, v in enumerate(flatten(self.g.members[c])):
            self.rank[v] = k

    def runs_after(self, c: int, b: Hashable) -> bool:
        """Is cluster c the exit b or (known to be) after it?"""
        if b in _VIRTUAL:
            return False
        return c == b or self.reach.reaches(b, c) is True

    def release(self, j: int) -> int | None:
        """The reader of datum j that frees it, if fixed by the clusters and arcs (else None)."""
        g = self.g
        cons = g.inst.consumers[j]
        if not cons:
            return None
        cl = [g.cluster_of(c) for c in cons]
        pos = g.pos
        k = max(range(len(cons)), key=lambda t: (pos[cl[t]], self.rank[cons[t]]))
        cand, cc = cons[k], cl[k]
        for t, c in enumerate(cons):
            if t == k:
                continue
            if cl[t] == cc:
                if self.rank[c] > self.rank[cand]:
                    return None
            elif self.reach.reaches(cl[t], cc) is not True:
                return None
        return cand


def region_effects(ctx: _Context, region: list[int], b: Hashable) -> dict[int, int] | None:
    """Fixed impact of every task of the region (cluster ids ``region``, exit ``b``), or None.

    None when some datum read in the region breaks the exactness condition.
    """
    g = ctx.g
    inst = g.inst
    size = inst.size
    rset = set(region)
    delta: dict[int, int] = {}
    tasks: list[int] = []
    for c in region:
        for v in flatten(g.members[c]):
            tasks.append(v)
            delta[v] = inst.output_size[v]
    seen: set[int] = set()
    for v in tasks:
        for j in inst.inputs[v]:
            if size[j] == 0 or j in seen:
                continue
            seen.add(j)
            if any(ctx.runs_after(g.cluster_of(c), b) for c in inst.consumers[j]
                   if g.cluster_of(c) not in rset):
                continue  # alive through the region
            r = ctx.release(j)
            if r is None:
                return None
            if g.cluster_of(r) in rset:
                delta[r] -= size[j]
    return delta


def _has_parallel(e) -> bool:
    stack = [e]
    while stack:
        x = stack.pop()
        if x is None:
            continue
        if x[0] == "p":
            return True
        stack.append(x[1])
        stack.append(x[3])
    return False


def _replace(g: ClusterGraph, ctx: _Context, expr, region: list[int], a: Hashable, b: Hashable,
             delta: dict[int, int]) -> int:
    """Replace the region by its normal block chain a -> B1 -> ... -> Bk -> b; returns k."""
    p = g.task_p

    def block_of(c: int) -> Block:
        peak, level = 0, 0
        first = True
        for v in flatten(g.members[c]):
            x = level + p[v]
            peak = x if first or x > peak else peak
            first = False
            level += delta[v]
        return Block(peak, level, c)

    chain = expr_chain(expr, block_of)
    rset = set(region)
    positions = sorted(g.pos[c] for c in region)
    for c in region:  # drop every arc touching the region
        for x in g.preds[c]:
            if x not in rset:
                g.succs[x].discard(c)
        for x in g.succs[c]:
            if x not in rset:
                g.preds[x].discard(c)
        g.preds[c] = set()
        g.succs[c] = set()
    keeps: list[int] = []
    for k, blk in enumerate(chain):
        cs = list(flatten(blk.seq))
        keep = g.merge_many(cs, positions[k])
        g.pmin[keep] = g.pmax[keep] = blk.peak  # fixed in every order of the reduced graph
        g.imin[keep] = g.imax[keep] = blk.impact
        keeps.append(keep)
        ctx._rank(keep)
    for x, y in zip(keeps, keeps[1:]):
        g.succs[x].add(y)
        g.preds[y].add(x)
    if a not in _VIRTUAL:
        g.succs[a].add(keeps[0])
        g.preds[keeps[0]].add(a)
    if b not in _VIRTUAL:
        g.preds[b].add(keeps[-1])
        g.succs[keeps[-1]].add(b)
    return len(keeps)


def series_parallel_regions(g: ClusterGraph) -> int:
    """Rule 4 (with rule 3 as its parallel step): replace each maximal valid region by its block chain.

    Returns the number of regions replaced that changed the graph. The
    decomposition is O(n + e); each region is checked once per level of
    its decomposition.
    """
    arcs = tt_reduce(g.clusters(), lambda c: g.succs[c])
    ctx = _Context(g)
    replaced = 0
    for (u, y), e in arcs.items():
        work = [(e, u, y)]
        while work:
            ex, a, b = work.pop()
            if ex is None:
                continue
            region = list(expr_nodes(ex))
            if len(region) >= 2:
                delta = region_effects(ctx, region, b)
                if delta is not None:
                    k = _replace(g, ctx, ex, region, a, b, delta)
                    if k < len(region) or _has_parallel(ex):
                        replaced += 1
                    continue
            if ex[0] == "s":
                work.append((ex[1], a, ex[2]))
                work.append((ex[3], ex[2], b))
            else:
                work.extend((sub, a, b) for sub in ex[1])
    return replaced


__all__ = ["series_parallel_regions", "region_effects"]
