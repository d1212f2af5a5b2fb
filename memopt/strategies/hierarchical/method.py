"""``hierarchical``: fit a budget on large training graphs through their repeated blocks.

0. **Views** (:mod:`memopt.transforms.views`): tasks that cost and hold
   nothing (aliasing ops kept by ``keep_views``) are contracted, an exact
   reduction; the steps below run on the rest and every plan is expanded.
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
   better start. With views contracted (step 0), on graphs of up to
   ``flat_tasks`` tasks, it runs on the graph with its views as well (its
   plans without their views are plans here: its orders differ, and so do
   its plans, either way).
5. **Polish** (:mod:`.window`): windows of the best plan re-solved by the
   stage model on their order (Checkmate) or Moccasin (free order), warm-
   started from the window's computes; each improvement is offered.
6. **The flat models** when the windows stall with time left (graphs of up
   to ``flat_tasks`` tasks): Checkmate on the best plan's order, then
   Moccasin, both warm-started from it — ``auto``'s last steps. When steps
   1-4 found no plan at all, flat ``auto-time`` gets the time left.
7. **With offloading**, the time left (the windows do not move transfers):
   the flat planner's portfolio goes on, with moves of its best plan's
   order (:func:`memopt.strategies.auto_time.planner_rest`).

With offloading allowed and no chain plan, a plan that offloads every datum
once made (:func:`memopt.heuristics.offload_all.offload_all_plan`) is
offered at once, a safety net the steps below replace. The best chain
plan's recomputations are turned into reloads where the channel hides them
(:func:`memopt.heuristics.planner.offload_recomputations`), after step 3,
and the flat planner of step 4 offloads too.

Bounds: Σ c(v) and, for graphs up to ``bound_tasks`` tasks, the
recomputation bound (:mod:`memopt.exact.recompute_bound`). Objective
``time`` with recomputation (offloading may be allowed). See
docs/hierarchical.md.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Literal

from memopt.core.incumbent import Incumbent
from memopt.core.method import Context, MethodOutput
from memopt.core.params import Params, option
from memopt.core.request import Request
from memopt.core.status import Objective, Status
from memopt.core.units import Units
from memopt.heuristics.offload_all import offload_all_plan
from memopt.strategies.auto_time import PLANNER_SECONDS as OFFLOAD_PLANNER_SECONDS
from memopt.strategies.auto_time import PLANNER_SHARE as OFFLOAD_PLANNER_SHARE
from memopt.strategies.auto_time import planner_rest, recomputation_bound, reload_recomputations
from memopt.strategies.hierarchical.lns import polish
from memopt.strategies.hierarchical.options import subset_options
from memopt.strategies.hierarchical.run import ChainRun
from memopt.strategies.hierarchical.sequence import plan_from_sequence
from memopt.transforms.views import ViewContraction, contract_views

PLANNER_SHARE, PLANNER_SECONDS = 0.15, 10.0
"""Share of the time (and most seconds) for the flat planner (with offloading: ``auto``'s, 0.25 and 20 s)."""
CHECKMATE_SHARE = 0.3
"""Share of the time left for Checkmate (on the best plan's order) when the windows stall, before Moccasin."""
FIRST_SHARE = 0.3
"""Share of the time left that each first chain DP may take."""
OPTIONS_SHARE, OPTIONS_SECONDS = 0.25, 20.0
"""Share of the time (and most seconds) for the richer menus of options."""


@dataclass(frozen=True)
class HierarchicalParams(Params):
    segments: str = option("16,32", "forward segments the chain aims at, one DP per value (comma-separated)")
    annotations: bool = option(True, "cut the forward pass where the tasks' group annotation changes")
    planner: bool = option(True, "also run the flat budget planner for a share of the time")
    window: int = option(24, "tasks per window of the polishing search (0: no polishing)")
    lns_model: Literal["checkmate", "moccasin", "both"] = option("checkmate", "the model of each window")
    bound_tasks: int = option(50000, "largest graph given the recomputation bound (a CP-SAT per critical task)")
    flat_tasks: int = option(3000, "largest graph given the flat models (Checkmate, then Moccasin) when the "
                                   "windows stall")


def check_hierarchical(req: Request) -> str | None:
    if req.objective != Objective.TIME:
        return "method 'hierarchical' minimises the time under a budget (objective 'time')"
    if not req.recompute:
        return "method 'hierarchical' needs --recompute"
    if req.offload and req.instance.machine.bandwidth is None:
        return "offloading needs machine.bandwidth"
    return None


def run_hierarchical(req: Request, ctx: Context) -> MethodOutput:
    """Repeated blocks: a chain DP over block options (rotor/Rockmate), then windows re-solved exactly."""
    tf = contract_views(req)
    if isinstance(tf, ViewContraction):
        return _on_contracted(tf, ctx)
    return _solve(req, ctx)


def _solve(req: Request, ctx: Context, views: ViewContraction | None = None) -> MethodOutput:
    """Steps 1-6 of the module docstring on ``req`` (``views``: how it came from the graph with its views)."""
    p: HierarchicalParams = ctx.params
    inst = req.instance
    stats = ctx.stats
    t0 = time.perf_counter()
    chains = stats.setdefault("chains", {})
    runs: list[ChainRun] = []
    # 1. the first plan: each segmentation with the quick menus
    for target in _targets(p.segments):
        if ctx.deadline.expired():
            break
        run = ChainRun(req, target, p.annotations, chains.setdefault(str(target), {}))
        if any(r.structure.starts == run.structure.starts for r in runs):
            chains[str(target)] = {"same segments as": str(runs[0].info.get("target"))}
            continue
        run.info["target"] = target
        if run.start(ctx.deadline):
            run.solve(ctx, "first menus", ctx.deadline.share(FIRST_SHARE))
            runs.append(run)
        ctx.note("chain of %d groups (%d forward segments aimed at): %s", run.chain.k, target, _dp_outcome(run))
        if ctx.incumbent.plan is not None and "first_plan_seconds" not in stats:
            stats["first_plan_seconds"] = round(time.perf_counter() - t0, 3)
    # 2. richer menus on the best segmentation: every tape (the exact Pareto set of tapes when a block has
    # few candidates; greedy on marginal recomputation time otherwise)
    runs.sort(key=lambda r: math.inf if r.value is None else r.value)
    for run in runs[:1]:
        dl = ctx.deadline.share(OPTIONS_SHARE, OPTIONS_SECONDS)
        if run.enrich(lambda g, r=run, d=dl: subset_options(r.chain, g, r.pos, deadline=d), dl):
            run.solve(ctx, "every tape", dl)
            ctx.note("every tape on the best chain: %s", _dp_outcome(run))
    fallback = None
    if req.offload and ctx.incumbent.plan is None:
        # no chain plan (the optimizer's states must move): every datum offloaded once made, a plan in a
        # second while the planner's first takes 16 s (Llama-2-70B's shape with views at 0.4x: 362 % over Σ c);
        # a safety net only: the steps below run as if there were no plan
        fallback = offload_all_plan(req, inst.topological_order)
        if ctx.offer(fallback, "hierarchical (every datum offloaded)"):
            stats.setdefault("first_plan_seconds", round(time.perf_counter() - t0, 3))
            ctx.note("no chain plan: every datum offloaded, a first plan (a safety net)")
    # with offloading: the best chain plan with recomputations turned into reloads where the channel hides
    # them (Llama-2-70B's shape with views at 0.8x: 21.4 % -> 0.10 % over Σ c in 4.5 s)
    chained = [r for r in runs if r.sequence is not None]
    if req.offload and chained:
        best = min(chained, key=lambda r: r.value)
        reload_recomputations(req, plan_from_sequence(inst, best.sequence), ctx, "hierarchical (reloads)")
    # 3. the flat planner: the better start where the chain is poor (long skips pinned)
    if p.planner and not ctx.deadline.expired():
        # with offloading its plan is often the answer: auto's share of the time for it (GPT-2 medium with Adam
        # at its least peak, 30 s: 19.2 % over Σ c with that share, 21.3 % with 0.15)
        share, cap = (OFFLOAD_PLANNER_SHARE, OFFLOAD_PLANNER_SECONDS) if req.offload else (PLANNER_SHARE,
                                                                                          PLANNER_SECONDS)
        own = ctx.run("planner", req, share=share, cap=cap).own  # its own best, even where the chain's is better
        stats["planner"] = "plan" if own is not None else "none"
        ctx.note("flat planner: %s", "a plan" if own is not None else "no plan")
        planned = [] if own is None else [own]
        large_views_ok = req.offload and ctx.deadline.remaining() >= ctx.deadline.elapsed()
        if views is not None and (views.original.instance.n <= p.flat_tasks or large_views_ok) \
                and not ctx.deadline.expired():
            # its portfolio on the graph with its views as well: the baseline orders differ there, and so do
            # the plans, either way (the zoo at batch 8, 10 s: better on U-Net 0.6 and 0.8, ViT 0.8, GPT-2 0.6,
            # Llama 0.8 and 0.6, MobileNetV2 0.4, worse on ViT 0.6 and GPT-2 0.8; at GPT-2 0.4 no plan at all).
            # Larger graphs only with offloading, where the planner's plan is the answer, and while half the
            # time is left (its first run there costs about what the first one did): Llama-2-70B's shape with
            # views at 0.4x, 57.16 % -> 57.08 % over Σ c (flat auto's)
            out = ctx.run("planner", views.original, share=share, cap=cap)
            if out.plan is not None:
                planned.append(views.restrict(out.plan))
            kept = out.plan is not None and ctx.offer(planned[-1], "planner (views kept)")
            stats["planner_views"] = "better" if kept else "plan" if out.plan is not None else "none"
            ctx.note("flat planner on the graph with its views: %s", stats["planner_views"])
        if req.offload and planned:
            # the planner's plan recomputes too, with the channel mostly idle (GPT-2 with Adam at 0.4x: 14.5 %
            # of Σ c recomputed, the channel busy 24 % of it): the same pass (17.2 % -> 14.9 % in 9 s) — on its
            # best plan even when the chain's plan with reloads is better (ResNet-50 with Adam and views at
            # 0.8x: the planner's 3.0 % becomes 2.1 %, the chain's stays 2.9 %)
            best_planned = min(planned, key=lambda q: req.evaluate(q).makespan)
            reload_recomputations(req, best_planned, ctx, "hierarchical (reloads of the planner's plan)")
    # 4. bounds
    if not req.offload and inst.n <= p.bound_tasks and not ctx.deadline.expired():
        proof = recomputation_bound(req, ctx)  # (a plan found proves the opposite: never both)
        if proof is not None:
            return proof
    ctx.prove(inst.total_time, "every task runs once")
    if (ctx.incumbent.plan is None or ctx.incumbent.plan is fallback) and not ctx.deadline.expired():
        # neither the chain nor the planner found a plan: the flat route gets the time left rather than
        # none (ResNet-50, ATen with Adam and views, at 0.4x: the method stopped after 21 s of 60)
        ctx.note("no plan from the chain or the planner: the flat route for the time left")
        out = ctx.run("auto-time", req, hierarchical=False)
        found = ctx.incumbent.plan is not None and ctx.incumbent.plan is not fallback
        stats["flat_route"] = "plan" if found else "none"
        if out.status == Status.INFEASIBLE:
            return out
    if ctx.incumbent.plan is None:
        return MethodOutput(message="no plan found: the chain DP has no rotor sequence within the budget, "
                                    "and the flat route found none in the time left")
    if ctx.incumbent.proven:
        return MethodOutput(status=Status.OPTIMAL)
    # 5. polish the best plan window by window
    if p.window > 0:
        polish(req, ctx, window=p.window, model=p.lns_model)
    # 6. time left (the windows stall): the flat models from the best plan, as auto's route runs them
    if not ctx.incumbent.proven and not ctx.deadline.expired() and ctx.deadline.remaining() > 2 \
            and inst.n <= p.flat_tasks and ctx.incumbent.plan is not None and not req.offload:
        if ctx.catalog.fits("checkmate", req):
            ctx.run("checkmate", req, share=CHECKMATE_SHARE)
        if not ctx.incumbent.proven and not ctx.deadline.expired() and ctx.catalog.fits("moccasin", req):
            floor = ctx.incumbent.bound if ctx.incumbent.bound and ctx.incumbent.bound > inst.total_time else None
            ctx.run("moccasin", req, **({"floor": int(floor)} if floor is not None else {}))
        stats["flat_models"] = True
    # 7. with offloading, the time left (the windows do not move transfers): the flat planner's portfolio goes
    # on, its best order searched (auto's route ends the same way)
    if p.planner:
        planner_rest(req, ctx)
    return MethodOutput(status=Status.OPTIMAL if ctx.incumbent.proven else Status.FEASIBLE)


def _on_contracted(tf: ViewContraction, ctx: Context) -> MethodOutput:
    """Solve the request without its views (an exact reduction: their tasks cost and hold nothing), each
    plan expanded and offered at once, each bound carried over. With every view kept the chain and the flat
    route found no plan for GPT-2 (ATen, Adam, 2,189 tasks) at 0.4x, where the same graph without its views
    (1,177 tasks, the same budget) has one."""
    red = tf.request
    sub = Incumbent(red, ctx.deadline, level=logging.DEBUG,
                    formatter=Units.of(red.instance).formatter(str(red.objective)))
    offered: list = [None]

    def forward(inc: Incumbent) -> None:
        if inc.plan is not None and inc.plan is not offered[0]:
            offered[0] = inc.plan
            ctx.offer(tf.expand(inc.plan), "hierarchical (views contracted)")
        if inc.bound is not None:
            ctx.prove(tf.unscale(inc.bound), f"{inc.bound_source} (views contracted)")

    sub.listen(forward)
    ctx.stats["views_contracted"] = tf.original.instance.n - red.instance.n
    inner = ctx.child(incumbent=sub)
    out = _solve(red, inner, views=tf)
    forward(sub)
    ctx.stats.update(inner.stats)
    if out.status == Status.INFEASIBLE:
        return MethodOutput(status=Status.INFEASIBLE, message=out.message)
    if ctx.incumbent.plan is None:
        return MethodOutput(message=out.message)
    return MethodOutput(status=Status.OPTIMAL if ctx.incumbent.proven else Status.FEASIBLE)


def _dp_outcome(run: ChainRun) -> str:
    """The chain DP's last word, for the log."""
    if run.value is not None:
        return f"a plan of makespan {run.value}"
    return run.info.get("dp") or run.info.get("error") or "no plan"


def _targets(text: str) -> list[int]:
    out = []
    for x in str(text).replace(";", ",").split(","):
        x = x.strip()
        if x:
            out.append(max(1, int(x)))
    return out or [32]


__all__ = ["HierarchicalParams", "check_hierarchical", "run_hierarchical"]
