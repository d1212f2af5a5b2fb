"""Lower bounds on the peak from the data that must be resident at each task, whatever the order.

**Lifetime bound** (pure scheduling). When task v runs, every datum d
produced by an ancestor of v and still needed then — d is a result, or some
reader of d is v or a descendant of v — is resident, whatever the order. So

    peak >= max_v  Σ{ s(d) : v ∈ needed_at(d) } + Σ outputs(v) + w(v)

with ``needed_at`` of :mod:`memopt.graph.masks`. It contains the classic
footprint bound (the inputs are read by v itself).

**Retention bound** (with recomputation, without offloading). The same sum
restricted to the data whose producer cannot rerun — nothing can bring
them back —, beside v's whole footprint (inputs + outputs + workspace).
Without recomputation every producer runs once: it is the lifetime bound.

:func:`budget_lower_bound` is the best of these and the simple bounds of
:mod:`memopt.core.bounds` for the techniques a request allows.

Bitsets over the tasks: O(n·e/64 + Σ_d |desc(p(d))|) time; computed up to
:data:`MAX_TASKS` tasks (beyond that: the simple bounds).
"""

from __future__ import annotations

from typing import Iterable

from memopt.core.bounds import end_bound, peak_lower_bound, task_footprint_bound
from memopt.core.instance import Instance
from memopt.graph.masks import iter_bits, needed_at

MAX_TASKS = 6000


def _held(inst: Instance, data: Iterable[int], skip_readers: bool = False) -> list[int]:
    """Per task v, Σ s(d) over ``data`` resident at v in every order (``skip_readers``: not counting v's inputs)."""
    held = [0] * inst.n
    for j in data:
        s = inst.size[j]
        if s == 0:
            continue
        mask = needed_at(inst, j)
        if skip_readers:
            for c in inst.consumers[j]:
                mask &= ~(1 << c)
        for v in iter_bits(mask):
            held[v] += s
    return held


def _argmax(values: list[int]) -> tuple[int, int]:
    best, arg = -1, 0
    for v, x in enumerate(values):
        if x > best:
            best, arg = x, v
    return best, arg


def lifetime_bound(inst: Instance) -> tuple[int, str]:
    """The lifetime bound (see the module docstring) and its reason, or the simple bounds past MAX_TASKS."""
    simple = peak_lower_bound(inst)
    n = inst.n
    if n == 0 or n > MAX_TASKS:
        return simple
    need = _held(inst, range(inst.m))
    best, arg = _argmax([need[v] + inst.output_size[v] + inst.workspace[v] for v in range(n)])
    if best <= simple[0]:
        return simple
    t = inst.tasks[arg].id
    return best, (f"when task {t!r} runs, {need[arg]} of data produced by its ancestors is still needed by it, "
                  f"its descendants or the end, plus its outputs and workspace "
                  f"({inst.output_size[arg] + inst.workspace[arg]})")


def retention_bound(inst: Instance, *, recompute: bool = True) -> tuple[int, str]:
    """Without offloading: at v's first compute, the data of ancestors that cannot be recomputed and are still needed.

    A datum whose producer runs once (``recompute: false``, or every task in
    pure scheduling) and that is a result or read by v or a descendant of v
    is resident when v first runs: it was made before, it is needed after,
    and nothing can bring it back. Adding v's footprint bounds the peak. In
    pure scheduling this is :func:`lifetime_bound`.
    """
    if not recompute:
        return lifetime_bound(inst)
    fixed = [j for j in range(inst.m) if inst.size[j] > 0 and not inst.can_recompute[inst.producer[j]]]
    simple = task_footprint_bound(inst)
    n = inst.n
    if not fixed or n > MAX_TASKS:
        return simple
    need = _held(inst, fixed, skip_readers=True)  # an input of v is already in v's footprint
    best, arg = _argmax([need[v] + inst.input_size[v] + inst.output_size[v] + inst.workspace[v]
                         for v in range(n)])
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


__all__ = ["MAX_TASKS", "budget_lower_bound", "lifetime_bound", "retention_bound"]
