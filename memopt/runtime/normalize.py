"""A plan made runnable as it is priced: no task recomputed while one of its outputs is still resident.

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
"""

from __future__ import annotations

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


__all__ = ["free_before_recompute"]
