"""The stage-model methods: ``checkmate``, ``poet``, ``stage`` and ``joint``.

One model (:mod:`.model`), four layouts and technique sets; each method
takes ``backend=cpsat|highs|cbc`` (``memopt solve --backend``; default
``cpsat``) and the options below (``-O key=value``):

==============  =============================================================
``checkmate``   recomputation, fixed order of first computations (Jain et
                al. 2020); ``time`` and ``peak`` (with ``--max-makespan``)
``poet``        offloading ± recomputation, fixed order (Patil et al. 2022)
``stage``       pure scheduling under a budget, free order: the model is
                complete for pure schedules, so its bound and its
                infeasibility are the problem's
``joint``       free order + recomputation + offloading, optimised jointly
==============  =============================================================

Options: ``order`` (fixed-order methods: ``warm`` — the warm start's order,
the default when there is one —, ``given`` — the instance's order, the
literature's protocol —, ``best`` — the best baseline order); ``sigma``
(free-order methods: ``warm``/``given``/``best``, the order of the
recomputation slots); ``transfer_stages`` (empty stages before each task:
room for transfers; default 0, 1 with offloading when the warm start has
none); ``detailed`` (``lazy``, the default, or ``all``: every stage's
recomputation memory rows from the start); ``cutoff`` (default true: only
plans at least as good as the warm start, and no recomputation of a task
whose time alone exceeds the slack it leaves — see
:func:`.model.build_stage_model`); ``cuts`` (default true: recomputation-chain
cuts before each round, fixed orders only — :mod:`.cuts`); ``lp_detail``
(default 0.3 with CP-SAT, 0 — off — with HiGHS and CBC: detail up front the
stages where the cut LP recomputes more than this —
:func:`.solver.solve_stage_model`; with CBC on layered-n200 at 0.8 it made
the solve overrun its limit past the benchmark's kill at 120 s).

Bounds: a fixed-order model's optimum is *not* a bound of the problem
(another order may be better), nor is a free-order model's with
recomputation or offloading (its stages are a restriction). Those are
reported in ``stats`` as ``model_bound``/``model_status`` ("the best plan
of this model's space"); the problem's bound stays the simple one of
:meth:`memopt.solve.Request.lower_bound` — except for ``stage`` (complete
for pure schedules), whose bound is the problem's.
"""

from __future__ import annotations

from typing import Any

from ...errors import MemoptError
from ...plan import Plan
from ...solve import MethodOutput, Request, SolveOptions, register_method
from ..linear import BACKENDS
from .layout import LayoutError, StageLayout
from .model import build_stage_model
from .plans import merge_stages
from .solver import LP_DETAIL, solve_stage_model


WARM_SHARE = 0.15
"""Share of the time left that the planner may take for the warm start (at most its default 5 s)."""


def warm_start_plan(req: Request, opts: SolveOptions, order: list[int] | None = None) -> tuple[Plan | None, str]:
    """The valid plan that seeds a model, and where it comes from.

    A plan given by the user (``warm_start=Plan``) if valid; else the budget
    planner (:func:`memopt.heuristics.budget.plan_under_budget`, on
    ``order`` when given, with :data:`WARM_SHARE` of the time left and at
    most its default effort); else the best baseline pure schedule if it fits.
    """
    if opts.warm_start is False:
        return None, "none"
    if isinstance(opts.warm_start, Plan):
        ev = req.evaluate(opts.warm_start)
        if ev.valid:
            return opts.warm_start, "given"
        return None, f"given plan rejected: {ev.violation}"
    if not req.pure and req.budget is not None:
        from ...heuristics.budget import DEFAULT_WARM_SECONDS, plan_under_budget

        limit = DEFAULT_WARM_SECONDS
        if opts.time_limit is not None:
            limit = max(0.05, min(limit, WARM_SHARE * opts.remaining()))
        plan = plan_under_budget(req, order=order, time_limit=limit)
        if plan is not None and req.evaluate(plan).valid:
            return plan, "planner" + (" (fixed order)" if order is not None else "")
    from ...heuristics.orders import best_baseline

    base = best_baseline(req.instance)
    plan = Plan.from_order(req.instance, order if order is not None else base[0])
    if req.evaluate(plan).valid:
        return plan, "pure schedule" if order is not None else f"baseline:{base[2]}"
    return None, "none (no heuristic plan fits)"


def _order(req: Request, how: str, warm: Plan | None) -> list[int]:
    inst = req.instance
    if how == "warm" and warm is not None:
        return [inst.task_index[v] for v in warm.compute_order()]
    if how in ("best", "warm"):
        from ...heuristics.orders import best_baseline

        return best_baseline(inst)[0]
    if how == "given":
        return list(inst.topological_order)
    raise MemoptError(f"order {how!r}: expected warm, given or best")


def make_layout(req: Request, opts: SolveOptions, *, free: bool, warm: Plan | None) -> tuple[StageLayout, Plan | None]:
    """The layout of a method, and the warm start cut to fit it (``None``: it does not).

    The layout mirrors the warm start (its order, its stages without a new
    task) when the warm start follows the method's order, so the warm start
    is a complete hint; else it is the order's plain layout with
    ``transfer_stages`` empty stages before each task (default: 1 with
    offloading, else 0).
    """
    inst = req.instance
    how = str(opts.option("sigma" if free else "order", "warm"))
    k = opts.option("transfer_stages")
    order = _order(req, how, warm)
    if warm is not None and [inst.task_index[v] for v in warm.compute_order()] == order:
        try:
            lay, cut = StageLayout.from_plan(inst, warm, free=free, transfer_stages=int(k or 0))
            if k is None and req.offload and not any(x is None for x in lay.new):
                lay, cut = StageLayout.from_plan(inst, warm, free=free, transfer_stages=1)
            return lay, cut
        except LayoutError:
            pass
    if k is None:
        k = 1 if req.offload else 0
    lay = (StageLayout.joint if free else StageLayout.fixed)(inst, order, int(k))
    return lay, None


def run_stage_method(req: Request, opts: SolveOptions, *, name: str, free: bool) -> MethodOutput:
    """Build the model of ``req`` on the method's layout, solve it, report honestly."""
    backend = str(opts.option("backend", "cpsat"))
    if backend not in BACKENDS:
        raise MemoptError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if req.objective == "time" and req.budget is None:
        raise MemoptError("objective 'time' needs a budget")
    how = str(opts.option("sigma" if free else "order", "warm"))
    fixed_order = None if how == "warm" else _order(req, how, None)
    warm, source = warm_start_plan(req, opts, fixed_order)
    if warm is not None:
        ev = req.evaluate(warm)
        opts.improved(value=req.value(ev), what=f"warm start ({source})")
    stats: dict[str, Any] = {"warm_start": source}
    if req.objective == "time" and warm is not None and req.value(req.evaluate(warm)) <= req.instance.total_time:
        # nothing beats Σ c(v): the warm start is optimal
        stats.update(model_status="optimal", bound_scope="problem (every task runs once)")
        return MethodOutput(warm, "optimal", req.instance.total_time, stats=stats)
    layout, cut = make_layout(req, opts, free=free, warm=warm)
    detailed = opts.option("detailed", "lazy")
    upper = None
    if req.objective == "time" and warm is not None and opts.option("cutoff", True):
        upper = req.value(req.evaluate(warm))
    sm = build_stage_model(req, layout, detailed="all" if detailed == "all" else "lazy", upper=upper)
    out = solve_stage_model(sm, opts, backend=backend, warm=cut if cut is not None else warm, log_name=name,
                            cutoff=upper, cuts=bool(opts.option("cuts", True)),
                            lp_detail=float(opts.option("lp_detail", LP_DETAIL if backend == "cpsat" else 0.0)))
    stats.update(out.stats)
    stats["layout"] = ("free" if free else "fixed") + f" order, {layout.T} stages"
    stats["model_status"] = out.model_status
    if out.model_bound is not None:
        stats["model_bound"] = round(out.model_bound, 6)
        if out.value:
            stats["model_gap"] = round(max(0.0, (out.value - out.model_bound) / out.value), 6)
    complete = free and req.pure  # every topological order is a layout of n FREE stages
    plan = out.plan
    if plan is not None and req.offload:
        merged = merge_stages(req, plan, opts.deadline)
        if merged is not plan:
            stats["merged_stages"] = len(plan) - len(merged)
            plan = merged
    if warm is not None and (plan is None or req.value(req.evaluate(warm)) < req.value(req.evaluate(plan))):
        # the model's class may not hold the warm start (its stages were cut to fit): keep the better
        plan = warm
        stats["returned"] = "warm start"
    if complete:
        stats["bound_scope"] = "problem (the model holds every schedule)"
        if out.model_status == "infeasible":
            return MethodOutput(None, "infeasible", message=(
                f"no schedule keeps the peak within the budget {req.budget} (proven by the stage model)"),
                stats=stats)
        bound = out.model_bound if req.objective == "peak" else None
        status = "optimal" if out.model_status == "optimal" else "feasible"
        return MethodOutput(plan, status if plan is not None else "unknown", bound, stats=stats)
    stats["bound_scope"] = ("model only: a restriction of the problem (" +
                            ("free order" if free else "fixed order of first computations") + ", staged plans)")
    if plan is None:
        msg = ("the model has no plan within the budget" if out.model_status == "infeasible"
               else "no plan found within the time limit")
        return MethodOutput(None, "unknown", message=msg + f" ({stats['layout']})", stats=stats)
    return MethodOutput(plan, "feasible", None, stats=stats)


def _needs_bandwidth(req: Request) -> str | None:
    if req.offload and req.instance.machine.bandwidth is None:
        return "offloading needs machine.bandwidth"
    return None


@register_method("checkmate", objectives=("time", "peak"), pure=False, recompute=True, offload=False,
                 family="milp", requires=("ortools",))
def run_checkmate(req: Request, opts: SolveOptions) -> MethodOutput:
    """Checkmate stage model: recomputation, fixed order of first computations (CP-SAT/HiGHS/CBC)."""
    return run_stage_method(req, opts, name="checkmate", free=False)


@register_method("poet", objectives=("time", "peak"), pure=False, recompute=True, offload=True, both=True,
                 family="milp", requires=("ortools",), check=_needs_bandwidth)
def run_poet(req: Request, opts: SolveOptions) -> MethodOutput:
    """POET stage model: offloading ± recomputation, fixed order (CP-SAT/HiGHS/CBC)."""
    return run_stage_method(req, opts, name="poet", free=False)


@register_method("stage", objectives=("time", "peak"), pure=True, recompute=False, offload=False,
                 exact=True, family="milp", requires=("ortools",))
def run_stage(req: Request, opts: SolveOptions) -> MethodOutput:
    """Stage model of pure scheduling under a budget, free order (exact; CP-SAT/HiGHS/CBC)."""
    return run_stage_method(req, opts, name="stage", free=True)


@register_method("joint", objectives=("time", "peak"), pure=True, recompute=True, offload=True, both=True,
                 family="milp", requires=("ortools",), check=_needs_bandwidth)
def run_joint(req: Request, opts: SolveOptions) -> MethodOutput:
    """Joint stage model: free order + recomputation + offloading (CP-SAT/HiGHS/CBC)."""
    return run_stage_method(req, opts, name="joint", free=True)


__all__ = ["run_stage_method", "warm_start_plan", "make_layout"]
