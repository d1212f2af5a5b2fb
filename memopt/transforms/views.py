"""View contraction: drop the tasks that cost nothing and hold nothing (an exact reduction).

A traced network keeps its aliasing ops (``view``, ``t``, ``expand``,
``select``...) as tasks when it is imported with ``keep_views``: time 0,
no workspace, outputs of size 0, and every reader of a view reads the view's
storage root as well. Such a task is *contractible*: a task ``v`` with

- c(v) = 0, w(v) = 0, every output of size 0;
- every output read by at least one task (so none is a result);
- every reader ``w`` of an output of ``v`` reads every input of ``v``.

Removing ``v`` and its outputs preserves the optimum of every objective
(peak, time with recomputation and offloading, peak under a time limit):

- a plan of the original, its computes of ``v`` (and events on its outputs)
  dropped, is a plan of the reduced instance with the same memory at every
  other point (the outputs weigh nothing), the same stages and durations
  (:meth:`ViewContraction.restrict`);
- a plan of the reduced instance becomes one of the original
  (:meth:`ViewContraction.expand`) by a ``compute v`` put right before the
  first compute of a reader of ``v`` in the plan: the reader's inputs —
  all of ``v``'s among them — are resident there, the memory at ``v``'s
  point is the resident data alone (no more than at the reader's point),
  the stage lasts as long (c(v) = 0), and ``v``'s outputs, weightless,
  stay resident to the end, so every later compute of a reader finds them.

Views of views contract in one pass in topological order (once the inner
view is gone, the outer one reads the root alone). Bounds of the reduced
instance are bounds of the original (``exact``).

Complexity: O(n + m + Σ readers · inputs) to reduce; O(events + Σ readers)
to expand; O(events) to restrict.
"""

from __future__ import annotations

from dataclasses import replace

from memopt.core.instance import Instance
from memopt.core.plan import COMPUTE, Event, Plan
from memopt.core.request import Request
from memopt.transforms.base import Identity, Transform


def contractible_views(inst: Instance) -> list[int]:
    """Indices of the tasks removed by the contraction, in topological order (module docstring)."""
    inputs = [set(ins) for ins in inst.inputs]
    gone: list[int] = []
    gone_data: set[int] = set()
    for v in inst.topological_order:
        t = inst.tasks[v]
        outs = inst.outputs[v]
        if t.time or t.workspace or not outs or any(inst.size[j] for j in outs):
            continue
        need = inputs[v]
        readers = [w for j in outs for w in inst.consumers[j]]
        if not readers or any(not need <= inputs[w] for w in readers):
            continue
        gone.append(v)
        gone_data.update(outs)
        for w in readers:
            inputs[w].difference_update(outs)
    return gone


class ViewContraction(Transform):
    """The request without its contractible views, and the way back (module docstring)."""

    exact = True

    def __init__(self, req: Request, removed: list[int]):
        inst = req.instance
        self.original = req
        drop_tasks = {inst.tasks[v].id for v in removed}
        drop_data = {inst.data[j].id for v in removed for j in inst.outputs[v]}
        tasks = [t for t in inst.tasks if t.id not in drop_tasks]
        data = [replace(d, consumers=tuple(c for c in d.consumers if c not in drop_tasks))
                for d in inst.data if d.id not in drop_data]
        self.request = replace(req, instance=inst.replace(tasks=tasks, data=data))
        self._gone_tasks, self._gone_data = drop_tasks, drop_data
        # each view with its readers, in topological order (a view of a view comes after it)
        self.views = [(inst.tasks[v].id, [inst.tasks[w].id for j in inst.outputs[v] for w in inst.consumers[j]])
                      for v in removed]

    def expand(self, plan: Plan) -> Plan:
        """Each view right before the first compute of a reader (a view read by a view: before that one).

        One pass: O(events + Σ readers)."""
        first: dict[str, tuple[int, int]] = {}
        for k, st in enumerate(plan.stages):
            for i, e in enumerate(st):
                if e.kind == COMPUTE and e.target not in first:
                    first[e.target] = (k, i)
        anchor: dict[str, tuple[int, int]] = {}
        for view, readers in reversed(self.views):  # outer views first: an inner one goes before them
            anchor[view] = min(anchor[r] if r in anchor else first[r] for r in readers)
        before: dict[tuple[int, int], list[str]] = {}
        for view, _ in self.views:  # topological order within one anchor
            before.setdefault(anchor[view], []).append(view)
        stages = []
        for k, st in enumerate(plan.stages):
            out: list[Event] = []
            for i, e in enumerate(st):
                out.extend(Event(COMPUTE, v) for v in before.get((k, i), ()))
                out.append(e)
            stages.append(out)
        return Plan(stages)

    def restrict(self, plan: Plan) -> Plan:
        """A plan of :attr:`original` as a plan of :attr:`request`: the views' events dropped, and the stages
        left empty (a view computed alone) with them — the same makespan, no higher a peak (module docstring).

        One pass: O(events)."""
        stages = []
        for st in plan.stages:
            kept = [e for e in st if e.target not in (self._gone_tasks if e.kind == COMPUTE else self._gone_data)]
            if kept:
                stages.append(kept)
        return Plan(stages)


def contract_views(req: Request) -> Transform:
    """:class:`ViewContraction` of ``req``, or :class:`~memopt.transforms.base.Identity` when no view goes."""
    removed = contractible_views(req.instance)
    return ViewContraction(req, removed) if removed else Identity(req)


__all__ = ["ViewContraction", "contract_views", "contractible_views"]
