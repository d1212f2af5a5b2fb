"""Which task frees each datum, and when a task's memory effect is fixed.

In a pure schedule a datum d is freed right after its *last* consumer runs
(SPEC §2). Which consumer is last depends on the order, unless one consumer
comes after all the others in every order — it is a descendant of each of
them. We call that consumer the **release task** r(d):

- a result (no consumer) is never freed: ``RESULT``;
- one consumer c: r(d) = c (always the case in buffer form);
- several consumers, one of them a descendant of all others: that one;
- otherwise ``AMBIGUOUS``: which consumer frees d is a scheduling decision
  (tensor form: a fork whose branches read the same output).

When no datum of positive size is ambiguous, every task v has a **fixed
memory effect**, independent of the order:

- its *peak* p(v) = Σ outputs + workspace (memory above what was resident,
  at its compute), and
- its *impact* i(v) = Σ outputs − Σ sizes of the data it releases,

and the peak of an order is L0 + max over its tasks of (Σ impacts of the
tasks before) + p(v) — the "maximum cumulative cost" of Abdel-Wahab &
Kameda (1978), the (peak, impact) pairs of Fradet, Girault & Honorat
(LCTES 2023). This is the model of Liu's tree algorithm and of the
series-parallel algorithm (:mod:`memopt.exact.liu`,
:mod:`memopt.exact.series_parallel`).

For an ambiguous input d of v, v frees d in some orders and not in others.
:func:`impact_bounds` gives the range of v's impact over all orders.
"""

from __future__ import annotations

from memopt.core.errors import MemoptError
from memopt.core.instance import Instance
from memopt.graph.reach import Reachability

RESULT = -1
AMBIGUOUS = -2


def task_reachability(inst: Instance, **kw) -> Reachability:
    """Reachability on the task graph of ``inst``."""
    pos = [0] * inst.n
    for k, v in enumerate(inst.topological_order):
        pos[v] = k
    return Reachability(inst.succs, pos, **kw)


def release_tasks(inst: Instance, reach: Reachability | None = None) -> list[int]:
    """r(d) for every datum: a task index, ``RESULT`` or ``AMBIGUOUS``.

    A reachability query the search cannot settle counts as "not a
    descendant" (ambiguous), the safe answer. O(Σ consumers) queries.
    """
    reach = reach or task_reachability(inst)
    pos = reach.pos
    out: list[int] = []
    for cons in inst.consumers:
        if not cons:
            out.append(RESULT)
        elif len(cons) == 1:
            out.append(cons[0])
        else:
            last = max(cons, key=pos.__getitem__)
            ok = all(c == last or reach.reaches(c, last) is True for c in cons)
            out.append(last if ok else AMBIGUOUS)
    return out


def ambiguous_data(inst: Instance, release: list[int]) -> list[int]:
    """Data of positive size whose release task is not fixed by the precedence."""
    return [j for j, r in enumerate(release) if r == AMBIGUOUS and inst.size[j] > 0]


def fixed_effects(inst: Instance, release: list[int] | None = None) -> tuple[list[int], list[int]]:
    """(p, i): every task's fixed peak and impact (see the module docstring).

    Raises :class:`MemoptError` naming a datum whose release is ambiguous.
    O(n + m).
    """
    release = release_tasks(inst) if release is None else release
    amb = ambiguous_data(inst, release)
    if amb:
        raise MemoptError(not_fixed_reason(inst, amb))
    p = [inst.output_size[v] + inst.workspace[v] for v in range(inst.n)]
    i = list(inst.output_size)
    for j, r in enumerate(release):
        if r >= 0:
            i[r] -= inst.size[j]
    return p, i


def not_fixed_reason(inst: Instance, amb: list[int]) -> str:
    j = amb[0]
    d = inst.data[j]
    more = f" (and {len(amb) - 1} more data)" if len(amb) > 1 else ""
    return (f"{inst.where}: datum {d.id!r} (size {d.size}) is read by {', '.join(map(repr, d.consumers[:4]))}"
            f"{'...' if len(d.consumers) > 4 else ''}, none of which runs after all the others, so when it is "
            f"freed depends on the order{more}: the memory effect of its readers is not fixed "
            f"(auto, downset-dp, peak-cp and peak-milp handle such data)")


def impact_bounds(inst: Instance, release: list[int], reach: Reachability) -> tuple[list[int], list[int]]:
    """(imin, imax): the smallest and largest impact of each task over all orders.

    v frees an input d for sure when r(d) = v; it may free an ambiguous d
    when no other consumer of d is (known to be) a descendant of v. Exact
    (imin == imax) for every task when no datum is ambiguous.
    """
    imax = list(inst.output_size)
    imin = list(inst.output_size)
    size = inst.size
    for j, r in enumerate(release):
        if size[j] == 0:
            continue
        if r >= 0:
            imax[r] -= size[j]
            imin[r] -= size[j]
        elif r == AMBIGUOUS:
            cons = inst.consumers[j]
            for v in cons:
                if not any(c != v and reach.reaches(v, c) is True for c in cons):
                    imin[v] -= size[j]
    return imin, imax


__all__ = ["RESULT", "AMBIGUOUS", "task_reachability", "release_tasks", "ambiguous_data", "fixed_effects",
           "impact_bounds", "not_fixed_reason"]
