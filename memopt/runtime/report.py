"""The figures of a planned step beside the evaluator's prediction (what ``memopt run`` prints and writes).

:func:`step_report` runs, on the module of a :class:`~memopt.runtime.step.PlannedStep`:

1. one planned step under the independent storage measure
   (:meth:`PlannedStep.measure`): predicted peak (the evaluator's), measured
   peak (live storages), the runtime's own accounting, and whether the two
   traces agree at every point;
2. the gradient check (:func:`~memopt.runtime.reference.compare`): loss,
   every gradient and every buffer against the plain PyTorch step, bit for
   bit;
3. the wall time of the plain PyTorch step, of the planned step and of the
   traced order run by the runtime (every task once: the runtime's own
   unplanned step), timed in turn, ``runs`` times after ``warmup``, or
   more for short steps (up to ``min_seconds`` of each): medians, and the
   least times (``*_best``: what other jobs on a shared machine did not
   slow down). ``measured_overhead`` is planned / plain − 1 (against PyTorch
   itself); ``measured_overhead_traced`` is planned / traced − 1 (the same
   executor with and without the plan: what the evaluator's
   ``predicted_overhead`` = makespan / Σ task times − 1 predicts when the task
   times were measured, ``cost="profile"``). The same ratios of the
   process's CPU time (``*_cpu``) are given too: a machine shared with other
   jobs inflates wall times, not CPU times.

Buffers (running statistics) are restored after the timing runs: the report
leaves the module as one planned step left it (gradients included).

Complexity: ``2 + 3 · (warmup + runs)`` steps (more runs of steps shorter than
``min_seconds / runs``, at most 100).
"""

from __future__ import annotations

from typing import Any

from memopt.runtime.reference import (
    compare,
    interleaved_medians,
    kept_buffers,
    plain_step,
    zero_grads,
)
from memopt.runtime.step import PlannedStep


def step_report(step: PlannedStep, inputs: Any, targets: Any, *, traced: PlannedStep | None = None,
                runs: int = 5, warmup: int = 1, seed: int = 0, min_seconds: float = 1.0) -> dict[str, Any]:
    """Predicted and measured peak and time of ``step``, and the gradient check (see the module docstring).

    ``traced``: the runtime's step of the traced order (``PreparedStep.traced_step()``), for
    ``measured_overhead_traced`` (left out when ``None``).
    """
    import torch

    module = step.module
    ev = step.evaluation
    res = step.result
    with kept_buffers(module):
        m = step.measure(inputs, targets)
    c = compare(step, module, inputs, targets, step.loss_fn, seed=seed)
    out: dict[str, Any] = {
        "budget": step.budget,
        "traced_peak": step.traced_peak,
        "budget_ratio": round(step.budget / step.traced_peak, 4) if step.traced_peak else None,
        "method": getattr(res, "method", "traced"),
        "status": str(getattr(res, "status", "given")),
        "planning_seconds": round(step.details.get("solve_seconds", 0.0), 3),
        "prepare_seconds": round(step.details.get("prepare_seconds", 0.0), 3),
        "cost": step.details.get("cost"),
        "device": str(step.device),
        "predicted_peak": m.predicted_peak,
        "measured_peak": m.measured_peak,
        "accounted_peak": m.accounted_peak,
        "peaks_agree": m.agree,
        "trace_equal": m.trace_equal,
        "first_difference": m.first_difference,
        "within_budget": m.measured_peak <= step.budget,
        "cuda_peak": m.cuda_peak,
        "gradients_equal": c.gradients_equal,
        "loss_equal": c.loss_equal,
        "buffers_equal": c.buffers_equal,
        "loss": c.loss,
        "max_grad_diff": c.max_grad_diff,
        "different": c.different[:10],
        "predicted_makespan": ev.makespan,
        "predicted_seconds": ev.makespan / 1e9,   # task times are ns (profiled: of this machine)
        "total_time": ev.total_time,
        "predicted_overhead": round(ev.overhead, 6),
        "recomputes": ev.recomputes,
        "offloads": ev.offloads,
        "reloads": ev.reloads,
        "tasks": step.instance.n,
    }
    dev = torch.device(step.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else None
    b_in, b_tg = inputs, targets

    def plain() -> None:
        zero_grads(module)
        plain_step(module, b_in, b_tg, step.loss_fn)

    def planned() -> None:
        zero_grads(module)
        step(b_in, b_tg)

    fns = [plain, planned] + ([lambda: (zero_grads(module), traced(b_in, b_tg))] if traced is not None else [])
    with kept_buffers(module):
        tm = interleaved_medians(fns, runs=runs, warmup=warmup, sync=sync, min_seconds=min_seconds)
    times, cpu, best = tm.wall, tm.cpu, tm.best
    zero_grads(module)
    with kept_buffers(module):
        step(b_in, b_tg)  # leave the gradients of one planned step, as promised
    out["plain_seconds"] = round(times[0], 6)
    out["planned_seconds"] = round(times[1], 6)
    out["measured_overhead"] = round(times[1] / times[0] - 1, 6) if times[0] > 0 else None
    if traced is not None:
        out["traced_seconds"] = round(times[2], 6)
        out["measured_overhead_traced"] = round(times[1] / times[2] - 1, 6) if times[2] > 0 else None
        out["traced_best_seconds"] = round(best[2], 6)
        out["measured_overhead_traced_best"] = round(best[1] / best[2] - 1, 6) if best[2] > 0 else None
    # the same from the process's CPU time (all its threads): what a loaded machine does not inflate
    out["plain_cpu_seconds"], out["planned_cpu_seconds"] = round(cpu[0], 6), round(cpu[1], 6)
    out["measured_overhead_cpu"] = round(cpu[1] / cpu[0] - 1, 6) if cpu[0] > 0 else None
    if traced is not None:
        out["traced_cpu_seconds"] = round(cpu[2], 6)
        out["measured_overhead_traced_cpu"] = round(cpu[1] / cpu[2] - 1, 6) if cpu[2] > 0 else None
    out["plain_best_seconds"], out["planned_best_seconds"] = round(best[0], 6), round(best[1], 6)
    out["runs"] = tm.runs
    return out


__all__ = ["step_report"]
