"""Lower bounds that hold for every plan (SPEC §2), with their reason.

Each bound returns ``(value, reason)`` so that an infeasible budget can be
explained to the user.
"""

from __future__ import annotations

from .instance import Instance


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


def makespan_lower_bound(inst: Instance) -> tuple[int, str]:
    """Σ_v c(v): every task runs at least once and a stage lasts at least its computes."""
    return inst.total_time, f"every task runs at least once: Σ time = {inst.total_time}"


__all__ = ["task_footprint_bound", "results_bound", "peak_lower_bound", "makespan_lower_bound"]
