"""``auto-time``: fit a memory budget at the least time (and the peak under a time limit).

Objective ``time`` (``auto`` delegates here), each step only when the
previous ones did not settle the request:

1. **a schedule that fits**: the best baseline order, then the exact peak
   strategy (``auto-peak``, a tenth of the time): a pure schedule within the
   budget has makespan Σ c(v), the lower bound — optimal, no overhead. When
   ``auto-peak`` proves that no schedule fits and the request is pure, the
   answer is ``infeasible`` with that bound;
2. **the warm start**: the budget planner
   (:func:`memopt.heuristics.budget.plan_under_budget`), which evicts data
   and recomputes or offloads them (a quarter of the time left, at most
   20 s: its whole portfolio on graphs of a few hundred tasks);
3. **a stage model** seeded with it: the joint model (free order) for
   graphs of up to :data:`JOINT_MAX_TASKS` tasks, else the fixed-order
   model (Checkmate, or POET with offloading) on the warm start's order,
   CP-SAT by default (``backend=``).

Objective ``peak`` with recomputation or offloading (and ``max_makespan``):
the exact pure peak (``auto-peak``) is the warm start, then the same stage
model minimises the peak. Pure ``peak`` requests belong to ``auto-peak``.

The best plan found is returned whatever happens; the bound is the
problem's (Σ c(v), or ``auto-peak``'s for pure requests), the model's bound
is in ``stats``.
"""

from __future__ import annotations

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


def best_pure_schedule(req: Request, opts: SolveOptions, share: float = 0.1, cap: float = 10.0):
    """The lowest-peak schedule found quickly: ``(plan, peak, proven_min_peak_or_None, source)``."""
    inst = req.instance
    order, peak, name = best_baseline(inst)
    plan = Plan.from_order(inst, order)
    if req.budget is not None and peak <= req.budget:
        return plan, peak, None, f"baseline:{name}"
    info = methods().get("auto-peak")
    proven = None
    source = f"baseline:{name}"
    if info is not None:
        sub = Request(inst, "peak", budget=None)
        out = info.run(sub, _sub_options(opts, _slice(opts, share, cap)))
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
    if req.objective == "time":
        plan, peak, proven, source = best_pure_schedule(req, opts)
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
    else:
        plan, peak, proven, source = best_pure_schedule(req, opts)
        warm = plan if req.evaluate(plan).valid else _planner(req, opts)
        stats["warm_start"] = source if warm is plan else "plan_under_budget"
    if warm is not None:
        ev = req.evaluate(warm)
        opts.improved(value=req.value(ev), what="warm start")
    name = _model_for(req)
    sub = _sub_options(opts, opts.time_limit, backend=opts.option("backend", "cpsat"))
    sub.start = opts.start  # the same deadline
    sub.warm_start = warm if warm is not None else False
    out = methods()[name].run(req, sub)
    if sub.first_plan_seconds is not None and opts.first_plan_seconds is None:
        opts.first_plan_seconds = sub.first_plan_seconds
    out.stats = {**stats, **out.stats, "model": name}
    out.method = f"auto-time/{name}"
    if out.plan is None and warm is not None:
        out.plan, out.status = warm, "feasible"
    return out


def _model_for(req: Request) -> str:
    if req.pure:
        return "stage"
    if req.instance.n <= JOINT_MAX_TASKS:
        return "joint"
    return "poet" if req.offload else "checkmate"


PLANNER_SHARE = 0.25
"""Share of the time left that ``auto`` gives the planner (at most :data:`PLANNER_SECONDS`)."""
PLANNER_SECONDS = 20.0


def _planner(req: Request, opts: SolveOptions) -> Plan | None:
    """The planner's portfolio, with more time than a model's warm start gets: on large graphs with
    offloading its plan is most of the answer (MobileNetV2 training, offloading at 0.9x: the whole
    portfolio, 9 s, found 11.5 % overhead where its first 5 s found 13.8 % and the model did not improve it)."""
    from ..heuristics.budget import DEFAULT_METHOD_RESTARTS, plan_under_budget

    limit = PLANNER_SECONDS
    if opts.time_limit is not None:
        limit = max(0.05, min(limit, PLANNER_SHARE * opts.remaining()))
    # as many randomised restarts as the ``planner`` method makes (ResNet-50 training, offloading at
    # 0.9x: 2.8 % overhead after its restarts, 6.5 % with a warm start's 20)
    report = (lambda ms: opts.improved(value=ms, what="planner")) if req.objective == "time" else None
    plan = plan_under_budget(req, time_limit=limit, restarts=DEFAULT_METHOD_RESTARTS, on_improve=report)
    if plan is not None and req.evaluate(plan).valid:
        return plan
    return None


__all__ = ["run_auto_time", "best_pure_schedule", "JOINT_MAX_TASKS"]
