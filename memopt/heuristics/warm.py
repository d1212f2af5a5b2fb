"""Warm starts, chosen in one place and computed once per run.

Every model is seeded with a valid plan (:meth:`WarmStarts.get`): the
plan the user gave (checked by the pipeline before solving), else the
budget planner's (:func:`~memopt.heuristics.planner.plan_under_budget`,
:data:`WARM_SHARE` of the time left and at most its default effort; on a
fixed order when the model fixes one), else the best baseline pure
schedule if it fits. Each is computed once per (request, order) and
offered to the run's incumbent.

The planner's candidate orders (:meth:`WarmStarts.orders`) include the
least-peak order of ``auto-peak`` — asked once per instance, through the
catalog the run was given (:meth:`WarmStarts.peak_order`), or remembered
when a composite already computed it (:meth:`WarmStarts.remember_order`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memopt.core.deadline import Deadline
from memopt.core.instance import Instance
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.status import Objective
from memopt.heuristics.orders import best_baseline
from memopt.heuristics.planner.portfolio import (
    DEFAULT_WARM_SECONDS,
    PlannerResult,
    candidate_orders,
    plan_under_budget,
)

if TYPE_CHECKING:
    from memopt.core.method import Context

WARM_SHARE = 0.15
"""Share of the time left that the planner may take for a warm start (at most its default 5 s)."""
PEAK_ORDER_SECONDS = 1.0
"""Time ``auto-peak`` gets to find the least-peak order among the planner's candidates."""


class WarmStarts:
    """The warm starts of one run (module docstring)."""

    def __init__(self, given: Plan | None = None, *, enabled: bool = True):
        self.given = given
        self.enabled = enabled
        self._plans: dict[tuple[int, object], tuple[Plan | None, str]] = {}
        self._keep: list[Request] = []  # keeps the requests of the keys above alive (ids stay unique)
        self._peak_orders: dict[int, list[int] | None] = {}
        self._portfolios: dict[tuple, PlannerResult] = {}

    # ----------------------------------------------------------- orders
    def remember_order(self, inst: Instance, order: list[int]) -> None:
        """A least-peak order of ``inst`` found by someone else (e.g. ``auto-time``'s schedule search)."""
        self._peak_orders.setdefault(id(inst), list(order))

    def peak_order(self, inst: Instance, ctx: Context) -> list[int] | None:
        """``auto-peak``'s order for ``inst`` (optimal when it proves it within :data:`PEAK_ORDER_SECONDS`)."""
        key = id(inst)
        if key not in self._peak_orders:
            order = None
            if ctx.catalog is not None and inst.n:
                out = ctx.run("auto-peak", Request(inst, Objective.PEAK),
                              deadline=ctx.deadline.capped(PEAK_ORDER_SECONDS))
                if out.plan is not None:
                    order = [inst.task_index[t] for t in out.plan.compute_order()]
            self._peak_orders[key] = order
        return self._peak_orders[key]

    def orders(self, inst: Instance, ctx: Context, limit: int = 5) -> list[tuple[str, list[int]]]:
        """The planner's candidate orders: the given plan's, the least-peak order, the baselines."""
        extra = []
        if self.given is not None:
            extra.append(("warm-start", [inst.task_index[t] for t in self.given.compute_order()]))
        po = self.peak_order(inst, ctx)
        if po is not None:
            extra.append(("auto-peak", po))
        return candidate_orders(inst, limit + len(extra) - (self.given is not None), extra)

    # ------------------------------------------------------- portfolios
    @staticmethod
    def _request_key(req: Request) -> tuple:
        return id(req.instance), req.objective, req.budget, req.max_makespan, req.recompute, req.offload

    def portfolio(self, req: Request) -> PlannerResult | None:
        """The planner portfolio this run made for ``req`` so far (its next share continues it), or None."""
        return self._portfolios.get(self._request_key(req))

    def keep_portfolio(self, req: Request, result: PlannerResult) -> None:
        self._keep.append(req)  # keeps the instance alive, so that its id stays unique
        self._portfolios[self._request_key(req)] = result

    # ------------------------------------------------------------ plans
    def get(self, req: Request, ctx: Context, order: list[int] | None = None,
            deadline: Deadline | None = None) -> tuple[Plan | None, str]:
        """The valid plan that seeds a model of ``req`` (on ``order`` when given), and where it comes from."""
        if not self.enabled:
            return None, "none"
        key = (id(req), "given" if self.given is not None else None if order is None else tuple(order))
        if key not in self._plans:
            self._keep.append(req)
            if self.given is not None:
                ev = req.evaluate(self.given)
                self._plans[key] = (self.given, "given") if ev.valid else (None, f"given plan rejected: {ev.violation}")
            else:
                self._plans[key] = self._compute(req, ctx, order, deadline or ctx.deadline)
        plan, source = self._plans[key]
        if plan is not None and req is ctx.incumbent.request:
            ctx.offer(plan, f"warm start ({source})")
        return plan, source

    def _compute(self, req: Request, ctx: Context, order: list[int] | None,
                 deadline: Deadline) -> tuple[Plan | None, str]:
        inst = req.instance
        if not req.pure and req.budget is not None:
            orders = None if order is not None else self.orders(inst, ctx)
            plan = plan_under_budget(req, order, orders=orders,
                                     deadline=deadline.share(WARM_SHARE, DEFAULT_WARM_SECONDS, floor=0.05))
            if plan is not None and req.evaluate(plan).valid:
                return plan, "planner" + (" (fixed order)" if order is not None else "")
        base = best_baseline(inst)
        plan = Plan.from_order(inst, order if order is not None else base[0])
        if req.evaluate(plan).valid:
            return plan, "pure schedule" if order is not None else f"baseline:{base[2]}"
        if order is None:
            # no baseline order fits: the least-peak order may (a pure schedule is then optimal for the time)
            po = self.peak_order(inst, ctx)
            if po is not None:
                plan = Plan.from_order(inst, po)
                if req.evaluate(plan).valid:
                    return plan, "auto-peak order"
        return None, "none (no heuristic plan fits)"


__all__ = ["PEAK_ORDER_SECONDS", "WARM_SHARE", "WarmStarts"]
