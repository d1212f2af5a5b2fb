"""Graph transformations that preserve the optimal peak (objective ``peak``).

:func:`reduce_peak` turns an instance into a smaller DAG of *clusters*
(task sequences run back to back) by rules that each keep at least one
optimal order, and returns a :class:`Reduction` whose ``expand`` maps an
order of the clusters back to an order of the tasks. The rules, after
Fradet, Girault & Honorat (LCTES 2023, ACM TECS 2024), each with its
exactness condition in our data model (see the modules):

1. ``successor`` — glue a cluster to its single predecessor
   (:mod:`memopt.transforms.chains`);
2. ``predecessor`` — glue a cluster to its single successor (same module);
3. ``independent`` — independent clusters in their optimal order, the
   parallel step of rule 4;
4. ``series-parallel`` — replace each series-parallel region whose tasks
   have fixed memory effects by its optimal chain of blocks
   (:mod:`memopt.transforms.sp_regions`).
5. ``path`` — a graph with a single topological order is one cluster.

``memopt info --reduce`` prints the size before and after each rule.
"""

from __future__ import annotations

import time

from memopt.core.deadline import Deadline, as_deadline
from memopt.core.instance import Instance
from memopt.core.request import Request
from memopt.transforms.chains import cluster_chains
from memopt.transforms.clusters import ClusterGraph, Reduction, RuleStep, identity_reduction
from memopt.transforms.sp_regions import series_parallel_regions

RULES = ("chains", "series-parallel")


def _path_rule(g: ClusterGraph) -> int:
    """Rule 5: if the clusters form a single path, glue them into one cluster (the only order)."""
    cs = g.clusters()
    if len(cs) <= 1:
        return 0
    if any(len(g.preds[c]) > 1 or len(g.succs[c]) > 1 for c in cs):
        return 0
    heads = [c for c in cs if not g.preds[c]]
    if len(heads) != 1:
        return 0
    path = [heads[0]]
    while g.succs[path[-1]]:
        (nxt,) = g.succs[path[-1]]
        path.append(nxt)
    if len(path) != len(cs):
        return 0
    g.merge_many(path, g.pos[path[0]])
    g.preds[path[0]] = set()
    g.succs[path[0]] = set()
    return 1


_RULE_FUNCS = {"chains": cluster_chains, "series-parallel": series_parallel_regions}


def reduce_peak(inst: Instance, rules: tuple[str, ...] | list[str] = RULES, *, max_rounds: int = 8,
                deadline: Deadline | float | None = None) -> Reduction:
    """Apply the rules in turn until none changes the graph; record the size after each.

    ``rules`` is a subset of ``("chains", "series-parallel")`` (the path rule
    always runs last). ``deadline`` (a ``time.perf_counter()`` value) stops
    between rules. Every rule preserves the optimal peak, so the returned
    reduction may be used by any exact method. O((n + e) · rounds).
    """
    for r in rules:
        if r not in _RULE_FUNCS:
            from memopt.core.errors import MemoptError

            raise MemoptError(f"unknown reduction rule {r!r}; known: {', '.join(_RULE_FUNCS)}")
    if inst.n == 0:
        return identity_reduction(inst)
    t0 = time.perf_counter()
    g = ClusterGraph(inst)
    steps: list[RuleStep] = [RuleStep("analysis", inst.n, inst.n, g.num_arcs(), g.num_arcs(),
                                      time.perf_counter() - t0)]
    for rnd in range(max_rounds):
        changed = False
        at_start = g.num_clusters
        for r in rules:
            if as_deadline(deadline).expired():
                break
            before, arcs = g.num_clusters, g.num_arcs()
            t = time.perf_counter()
            applied = _RULE_FUNCS[r](g)
            steps.append(RuleStep(r, before, g.num_clusters, arcs, g.num_arcs(), time.perf_counter() - t, applied))
            changed = changed or applied > 0
        if not changed or as_deadline(deadline).expired():
            break
        if rnd >= 1 and at_start - g.num_clusters < 0.01 * at_start:
            break  # later rounds only nibble (the rules are exact either way)
    before, arcs = g.num_clusters, g.num_arcs()
    t = time.perf_counter()
    applied = _path_rule(g)
    steps.append(RuleStep("path", before, g.num_clusters, arcs, g.num_arcs(), time.perf_counter() - t, applied))
    return g.to_reduction(steps)


def reduce_request(req: Request, rules: tuple[str, ...] | list[str] = RULES, *,
                   deadline: Deadline | float | None = None) -> Reduction:
    """:func:`reduce_peak` of ``req``'s instance as a :class:`~memopt.transforms.base.Transform` of ``req``."""
    red = reduce_peak(req.instance, rules, deadline=deadline)
    red.original = red.request = req
    return red


def summarize_steps(steps: list[RuleStep]) -> list[RuleStep]:
    """One row per rule (rounds added up), in order of first use."""
    out: dict[str, RuleStep] = {}
    for s in steps:
        if s.rule not in out:
            out[s.rule] = RuleStep(s.rule, s.clusters_before, s.clusters_after, s.arcs_before, s.arcs_after,
                                   s.seconds, s.applied)
        else:
            o = out[s.rule]
            o.seconds += s.seconds
            o.applied += s.applied
            o.clusters_before += 0
            o.clusters_after = s.clusters_after
            o.arcs_after = s.arcs_after
    return list(out.values())


__all__ = ["ClusterGraph", "RULES", "Reduction", "RuleStep", "identity_reduction", "reduce_peak", "reduce_request",
           "summarize_steps"]
