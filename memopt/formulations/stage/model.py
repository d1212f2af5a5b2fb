"""Build a stage model once: the variables, constraints and objective of a request.

:func:`build_stage_model` is the only place where a stage model is put
together; the CP-SAT, HiGHS and CBC encodings are the same
:class:`~memopt.backends.linear.LinearModel` solved by different
backends (:func:`~memopt.backends.linear.solve_linear`).

Size: with ``T`` stages, ``r`` recomputation slots in all (≤ T·n, less
with windows), ``f`` residency windows (≤ (T+1)·m) and ``a`` users of
data in the stages (≤ T·(m + e)): O(r + f + a) variables and rows, and
O(r + f + a) nonzeros plus the free-order rows of a FREE layout (O(T · Σ
inputs)). Building is linear in that size.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from memopt.backends.model import BuildStopped, LinearModel
from memopt.core.bounds import task_footprint_bound
from memopt.core.deadline import Deadline
from memopt.core.request import Request
from memopt.core.status import Objective
from memopt.formulations.stage.constraints import (
    add_detailed_memory,
    add_inputs,
    add_residency,
    add_results,
    add_stage_memory,
    add_starts,
    add_transfers,
)
from memopt.formulations.stage.layout import StageLayout, Windows
from memopt.formulations.stage.objective import set_peak_objective, set_time_objective
from memopt.formulations.stage.variables import Scale, StageVariables


@dataclass
class StageModel:
    """A built stage model: the linear model, its variables, units and sizes."""

    request: Request
    layout: StageLayout
    lm: LinearModel
    V: StageVariables
    scale: Scale
    peak_var: int | None
    build_seconds: float
    stats: dict[str, Any] = field(default_factory=dict)

    def detail(self, stages) -> int:
        """Add the recomputation memory rows of ``stages``; returns how many stages were new."""
        before = len(self.V.detailed)
        add_detailed_memory(self.V, self.peak_var, stages)
        return len(self.V.detailed) - before

    def to_real(self, x: float) -> float:
        """A model objective value or bound in the instance's units."""
        if self.request.objective == Objective.PEAK:
            return x * self.scale.mem
        return self.scale.real_time(x)


#: measured ratio of the variables + rows built to the slot count of :func:`estimate_stage_model` (layered
#: and network training graphs, budget 0.8x, no cutoff): 1.9-3.5 with recomputation, 3.1-5.6 with offloading
ENTRIES_PER_SLOT = {False: 3, True: 5}


def estimate_stage_model(req: Request, layout: StageLayout) -> int:
    """About how many variables + rows :func:`build_stage_model` makes, in O(n + m) (to refuse a model too large).

    Fixed layouts: a task may be recomputed from its first stage to the last
    stage of a reader (every stage after it when it makes a result); a
    datum may be resident from its producer's stage to its last reader's;
    each such slot costs a few variables and rows (:data:`ENTRIES_PER_SLOT`,
    measured). Free layouts: T × (n + m). An upper estimate without the
    cutoff's pruning (``upper``).
    """
    inst = req.instance
    T = layout.T
    if layout.free:
        return 4 * T * (inst.n + inst.m)
    stage = [0] * inst.n
    for t, v in enumerate(layout.new):
        if v is not None:
            stage[v] = t
    last_reader = [max((stage[c] for c in inst.succs[u]), default=-1) for u in range(inst.n)]
    total = 0
    for d in range(inst.m):
        p = inst.producer[d]
        hi = T if not inst.consumers[d] else max(stage[c] for c in inst.consumers[d])
        total += (hi - stage[p] + 1) * (4 if req.offload else 2)
    if req.recompute:
        for u in range(inst.n):
            if inst.can_recompute[u]:
                hi = T - 1 if any(not inst.consumers[d] for d in inst.outputs[u]) else last_reader[u]
                total += max(0, hi - stage[u]) * (3 + len(inst.inputs[u]))
    return total * ENTRIES_PER_SLOT[bool(req.offload)]


def build_stage_model(req: Request, layout: StageLayout, *, detailed: str | set[int] = "lazy",
                      upper: float | None = None, deadline: Deadline | None = None) -> StageModel | None:
    """The stage model of ``req`` on ``layout`` (objective ``time`` or ``peak``).

    ``detailed``: the stages whose recomputation slots get their memory rows
    now — ``"all"`` (the complete model), ``"lazy"`` (none yet: the solver
    adds them for the stages where a solution breaks them, see
    :func:`.solver.solve_stage_model`) or a set of stages.

    ``upper`` (objective ``time``): the makespan of a known plan; the model
    then holds only plans at least as good, and — without offloading, where
    every recomputation adds its time — forbids recomputing any task whose
    time alone exceeds the slack ``upper − Σ c(v)``, which removes its
    recomputation slots and shrinks the residency windows of its inputs.
    With ``max_makespan`` (objective ``peak``) the same slack is
    ``max_makespan − Σ c(v)``.

    ``deadline``: give up (``None``) when it expires between two families
    of constraints — a model of millions of rows takes tens of seconds.
    """
    t0 = time.perf_counter()
    inst = req.instance
    layout.check(inst)
    slack = None
    if req.objective == Objective.TIME and upper is not None:
        slack = upper - inst.total_time
    elif req.objective == Objective.PEAK and req.max_makespan is not None:
        slack = req.max_makespan - inst.total_time
    beta = inst.machine.bandwidth
    hidden = req.offload and beta is not None and not math.isinf(beta)  # recomputes may hide under transfers
    allowed = None if slack is None or hidden else [c <= slack + 1e-9 for c in inst.time]
    win = Windows(inst, layout, recompute=req.recompute, offload=req.offload, allowed=allowed)
    scale = Scale(inst, req.offload)
    g = scale.mem
    lm = LinearModel(f"stage-{inst.name}")
    lm.deadline = deadline
    if req.objective == Objective.TIME:
        if req.budget is None:
            raise ValueError("objective 'time' needs a budget")
        cap = req.budget // g
    else:
        total = sum(s // g for s in inst.size) + max((w // g for w in inst.workspace), default=0)
        cap = total if req.budget is None else min(total, req.budget // g)
    try:
        V = StageVariables(lm, inst, layout, win, scale, cap=cap, offload=req.offload)
        peak_var = None
        if req.objective == Objective.PEAK:
            lb = -(-task_footprint_bound(inst)[0] // g)
            peak_var = lm.var("P", min(lb, cap), cap, True)
            V.P = peak_var
        for family in (add_starts, add_inputs, add_residency, add_results, add_transfers):
            family(V)
        add_stage_memory(V, peak_var)
        if detailed == "all":
            add_detailed_memory(V, peak_var, range(layout.T))
        elif detailed != "lazy":
            add_detailed_memory(V, peak_var, detailed)
        if req.objective == Objective.TIME:
            set_time_objective(V, upper)
        else:
            set_peak_objective(V, peak_var, req.max_makespan)
    except BuildStopped:
        return None
    lm.deadline = None  # later rows (lazy detail, cuts) are added by the solver loop, which checks its own
    seconds = time.perf_counter() - t0
    stats = {"stages": layout.T, "vars": lm.num_vars, "rows": lm.num_rows,
             "build_seconds": round(seconds, 3), "recompute_slots": len(V.R), "free_slots": len(V.X),
             "start_vars": len(V.N), "residency_vars": len(V.F), "transfer_vars": len(V.O) + len(V.L),
             "detailed_stages": len(V.detailed),
             "forced_residency": sum(1 for i in V.F.values() if i < 0),
             "recomputable": sum(win.can_recompute)}
    return StageModel(req, layout, lm, V, scale, peak_var, seconds, stats)


__all__ = ["StageModel", "build_stage_model", "estimate_stage_model"]
