"""A lower bound on the optimal pure-schedule peak: data that must be resident at each task.

**Lifetime bound.** When task v runs, every datum d produced by an ancestor
of v and still needed then — d is a result, or some reader of d is v or a
descendant of v — is resident, whatever the order. So

    peak >= max_v  Σ{ s(d) : p(d) ∈ anc(v), d result or C(d) ∩ ({v} ∪ desc(v)) ≠ ∅ }
                   + Σ outputs(v) + w(v).

It contains the classic footprint bound (inputs + outputs + workspace of v:
the inputs are read by v itself). Together with "all results at the end"
it is the static bound the exact methods start from.
Bitsets over the tasks: O(n·e/64 + Σ_d |desc(p(d))|) time; only computed
up to ``MAX_TASKS`` tasks (beyond that: the footprint bound).
"""

from __future__ import annotations

from ..bounds import peak_lower_bound
from ..instance import Instance

MAX_TASKS = 6000


def _bits(mask: int):
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def lifetime_bound(inst: Instance) -> tuple[int, str]:
    """The lifetime bound (see the module docstring) and its reason, or the simple bounds past MAX_TASKS."""
    simple = peak_lower_bound(inst)
    n = inst.n
    if n == 0 or n > MAX_TASKS:
        return simple
    desc = inst.descendant_masks
    anc = inst.ancestor_masks
    need = [0] * n
    size = inst.size
    full = (1 << n) - 1
    for j in range(inst.m):
        s = size[j]
        if s == 0:
            continue
        p = inst.producer[j]
        cons = inst.consumers[j]
        if cons:
            who = 0
            for c in cons:
                who |= anc[c] | (1 << c)
        else:
            who = full
        for v in _bits(desc[p] & who):
            need[v] += s
    best, arg = -1, 0
    for v in range(n):
        x = need[v] + inst.output_size[v] + inst.workspace[v]
        if x > best:
            best, arg = x, v
    if best <= simple[0]:
        return simple
    t = inst.tasks[arg].id
    return best, (f"when task {t!r} runs, {need[arg]} of data produced by its ancestors is still needed by it, "
                  f"its descendants or the end, plus its outputs and workspace "
                  f"({inst.output_size[arg] + inst.workspace[arg]})")


__all__ = ["lifetime_bound", "MAX_TASKS"]
