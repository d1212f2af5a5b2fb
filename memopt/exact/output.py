"""Shared ending of the exact peak methods: a proven-optimal order becomes a MethodOutput."""

from __future__ import annotations

from memopt.core.evaluate import schedule_peak
from memopt.core.method import Context, MethodOutput
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.status import Status


def exact_output(req: Request, ctx: Context, order: list[int], stats: dict | None = None) -> MethodOutput:
    """``order`` is optimal: return its plan, or ``infeasible`` when even it exceeds the budget."""
    inst = req.instance
    peak = schedule_peak(inst, order)
    ctx.stats.update(stats or {})
    if req.budget is not None and peak > req.budget:
        return MethodOutput(status=Status.INFEASIBLE, bound=peak,
                            message=f"no order fits: the optimal peak {peak} exceeds the budget {req.budget}")
    return MethodOutput(Plan.from_order(inst, order), Status.OPTIMAL, bound=peak)


__all__ = ["exact_output"]
