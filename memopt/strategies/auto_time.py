"""``auto-time``: fit a memory budget at the least time (and the peak under a time limit).

Objective ``time`` (``auto`` delegates here), each step only when the
previous ones did not settle the request:

1. **a schedule that fits**: the best baseline order, then the exact peak
   strategy (``auto-peak``, a tenth of the time): a pure schedule within the
   budget has makespan Σ c(v), the lower bound — optimal, no overhead. When
   ``auto-peak`` proves that no schedule fits and the request is pure, the
   answer is ``infeasible`` with that bound;
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

The best plan found is returned whatever happens; the bound is the
problem's (Σ c(v), or ``auto-peak``'s for pure requests), the model's bound
is in ``stats``.
"""

from __future__ import annotations

import time
from typing import Any

from ..heuristics.orders import best_baseline
from ..plan import Plan
from ..solve import MethodOutput, Request, SolveOptions, methods, register_method

JOINT_MAX_TASKS = 40
"""Above this many tasks the free-order model is too large for a minute: fix the order."""


def _refuse(req: Request) -> str | None:
    if req.objective == "peak" and req.pure:
        return "auto-time handles objective 'peak' only with --recompute or --offload (pure: auto-peak)"
    if req.offload and req.instance.machine.bandwidth is None:
        return "offloading needs machine.bandwidth"
    return None


def _sub_options(opts: SolveOptions, seconds: float | None, **extra: Any) -> SolveOptions:
    return SolveOptions(time_limit=seconds, warm_start=opts.warm_start, threads=opts.threads, seed=opts.seed,
                        log=opts.log, extra={**opts.extra, **extra}, stream=opts.stream)


def _slice(opts: SolveOptions, share: float, cap: float) -> float:
    left = opts.remaining()
    return cap if left == float("inf") else max(0.05, min(cap, share * left))


def best_pure_schedule(req: Request, opts: SolveOptions, share: float = 0.1, cap: float = 10.0, fit: bool = False):
    """The lowest-peak schedule found quickly: ``(plan, peak, proven_min_peak_or_None, source)``.

    ``fit``: only whether a schedule fits the budget matters (objective ``time``): stop at the first.
    """
    inst = req.instance
    order, peak, name = best_baseline(inst)
    plan = Plan.from_order(inst, order)
    if req.budget is not None and peak <= req.budget:
        return plan, peak, None, f"baseline:{name}"
    info = methods().get("auto-peak")
    proven = None
    source = f"baseline:{name}"
    if info is not None:
        # with the budget, auto-peak stops as soon as its bound exceeds it or an order fits it
        # (layered-n300-s2 at 0.8x: the min-cut bound rules every schedule out in 0.14 s, where the
        # search used to spend its whole slice, 6 s of a minute, minimising a peak no plan can use)
        sub = Request(inst, "peak", budget=req.budget)
        out = info.run(sub, _sub_options(opts, _slice(opts, share, cap), fit=fit))
        if out.plan is not None:
            ev = sub.evaluate(out.plan)
            if ev.valid and ev.peak < peak:
                plan, peak, source = out.plan, ev.peak, "auto-peak"
        if out.bound is not None:
            proven = out.bound
    return plan, peak, proven, source


@register_method("auto-time", objectives=("time", "peak"), pure=True, recompute=True, offload=True, both=True,
                 exact=True, family="composite", check=_refuse,
                 description="fit the budget: a schedule that fits, else the planner + a warm-started stage model")
def run_auto_time(req: Request, opts: SolveOptions) -> MethodOutput:
    """Schedule if a schedule fits, else plan (evict/recompute/offload) and optimise a stage model."""
    inst = req.instance
    stats: dict[str, Any] = {}
    if opts.option("model") is not None:
        _model_for(req, opts)  # a wrong option is an input error, whatever route the request takes
    if req.objective == "time":
        plan, peak, proven, source = best_pure_schedule(req, opts, fit=True)
        stats["best_schedule_peak"] = peak
        if peak <= req.budget:
            opts.improved(value=inst.total_time, bound=inst.total_time, what=source)
            stats["route"] = f"schedule within the budget ({source})"
            return MethodOutput(plan, "optimal", inst.total_time, stats=stats, method=f"auto-time/{source}")
        if req.pure:
            if proven is not None and proven > req.budget:
                return MethodOutput(None, "infeasible", stats=stats, message=(
                    f"no schedule fits: the least peak of any schedule is {proven} > budget {req.budget}"))
            return MethodOutput(None, "unknown", stats=stats, message=(
                f"no schedule found within the budget {req.budget} (best peak {peak})"))
        warm = _planner(req, opts)
        stats["warm_start"] = "plan_under_budget" if warm is not None else "none"
        if req.recompute and not req.offload:
            # no schedule fits: how much recomputation the budget forces at one moment (a bound;
            # after the planner, whose first plan comes in a fraction of a second)
            from ..exact.recompute_bound import recompute_bound

            rb = recompute_bound(inst, req.budget, max_tasks=4, threads=opts.threads,
                                 deadline=time.perf_counter() + _slice(opts, 0.05, 5.0))
            stats.update(recompute_bound=rb.extra, recompute_bound_seconds=round(rb.seconds, 3))
            if rb.infeasible_at is not None:
                if warm is not None:  # the evaluator accepted a plan: the bound is wrong
                    raise RuntimeError("recomputation bound: no plan should fit, yet the planner's does")
                return MethodOutput(None, "infeasible", stats=stats, message=(
                    f"no plan fits the budget {req.budget}: at the first computation of task "
                    f"{inst.tasks[rb.infeasible_at].id!r} no set of data held in memory and recomputed later "
                    "fits (recomputation bound)"))
            if rb.extra:
                opts.improved(bound=inst.total_time + rb.extra, what="recomputation bound")
    else:
        plan, peak, proven, source = best_pure_schedule(req, opts)
        warm = plan if req.evaluate(plan).valid else _planner(req, opts)
        stats["warm_start"] = source if warm is plan else "plan_under_budget"
    time_bound = inst.total_time + (stats.get("recompute_bound") or 0)  # objective time: no plan does better

    def meets(plan: Plan) -> bool:
        return req.objective == "time" and req.value(req.evaluate(plan)) <= time_bound

    if warm is not None:
        opts.improved(value=req.value(req.evaluate(warm)), what="warm start")
        if meets(warm):
            stats["route"] = "planner's plan meets the bound"
            return _with_bound(MethodOutput(warm, "optimal", stats=stats, method="auto-time/planner"), req, stats)
    name = _model_for(req, opts)
    if name == "moccasin" and opts.option("model") is None and opts.time_limit is None:
        name = "checkmate"  # without a time limit: the model whose search ends (Moccasin's rarely does)
    if name == "moccasin" and opts.option("model") is None and warm is not None:
        # Checkmate on the warm start's order first, for a slice: on mid-sized graphs it proves its
        # (fixed-order) optimum in a second and auto stops there, as it always did; else its best
        # plan seeds Moccasin, which searches the order too
        first = _sub_options(opts, _slice(opts, CHECKMATE_SHARE, 60.0), backend=opts.option("backend", "cpsat"))
        first.warm_start = warm
        pre = methods()["checkmate"].run(req, first)
        if first.first_plan_seconds is not None and opts.first_plan_seconds is None:
            opts.first_plan_seconds = first.first_plan_seconds
        stats["checkmate_status"] = pre.stats.get("model_status")
        if pre.plan is not None and (pre.stats.get("model_status") == "optimal" or meets(pre.plan)):
            # its model proven optimal (auto's answer on mid-sized graphs), or a plan at the bound
            pre.stats = {**stats, **pre.stats, "model": "checkmate"}
            pre.method = "auto-time/checkmate"
            return _with_bound(pre, req, stats)
        if pre.plan is not None and req.value(req.evaluate(pre.plan)) < req.value(req.evaluate(warm)):
            warm = pre.plan
    floor = {}
    if name == "moccasin" and stats.get("recompute_bound"):
        floor = {"floor": time_bound}  # Moccasin stops when it meets the bound
    sub = _sub_options(opts, opts.time_limit, backend=opts.option("backend", "cpsat"), **floor)
    sub.start = opts.start  # the same deadline
    sub.warm_start = warm if warm is not None else False
    out = methods()[name].run(req, sub)
    if sub.first_plan_seconds is not None and opts.first_plan_seconds is None:
        opts.first_plan_seconds = sub.first_plan_seconds
    out.stats = {**stats, **out.stats, "model": name}
    out.method = f"auto-time/{name}"
    if out.plan is None and warm is not None:
        out.plan, out.status = warm, "feasible"
    return _with_bound(out, req, stats)


def _with_bound(out: MethodOutput, req: Request, stats: dict[str, Any]) -> MethodOutput:
    """Raise the answer's bound to Σ c(v) + the recomputation bound when that is higher."""
    extra = stats.get("recompute_bound") or 0
    if req.objective == "time" and extra and out.plan is not None:
        b = req.instance.total_time + extra
        out.bound = b if out.bound is None else max(out.bound, b)
    return out


MODELS = ("stage", "joint", "checkmate", "poet", "moccasin")
"""The models ``auto-time`` may hand the warm start to (option ``model``)."""


def _model_for(req: Request, opts: SolveOptions) -> str:
    """Option ``model`` if given (checked against the request), else by the request's kind and size."""
    asked = opts.option("model")
    if asked is not None:
        from ..errors import MemoptError

        if asked not in MODELS:
            raise MemoptError(f"auto: model {asked!r}: expected one of {', '.join(MODELS)}")
        info = methods()[asked]
        why = info.refuse(req)
        if why:
            raise MemoptError(f"auto: model {asked!r} cannot solve this request: {why}")
        return asked
    if req.pure:
        return "stage"
    if req.instance.n <= JOINT_MAX_TASKS:
        return "joint"
    if req.offload:
        return "poet"
    return "moccasin" if req.objective == "time" else "checkmate"


CHECKMATE_SHARE = 0.2
"""Share of the time left that Checkmate gets before Moccasin (recomputation only, above 40 tasks)."""

PLANNER_SHARE = 0.25
"""Share of the time left that ``auto`` gives the planner (at most :data:`PLANNER_SECONDS`)."""
PLANNER_SECONDS = 20.0
PLANNER_SHARE_RECOMPUTE = 0.15
"""The planner's share without offloading (at most half of :data:`PLANNER_SECONDS`)."""


def _planner(req: Request, opts: SolveOptions) -> Plan | None:
    """The planner's portfolio, with more time than a model's warm start gets: on large graphs with
    offloading its plan is most of the answer (MobileNetV2 training, offloading at 0.9x: the whole
    portfolio, 9 s, found 11.5 % overhead where its first 5 s found 13.8 % and the model did not improve it)."""
    from ..heuristics.budget import DEFAULT_METHOD_RESTARTS, plan_under_budget

    # with recomputation only the models improve on the planner more than its restarts do
    # (layered-n300-s2 at 0.8x: 200 restarts, 13 s, took it from 6.97 % to 6.94 %)
    share, cap = (PLANNER_SHARE, PLANNER_SECONDS) if req.offload else (PLANNER_SHARE_RECOMPUTE, PLANNER_SECONDS / 2)
    limit = cap
    if opts.time_limit is not None:
        limit = max(0.05, min(limit, share * opts.remaining()))
    # as many randomised restarts as the ``planner`` method makes (ResNet-50 training, offloading at
    # 0.9x: 2.8 % overhead after its restarts, 6.5 % with a warm start's 20)
    report = (lambda ms: opts.improved(value=ms, what="planner")) if req.objective == "time" else None
    plan = plan_under_budget(req, time_limit=limit, restarts=DEFAULT_METHOD_RESTARTS, on_improve=report)
    if plan is not None and req.evaluate(plan).valid:
        return plan
    return None


__all__ = ["JOINT_MAX_TASKS", "MODELS", "best_pure_schedule", "run_auto_time"]
