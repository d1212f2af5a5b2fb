"""The whole memory/time trade-off of an instance in one run: :func:`trade_off_curve`.

For a list of budgets — ratios of the best schedule's peak (``1.0x`` is the
best baseline order's peak, the literature's protocol, as in ``memopt solve
--budget``), absolute sizes, and ``auto`` — the curve gives at each budget M
the least makespan found (objective ``time``, with the techniques asked
for), a proven lower bound on it, and the plan.

**auto** fills the grid below the smallest ratio given (by the spacing of
the ratios given, 0.1 by default) down to the proven lower bound on the
peak of every plan (:func:`~memopt.exact.peak_bounds.budget_lower_bound`),
and adds a point at that bound itself: below it every budget is
infeasible, by proof.

**Work shared between budgets.** A plan whose peak is at most M is a plan
for every budget ≥ M, and a lower bound on the makespan at M holds for
every budget ≤ M. So the budgets are solved from the smallest up: each run
gets the best plan found so far that fits its budget as a warm start, and
once a plan without overhead is found (makespan Σ c(v), the trivial
bound) every larger budget is answered by it without a run. Budgets below
the proven lower bound are not run (infeasible).

**Monotone by construction.** Each point's plan is the best, by the
evaluator, of *all* plans found at any budget whose peak fits M (each is
re-evaluated at M: it passes the evaluator at its budget); so the overhead
never increases with the budget. Each point's bound is the largest bound
proven at a budget ≥ M (and Σ c(v)); its status is ``optimal`` when the
plan meets it. A budget is ``infeasible`` when it is below the lower
bound on the peak, or when a run at that budget or a larger one proved no
plan fits.

Methods run through :func:`memopt.solve_request` (the catalog; default
``auto``) with a time limit per point, or a total shared by the points
still to run. :meth:`Curve.write_csv`, :meth:`Curve.markdown` and
:func:`memopt.plots.plot_curve` write the table and the figure;
``memopt curve`` is the command (docs/curve.md).
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from memopt.core.errors import MemoptError
from memopt.core.instance import Instance
from memopt.core.params import parse_exact
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.status import Objective, Status
from memopt.exact.peak_bounds import budget_lower_bound
from memopt.heuristics.orders import best_baseline
from memopt.pipeline import make_request, solve_request

DEFAULT_BUDGETS = ("1.0x", "0.9x", "0.8x", "0.7x", "0.6x", "0.5x", "auto")
DEFAULT_STEP = Fraction(1, 10)
MAX_POINTS = 200
"""``auto`` stops adding points after this many (a step too small for the gap to the bound)."""
CSV_FIELDS = ("instance", "label", "budget", "ratio", "status", "makespan", "overhead", "bound", "overhead_bound",
              "peak", "source", "method", "seconds", "message")


@dataclass
class CurvePoint:
    """One budget of the curve (module docstring). ``source``: the label of the budget whose run found the plan."""

    label: str
    budget: int
    ratio: float
    status: str = Status.UNKNOWN.value
    makespan: int | float | None = None
    overhead: float | None = None
    bound: int | float | None = None
    overhead_bound: float | None = None
    peak: int | None = None
    source: str | None = None
    method: str | None = None
    seconds: float = 0.0
    message: str | None = None
    plan: Plan | None = field(default=None, repr=False)

    def row(self, instance: str) -> dict[str, Any]:
        """The CSV row (overheads as fractions, 6 digits)."""
        def r6(x: float | None) -> Any:
            return "" if x is None else round(x, 6)

        return {"instance": instance, "label": self.label, "budget": self.budget, "ratio": r6(self.ratio),
                "status": self.status, "makespan": _blank(self.makespan), "overhead": r6(self.overhead),
                "bound": _blank(self.bound), "overhead_bound": r6(self.overhead_bound), "peak": _blank(self.peak),
                "source": self.source or "", "method": self.method or "", "seconds": round(self.seconds, 3),
                "message": self.message or ""}


@dataclass
class Curve:
    """The points, largest budget first, and what frames them."""

    instance: str
    base_peak: int
    lower_bound: int
    lower_bound_reason: str
    total_time: int
    recompute: bool
    offload: bool
    method: str
    points: list[CurvePoint] = field(default_factory=list)
    seconds: float = 0.0

    def techniques(self) -> str:
        return "+".join(t for t, on in (("recompute", self.recompute), ("offload", self.offload)) if on) or "pure"

    def write_csv(self, path: str | os.PathLike) -> None:
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            for p in self.points:
                w.writerow(p.row(self.instance))

    def markdown(self) -> str:
        """A Markdown table of the points, with the frame (base peak, lower bound, Σ c)."""
        mark = {"optimal": "✓", "feasible": "~", "infeasible": "✗", "unknown": "?"}
        lines = [f"# Trade-off curve: {self.instance} ({self.techniques()}, method {self.method})", "",
                 (f"1.0x = the best baseline schedule's peak, {self.base_peak}; Σ c(v) = {self.total_time}; "
                  f"no plan below {self.lower_bound} ({self.lower_bound_reason}). Overhead = makespan / Σ c − 1; "
                  "bound: the proven lower bound on it; ✓ optimal, ~ feasible, ✗ infeasible, ? nothing found."), "",
                 "| budget | size | status | overhead | bound | gap | peak | plan from | seconds |",
                 "|---|---:|---|---:|---:|---:|---:|---|---:|"]
        for p in self.points:
            gap = ""
            if p.makespan is not None and p.bound is not None and p.makespan:
                gap = f"{100 * max(0.0, (p.makespan - p.bound) / p.makespan):.2f} %"
            lines.append(f"| {p.label} | {p.budget} | {mark.get(p.status, p.status)} {p.status} | {_pct(p.overhead)} | "
                         f"{_pct(p.overhead_bound)} | {gap} | {_blank(p.peak)} | {p.source or ''} | {p.seconds:.2f} |")
        lines.append("")
        lines.append(f"{len(self.points)} points in {self.seconds:.1f} s.")
        return "\n".join(lines) + "\n"

    def write_md(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            f.write(self.markdown())


def _blank(x: Any) -> Any:
    return "" if x is None else x


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f} %"


# ----------------------------------------------------------------- budgets
def budget_grid(specs: Sequence[str | int], base_peak: int, lower_bound: int,
                step: Fraction | None = None) -> list[tuple[str, int]]:
    """(label, budget) of each spec, ``auto`` filled down to ``lower_bound``; distinct budgets, largest first.

    A ratio ``r`` is ceil(r × base_peak) (exactly); ``auto`` continues the
    smallest ratio given (1.0 if none) by ``step`` (default: the least
    spacing of the ratios given, else 0.1) while the budget stays above
    ``lower_bound``, then adds ``lower_bound`` itself (label ``bound``).
    """
    ratios: list[Fraction] = []
    out: list[tuple[str, int]] = []
    auto = False
    for spec in specs:
        text = str(spec).strip()
        if text.lower() == "auto":
            auto = True
            continue
        if text.lower().endswith("x"):
            d = parse_exact(text[:-1])
            if d is None or d <= 0:
                raise MemoptError(f"curve: budget {text!r}: a ratio must be a number > 0, like 0.8x")
            r = Fraction(d)
            ratios.append(r)
            out.append((text, math.ceil(r * base_peak)))
            continue
        d = parse_exact(text)
        if d is None or d < 0 or d != int(d):
            raise MemoptError(f"curve: budget {text!r}: expected a size like 1000, a ratio like 0.8x, or auto")
        out.append((str(int(d)), int(d)))
    if auto:
        if step is None:
            gaps = sorted({a - b for a, b in zip(sorted(ratios, reverse=True), sorted(ratios, reverse=True)[1:])
                           if a > b})
            step = gaps[0] if gaps else DEFAULT_STEP
        if step <= 0:
            raise MemoptError("curve: the step of auto must be > 0")
        r = (min(ratios) if ratios else Fraction(1)) - (step if ratios else 0)
        while math.ceil(r * base_peak) > lower_bound and len(out) < MAX_POINTS and r > 0:
            out.append((f"{float(r):g}x", math.ceil(r * base_peak)))
            r -= step
        out.append(("bound", lower_bound))
    seen: dict[int, str] = {}
    for label, b in out:
        seen.setdefault(b, label)
    return sorted(((label, b) for b, label in seen.items()), key=lambda x: -x[1])


# ------------------------------------------------------------------- curve
def trade_off_curve(instance: Instance, budgets: Sequence[str | int] = DEFAULT_BUDGETS, *, recompute: bool = False,
                    offload: bool = False, method: str = "auto", time_limit: float | None = 60.0,
                    total_time: float | None = None, step: Fraction | float | str | None = None,
                    threads: int = 2, seed: int = 0, memory_limit: int | None | str = "default",
                    on_point: Callable[[CurvePoint], None] | None = None, **method_options: Any) -> Curve:
    """The trade-off curve (module docstring): objective ``time`` at each budget, monotone, with bounds.

    ``time_limit``: seconds per run (``None``: none); ``total_time``: seconds
    for the whole curve instead, shared by the runs still to make;
    ``on_point(point)``: called after each run (progress). Further keyword
    arguments are the method's options (``memopt solve -m METHOD --help-options``).
    """
    t0 = time.perf_counter()
    inst = instance
    # the request checks (bandwidth for offloading, ...) once, before any work
    make_request(inst, "time", budget=0, recompute=recompute, offload=offload)
    base = best_baseline(inst)[1]
    lb, why = budget_lower_bound(inst, recompute=recompute, offload=offload)
    if step is not None and not isinstance(step, Fraction):
        d = parse_exact(step)
        if d is None:
            raise MemoptError(f"curve: step {step!r}: expected a number > 0 like 0.05")
        step = Fraction(d)
    grid = budget_grid(list(budgets), base, lb, step)
    if not grid:
        raise MemoptError("curve: no budget given")
    curve = Curve(inst.name, base, lb, why, inst.total_time, recompute, offload, method)
    pts = [CurvePoint(label, b, b / base if base else math.inf) for label, b in grid]
    found: list[tuple[int, int | float, Plan, str]] = []  # (peak, makespan, plan, label of the run)
    proven: dict[int, int | float] = {}  # budget -> a proven lower bound on the makespan there
    infeasible_at: int | None = None  # the largest budget proven infeasible
    todo = list(reversed(pts))  # smallest budget first
    for k, p in enumerate(todo):
        if p.budget < lb:
            infeasible_at = max(infeasible_at or p.budget, p.budget)
            p.message = f"below the lower bound {lb} on the peak of every plan: {why}"
            continue
        fits = [f for f in found if f[0] <= p.budget]
        best = min(fits, key=lambda f: f[1]) if fits else None
        if best is not None and best[1] <= inst.total_time:
            continue  # a plan without overhead: optimal here and above
        limit = time_limit
        if total_time is not None:
            left = total_time - (time.perf_counter() - t0)
            runs_left = sum(1 for q in todo[k:] if q.budget >= lb)
            limit = max(1.0, left / max(1, runs_left))
        res = solve_request(Request(inst, Objective.TIME, p.budget, None, recompute, offload), method,
                            time_limit=limit, memory_limit=memory_limit,
                            warm_start=best[2] if best is not None else True, threads=threads, seed=seed,
                            **method_options)
        p.seconds, p.method, p.message = res.solve_seconds, res.method, res.message
        if res.status == Status.INFEASIBLE:
            infeasible_at = max(infeasible_at or p.budget, p.budget)
        elif res.bound is not None:
            proven[p.budget] = res.bound
        if res.plan is not None:
            found.append((res.peak, res.makespan, res.plan, p.label))
        if on_point is not None:
            on_point(p)
        if res.status == Status.INTERRUPTED or str(res.statistics.stop_reason) == "interrupted":
            break  # Ctrl-C: the points solved so far
    _settle(inst, pts, found, proven, infeasible_at, recompute, offload)
    curve.points = pts
    curve.seconds = time.perf_counter() - t0
    return curve


def _settle(inst: Instance, pts: list[CurvePoint], found: list[tuple[int, int | float, Plan, str]],
            proven: dict[int, int | float], infeasible_at: int | None, recompute: bool, offload: bool) -> None:
    """Each point's plan (the best that fits), bound (the largest proven at a budget ≥ it) and status."""
    T = inst.total_time
    bound: int | float = T
    for p in pts:  # largest budget first: the bounds proven above hold here
        bound = max(bound, proven.get(p.budget, T))
        fits = sorted((f for f in found if f[0] <= p.budget), key=lambda f: (f[1], f[0]))
        for _, _, plan, label in fits:
            ev = Request(inst, Objective.TIME, p.budget, None, recompute, offload).evaluate(plan)
            if not ev.valid:  # pragma: no cover - a plan of peak <= budget passes at this budget
                continue
            p.plan, p.makespan, p.peak, p.source = plan, ev.makespan, ev.peak, label
            p.overhead = ev.overhead
            break
        if p.plan is None and infeasible_at is not None and p.budget <= infeasible_at:
            p.status = Status.INFEASIBLE.value
            p.message = p.message or "a larger budget was proven infeasible"
            continue
        p.bound = bound
        p.overhead_bound = (bound / T - 1.0) if T else 0.0
        if p.plan is None:
            p.status = Status.UNKNOWN.value
        else:
            p.status = (Status.OPTIMAL if p.makespan <= bound else Status.FEASIBLE).value
            if p.status == Status.OPTIMAL.value:
                p.message = None


__all__ = ["CSV_FIELDS", "DEFAULT_BUDGETS", "Curve", "CurvePoint", "budget_grid", "trade_off_curve"]
