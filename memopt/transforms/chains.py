"""Clustering a task with its single successor or predecessor (Fradet, Girault & Honorat).

Fradet, Girault & Honorat, "Sequential scheduling of dataflow graphs for
memory peak minimization" (LCTES 2023) and "Graph transformations for memory
peak minimization by scheduling" (ACM TECS 2024) glue a node to its unique
successor or predecessor when some optimal schedule runs them back to back.
Here the rules are stated and proved for clusters in *our* data model, where
a tensor may have several readers and its release may depend on the order.

Notation. L(T) is the memory resident once the set T of tasks has run (it
depends only on T). Running a cluster X when T is done takes memory up to
L(T) + P_X(T) and leaves L(T) + I_X(T). With several readers, P and I depend
on T, but only through which inputs get freed, and more tasks done means
more frees: I_X(T) and P_X(T) never increase as T grows. Each cluster keeps
bounds ``pmin <= P_X(T) <= pmax`` and ``imin <= I_X(T) <= imax`` over all
orders (from :func:`memopt.graph.release.impact_bounds`; exact when every
release is fixed, e.g. in buffer form). The memory at each task of any other
cluster Z is L(set done before it) + (its outputs and workspace).

**Rule 1 — cluster with the single predecessor** (:func:`successor_ok`).
C -> D and C is D's only predecessor. If ``imax(D) <= 0`` and
``imax(C) + pmax(D) <= pmin(C)``, some optimal order runs D right after C.
*Proof.* Take any order C Z D. Moving D right after C is valid (D needs only
C, and no task of Z needs D since they ran before it). Every task of Z then runs with D
done: L(T ∪ D) = L(T) + I_D(T) <= L(T), so its memory does not grow. D itself
now peaks at L(T0) + I_C(T0) + P_D(T0 ∪ C) <= L(T0) + pmin(C) <= the peak of C,
which the order had anyway. ∎

**Rule 2 — cluster with the single successor** (:func:`predecessor_ok`).
C -> D and D is C's only successor. If ``imin(C) >= 0`` and
``pmax(C) <= imin(C) + pmin(D)``, some optimal order runs C right before D.
*Proof.* In C Z D, move C to just before D (nothing in Z needs C). Each
task of Z runs without C: L(T) <= L(T) + I_C(T) = L(T ∪ C). C now peaks at
L(X) + P_C(X) <= L(X) + imin(C) + pmin(D) <= L(X ∪ C) + P_D(X ∪ C), the peak
of D, which is unchanged (X = what ran before C, now including Z). ∎

Both rules keep the graph acyclic (D has no other predecessor, resp. C no
other successor). Applied to a fixpoint in O(n + e) merges.
"""

from __future__ import annotations

from memopt.transforms.clusters import ClusterGraph


def successor_ok(g: ClusterGraph, c: int, d: int) -> bool:
    """Rule 1: D (whose only predecessor is C) may be glued right after C."""
    return g.imax[d] <= 0 and g.imax[c] + g.pmax[d] <= g.pmin[c]


def predecessor_ok(g: ClusterGraph, c: int, d: int) -> bool:
    """Rule 2: C (whose only successor is D) may be glued right before D."""
    return g.imin[c] >= 0 and g.pmax[c] <= g.imin[c] + g.pmin[d]


def cluster_chains(g: ClusterGraph) -> int:
    """Apply rules 1 and 2 until neither applies; returns the number of merges.

    A merge by rule 1 takes C's topological position, by rule 2 D's, so the
    positions stay topological.
    """
    stack = g.clusters()
    merges = 0
    while stack:
        x = stack.pop()
        if not g.alive[x]:
            continue
        keep = -1
        if len(g.preds[x]) == 1:
            (c,) = g.preds[x]
            if successor_ok(g, c, x):
                keep = g.merge(c, x, keep=c)
        if keep < 0 and len(g.succs[x]) == 1:
            (d,) = g.succs[x]
            if predecessor_ok(g, x, d):
                keep = g.merge(x, d, keep=d)
        if keep >= 0:
            merges += 1
            stack.append(keep)
            stack.extend(g.preds[keep])
            stack.extend(g.succs[keep])
    return merges


__all__ = ["successor_ok", "predecessor_ok", "cluster_chains"]
