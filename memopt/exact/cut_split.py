"""Split the schedule at a down-set: a prefix instance and a suffix instance, solved apart.

**Restriction.** For a down-set D, consider only the orders that run all of
D first. Their memory at a step depends only on the set done (L(S), see
:mod:`memopt.exact.cut_bound`), so they split exactly into

- the **prefix** instance: the tasks of D, where a datum also read outside
  D is kept to the end (it is resident from its producer on, as in the full
  order, since its outside reader runs after D); its pure-schedule peak at
  each step equals the full order's;
- the **suffix** instance: the tasks outside D plus a start task that
  produces, at once, every datum of D still needed (L(D) of memory); each
  step after the start has the full order's memory, and the start step
  (L(D)) is at most the memory of the last step of D.

So the best order through D peaks at max(opt(prefix), opt(suffix)), and any
pair of orders of the parts gives a valid order of the whole. This is an
**upper-bound heuristic** (an optimal order need not pass through D); it is
exact only when the resulting peak meets a proven lower bound.

**Which D.** The min-cut bound of :mod:`memopt.exact.cut_bound` names a
critical task v and a down-set Y (anc(v) ⊆ Y, v ∉ Y) where the memory at v
is least; D = Y ∪ {v} makes v cost exactly its bound. When the bound is
tight somewhere else only (the parts are easier, their own bounds are
local), the split often meets the global bound: it proves the 50,000-task
tensor-form series-parallel graphs that the release relaxation leaves open.
O(n + m) to build the parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from memopt.core.instance import Datum, Instance, Task


@dataclass
class Part:
    """A part of a split: its instance, and the index in the whole instance of each of its tasks (-1: the start)."""

    instance: Instance
    task_map: list[int]


def _fresh(prefix: str, taken) -> str:
    k = 0
    name = prefix
    while name in taken:
        k += 1
        name = f"{prefix}{k}"
    return name


def split_instance(inst: Instance, D: set[int] | frozenset[int]) -> tuple[Part, Part]:
    """The prefix and suffix instances of the down-set D (module docstring).

    Arcs inside a part that no kept datum carries are kept as datums of
    size 0; the suffix's start task precedes its sources.
    """
    n = inst.n
    inD = [False] * n
    for v in D:
        inD[v] = True
    tids = [t.id for t in inst.tasks]
    taken_data = {d.id for d in inst.data}
    pre_tasks = [inst.tasks[v] for v in range(n) if inD[v]]
    suf_tasks = [inst.tasks[v] for v in range(n) if not inD[v]]
    start = _fresh("__start__", inst.task_index)
    pre_data: list[Datum] = []
    suf_data: list[Datum] = []
    carried_pre: set[tuple[int, int]] = set()
    carried_suf: set[tuple[int, int]] = set()
    fed: set[int] = set()  # suffix tasks that read a datum of the start
    for j, d in enumerate(inst.data):
        p = inst.producer[j]
        cons = inst.consumers[j]
        if inD[p]:
            inside = [c for c in cons if inD[c]]
            outside = [c for c in cons if not inD[c]]
            if outside:
                # read after D: resident to the end of the prefix, and from the start of the suffix
                pre_data.append(Datum(d.id, d.producer, (), d.size))
                suf_data.append(Datum(d.id, start, tuple(tids[c] for c in outside), d.size))
                fed.update(outside)
            elif not cons:
                pre_data.append(d)  # a result: resident to the end of both parts
                suf_data.append(Datum(d.id, start, (), d.size))
            else:
                pre_data.append(Datum(d.id, d.producer, tuple(tids[c] for c in inside), d.size))
                carried_pre.update((p, c) for c in inside)
        else:
            suf_data.append(d)  # readers of a datum produced outside D are outside D (D is a down-set)
            carried_suf.update((p, c) for c in cons)
    for v in range(n):
        for w in inst.succs[v]:
            if inD[v] and inD[w] and (v, w) not in carried_pre:
                name = _fresh(f"{tids[v]}->{tids[w]}", taken_data)
                taken_data.add(name)
                pre_data.append(Datum(name, tids[v], (tids[w],), 0))
            elif not inD[v] and not inD[w] and (v, w) not in carried_suf:
                name = _fresh(f"{tids[v]}->{tids[w]}", taken_data)
                taken_data.add(name)
                suf_data.append(Datum(name, tids[v], (tids[w],), 0))
    # the start task runs first: it precedes every suffix task without a predecessor in the suffix
    for v in range(n):
        if not inD[v] and v not in fed and all(inD[u] for u in inst.preds[v]):
            name = _fresh(f"{start}->{tids[v]}", taken_data)
            taken_data.add(name)
            suf_data.append(Datum(name, start, (tids[v],), 0))
    pre = Instance(pre_tasks, pre_data, name=f"{inst.name}-prefix")
    suf = Instance([Task(start)] + suf_tasks, suf_data, name=f"{inst.name}-suffix")
    return (Part(pre, [inst.task_index[t.id] for t in pre.tasks]),
            Part(suf, [-1] + [inst.task_index[t.id] for t in suf_tasks]))


def join_orders(prefix: Part, prefix_order: list[int], suffix: Part, suffix_order: list[int]) -> list[int]:
    """The order of the whole instance: the prefix's order, then the suffix's (without its start)."""
    out = [prefix.task_map[v] for v in prefix_order]
    out += [suffix.task_map[v] for v in suffix_order if suffix.task_map[v] >= 0]
    return out


__all__ = ["split_instance", "join_orders", "Part"]
