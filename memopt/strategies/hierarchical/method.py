"""``hierarchical``: fit a budget on large training graphs through their repeated blocks.

1. **Structure** (:func:`memopt.graph.structure.detect_structure`): the
   loss, the forward segments (annotations, else narrow cuts and the
   repeated block) → a chain decomposition (:mod:`.chain`).
2. **Options** per group (:mod:`.options`): the forward without tape and a
   menu of tapes; identical groups share them.
3. **The chain DP** (:mod:`.dp`): the best rotor sequence over the menu, as
   one compute sequence → one plan (liveness frees), offered at once. The
   DP runs on a few segmentations (``segments``) and keeps the best.
4. **The flat planner** (``planner=true``) on the whole graph, for a share of
   the time: on graphs whose chain is poor (long skips pinned) it is the
   better start.
5. **Polish** (:mod:`.window`): windows of the best plan re-solved by the
   stage model on their order (Checkmate) or Moccasin (free order), warm-
   started from the window's computes; each improvement is offered.

Bounds: Σ c(v) and, for graphs up to ``bound_tasks`` tasks, the
recomputation bound (:mod:`memopt.exact.recompute_bound`). Objective
``time`` with recomputation (offloading may be allowed: the plans do not
use it). See docs/hierarchical.md.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

from memopt.core.method import Context, MethodOutput
from memopt.core.params import Params, option
from memopt.core.request import Request
from memopt.core.status import Objective, Status
from memopt.formulations.stage.plans import prune_plan
from memopt.graph.structure import detect_structure
from memopt.strategies.hierarchical.chain import build_chain, check_chain
from memopt.strategies.hierarchical.dp import ChainDP, DPInterrupted, compute_sequence, grid_unit
from memopt.strategies.hierarchical.lns import polish
from memopt.strategies.hierarchical.options import (
    group_classes,
    group_ops,
    heuristic_options,
    map_option,
    prune_options,
)
from memopt.strategies.hierarchical.sequence import plan_from_sequence

PLANNER_SHARE, PLANNER_SECONDS = 0.15, 10.0
"""Share of the time (and most seconds) for the flat planner."""
BOUND_SHARE, BOUND_SECONDS = 0.05, 5.0


@dataclass(frozen=True)
class HierarchicalParams(Params):
    segments: str = option("16,32", "forward segments the chain aims at, one DP per value (comma-separated)")
    slots: int = option(2000, "memory units of the DP's grid (exact when the sizes' gcd gives fewer)")
    annotations: bool = option(True, "cut the forward pass where the tasks' group annotation changes")
    planner: bool = option(True, "also run the flat budget planner for a share of the time")
    window: int = option(120, "computes per window of the polishing search (0: no polishing)")
    lns_model: Literal["checkmate", "moccasin", "both"] = option("both", "the model of each window")
    bound_tasks: int = option(3000, "largest graph given the recomputation bound (a CP-SAT per critical task)")


def check_hierarchical(req: Request) -> str | None:
    if req.objective != Objective.TIME:
        return "method 'hierarchical' minimises the time under a budget (objective 'time')"
    if not req.recompute:
        return "method 'hierarchical' needs --recompute"
    return None


def run_hierarchical(req: Request, ctx: Context) -> MethodOutput:
    """Repeated blocks: a chain DP over block options (rotor/Rockmate), then windows re-solved exactly."""
    p: HierarchicalParams = ctx.params
    inst = req.instance
    stats = ctx.stats
    t0 = time.perf_counter()
    best_value = math.inf
    best_seq: list[int] | None = None
    for target in _targets(p.segments):
        if ctx.deadline.expired():
            break
        got = _chain_plan(req, ctx, target)
        if got is None:
            continue
        seq, value = got
        if value < best_value:
            best_value, best_seq = value, seq
    if best_seq is not None:
        stats["first_plan_seconds"] = round(time.perf_counter() - t0, 3)
    if p.planner and not ctx.deadline.expired():
        out = ctx.run("planner", req, share=PLANNER_SHARE, cap=PLANNER_SECONDS)
        stats["planner"] = "plan" if out.plan is not None else "none"
    if req.recompute and not req.offload and inst.n <= p.bound_tasks and not ctx.deadline.expired():
        from memopt.exact.recompute_bound import recompute_bound

        rb = recompute_bound(inst, req.budget, max_tasks=4, threads=ctx.threads,
                             deadline=ctx.deadline.share(BOUND_SHARE, BOUND_SECONDS))
        stats["recompute_bound"] = rb.extra
        if rb.infeasible_at is not None and ctx.incumbent.plan is None:
            return MethodOutput(status=Status.INFEASIBLE, message=(
                f"no plan fits the budget {req.budget}: at the first computation of task "
                f"{inst.tasks[rb.infeasible_at].id!r} no set of data held in memory and recomputed later fits "
                "(recomputation bound)"))
        if rb.extra:
            ctx.prove(inst.total_time + rb.extra, "recomputation bound")
    ctx.prove(inst.total_time, "every task runs once")
    if ctx.incumbent.plan is None:
        return MethodOutput(message="no plan found: the chain DP has no rotor sequence within the budget")
    if ctx.incumbent.proven:
        return MethodOutput(status=Status.OPTIMAL)
    if p.window > 0:
        polish(req, ctx, window=p.window, model=p.lns_model)
    return MethodOutput(status=Status.OPTIMAL if ctx.incumbent.proven else Status.FEASIBLE)


def _targets(text: str) -> list[int]:
    out = []
    for x in str(text).replace(";", ",").split(","):
        x = x.strip()
        if x:
            out.append(max(1, int(x)))
    return out or [32]


def _chain_plan(req: Request, ctx: Context, target: int) -> tuple[list[int], float] | None:
    """The chain DP's plan on ``target`` forward segments, offered; ``(sequence, makespan)`` or ``None``."""
    p: HierarchicalParams = ctx.params
    inst = req.instance
    stats = ctx.stats.setdefault("chains", {})
    t0 = time.perf_counter()
    st = detect_structure(inst, target_segments=target, use_annotations=p.annotations)
    ch = build_chain(inst, st)
    bad = check_chain(ch)
    info: dict = {"structure": st.describe(), "chain": ch.describe()}
    stats[str(target)] = info
    if bad:  # cannot happen by construction; a bug is reported, not a plan
        info["error"] = bad[0]
        return None
    pos = {v: i for i, v in enumerate(st.order)}
    classes = group_classes(ch)
    ops = []
    for g in range(ch.k):
        go = group_ops(ch, g, pos)
        rep, f = classes[g]
        if f is None:
            go.options = prune_options(heuristic_options(ch, g, pos))
        else:
            go.options = [map_option(ch, g, o, f, pos) for o in ops[rep].options]
        ops.append(go)
        if ctx.deadline.expired():
            return None
    info["distinct_groups"] = sum(1 for _, f in classes if f is None)
    info["options"] = sum(len(o.options) for o in ops)
    unit = grid_unit(inst, req.budget, p.slots)
    try:
        dp = ChainDP(ch, ops, req.budget, unit, deadline=ctx.deadline)
    except DPInterrupted:
        info["dp"] = "interrupted"
        return None
    info["unit"] = unit
    info["seconds"] = round(time.perf_counter() - t0, 3)
    value = dp.value()
    if value is None:
        info["dp"] = "no rotor sequence fits"
        return None
    seq = compute_sequence(ops, dp.sequence())
    plan = prune_plan(inst, plan_from_sequence(inst, seq))
    ev = req.evaluate(plan)
    info["dp_value"] = value
    if not ev.valid:  # the DP's accounting is conservative: a bug if this happens
        info["error"] = f"invalid plan: {ev.violation}"
        return None
    info["value"] = ev.makespan
    ctx.offer(plan, f"hierarchical (chain DP, {ch.k} groups)", evaluation=ev)
    return seq, ev.makespan


__all__ = ["HierarchicalParams", "check_hierarchical", "run_hierarchical"]
