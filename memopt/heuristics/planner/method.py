"""The catalog's ``planner`` method: the portfolio for objective ``time``, a bisection on the budget for ``peak``."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from memopt.core.method import Context, MethodOutput
from memopt.core.params import Params, option
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.status import Objective, Status
from memopt.heuristics.orders import best_baseline
from memopt.heuristics.planner.config import PlannerConfig
from memopt.heuristics.planner.portfolio import (
    DEFAULT_METHOD_RESTARTS,
    continue_portfolio,
    default_moves,
    plan_portfolio,
)


@dataclass(frozen=True)
class PlannerParams(Params):
    restarts: int | None = option(None, f"randomised reruns of the best configuration (default: as many as the "
                                        f"time allows, at most {DEFAULT_METHOD_RESTARTS}; 3 per probe for peak)")
    score: Literal["lookahead", "belady", "dtr"] | None = option(None, "one eviction score instead of the "
                                                                        "portfolio's")
    transfer_weight: float | None = option(None, "with score: how much a transfer's time counts against a "
                                                 "recomputation's (1: at face value)")
    moves: int | None = option(None, "perturbations of the best plan's order, alternating with the restarts "
                                     "(default: with offloading, as many as the time allows; else none)")


def _configs(p: PlannerParams) -> list[PlannerConfig] | None:
    if p.score is None and p.transfer_weight is None:
        return None
    return [PlannerConfig(score=p.score or "lookahead",
                          transfer_weight=1.0 if p.transfer_weight is None else p.transfer_weight)]


def _orders(req: Request, ctx: Context) -> list[tuple[str, list[int]]] | None:
    """The candidate orders: the warm start's (a given plan), the least-peak order and the baselines."""
    if ctx.warm is None:
        return None
    return ctx.warm.orders(req.instance, ctx)


def run_planner_method(req: Request, ctx: Context) -> MethodOutput:
    """Eviction planner: Belady/DTR-style eviction with recompute or offload, stages packed to hide transfers."""
    if req.objective == Objective.TIME:
        return _planner_time(req, ctx)
    return _planner_peak(req, ctx)


def _planner_time(req: Request, ctx: Context) -> MethodOutput:
    p: PlannerParams = ctx.params
    # a second call in the same run (a later share of its time) continues the first one's portfolio
    res = continue_portfolio(req, ctx, _orders(req, ctx), _configs(p), deadline=ctx.deadline,
                             restarts=DEFAULT_METHOD_RESTARTS if p.restarts is None else p.restarts,
                             moves=default_moves(req, ctx.deadline) if p.moves is None else p.moves,
                             on_improve=lambda plan, _: ctx.offer(plan, "planner"))
    ctx.stats.update(runs=res.runs, failures=res.failures, order=res.order,
                     improved_by_restarts=res.improved_by_restarts, moves=res.moves_done,
                     improved_by_moves=res.improved_by_moves, walker_moves=res.walker_moves,
                     improved_by_walker=res.improved_by_walker,
                     config=res.config.label() if res.config else None)
    if res.invalid:
        ctx.stats["invalid"] = res.invalid[:3]
    if res.plan is None:
        near = res.nearest_text(req.instance)
        if near is not None:
            ctx.stats["nearest_miss_bytes"] = res.nearest[0]
        return MethodOutput(message=f"the planner found no plan within the budget {req.budget}"
                                    + (f"; {near}" if near else ""))
    return MethodOutput(res.plan, Status.FEASIBLE)


def _planner_peak(req: Request, ctx: Context) -> MethodOutput:
    """Bisection on the budget: the least budget whose planned makespan meets the limit."""
    p: PlannerParams = ctx.params
    inst = req.instance
    T = req.max_makespan if req.max_makespan is not None else math.inf
    order, best_peak, name = best_baseline(inst)
    if req.budget is None or best_peak <= req.budget:
        ctx.offer(Plan.from_order(inst, order), f"planner (baseline {name})")
    if req.pure:
        return MethodOutput(stats={"order": name})
    lo = int(ctx.incumbent.bound or 0)  # the pipeline proved the budget lower bound before any method ran
    orders = _orders(req, ctx)
    probes = 0
    lo_b, hi_b = lo, best_peak - 1  # look for a budget in [lo_b, hi_b] better than best_peak
    if req.budget is not None:
        hi_b = min(hi_b, req.budget)
    while lo_b <= hi_b and not ctx.deadline.expired():
        mid = (lo_b + hi_b) // 2
        probes += 1
        sub = replace(req, objective=Objective.TIME, budget=mid, max_makespan=None)
        res = plan_portfolio(sub, orders, deadline=ctx.deadline.share(0.25),
                             restarts=3 if p.restarts is None else p.restarts)
        if res.plan is not None and res.makespan is not None and res.makespan <= T:
            if res.peak is not None and res.peak < best_peak:
                best_peak = res.peak
                ctx.offer(res.plan, f"planner (budget {mid})")
            hi_b = min(mid, best_peak) - 1
        else:
            lo_b = mid + 1
    return MethodOutput(stats={"probes": probes})


__all__ = ["PlannerParams", "run_planner_method"]
