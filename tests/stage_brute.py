"""Brute force over the plans of a stage layout (tests of the stage models only).

The stage models optimise over a *class* of SPEC plans: stage ``t`` of a
layout recomputes a subset of the tasks already run (in σ order), then
starts its new task (fixed, chosen, or none), transfers some data, and
keeps a chosen set of data into the next stage; every other datum is freed
after its last use (:func:`memopt.formulations.stage.plans.build_plan`
writes those stages). The class also has the models' documented
restrictions: a task is not recomputed while one of its outputs is
resident; a datum is offloaded at most once, never reloaded in the stage after it was
transferred nor in a stage that recomputes it.

:func:`brute_stage_time` runs Dijkstra over (stage, kept data, slow data,
computed tasks, data transferred in the previous stage), judging every
stage with the evaluator (the whole prefix is replayed): its optimum is the
model's optimum if the linear model counts memory and time exactly. It is
exponential: ≤ 4 tasks and ≤ 5 data.
"""

from __future__ import annotations

import heapq
import itertools

from memopt import Plan
from memopt.core.request import Request
from memopt.formulations.stage.layout import FREE, StageLayout
from memopt.formulations.stage.plans import build_plan


def _subsets(items):
    items = list(items)
    for r in range(len(items) + 1):
        yield from itertools.combinations(items, r)


def brute_stage_time(req: Request, layout: StageLayout, max_states: int = 200_000):
    """The least makespan of a plan of ``layout``'s class within the budget: ``(value, plan)`` or ``None``."""
    inst = req.instance
    T = layout.T
    pos = {v: k for k, v in enumerate(layout.sigma)}
    results = set(inst.results)  # never reloaded
    size = inst.size
    start = (0, frozenset(), frozenset(), frozenset(), frozenset())
    counter = itertools.count()
    heap = [(0, next(counter), start, ([], [], [], [set()]))]
    best: dict = {}
    done = 0
    while heap:
        cost, _, state, (comps, offl, rel, keep) = heapq.heappop(heap)
        if state in best:
            continue
        best[state] = cost
        done += 1
        if done > max_states:
            raise RuntimeError("brute force: too many states")
        t, kept, slow, computed, moved = state
        if t == T:
            plan = build_plan(inst, comps, offl, rel, keep)
            ev = req.evaluate(plan)
            if ev.valid:
                return ev.makespan, plan
            continue
        new = layout.new[t]
        if new is None:
            news = [None]
        elif new == FREE:
            news = [v for v in range(inst.n) if v not in computed
                    and all(u in computed for u in inst.preds[v])]
        else:
            news = [new]
        fast_start = kept | moved  # before the leading frees
        for v in news:
            cand = [u for u in layout.sigma if u in computed and u != v
                    and req.recompute and inst.can_recompute[u]]
            for R in _subsets(cand):
                R = sorted(R, key=pos.get)
                comp = list(R) + ([v] if v is not None else [])
                made = {d for u in comp for d in inst.outputs[u]}
                if made & kept:
                    continue  # no recompute while an output is resident
                offers = [d for d in kept if d not in slow and size[d] > 0] if req.offload else []
                reloads = ([d for d in slow if d not in fast_start and d not in made and d not in results
                            and size[d] > 0] if req.offload else [])
                for Off in _subsets(offers):
                    for L in _subsets(reloads):
                        avail = kept | made | set(L)
                        slow2 = slow | set(Off)
                        for K in _subsets(sorted(avail)):
                            K2 = frozenset(K)
                            c2 = comps + [comp]
                            o2 = offl + [set(Off)]
                            r2 = rel + [set(L)]
                            k2 = keep[:-1] + [set(kept), set(K2)]
                            try:
                                plan = build_plan(inst, c2, o2, r2, k2 + [set()] * (T - t - 1))
                            except RuntimeError:
                                continue
                            prefix = Plan(plan.stages[: t + 1])
                            ev = req.evaluate(prefix)
                            if any(x.rule not in ("task-never-ran", "result-missing") for x in ev.violations):
                                continue
                            nxt = (t + 1, K2, frozenset(slow2), computed | set(comp),
                                   frozenset(set(Off) | set(L)))
                            if nxt in best:
                                continue
                            heapq.heappush(heap, (ev.makespan, next(counter), nxt, (c2, o2, r2, k2)))
    return None


__all__ = ["brute_stage_time"]
