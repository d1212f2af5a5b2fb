"""Running a peak formulation (``peak-cp``, ``peak-milp``): reduce, hint, solve, decode, report honestly."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from memopt.backends.linear import LinearModel, solve_linear
from memopt.core.evaluate import schedule_peak
from memopt.core.method import Context, MethodOutput
from memopt.core.params import Params, option
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.status import Status
from memopt.exact.downset_dp import greedy_cluster_order
from memopt.exact.peak_bounds import lifetime_bound
from memopt.formulations.peak_common import PeakGraph, order_from_positions, respects
from memopt.heuristics.orders import best_baseline
from memopt.transforms.clusters import Reduction
from memopt.transforms.reduction import reduce_peak

Build = Callable[[PeakGraph, int, "int | None", "list[int] | None"], "tuple[LinearModel, list[int]]"]


@dataclass(frozen=True)
class PeakFormulationParams(Params):
    reduce: bool = option(True, "build the model on the peak-preserving reduction (false: on the tasks)")
    gap: float = option(0.0, "relative gap at which the solver may stop (0: prove the optimum)")


def warm_order(req: Request, ctx: Context, red: Reduction | None) -> list[int] | None:
    """The warm-start order: a known plan's, else the best of the baselines and (with a
    reduction) a greedy order of the clusters, which respects the reduction."""
    inst = req.instance
    if ctx.warm is not None and not ctx.warm.enabled:
        return None
    known, _ = ctx.best_known(req)
    if known is not None:
        order = known.task_order(inst)
        if order is not None:
            return order
    order, peak, _ = best_baseline(inst)
    if red is not None:
        g = greedy_cluster_order(inst, red)
        if g is not None and schedule_peak(inst, g) <= peak:
            return g
    return order


def run_peak_formulation(req: Request, ctx: Context, build: Build, backend: str) -> MethodOutput:
    """Build (``build(pg, lb, ub, hint) -> (model, pos)``), solve and decode a peak formulation.

    Option ``reduce`` (default true) builds the model on the reduced graph;
    ``gap`` a relative gap to stop at. The plan returned is the decoded order,
    or the warm start if the solver found nothing better; the bound is the
    solver's (rounded up: peaks are integers) merged with the lifetime bound.
    """
    p: PeakFormulationParams = ctx.params
    inst = req.instance
    stats = ctx.stats
    red = reduce_peak(inst, deadline=ctx.deadline) if p.reduce else None
    pg = PeakGraph(inst, red)
    lb, _ = lifetime_bound(inst)
    warm = warm_order(req, ctx, red)
    hint = warm
    if hint is not None and not respects(pg, hint):
        hint = greedy_cluster_order(inst, red)  # a hint must satisfy the reduction's rows
    ub = min(schedule_peak(inst, o) for o in (warm, hint)) if hint is not None else None
    cap = ub
    if req.budget is not None:
        cap = req.budget if cap is None else min(cap, req.budget)
    stats.update(backend=backend, reduced_clusters=red.n if red is not None else inst.n)
    if cap is not None and cap < lb:
        return MethodOutput(status=Status.INFEASIBLE, bound=lb,
                            message=f"the lower bound {lb} exceeds the budget {req.budget}")
    for o in (warm, hint):  # the starting orders are plans already: a stopped solver still has one
        if o is not None and (req.budget is None or schedule_peak(inst, o) <= req.budget):
            ctx.offer(Plan.from_order(inst, o), "warm start")
    model, pos = build(pg, lb, cap, hint)
    stats.update(vars=model.num_vars, rows=model.num_rows)
    sol = solve_linear(model, backend, deadline=ctx.deadline, threads=ctx.threads, seed=ctx.seed,
                       warm_start=hint is not None, log=ctx.solver_log, gap=p.gap,
                       memory_limit=ctx.settings.memory_limit)
    stats["solver_status"] = sol.status
    stats["solver_seconds"] = round(sol.seconds, 3)
    bound = lb
    if sol.bound is not None and sol.status != "infeasible":
        bound = max(bound, math.ceil(sol.bound - 1e-6) * pg.unit)
    if sol.status == "infeasible":
        if req.budget is not None and (ub is None or req.budget < ub):
            return MethodOutput(status=Status.INFEASIBLE, bound=max(bound, req.budget + 1),
                                message=f"no order has a peak within the budget {req.budget}")
        # the warm start is a feasible point: the solver is wrong (numerics); keep the warm start
        stats["warning"] = f"{backend} reported the model infeasible although the warm start is feasible"
    order = order_from_positions(sol.values, pos) if sol.values is not None else None
    candidates = [o for o in (order, hint, warm) if o is not None]
    if not candidates:
        return MethodOutput(bound=bound, message=f"{ctx.name}: no solution found in time")
    best = min(candidates, key=lambda o: schedule_peak(inst, o))
    peak = schedule_peak(inst, best)
    if req.budget is not None and peak > req.budget:
        return MethodOutput(bound=bound, message=f"{ctx.name}: no plan within the budget {req.budget} found in time")
    # the models are exact, so the solver's bound is a bound on the optimal peak; an order
    # whose evaluated peak reaches it is proven optimal
    status = Status.OPTIMAL if peak <= bound else Status.FEASIBLE
    return MethodOutput(Plan.from_order(inst, best), status, bound=bound)


__all__ = ["PeakFormulationParams", "run_peak_formulation", "warm_order"]
