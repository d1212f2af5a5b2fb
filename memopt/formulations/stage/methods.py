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

Options (:class:`FixedStageParams`, :class:`FreeStageParams`; ``-O key=value``):
``order`` (fixed-order methods: ``warm`` — the warm start's order,
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
:func:`memopt.pipeline.static_bound` — except for ``stage`` (complete
for pure schedules), whose bound is the problem's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from memopt.core.errors import MemoptError
from memopt.core.method import Context, MethodOutput
from memopt.core.params import Params, option
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.status import Objective, Status
from memopt.formulations.stage.layout import LayoutError, StageLayout
from memopt.formulations.stage.model import build_stage_model, estimate_stage_model
from memopt.formulations.stage.plans import merge_stages
from memopt.formulations.stage.solver import LP_DETAIL, solve_stage_model
from memopt.heuristics.orders import best_baseline

Backend = Literal["cpsat", "highs", "cbc"]


@dataclass(frozen=True)
class StageParams(Params):
    backend: Backend = option("cpsat", "solver: cpsat, highs or cbc")
    transfer_stages: int | None = option(None, "empty stages before each task, room for transfers (default: 1 "
                                               "with offloading when the warm start has none, else 0)")
    detailed: Literal["lazy", "all"] = option("lazy", "recomputation memory rows: lazy (added where a solution "
                                                      "breaks them) or all up front")
    cutoff: bool = option(True, "only plans at least as good as the warm start (and no recomputation of a task "
                                "longer than the slack)")
    cuts: bool = option(True, "recomputation-chain cuts before each round (fixed orders)")
    lp_detail: float | None = option(None, "detail up front the stages where the cut LP recomputes more than "
                                           "this (default 0.3 with cpsat, off with highs and cbc)")
    build_share: float = option(1.0, "build the model only when its building would take at most this share of "
                                     "the time left (0 < share <= 1)")

    def __post_init__(self) -> None:
        if not 0 < self.build_share <= 1:
            raise MemoptError(f"option build_share must be in (0, 1], got {self.build_share:g}")


@dataclass(frozen=True)
class FixedStageParams(StageParams):
    order: Literal["warm", "given", "best"] = option("warm", "order of first computations: the warm start's, the "
                                                             "instance's (the literature's protocol) or the best "
                                                             "baseline's")


@dataclass(frozen=True)
class FreeStageParams(StageParams):
    sigma: Literal["warm", "given", "best"] = option("warm", "order of the recomputation slots: the warm start's, "
                                                             "the instance's or the best baseline's")


def _order(req: Request, how: str, warm: Plan | None) -> list[int]:
    inst = req.instance
    if how == "warm" and warm is not None:
        return [inst.task_index[v] for v in warm.compute_order()]
    if how in ("best", "warm"):
        return best_baseline(inst)[0]
    return list(inst.topological_order)  # "given"


def make_layout(req: Request, p: StageParams, *, free: bool, warm: Plan | None) -> tuple[StageLayout, Plan | None]:
    """The layout of a method, and the warm start cut to fit it (``None``: it does not).

    The layout mirrors the warm start (its order, its stages without a new
    task) when the warm start follows the method's order, so the warm start
    is a complete hint; else it is the order's plain layout with
    ``transfer_stages`` empty stages before each task (default: 1 with
    offloading, else 0).
    """
    inst = req.instance
    how = p.sigma if free else p.order
    k = p.transfer_stages
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


#: a built stage model takes about this many bytes per variable + row (measured: 400 B in Python's lists and
#: maps, 1.16 GB for 2.9 M) plus the backend's copy, and this many seconds to build (measured 12-50 µs, more
#: for larger models: GPT-2 training with offloading, 7.9 M, 409 s)
BYTES_PER_ENTRY = 600
SECONDS_PER_ENTRY = 4e-5


def run_stage_method(req: Request, ctx: Context, *, free: bool) -> MethodOutput:
    """Build the model of ``req`` on the method's layout, solve it, report honestly."""
    p: StageParams = ctx.params
    backend = p.backend
    how = p.sigma if free else p.order
    fixed_order = None if how == "warm" else _order(req, how, None)
    warm, source = ctx.best_known(req) if fixed_order is None else (None, "")
    if warm is None:
        warm, source = ctx.warm_start(req, fixed_order)
    stats = ctx.stats
    stats["warm_start"] = source
    warm_value = None if warm is None else req.value(req.evaluate(warm))
    if req.objective == Objective.TIME and warm_value is not None and warm_value <= req.instance.total_time:
        # nothing beats Σ c(v): the warm start is optimal
        stats.update(model_status="optimal", bound_scope="problem (every task runs once)")
        return MethodOutput(warm, Status.OPTIMAL, req.instance.total_time)
    layout, cut = make_layout(req, p, free=free, warm=warm)
    upper = warm_value if req.objective == Objective.TIME and warm is not None and p.cutoff else None
    # a model too large for the memory left, or whose building alone would take the time left, is not
    # built: the warm start stands (and says why)
    entries = estimate_stage_model(req, layout)
    need, left = entries * BYTES_PER_ENTRY, ctx.memory_left()
    why = None
    if left is not None and need > left:
        why = (f"the model would take about {need / 2**30:.1f} GiB, more than the {left / 2**30:.1f} GiB left "
               "under the memory limit")
    elif entries * SECONDS_PER_ENTRY > p.build_share * ctx.deadline.remaining():
        share = "" if p.build_share >= 1 else f"{p.build_share:.2g} of "
        why = (f"building the model (about {entries:,} variables and rows) would take about "
               f"{entries * SECONDS_PER_ENTRY:.0f} s, more than {share}the {ctx.deadline.remaining():.0f} s left")
    if why is not None:
        stats["not_built"] = why
        ctx.note("%s", why)
        return MethodOutput(warm, Status.FEASIBLE if warm is not None else Status.UNKNOWN,
                            message=None if warm is not None else f"{ctx.name}: not built: {why}")
    sm = build_stage_model(req, layout, detailed="all" if p.detailed == "all" else "lazy", upper=upper,
                           deadline=ctx.deadline)
    if sm is None:
        stats["not_built"] = "the time limit was reached while building the model"
        return MethodOutput(warm, Status.FEASIBLE if warm is not None else Status.UNKNOWN)
    lp_detail = p.lp_detail if p.lp_detail is not None else (LP_DETAIL if backend == "cpsat" else 0.0)
    out = solve_stage_model(sm, ctx.deadline, threads=ctx.threads, seed=ctx.seed, backend=backend,
                            warm=cut if cut is not None else warm, cutoff=upper, cuts=p.cuts, lp_detail=lp_detail,
                            log=ctx.solver_log, memory_limit=ctx.settings.memory_limit,
                            on_plan=lambda plan, ev: ctx.offer(plan, evaluation=ev))
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
        merged = merge_stages(req, plan, ctx.deadline)
        if merged is not plan:
            stats["merged_stages"] = len(plan) - len(merged)
            plan = merged
    if warm is not None and (plan is None or warm_value < req.value(req.evaluate(plan))):
        # the model's class may not hold the warm start (its stages were cut to fit): keep the better
        plan = warm
        stats["returned"] = "warm start"
    if complete:
        stats["bound_scope"] = "problem (the model holds every schedule)"
        if out.model_status == "infeasible":
            return MethodOutput(status=Status.INFEASIBLE, message=(
                f"no schedule keeps the peak within the budget {req.budget} (proven by the stage model)"))
        bound = out.model_bound if req.objective == Objective.PEAK else None
        status = Status.OPTIMAL if out.model_status == "optimal" else Status.FEASIBLE
        return MethodOutput(plan, status if plan is not None else Status.UNKNOWN, bound)
    stats["bound_scope"] = ("model only: a restriction of the problem (" +
                            ("free order" if free else "fixed order of first computations") + ", staged plans)")
    if plan is None:
        msg = ("the model has no plan within the budget" if out.model_status == "infeasible"
               else "no plan found within the time limit")
        return MethodOutput(message=msg + f" ({stats['layout']})")
    return MethodOutput(plan, Status.FEASIBLE)


def needs_bandwidth(req: Request) -> str | None:
    if req.offload and req.instance.machine.bandwidth is None:
        return "offloading needs machine.bandwidth"
    return None


def run_checkmate(req: Request, ctx: Context) -> MethodOutput:
    """Checkmate stage model: recomputation, fixed order of first computations (CP-SAT/HiGHS/CBC)."""
    return run_stage_method(req, ctx, free=False)


def run_poet(req: Request, ctx: Context) -> MethodOutput:
    """POET stage model: offloading ± recomputation, fixed order (CP-SAT/HiGHS/CBC)."""
    return run_stage_method(req, ctx, free=False)


def run_stage(req: Request, ctx: Context) -> MethodOutput:
    """Stage model of pure scheduling under a budget, free order (exact; CP-SAT/HiGHS/CBC)."""
    return run_stage_method(req, ctx, free=True)


def run_joint(req: Request, ctx: Context) -> MethodOutput:
    """Joint stage model: free order + recomputation + offloading (CP-SAT/HiGHS/CBC)."""
    return run_stage_method(req, ctx, free=True)


__all__ = ["FixedStageParams", "FreeStageParams", "StageParams", "make_layout", "needs_bandwidth", "run_checkmate",
           "run_joint", "run_poet", "run_stage", "run_stage_method"]
