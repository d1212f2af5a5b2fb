"""``auto-time``: fit a memory budget at the least time (and the peak under a time limit).

Objective ``time`` (``auto`` delegates here), each step only when the
previous ones did not settle the request:

1. **a schedule that fits**: the best baseline order, then the exact peak
   strategy (``auto-peak``, a tenth of the time, stopping at the first order
   within the budget): a pure schedule within the budget has makespan
   Σ c(v), the lower bound — optimal, no overhead. When ``auto-peak``
   proves that no schedule fits and the request is pure, the answer is
   ``infeasible``; its order joins the planner's candidates (it runs once);
   With recomputation only, the **recomputation bound**
   (:mod:`memopt.exact.recompute_bound`: what the budget forces at one
   task's first computation) raises the bound above Σ c(v), or proves that
   no plan fits;
2. **the warm start**: the budget planner
   (:func:`memopt.heuristics.budget.plan_under_budget`), which evicts data
   and recomputes or offloads them (with offloading a quarter of the time
   left, at most 20 s: its whole portfolio on graphs of a few hundred
   tasks; with recomputation only 15 %, at most 10 s);
3. **a model** seeded with it: the joint stage model (free order) for
   graphs of up to :data:`JOINT_MAX_TASKS` tasks; above, with offloading,
   POET on the warm start's order; with recomputation only, Checkmate on
   the warm start's order for :data:`CHECKMATE_SHARE` of the time left
   (when it proves its model optimal, that plan is the answer), then the
   Moccasin model (free order, every variable hinted, LNS workers on large
   models) from the best plan so far. CP-SAT by default (``backend=``).
   Option ``model`` runs one model only (``stage``, ``joint``,
   ``checkmate``, ``poet``, ``moccasin``).

Large training graphs of repeated blocks (recomputation, with or without
offloading, at least :data:`HIERARCHICAL_MIN_TASKS` tasks) go to
``hierarchical`` instead of steps 1-3 (after the best baseline schedule: if
it fits, it is optimal); with offloading, ``hierarchical`` turns its chain
plan's recomputations into reloads
(:func:`memopt.heuristics.planner.offload_recomputations`) and runs the
planner with offloading on the graph without its views. Elsewhere, with both
techniques, when the planner finds no plan, the recomputation-only route
runs (:data:`RECOMPUTE_ONLY_SHARE` of the time; its plans are plans here
too) and its plan's recomputations are turned into reloads.

Why Moccasin above 40 tasks with recomputation only (60 s, 2 threads,
budgets 0.8x and 0.9x the given order's peak): against Checkmate on the
planner's order it lowered the overhead on layered-n300-s2 at 0.8x from
6.5 % to 4.9 % and on ResNet-50 training at 0.8x from 2.0 % to 1.9 %,
tied on four more runs and lost 0.05–0.07 points on two (ResNet-18 at
0.8x, MobileNetV2 at 0.9x): Checkmate's model has 10⁵ variables and
4·10⁵ rows at 300 tasks, Moccasin's 10⁴ — CP-SAT's search moves far more
in a minute.

Objective ``peak`` with recomputation or offloading (and ``max_makespan``):
the exact pure peak (``auto-peak``) is the warm start, then the same stage
model minimises the peak. Pure ``peak`` requests belong to ``auto-peak``.

Every plan found is offered to the run's incumbent as it comes, and every
model is seeded with the incumbent's best plan; the bound is the problem's
(Σ c(v), the recomputation bound, or ``auto-peak``'s for pure requests),
the model's own bound is in ``stats``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from memopt.core.deadline import Deadline
from memopt.core.errors import MemoptError
from memopt.core.method import Context, MethodOutput
from memopt.core.params import Params, option
from memopt.core.plan import RELOAD, Plan
from memopt.core.request import Request
from memopt.core.status import Objective, Status
from memopt.exact.recompute_bound import recompute_bound
from memopt.graph.structure import has_repeated_blocks
from memopt.heuristics.orders import best_baseline
from memopt.heuristics.planner import (
    DEFAULT_METHOD_RESTARTS,
    PlannerResult,
    continue_portfolio,
    default_moves,
    offload_recomputations,
)

JOINT_MAX_TASKS = 40
"""Above this many tasks the free-order model is too large for a minute: fix the order."""

MODELS = ("stage", "joint", "checkmate", "poet", "moccasin")
"""The models ``auto-time`` may hand the warm start to (option ``model``)."""
STAGE_MODELS = ("stage", "joint", "checkmate", "poet")

CHECKMATE_SHARE = 0.2
"""Share of the time left that Checkmate gets before Moccasin (recomputation only, above 40 tasks)."""
SCHEDULE_SHARE, SCHEDULE_SECONDS = 0.1, 10.0
"""Share of the time left (and most seconds) for the search of a schedule that fits."""
PLANNER_SHARE = 0.25
"""Share of the time left that ``auto`` gives the planner (at most :data:`PLANNER_SECONDS`)."""
PLANNER_SECONDS = 20.0
PLANNER_SHARE_RECOMPUTE = 0.15
"""The planner's share without offloading (at most half of :data:`PLANNER_SECONDS`)."""
PLANNER_HARD_SHARE = 0.6
"""With both techniques: the planner's first plan may take at most this share of the time left."""
RECOMPUTE_ONLY_SHARE = 0.5
"""With offloading and recomputation, when the planner finds no plan: the share of the time left for the
recomputation-only route (its plan is valid with offloading allowed; the offloading route then goes on)."""
RECOMPUTATION_ONLY = "auto-time (recomputation only)"
"""The source name of the recomputation-only route's plans in a request with offloading."""
RECOMPUTATIONS_RELOADED = "auto-time (recomputations reloaded)"
"""The source name of those plans with recomputations turned into reloads."""
RELOADS_SHARE = 0.5
"""Share of the time left for turning a recomputation-only plan's recomputations into reloads (its search
ends sooner on most graphs: GPT-2 with Adam at 0.4x 1.9 s; Llama-2-70B's shape with views at 0.8x, every
recomputation tried first, 21.4 % -> 0.10 % over Σ c in 4.5 s)."""
MODEL_BUILD_SHARE = 0.2
"""With offloading, the stage model is built only when its building would take at most this share of the time
left: a model that spends most of its time being built has little left to search, and the planner's moves go on
meanwhile (POET's model of ResNet-18 training with Adam at 0.4x its peak, 3.5 million variables and rows: built
in 139 s of a 300 s run, then 140 s of search that did not improve the planner's plan: `auto` ended at
21.24 ms, the planner alone at 20.40 ms — now `auto` too). A model built in at most :data:`MODEL_BUILD_SECONDS` is
built anyway (a 60-task graph's, about 1 s, at 5 s left)."""
MODEL_BUILD_SECONDS = 2.0
REST_SHARE = 0.75
"""With offloading: the share of the time left after the model that the planner's portfolio goes on for
(:func:`planner_rest`); the rest for turning its better plan's recomputations into reloads."""
BOUND_SHARE, BOUND_SECONDS = 0.05, 5.0
"""Share of the time left (and most seconds) for the recomputation bound."""
PAIR_SHARE, PAIR_SECONDS = 0.08, 8.0
"""Then for its programs of pairs of moments (up to 2,000 tasks; unused when they are solved sooner): GPT-2
(ATen, Adam) at 0.4x, the pair proves 30.0 % of Σ c in 3 s, 31.9 % in 30 s, where one moment proves 27.0 %."""
HIERARCHICAL_MIN_TASKS = 1000
"""From this many tasks, training graphs of repeated blocks (with recomputation) go to ``hierarchical``:
its first plan comes in seconds where this route's took 46 s on Llama-2-70B's shape (12,525 tasks), and on
GPT-2 small with Adam (1,177 tasks) it ended below this route's plan at 0.8x and 0.5x
(results/hierarchical.md). With offloading too (results/hierarchical-offload.md), GPT-2 with Adam and Llama-2-70B's
shape with views got the same values as the recomputation-only route followed by the planner (0.005 % over Σ c on
the 70B shape at 0.8x, where the route before ended at 4.9 %), in 16-60 s instead of 40-57 s. The shipped network
instances (at most 683 tasks) and the random layered graphs (no repeated block) keep this route."""


@dataclass(frozen=True)
class AutoTimeParams(Params):
    model: Literal["stage", "joint", "checkmate", "poet", "moccasin"] | None = option(
        None, "the one model to hand the warm start to (default: by the request's kind and size)")
    backend: Literal["cpsat", "highs", "cbc"] = option("cpsat", "solver of the stage models")
    hierarchical: bool = option(True, "route large training graphs of repeated blocks to 'hierarchical'")


def check_auto_time(req: Request) -> str | None:
    if req.objective == Objective.PEAK and req.pure:
        return "auto-time handles objective 'peak' only with --recompute or --offload (pure: auto-peak)"
    if req.offload and req.instance.machine.bandwidth is None:
        return "offloading needs machine.bandwidth"
    return None


def best_pure_schedule(req: Request, ctx: Context, *, fit: bool = False) -> tuple[Plan, int, int | None, str]:
    """The lowest-peak schedule found quickly: ``(plan, peak, proven_min_peak_or_None, source)``.

    ``fit``: only whether a schedule fits the budget matters (objective ``time``): stop at the first.
    The least-peak order found is remembered for the planner's candidates (``auto-peak`` runs once).
    """
    inst = req.instance
    order, peak, name = best_baseline(inst)
    plan = Plan.from_order(inst, order)
    if req.budget is not None and peak <= req.budget:
        return plan, peak, None, f"baseline:{name}"
    # stop as soon as the bound exceeds the budget or an order fits it (layered-n300-s2 at 0.8x: the
    # min-cut bound rules every schedule out in 0.14 s, where the search used to spend its whole slice)
    target = req.budget if fit else None
    out = ctx.run("auto-peak", Request(inst, Objective.PEAK), share=SCHEDULE_SHARE, cap=SCHEDULE_SECONDS,
                  target=target)
    source = f"baseline:{name}"
    if out.plan is not None:
        v = out.plan.task_order(inst)
        # remembered only when proven least-peak: a search stopped at the budget (``fit``) returns whatever it
        # held then, and would take the least-peak order's place among the planner's candidates (layered-n200
        # at 0.8x: 103,317 instead of the optimum 100,663)
        if v is not None and ctx.warm is not None and out.status == Status.OPTIMAL:
            ctx.warm.remember_order(inst, v)
        p = Request(inst, Objective.PEAK).evaluate(out.plan).peak
        if p < peak:
            plan, peak, source = out.plan, p, "auto-peak"
    return plan, peak, None if out.bound is None else int(out.bound), source


def run_auto_time(req: Request, ctx: Context) -> MethodOutput:
    """Fit the budget: a schedule that fits, else the planner + a warm-started model."""
    p: AutoTimeParams = ctx.params
    inst = req.instance
    stats = ctx.stats
    if p.model is not None:
        _model_for(req, p, ctx)  # a wrong option is an input error, whatever route the request takes
    if req.objective == Objective.TIME and _hierarchical_route(req, p):
        # a large training graph of repeated blocks: a baseline schedule that fits is optimal, else the chain DP
        order, peak, name = best_baseline(inst)
        stats["best_schedule_peak"] = peak
        if peak <= req.budget:
            stats["route"] = f"schedule within the budget (baseline:{name})"
            return MethodOutput(Plan.from_order(inst, order), Status.OPTIMAL, inst.total_time,
                                method=f"auto-time/baseline:{name}")
        stats["route"] = "hierarchical (a large graph of repeated blocks)"
        out = ctx.run("hierarchical", req)
        return MethodOutput(status=Status.OPTIMAL if ctx.incumbent.proven else out.status, stats=out.stats,
                            message=out.message if ctx.incumbent.plan is None else None,
                            method="auto-time/hierarchical")
    if req.objective == Objective.TIME:
        plan, peak, proven, source = best_pure_schedule(req, ctx, fit=True)
        stats["best_schedule_peak"] = peak
        if peak <= req.budget:
            stats["route"] = f"schedule within the budget ({source})"
            return MethodOutput(plan, Status.OPTIMAL, inst.total_time, method=f"auto-time/{source}")
        if proven is not None and proven > req.budget:
            stats["schedule_bound"] = proven
        if req.pure:
            if proven is not None and proven > req.budget:
                return MethodOutput(status=Status.INFEASIBLE, message=(
                    f"no schedule fits: the peak of every schedule is at least {proven} > budget {req.budget}"))
            return MethodOutput(message=f"no schedule found within the budget {req.budget} (best peak {peak})")
        warm = _planner(req, ctx)
        stats["warm_start"] = "planner" if warm is not None else "none"
        if warm is None and req.recompute and req.offload:
            # a plan that only recomputes is a plan here too, and its recomputations may become reloads: the
            # recomputation-only route when the planner finds no plan, where its packing of transfers runs out
            # of time (GPT-2 medium with Adam, 0.4x: nothing in 30 s with offloading, 15.5 % without)
            rec = Request(inst, req.objective, req.budget, req.max_makespan, True, False)
            _recomputation_only(rec, req, ctx)
        elif warm is not None and req.recompute and req.offload:
            # the planner's plan with its recomputations turned into reloads where the channel has room
            reload_recomputations(req, ctx.incumbent.plan, ctx, RECOMPUTATIONS_RELOADED)
        if ctx.incumbent.source in (RECOMPUTATION_ONLY, RECOMPUTATIONS_RELOADED):
            stats["warm_start"] = ctx.incumbent.source.removeprefix("auto-time ").strip("()")
        if req.recompute and not req.offload:
            # no schedule fits: how much recomputation the budget forces at one moment (a bound;
            # after the planner, whose first plan comes in a fraction of a second)
            proof = recomputation_bound(req, ctx)
            if proof is not None:
                return proof
    else:
        plan, peak, proven, source = best_pure_schedule(req, ctx)
        if req.evaluate(plan).valid:
            ctx.offer(plan, f"auto-time ({source})")
            stats["warm_start"] = source
        else:
            stats["warm_start"] = "planner" if _planner(req, ctx) is not None else "none"
    if ctx.incumbent.proven:
        stats["route"] = "the best plan meets the bound"
        return MethodOutput(status=Status.OPTIMAL, method="auto-time/planner")
    name = _model_for(req, p, ctx)
    if name == "moccasin" and p.model is None and not ctx.deadline.limited:
        name = "checkmate"  # without a time limit: the model whose search ends (Moccasin's rarely does)
    if not ctx.catalog.fits(name, req, p.backend if name in STAGE_MODELS else None):
        stats["model_skipped"] = f"{name}: the instance's numbers do not fit its solver exactly"
        planner_rest(req, ctx)
        return MethodOutput(method="auto-time/planner")
    if ctx.deadline.expired():
        # the planner may go on past its share to its first plan, up to the run's end: no model starts then
        # (its warm start and the first steps of its build took 1.8 s past a 30 s limit on 20,005 tasks)
        stats["model_skipped"] = f"{name}: no time left"
        return MethodOutput(method="auto-time/planner")
    if name == "moccasin" and p.model is None and ctx.incumbent.plan is not None:
        # Checkmate on the best plan's order first, for a slice: on mid-sized graphs it proves its
        # (fixed-order) optimum in a second and auto stops there; else its best plan seeds Moccasin,
        # which searches the order too
        pre = ctx.run("checkmate", req, share=CHECKMATE_SHARE, cap=60.0, backend=p.backend)
        stats["checkmate_status"] = pre.stats.get("model_status")
        if pre.stats.get("model_status") == "optimal" or ctx.incumbent.proven or ctx.deadline.expired():
            stats["model"] = "checkmate"
            return MethodOutput(status=Status.OPTIMAL if ctx.incumbent.proven else Status.FEASIBLE,
                                stats=pre.stats, method="auto-time/checkmate")
    kw = {"backend": p.backend} if name in STAGE_MODELS else {}
    if req.offload and name in STAGE_MODELS and p.model is None:
        # (the planner goes on after it: planner_rest)
        left = ctx.deadline.remaining()
        kw["build_share"] = min(1.0, max(MODEL_BUILD_SHARE, MODEL_BUILD_SECONDS / left)) if left > 0 else 1.0
    if name == "moccasin" and stats.get("recompute_bound"):
        kw["floor"] = inst.total_time + stats["recompute_bound"]  # Moccasin stops when it meets the bound
    out = ctx.run(name, req, **kw)
    stats["model"] = name
    planner_rest(req, ctx)
    if "build_share" in kw and "not_built" in out.stats and not ctx.deadline.expired() \
            and not ctx.incumbent.proven:
        # the planner's search ended before the time did (its moves ran out of new orders): the model gets
        # what is left, from the best plan, however much of it the building takes
        stats["model_first_skipped"] = out.stats["not_built"]
        del kw["build_share"]
        out = ctx.run(name, req, **kw)
    return MethodOutput(status=Status.OPTIMAL if ctx.incumbent.proven else Status.FEASIBLE, stats=out.stats,
                        message=out.message if ctx.incumbent.plan is None else None, method=f"auto-time/{name}")


def _recomputation_only(rec: Request, req: Request, ctx: Context) -> None:
    """``auto-time`` on ``rec`` (``req`` without offloading) for its share of the time; its plan offered, then
    the same plan with recomputations turned into reloads (:func:`offload_recomputations`, a share of the
    time left)."""
    sub = ctx.run("auto-time", rec, share=RECOMPUTE_ONLY_SHARE)
    ctx.stats["recomputation_only"] = "a plan" if sub.plan is not None else "no plan"
    if sub.plan is not None:
        ctx.offer(sub.plan, RECOMPUTATION_ONLY)
        reload_recomputations(req, sub.plan, ctx, RECOMPUTATIONS_RELOADED)


def reload_recomputations(req: Request, plan: Plan, ctx: Context, source: str) -> None:
    """Offer ``plan`` (which may transfer already) with recomputations turned into reloads, for :data:`RELOADS_SHARE`
    of the time left (the search usually ends sooner); ``stats["reloads"][source]`` says what it gained (one
    entry per pass: ``hierarchical`` runs it on its chain plan and on the planner's)."""
    if not req.offload or ctx.deadline.expired():
        return
    t0 = time.perf_counter()
    before = req.evaluate(plan).makespan
    out = offload_recomputations(req, plan, deadline=ctx.deadline.share(RELOADS_SHARE),
                                 on_improve=lambda p, _: ctx.offer(p, source))
    ctx.stats.setdefault("reloads", {})[source] = entry = {
        "before": before, "after": None if out is None else out[1],
        "reloads": 0 if out is None else out[0].count(RELOAD), "seconds": round(time.perf_counter() - t0, 3)}
    ctx.note("recomputations turned into reloads (%s): %s -> %s, %d reloads, %.1f s", source, entry["before"],
             entry["after"] if entry["after"] is not None else "no gain", entry["reloads"], entry["seconds"])


def recomputation_bound(req: Request, ctx: Context) -> MethodOutput | None:
    """The recomputation bound (:mod:`memopt.exact.recompute_bound`) for a share of the time: offered as a
    bound; the ``infeasible`` answer when it proves that no plan fits the budget, else ``None``."""
    inst = req.instance
    rb = recompute_bound(inst, req.budget, max_tasks=4, threads=ctx.threads,
                         deadline=ctx.deadline.share(BOUND_SHARE, BOUND_SECONDS),
                         pairs=ctx.deadline.share(BOUND_SHARE + PAIR_SHARE, BOUND_SECONDS + PAIR_SECONDS),
                         best=ctx.incumbent.value)
    ctx.stats.update(recompute_bound=rb.extra, recompute_bound_seconds=round(rb.seconds, 3))
    if rb.infeasible_at is not None:
        return MethodOutput(status=Status.INFEASIBLE, message=(
            f"no plan fits the budget {req.budget}: at the first computation of task "
            f"{inst.tasks[rb.infeasible_at].id!r} no set of data held in memory and recomputed later "
            "fits (recomputation bound)"))
    if rb.extra:
        ctx.prove(inst.total_time + rb.extra, "recomputation bound")
    return None


def _hierarchical_route(req: Request, p: AutoTimeParams) -> bool:
    """Recomputation (offloading too or not), no model asked for, at least :data:`HIERARCHICAL_MIN_TASKS`
    tasks and a training graph of repeated blocks (:func:`memopt.graph.structure.has_repeated_blocks`)."""
    return (p.hierarchical and p.model is None and req.recompute
            and req.instance.n >= HIERARCHICAL_MIN_TASKS and has_repeated_blocks(req.instance))


def _model_for(req: Request, p: AutoTimeParams, ctx: Context) -> str:
    """Option ``model`` if given (checked against the request), else by the request's kind and size."""
    if p.model is not None:
        why = ctx.catalog[p.model].refuse(req)
        if why:
            raise MemoptError(f"auto: model {p.model!r} cannot solve this request: {why}")
        return p.model
    if req.pure:
        return "stage"
    if req.instance.n <= JOINT_MAX_TASKS:
        return "joint"
    if req.offload:
        return "poet"
    return "moccasin" if req.objective == Objective.TIME else "checkmate"


def planner_rest(req: Request, ctx: Context) -> None:
    """With offloading, the time a run has left after its model: the planner's portfolio goes on (its next
    pairs, restarts and moves of the best plan's order) for :data:`REST_SHARE` of it; when that improves the
    answer, its recomputations are turned into reloads, and the portfolio goes on with what that leaves.
    POET's model of ResNet-18 training with Adam at 0.4x would take 139 s to build: the run ended after 16 s
    of 60 at 101.2 % over Σ c."""
    if not req.offload or ctx.incumbent.proven or ctx.deadline.expired() or ctx.incumbent.plan is None:
        return
    before = ctx.incumbent.value
    for share in (REST_SHARE, 1.0):  # (then what the reloads leave: their search often ends at once)
        if ctx.deadline.expired() or ctx.incumbent.proven:
            break
        res = _portfolio(req, ctx, ctx.deadline.share(share), "planner (time left)")
        ctx.stats["planner_rest"] = {"moves": res.moves_done, "improved_by_moves": res.improved_by_moves,
                                     "walker_moves": res.walker_moves, "improved_by_walker": res.improved_by_walker,
                                     "before": before, "after": ctx.incumbent.value}
        if req.recompute and share < 1 and ctx.incumbent.source == "planner (time left)" \
                and ctx.incumbent.value < before:
            reload_recomputations(req, ctx.incumbent.plan, ctx, "planner (time left, reloads)")


def _planner(req: Request, ctx: Context) -> Plan | None:
    """The planner's portfolio, with more time than a model's warm start gets: on large graphs with
    offloading its plan is most of the answer (MobileNetV2 training, offloading at 0.9x: the whole
    portfolio, 9 s, found 11.5 % overhead where its first 5 s found 13.8 % and the model did not improve it)."""
    # with recomputation only the models improve on the planner more than its restarts do
    # (layered-n300-s2 at 0.8x: 200 restarts, 13 s, took it from 6.97 % to 6.94 %)
    share, cap = (PLANNER_SHARE, PLANNER_SECONDS) if req.offload else (PLANNER_SHARE_RECOMPUTE, PLANNER_SECONDS / 2)
    # past its share the planner goes on to its first plan, up to the run's end; with both techniques only up
    # to PLANNER_HARD_SHARE of the time left: the recomputation-only route needs the rest when it finds none
    if req.recompute and req.offload:
        dl = ctx.deadline.bounded_share(share, cap, PLANNER_HARD_SHARE, floor=0.05)
    else:
        dl = ctx.deadline.share(share, cap, floor=0.05)
    return _portfolio(req, ctx, dl, "planner").plan


def _portfolio(req: Request, ctx: Context, dl: Deadline, source: str) -> PlannerResult:
    """The run's planner portfolio for ``req`` continued until ``dl`` (the warm starts keep it between calls),
    each improvement offered as ``source``: as many randomised restarts as the ``planner`` method makes
    (ResNet-50 training, offloading at 0.9x: 2.8 % overhead after its restarts, 6.5 % with a warm start's
    20), and with offloading moves of the best order."""
    orders = ctx.warm.orders(req.instance, ctx) if ctx.warm is not None else None
    return continue_portfolio(req, ctx, orders, None, deadline=dl, restarts=DEFAULT_METHOD_RESTARTS,
                              moves=default_moves(req, dl), on_improve=lambda plan, _: ctx.offer(plan, source))


__all__ = ["HIERARCHICAL_MIN_TASKS", "JOINT_MAX_TASKS", "MODELS", "AutoTimeParams", "best_pure_schedule",
           "check_auto_time", "planner_rest", "recomputation_bound", "reload_recomputations", "run_auto_time"]
