"""The simple lower bounds that hold for every plan (SPEC §2), with their reason.

Each bound returns ``(value, reason)`` so that an infeasible budget can be
explained to the user. O(n + m) each; the bounds that need reachability
(lifetime, retention) are in :mod:`memopt.exact.peak_bounds`.
"""

from __future__ import annotations

from memopt.core.instance import Instance


def task_footprint_bound(inst: Instance) -> tuple[int, str]:
    """max_v (Σ inputs + Σ outputs + w(v)): the classic lower bound on the peak.

    At any compute of v, its inputs are resident, its outputs are being
    written and its workspace is held (SPEC §2). Holds with recomputation
    and offloading too. O(n + Σ inputs).
    """
    if inst.n == 0:
        return 0, "no tasks"
    best, arg = -1, 0
    for v in range(inst.n):
        x = inst.input_size[v] + inst.output_size[v] + inst.workspace[v]
        if x > best:
            best, arg = x, v
    t = inst.tasks[arg].id
    return best, (f"task {t!r} needs its inputs ({inst.input_size[arg]}) + outputs "
                  f"({inst.output_size[arg]}) + workspace ({inst.workspace[arg]}) = {best} in fast memory")


def results_bound(inst: Instance) -> tuple[int, str]:
    """Σ sizes of the results: all are in fast memory at the end without offloading."""
    total = sum(inst.size[j] for j in inst.results)
    return total, f"the {len(inst.results)} result(s) must all be in fast memory at the end: {total}"


def peak_lower_bound(inst: Instance, *, offload: bool = False) -> tuple[int, str]:
    """The best of the simple peak bounds valid for the given problem.

    ``offload=True`` drops the results bound (results may end in slow memory).
    """
    a = task_footprint_bound(inst)
    if offload:
        return a
    b = results_bound(inst)
    return a if a[0] >= b[0] else b


def end_bound(inst: Instance, *, recompute: bool = True) -> tuple[int, str]:
    """Without offloading: Σ results + the least (inputs + other outputs + workspace) of a task that can run last.

    At the last compute of a plan, of some task z, every result is already
    resident (none can appear later) or is an output of z, and z's inputs,
    its other outputs and its workspace are held too (SPEC §2). z is a sink
    of the task graph, or — with recomputation — any task that may rerun.
    Valid for every plan without offloading. O(n + m).
    """
    if inst.n == 0:
        return 0, "no tasks"
    res = sum(inst.size[j] for j in inst.results)
    best, arg = None, -1
    for z in range(inst.n):
        if inst.succs[z] and not (recompute and inst.can_recompute[z]):
            continue
        x = inst.input_size[z] + inst.workspace[z] + sum(inst.size[j] for j in inst.outputs[z] if inst.consumers[j])
        if best is None or x < best:
            best, arg = x, z
    if best is None:  # pragma: no cover - a DAG has a sink
        return res, f"the results ({res}) must all be in fast memory at the end"
    t = inst.tasks[arg].id
    return res + best, (f"the results ({res}) are all in fast memory at the last compute, beside at least "
                        f"{best} for the task computed last (e.g. {t!r}: inputs, other outputs, workspace)")


def makespan_lower_bound(inst: Instance) -> tuple[int, str]:
    """Σ_v c(v): every task runs at least once and a stage lasts at least its computes."""
    return inst.total_time, f"every task runs at least once: Σ time = {inst.total_time}"


__all__ = ["end_bound", "makespan_lower_bound", "peak_lower_bound", "results_bound", "task_footprint_bound"]
