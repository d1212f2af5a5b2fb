"""The one entry point: :func:`solve`, and the registry of methods.

A *method* (a heuristic, an exact algorithm, a CP-SAT or MILP formulation)
is a function ``run(request, options) -> MethodOutput`` registered by name
with :func:`register_method`. Every module under ``memopt.heuristics``,
``memopt.exact``, ``memopt.formulations`` and ``memopt.strategies`` is imported
when the registry is first used, so a new formulation is one new module that
calls :func:`register_method`; nothing else changes.

:func:`solve` checks the request, runs the method, **evaluates the returned
plan** (the evaluator is the truth: the value reported is the evaluator's),
merges the method's bound with the simple bounds of :mod:`memopt.bounds`,
and sets the status honestly: ``optimal`` only when value == proven bound.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import pkgutil
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

from .bounds import budget_lower_bound, makespan_lower_bound, peak_lower_bound, task_footprint_bound
from .errors import MemoptError
from .evaluate import Evaluation, evaluate
from .instance import Instance
from .plan import Plan
from .result import Result

OBJECTIVES = ("peak", "time")


# ------------------------------------------------------------------ request
@dataclass(frozen=True)
class Request:
    """What to solve: the instance, the objective and the allowed techniques.

    - ``objective="peak"``: minimise the peak; with ``recompute``/``offload``
      and ``max_makespan`` T, subject to makespan ≤ T (SPEC §3).
    - ``objective="time"``: minimise the makespan subject to peak ≤ ``budget``.

    Scheduling is always free. ``budget`` defaults to the machine's.
    """

    instance: Instance
    objective: str = "peak"
    budget: int | None = None
    max_makespan: float | None = None
    recompute: bool = False
    offload: bool = False

    @property
    def pure(self) -> bool:
        """Scheduling only: each task once, no transfers."""
        return not self.recompute and not self.offload

    def evaluate(self, plan: Plan, trace: bool = False) -> Evaluation:
        """The evaluator, with this request's budget, limit and allowed techniques."""
        return evaluate(
            self.instance, plan, budget=self.budget, max_makespan=self.max_makespan,
            allow_recompute=self.recompute, allow_offload=self.offload, trace=trace,
            use_machine_budget=False,  # the request's budget is the whole truth (None: no budget)
        )

    def value(self, ev: Evaluation) -> int | float:
        return ev.value(self.objective)

    def lower_bound(self) -> tuple[int | float, str]:
        """A bound on the objective that holds for every valid plan, and why."""
        if self.objective == "time":
            return makespan_lower_bound(self.instance)
        return budget_lower_bound(self.instance, recompute=self.recompute, offload=self.offload)

    def infeasibility(self) -> str | None:
        """Why no plan can exist, when a static lower bound on the peak already shows it."""
        if self.budget is not None:
            lb, why = budget_lower_bound(self.instance, recompute=self.recompute, offload=self.offload)
            if lb > self.budget:
                return f"budget {self.budget} is below the lower bound {lb}: {why}"
        if self.max_makespan is not None and self.instance.total_time > self.max_makespan:
            return (f"time limit {self.max_makespan} is below the lower bound "
                    f"{self.instance.total_time}: every task runs at least once")
        return None


# ------------------------------------------------------------------ options
@dataclass
class SolveOptions:
    """How to solve: time limit, warm start, threads, logging, method options.

    Methods call :meth:`improved` whenever they find a better plan or bound;
    it records the time to the first plan and prints progress when ``log``.
    """

    time_limit: float | None = None
    warm_start: bool | Plan = True
    threads: int = 2
    seed: int = 0
    log: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    start: float = field(default_factory=time.perf_counter)
    first_plan_seconds: float | None = None
    stream: Any = None

    @property
    def deadline(self) -> float:
        """perf_counter() value at which the method must return (inf: none)."""
        return math.inf if self.time_limit is None else self.start + self.time_limit

    def remaining(self) -> float:
        """Seconds left before the deadline (inf when there is no limit)."""
        return max(0.0, self.deadline - time.perf_counter())

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def improved(self, value: float | None = None, bound: float | None = None, what: str = "") -> None:
        now = self.elapsed()
        if value is not None and self.first_plan_seconds is None:
            self.first_plan_seconds = now
        if self.log:
            parts = [f"{now:8.2f}s"]
            if value is not None:
                parts.append(f"value {value:g}")
            if bound is not None:
                parts.append(f"bound {bound:g}")
            if what:
                parts.append(what)
            print("  " + "  ".join(parts), file=self.stream or sys.stderr, flush=True)

    def option(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)


@dataclass
class MethodOutput:
    """What a method returns; :func:`solve` turns it into a :class:`Result`.

    ``bound`` must be a proven lower bound on the objective (``None``: none).
    ``status`` is the method's claim; :func:`solve` checks it against the
    evaluator and the bound.
    """

    plan: Plan | None
    status: str = "feasible"
    bound: int | float | None = None
    message: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    method: str | None = None  # set by composite methods (e.g. auto) to the method actually used


# ----------------------------------------------------------------- registry
@dataclass(frozen=True)
class MethodInfo:
    """A registered method and what it can solve."""

    name: str
    run: Callable[[Request, SolveOptions], MethodOutput]
    objectives: frozenset[str]
    pure: bool = True        # scheduling only (no recompute, no offload)
    recompute: bool = False  # can plan recomputation
    offload: bool = False    # can plan offloading
    both: bool | None = None  # recompute and offload together (default: recompute and offload)
    exact: bool = False      # can prove optimality
    family: str = "heuristic"  # heuristic | exact | cp | milp | composite
    description: str = ""
    requires: tuple[str, ...] = ()  # importable modules needed
    check: Callable[[Request], str | None] | None = None  # extra refusal reason

    def refuse(self, req: Request) -> str | None:
        """Why this method cannot solve ``req`` (``None``: it can)."""
        if req.objective not in self.objectives:
            return f"method {self.name!r} does not handle objective {req.objective!r}"
        if req.pure and not self.pure:
            return f"method {self.name!r} needs --recompute or --offload"
        both = self.both if self.both is not None else (self.recompute and self.offload)
        if req.recompute and req.offload and not both:
            return f"method {self.name!r} cannot combine recomputation and offloading"
        if req.recompute and not self.recompute:
            return f"method {self.name!r} does not plan recomputation"
        if req.offload and not self.offload:
            return f"method {self.name!r} does not plan offloading"
        for mod in self.requires:
            if importlib.util.find_spec(mod) is None:
                return f"method {self.name!r} needs the Python package {mod!r}"
        if self.check is not None:
            return self.check(req)
        return None


_REGISTRY: dict[str, MethodInfo] = {}
_LOADED = False
_PACKAGES = ("memopt.heuristics", "memopt.exact", "memopt.formulations", "memopt.strategies")


def register_method(
    name: str,
    *,
    objectives: Iterable[str] = ("peak",),
    **info: Any,
) -> Callable[[Callable[[Request, SolveOptions], MethodOutput]], Callable]:
    """Decorator registering ``run(request, options) -> MethodOutput`` as ``name``."""

    def deco(fn: Callable[[Request, SolveOptions], MethodOutput]) -> Callable:
        if name in _REGISTRY and _REGISTRY[name].run is not fn:
            raise RuntimeError(f"method {name!r} registered twice")
        if not info.get("description") and fn.__doc__:
            info["description"] = fn.__doc__.strip().splitlines()[0]
        _REGISTRY[name] = MethodInfo(name=name, run=fn, objectives=frozenset(objectives), **info)
        return fn

    return deco


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for pkg_name in _PACKAGES:
        try:
            pkg = importlib.import_module(pkg_name)
        except ModuleNotFoundError as e:
            if e.name == pkg_name:
                continue
            raise
        for mod in pkgutil.walk_packages(pkg.__path__, pkg_name + "."):
            importlib.import_module(mod.name)


def methods() -> dict[str, MethodInfo]:
    """Every registered method, by name."""
    _load_all()
    return dict(_REGISTRY)


def get_method(name: str) -> MethodInfo:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise MemoptError(f"unknown method {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def methods_for(req: Request, *, exact_only: bool = False) -> list[str]:
    """Names of the methods able to solve ``req``."""
    return sorted(n for n, m in methods().items()
                  if m.refuse(req) is None and (m.exact or not exact_only) and m.family != "composite")


# -------------------------------------------------------------------- solve
def parse_budget(budget: int | float | str | None, inst: Instance) -> int | None:
    """An absolute budget, or a ratio of the best baseline schedule's peak ("0.8x").

    Ratios follow the literature's protocol: ceil(r × peak).
    """
    if budget is None:
        return inst.machine.budget
    if isinstance(budget, str):
        s = budget.strip().lower()
        if s.endswith("x"):
            try:
                r = float(s[:-1])
            except ValueError:
                raise MemoptError(f"budget {budget!r}: expected a size like 1000 or a ratio like 0.8x") from None
            if r <= 0:
                raise MemoptError(f"budget {budget!r}: the ratio must be > 0")
            from .heuristics.orders import best_baseline

            peak = best_baseline(inst)[1]
            return math.ceil(r * peak)
        try:
            v = float(s)
        except ValueError:
            raise MemoptError(f"budget {budget!r}: expected a size like 1000 or a ratio like 0.8x") from None
        budget = v
    if isinstance(budget, float):
        if budget != int(budget):
            raise MemoptError(f"budget {budget!r} must be an integer size (or a ratio like 0.8x)")
        budget = int(budget)
    if budget < 0:
        raise MemoptError(f"budget {budget} must be >= 0")
    return budget


def make_request(
    instance: Instance,
    objective: str = "peak",
    *,
    budget: int | float | str | None = None,
    max_makespan: float | None = None,
    recompute: bool = False,
    offload: bool = False,
) -> Request:
    """Check the pieces of a request and build it (clear errors for mistakes)."""
    if objective not in OBJECTIVES:
        raise MemoptError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")
    b = parse_budget(budget, instance)
    if objective == "time" and b is None:
        raise MemoptError(f"{instance.name}: objective 'time' needs a budget (--budget, or machine.budget in the instance)")
    if offload and instance.machine.bandwidth is None:
        raise MemoptError(f"{instance.where}: offloading needs machine.bandwidth (size units per time unit) in the instance")
    if max_makespan is not None:
        if objective != "peak":
            raise MemoptError("a time limit on the makespan (max_makespan) goes with objective 'peak'")
        if max_makespan < 0:
            raise MemoptError(f"max_makespan {max_makespan} must be >= 0")
    return Request(instance, objective, b, max_makespan, recompute, offload)


def solve(
    instance: Instance,
    objective: str = "peak",
    method: str = "auto",
    *,
    time_limit: float | None = None,
    warm_start: bool | Plan = True,
    budget: int | float | str | None = None,
    max_makespan: float | None = None,
    recompute: bool = False,
    offload: bool = False,
    threads: int = 2,
    seed: int = 0,
    log: bool = False,
    **method_options: Any,
) -> Result:
    """Solve ``instance`` with ``method`` and return an evaluated :class:`Result`.

    Parameters
    ----------
    objective:
        ``"peak"`` (minimise the peak memory) or ``"time"`` (minimise the
        makespan subject to peak ≤ budget).
    method:
        A registered method name (``memopt.methods()``), or ``"auto"``.
    time_limit:
        Wall-clock seconds; a method that runs out returns its best plan.
    warm_start:
        Seed solvers with a heuristic plan (True), not (False), or with a
        given :class:`Plan`.
    budget:
        Fast-memory budget M: a size, or a ratio of the best baseline
        schedule's peak such as ``"0.8x"``. Defaults to the machine's.
    max_makespan:
        With ``objective="peak"``: the makespan limit T.
    recompute, offload:
        Allow recomputation / offloading (scheduling is always free).
    method_options:
        Passed to the method (e.g. ``backend="highs"`` for MILP methods).
    """
    req = make_request(instance, objective, budget=budget, max_makespan=max_makespan,
                       recompute=recompute, offload=offload)
    return solve_request(req, method, time_limit=time_limit, warm_start=warm_start,
                         threads=threads, seed=seed, log=log, **method_options)


def solve_request(
    req: Request,
    method: str = "auto",
    *,
    time_limit: float | None = None,
    warm_start: bool | Plan = True,
    threads: int = 2,
    seed: int = 0,
    log: bool = False,
    stream: Any = None,
    **method_options: Any,
) -> Result:
    """:func:`solve` for an already checked :class:`Request`."""
    info = get_method(method)
    why = info.refuse(req)
    if why:
        raise MemoptError(why)
    if time_limit is not None and time_limit <= 0:
        raise MemoptError(f"time limit must be > 0 seconds, got {time_limit}")
    opts = SolveOptions(time_limit=time_limit, warm_start=warm_start, threads=threads, seed=seed,
                        log=log, extra=dict(method_options), stream=stream)
    base = Result(instance=req.instance.name, objective=req.objective, status="unknown", method=method,
                  budget=req.budget, max_makespan=req.max_makespan, recompute=req.recompute,
                  offload=req.offload)
    reason = req.infeasibility()
    if reason is not None:
        base.status = "infeasible"
        base.message = reason
        base.bound = req.lower_bound()[0]  # the proven bound that shows it
        base.solve_seconds = opts.elapsed()
        return base
    out = info.run(req, opts)
    seconds = opts.elapsed()
    return finish(req, out, method, seconds, opts)


def finish(req: Request, out: MethodOutput, method: str, seconds: float,
           opts: SolveOptions | None = None) -> Result:
    """Evaluate a method's output and build the honest :class:`Result`."""
    name = out.method or method
    res = Result(instance=req.instance.name, objective=req.objective, status="unknown", method=name,
                 budget=req.budget, max_makespan=req.max_makespan, recompute=req.recompute,
                 offload=req.offload, solve_seconds=seconds, message=out.message, stats=dict(out.stats))
    if opts is not None and opts.first_plan_seconds is not None:
        res.stats.setdefault("first_plan_seconds", round(opts.first_plan_seconds, 4))
    simple, _ = req.lower_bound()
    bound = simple if out.bound is None else max(out.bound, simple)
    if out.plan is None:
        if out.status == "infeasible":
            res.status = "infeasible"
        else:
            res.status = "unknown"
        res.bound = bound
        return res
    ev = req.evaluate(out.plan, trace=True)
    if not ev.valid:
        # a method that returns an invalid plan is a bug in memopt, not a user mistake
        raise RuntimeError(f"method {name!r} returned an invalid plan for {req.instance.name}: {ev.violation}")
    value = req.value(ev)
    res.plan = out.plan
    res.evaluation = ev
    res.value = value
    res.peak = ev.peak
    res.makespan = ev.makespan
    res.stats.setdefault("first_plan_seconds", round(seconds, 4))
    if bound is not None and bound > value + 1e-9 * max(1.0, abs(value)):
        raise RuntimeError(f"method {name!r}: bound {bound} exceeds the evaluated value {value} "
                           f"of its own plan on {req.instance.name}")
    status = out.status
    if status == "optimal" and bound is not None and value > bound + 1e-9 * max(1.0, abs(value)):
        # the method thought it was optimal but the evaluator disagrees: not proven
        res.stats["warning"] = (f"method claimed optimality with bound {bound} but the evaluated value is {value}")
        status = "feasible"
    if status == "optimal":
        bound = value
    elif bound is not None and _close(value, bound):
        status = "optimal"  # proven by the bound
    if status not in ("optimal", "feasible"):
        status = "feasible"
    res.status = status
    res.bound = bound
    return res


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


__all__ = [
    "Request", "SolveOptions", "MethodOutput", "MethodInfo", "register_method", "methods",
    "get_method", "methods_for", "solve", "solve_request", "make_request", "parse_budget", "finish",
    "OBJECTIVES",
]
