"""A plan made runnable as it is priced, and with no transfer it does not need.

**Frees before a recomputation.**
SPEC §2 charges a compute of ``v`` for the outputs of ``v`` *not already
resident*. A real op allocates all its outputs every time it runs: a
recomputation of ``native_batch_norm`` (output, mean, inverse std) while the
mean is still resident holds two copies of the mean until the old one is
dropped. :func:`free_before_recompute` inserts ``free d`` right before such
a compute, for every resident output ``d`` of the task. The evaluator's
memory at that compute is unchanged (``d`` leaves the resident set and is
counted again as a new output), the memory elsewhere does not grow, the
makespan is the same (frees take no time): the plan is as good, and now
the runtime holds exactly what the evaluator counts.

A datum transferred in that stage cannot be freed there (SPEC §2); it is
left as it is and reported in ``kept`` (the runtime then holds both copies
during that compute).

Complexity: O(events + Σ outputs of the computed tasks).

**Needless transfers** (:func:`fewer_transfers`). A plan is priced by its
makespan only, and an optimal one may move data that could as well have
stayed: with offloading priced beside the computes, every plan that hides
its transfers costs the same. The runtime pays each transfer some µs of its
own (a Python call, an allocation), which the spec does not price. So each
``free d … reload d`` pair (nothing computes ``d`` between) is dropped,
smallest ``d`` first, when ``d`` staying resident keeps the plan valid
within the budget and its makespan no larger — the evaluator decides — and
then each offload whose datum is never reloaded, when the plan stays valid
without it. Complexity: one evaluation per candidate, O(transfers · events).
"""

from __future__ import annotations

import time

from memopt.core.evaluate import evaluate
from memopt.core.instance import Instance
from memopt.core.plan import COMPUTE, FREE, OFFLOAD, RELOAD, Event, Plan


def free_before_recompute(inst: Instance, plan: Plan) -> tuple[Plan, list[tuple[int, str]]]:
    """``plan`` with a free of each resident output before the compute that makes it again.

    Returns the plan and the (stage, datum) pairs that could not be freed
    because they are transferred in that stage.
    """
    dix = inst.datum_index
    resident = [False] * inst.m
    stages: list[list[Event]] = []
    kept: list[tuple[int, str]] = []
    for k, stage in enumerate(plan.stages):
        transferred = {dix[e.target] for e in stage if e.kind in (OFFLOAD, RELOAD)}
        reloads = [dix[e.target] for e in stage if e.kind == RELOAD]
        out: list[Event] = []
        for e in stage:
            if e.kind == COMPUTE:
                v = inst.task_index[e.target]
                for j in inst.outputs[v]:
                    if resident[j]:
                        if j in transferred:
                            kept.append((k + 1, inst.data[j].id))
                            continue
                        out.append(Event(FREE, inst.data[j].id))
                        resident[j] = False
                for j in inst.outputs[v]:
                    resident[j] = True
            elif e.kind == FREE:
                resident[dix[e.target]] = False
            out.append(e)
        for j in reloads:
            resident[j] = True
        stages.append(out)
    return Plan(stages), kept


def fewer_transfers(inst: Instance, plan: Plan, budget: int | None, *, recompute: bool = True,
                    max_seconds: float = 5.0) -> tuple[Plan, int]:
    """``plan`` without the transfers it does not need (see the module docstring); returns it and how many
    transfer events went. The plan is never worse: valid within ``budget``, makespan no larger."""
    def judge(p: Plan):
        return evaluate(inst, p, budget=budget, allow_recompute=recompute, allow_offload=True)

    base = judge(plan)
    if not base.valid:
        return plan, 0
    stages = [list(st) for st in plan.stages]
    last: dict[str, tuple[int, int, str]] = {}
    pairs: list[tuple[int, tuple[int, int], tuple[int, int]]] = []
    for k, st in enumerate(stages):
        for i, e in enumerate(st):
            if e.kind == RELOAD and last.get(e.target, (0, 0, ""))[2] == FREE:
                k1, i1, _ = last[e.target]
                pairs.append((inst.size[inst.datum_index[e.target]], (k1, i1), (k, i)))
            if e.kind == COMPUTE:
                for j in inst.outputs[inst.task_index[e.target]]:
                    last[inst.data[j].id] = (k, i, COMPUTE)
            else:
                last[e.target] = (k, i, e.kind)
    gone: set[tuple[int, int]] = set()

    def without(extra: tuple[tuple[int, int], ...]) -> Plan:
        drop = gone.union(extra)
        return Plan([e for i, e in enumerate(st) if (k, i) not in drop] for k, st in enumerate(stages))

    t_end = time.perf_counter() + max_seconds

    def attempt(extra: tuple[tuple[int, int], ...]) -> None:
        ev = judge(without(extra))
        if ev.valid and ev.makespan <= base.makespan:
            gone.update(extra)

    for _, a, b in sorted(pairs):
        if time.perf_counter() > t_end:
            break
        attempt((a, b))
    reloaded = {e.target for k, st in enumerate(stages) for i, e in enumerate(st)
                if e.kind == RELOAD and (k, i) not in gone}
    for k, st in enumerate(stages):
        for i, e in enumerate(st):
            if e.kind == OFFLOAD and e.target not in reloaded and time.perf_counter() <= t_end:
                attempt(((k, i),))
    return (without(()), len(gone) - sum(stages[k][i].kind == FREE for k, i in gone)) if gone else (plan, 0)


__all__ = ["fewer_transfers", "free_before_recompute"]
