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


def retention_bound(inst: Instance, *, recompute: bool = True) -> tuple[int, str]:
    """Without offloading: at v's first compute, the data of ancestors that cannot be recomputed and are still needed.

    A datum whose producer runs once (``recompute: false``, or every task in
    pure scheduling) and that is a result or read by v or a descendant of v
    is resident when v first runs: it was made before, it is needed after,
    and nothing can bring it back. Adding v's outputs and workspace bounds
    the peak. In pure scheduling this is the lifetime bound of
    :func:`memopt.exact.peak_bounds.lifetime_bound`. Bitsets over the tasks,
    up to 6000 tasks (the footprint bound beyond).
    """
    if not recompute:
        from .exact.peak_bounds import lifetime_bound

        return lifetime_bound(inst)
    fixed = [j for j in range(inst.m) if inst.size[j] > 0 and not inst.can_recompute[inst.producer[j]]]
    simple = task_footprint_bound(inst)
    n = inst.n
    if not fixed or n > 6000:
        return simple
    desc = inst.descendant_masks
    anc = inst.ancestor_masks
    need = [0] * n
    full = (1 << n) - 1
    for j in fixed:
        cons = inst.consumers[j]
        who = full
        if cons:
            who = 0
            for c in cons:
                who |= anc[c] | (1 << c)
        mask = desc[inst.producer[j]] & who
        for c in cons:  # an input of v is already in v's footprint
            mask &= ~(1 << c)
        while mask:
            low = mask & -mask
            need[low.bit_length() - 1] += inst.size[j]
            mask ^= low
    best, arg = -1, 0
    for v in range(n):
        x = need[v] + inst.input_size[v] + inst.output_size[v] + inst.workspace[v]
        if x > best:
            best, arg = x, v
    if best <= simple[0]:
        return simple
    t = inst.tasks[arg].id
    return best, (f"when task {t!r} first runs, {need[arg]} of data made by tasks that cannot rerun is still "
                  f"needed, beside its footprint ({best - need[arg]})")


def budget_lower_bound(inst: Instance, *, recompute: bool, offload: bool) -> tuple[int, str]:
    """The best lower bound on the peak of every plan using (only) these techniques, and why.

    With offloading: the footprint bound (results may end in slow memory,
    anything may leave). Without: also the results bound, the end bound and
    the retention bound (the lifetime bound in pure scheduling).
    """
    cands = [peak_lower_bound(inst, offload=offload)]
    if not offload:
        cands += [end_bound(inst, recompute=recompute), retention_bound(inst, recompute=recompute)]
    return max(cands, key=lambda c: c[0])


def makespan_lower_bound(inst: Instance) -> tuple[int, str]:
    """Σ_v c(v): every task runs at least once and a stage lasts at least its computes."""
    return inst.total_time, f"every task runs at least once: Σ time = {inst.total_time}"


__all__ = ["task_footprint_bound", "results_bound", "peak_lower_bound", "makespan_lower_bound", "end_bound",
           "retention_bound", "budget_lower_bound"]
