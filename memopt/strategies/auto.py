"""``auto``: pick the best method for the request.

Delegates to ``auto-<objective>`` when such a strategy is registered (the
peak and time issues register theirs), else to ``auto-time`` (which also
takes objective ``peak`` with recomputation or offloading), else to the
best baseline order.
"""

from __future__ import annotations

from ..solve import MethodOutput, Request, SolveOptions, get_method, methods, register_method


@register_method("auto", objectives=("peak", "time"), pure=True, recompute=True, offload=True,
                 both=True, exact=True, family="composite")
def run_auto(req: Request, opts: SolveOptions) -> MethodOutput:
    """Choose a method: the registered strategy for the objective, else the baselines."""
    for name in (f"auto-{req.objective}", "auto-time", "baseline"):
        info = methods().get(name)
        if info is not None and info.refuse(req) is None:
            out = info.run(req, opts)
            out.method = out.method or name
            return out
    return MethodOutput(None, "unknown", message="no registered method handles this request yet")
