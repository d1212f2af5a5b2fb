"""Shared ending of the exact peak methods: a proven-optimal order becomes a MethodOutput."""

from __future__ import annotations

from ..evaluate import schedule_peak
from ..plan import Plan
from ..solve import MethodOutput, Request, SolveOptions


def exact_output(req: Request, opts: SolveOptions, order: list[int], what: str,
                 stats: dict | None = None) -> MethodOutput:
    """``order`` is optimal: return its plan, or ``infeasible`` when even it exceeds the budget."""
    inst = req.instance
    peak = schedule_peak(inst, order)
    opts.improved(value=peak, bound=peak, what=what)
    stats = dict(stats or {})
    if req.budget is not None and peak > req.budget:
        return MethodOutput(None, "infeasible", bound=peak, stats=stats,
                            message=f"the optimal peak {peak} exceeds the budget {req.budget}")
    return MethodOutput(Plan.from_order(inst, order), "optimal", bound=peak, stats=stats)


__all__ = ["exact_output"]
