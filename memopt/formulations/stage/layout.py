"""The skeleton of a stage model: which stage may start which task, and windows.

A stage model (Checkmate, POET, the joint model) cuts a plan into ``T``
stages; SPEC §2's stages exactly. Stage ``t`` runs, in this order,

1. *recomputations*: any subset of the tasks already computed before stage
   ``t``, in a fixed topological order σ (the "slots" of the stage);
2. at most one *new task* — the first computation of a task — last.

The :class:`StageLayout` fixes, for every stage, what its new task is: a
given task (Checkmate and POET fix the order of first computations), no new
task at all (a stage for transfers and recomputations only), or
:data:`FREE` (the model chooses: scheduling as a decision).

The :class:`Windows` are the earliest/latest stages of each decision
(item 4 of the budget issue): a task can be first computed only after all
its ancestors and before all its descendants; a recomputation of ``u`` in
stage ``t`` is only useful while some consumer of ``u`` may still run; a
datum can be resident only between its producer's first computation and
its last possible use. Every variable outside its window is never created.
Complexity: O(n · (n + e) / w) with w-bit integer bitsets for the
ancestor counts, O(n + e) for the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from memopt.core.instance import Instance
from memopt.core.plan import COMPUTE, OFFLOAD, RELOAD, Event, Plan
from memopt.graph.masks import task_ancestors, task_descendants

FREE = -1
"""Layout marker: the stage's new task is a decision of the model."""


class LayoutError(ValueError):
    """A plan or an order that does not fit a layout."""


@dataclass(frozen=True)
class StageLayout:
    """``new[t]``: the new task of stage ``t`` (a task index, ``None`` or :data:`FREE`).

    ``sigma`` is the order of the recomputation slots inside every stage (a
    topological order of all tasks). A layout is either *fixed* (every new
    task given) or *free* (every new task :data:`FREE`); ``None`` stages may
    appear in both.
    """

    new: tuple[int | None, ...]
    sigma: tuple[int, ...]

    @property
    def T(self) -> int:
        """Number of stages."""
        return len(self.new)

    @property
    def free(self) -> bool:
        return any(x == FREE for x in self.new)

    @property
    def new_stages(self) -> list[int]:
        """Indices of the stages that start a task."""
        return [t for t, x in enumerate(self.new) if x is not None]

    def check(self, inst: Instance) -> None:
        """Raise :class:`LayoutError` unless the layout is well formed for ``inst``."""
        if sorted(self.sigma) != list(range(inst.n)):
            raise LayoutError("sigma must be an order of all the tasks")
        pos = {v: k for k, v in enumerate(self.sigma)}
        for v in range(inst.n):
            for u in inst.preds[v]:
                if pos[u] > pos[v]:
                    raise LayoutError("sigma must be a topological order")
        starts = [x for x in self.new if x is not None]
        if len(starts) != inst.n:
            raise LayoutError(f"the layout starts {len(starts)} tasks, the instance has {inst.n}")
        if any(x == FREE for x in starts) and any(x != FREE for x in starts):
            raise LayoutError("a layout is either fixed or free, not both")
        if starts and starts[0] != FREE:
            if sorted(starts) != list(range(inst.n)):
                raise LayoutError("a fixed layout starts every task exactly once")
            seen = set()
            for v in starts:
                if any(u not in seen for u in inst.preds[v]):
                    raise LayoutError("a fixed layout starts the tasks in a topological order")
                seen.add(v)

    # ------------------------------------------------------------- builders
    @classmethod
    def fixed(cls, inst: Instance, order: Sequence[int], transfer_stages: int = 0) -> StageLayout:
        """Checkmate/POET: stage of new task ``order[k]``, preceded by ``transfer_stages`` empty stages."""
        new: list[int | None] = []
        for v in order:
            new.extend([None] * transfer_stages)
            new.append(int(v))
        lay = cls(tuple(new), tuple(int(v) for v in order))
        lay.check(inst)
        return lay

    @classmethod
    def joint(cls, inst: Instance, sigma: Sequence[int], transfer_stages: int = 0) -> StageLayout:
        """Free order of first computations: every task-starting stage chooses its task."""
        new: list[int | None] = []
        for _ in range(inst.n):
            new.extend([None] * transfer_stages)
            new.append(FREE)
        lay = cls(tuple(new), tuple(int(v) for v in sigma))
        lay.check(inst)
        return lay

    @classmethod
    def from_plan(cls, inst: Instance, plan: Plan, *, free: bool = False,
                  transfer_stages: int = 0) -> tuple[StageLayout, Plan]:
        """The layout that holds ``plan`` exactly, and ``plan`` cut to fit it.

        σ and the order of new tasks are the plan's order of first
        computations; stages of the plan that start no task become ``None``
        stages. ``transfer_stages`` adds that many empty stages before each
        task-starting stage that has none. See :func:`normalize_plan`.
        """
        order = [inst.task_index[v] for v in plan.compute_order()]
        if len(order) != inst.n:
            raise LayoutError("the plan does not compute every task")
        sigma = tuple(order)
        pos = {v: k for k, v in enumerate(sigma)}
        cut = normalize_plan(inst, plan, pos)
        new: list[int | None] = []
        seen: set[str] = set()
        for st in cut.stages:
            first = [inst.task_index[e.target] for e in st if e.kind == COMPUTE and e.target not in seen]
            seen.update(e.target for e in st if e.kind == COMPUTE)
            new.append(first[0] if first else None)
        if transfer_stages:
            padded: list[int | None] = []
            stages: list[tuple[Event, ...]] = []
            run = 0
            for x, st in zip(new, cut.stages):
                if x is None:
                    run += 1
                else:
                    padded.extend([None] * max(0, transfer_stages - run))
                    stages.extend([()] * max(0, transfer_stages - run))
                    run = 0
                padded.append(x)
                stages.append(st)
            new, cut = padded, Plan(stages)
        if free:
            new = [FREE if x is not None else None for x in new]
        lay = cls(tuple(new), sigma)
        lay.check(inst)
        return lay, cut


def normalize_plan(inst: Instance, plan: Plan, sigma_pos: dict[int, int]) -> Plan:
    """Cut the stages of ``plan`` so that each fits a stage model.

    A stage model's stage runs recomputations in σ order, then at most one
    new task. A plan stage that does not is split after each first
    computation and before each recomputation that breaks σ order; the
    transfers and the leading frees stay with the first piece. Splitting
    never raises the memory at any point (a reload's memory and an
    offload's hold end earlier; the new stage boundaries are points whose
    memory is at most that of the compute before) and keeps the plan valid;
    it can only lengthen the makespan (the transfers overlap less compute).
    O(number of events).
    """
    tix = inst.task_index
    seen: set[int] = set()
    out: list[list[Event]] = []
    for st in plan.stages:
        # transfers run beside the whole stage: they go with the first piece
        cur: list[Event] = [e for e in st if e.kind in (OFFLOAD, RELOAD)]
        last = -1  # σ position of the last recomputation in the current piece
        has_compute = False
        closed = False  # the current piece ended with a new task
        for e in st:
            if e.kind in (OFFLOAD, RELOAD):
                continue
            if e.kind != COMPUTE:
                cur.append(e)
                continue
            v = tix[e.target]
            new = v not in seen
            if has_compute and (closed or (not new and sigma_pos[v] <= last)):
                out.append(cur)
                cur, last, closed = [], -1, False
            cur.append(e)
            has_compute = True
            if new:
                seen.add(v)
                closed = True
            else:
                last = sigma_pos[v]
        out.append(cur)
    return Plan(out)


class Windows:
    """Earliest/latest stages of every decision of a stage model.

    - ``earliest[v]``, ``latest[v]``: stages where ``v`` may be computed the
      first time (fixed layouts: its stage; free layouts: after its
      ancestors, before its descendants);
    - ``candidates[t]``: the tasks that may be the new task of a FREE stage;
    - ``recompute[t]``: the recomputation slots of stage ``t``, in σ order —
      tasks that can have run before ``t`` and have a consumer that may
      still run at or after ``t``, or a result to regenerate (``need_end``);
    - ``resident[d] = (lo, hi)``: the stages at whose start ``d`` may be in
      fast memory (``hi = T`` for results: the state after the last stage);
    - ``offload[d]``, ``reload[d]``: the stages of useful transfers.

    ``recompute`` and ``offload`` say which techniques the request allows;
    ``allowed[u]`` false forbids recomputing ``u`` (e.g. its time alone
    exceeds the slack left by a known plan).
    """

    def __init__(self, inst: Instance, layout: StageLayout, *, recompute: bool, offload: bool,
                 allowed: Sequence[bool] | None = None):
        self.inst = inst
        self.layout = layout
        T = layout.T
        n = inst.n
        new_at = layout.new_stages
        earliest = [0] * n
        latest = [0] * n
        if layout.free:
            anc, desc = _closure_counts(inst)
            for v in range(n):
                earliest[v] = new_at[anc[v]]
                latest[v] = new_at[n - 1 - desc[v]]
        else:
            for t in new_at:
                v = layout.new[t]
                earliest[v] = latest[v] = t
        self.earliest, self.latest = earliest, latest
        self.candidates: list[list[int]] = [[] for _ in range(T)]
        self._starts: list[list[int]] = [[] for _ in range(n)]
        if layout.free:
            for v in range(n):
                for t in new_at:
                    if earliest[v] <= t <= latest[v]:
                        self.candidates[t].append(v)
                        self._starts[v].append(t)
        # need_end[u]: the last stage where a consumer of u's outputs may run
        can_rc = [recompute and inst.can_recompute[u] and (allowed is None or bool(allowed[u]))
                  for u in range(n)]
        self.can_recompute = can_rc
        need_end = [-1] * n
        makes_result = [any(not inst.consumers[d] for d in inst.outputs[u]) for u in range(n)]
        for u in reversed(layout.sigma):
            # a result freed earlier may be recomputed up to the last stage
            best = T - 1 if makes_result[u] and can_rc[u] else -1
            for c in inst.succs[u]:
                best = max(best, latest[c], need_end[c] if can_rc[c] else -1)
            need_end[u] = best
        self.need_end = need_end
        self.recompute: list[list[int]] = [[] for _ in range(T)]
        for u in layout.sigma:
            if not can_rc[u]:
                continue
            for t in range(earliest[u] + 1, min(need_end[u], T - 1) + 1):
                self.recompute[t].append(u)
        size = inst.size
        self.resident: list[tuple[int, int]] = []
        self.offload_window: list[tuple[int, int]] = []
        self.reload_window: list[tuple[int, int]] = []
        for d in range(inst.m):
            p = inst.producer[d]
            lo = earliest[p] + 1
            if not inst.consumers[d]:  # a result: kept to the end
                hi = T
            else:
                hi = max(max(latest[c], need_end[c] if can_rc[c] else -1) for c in inst.consumers[d])
            self.resident.append((lo, hi))
            if not offload or size[d] == 0:
                self.offload_window.append((0, -1))
                self.reload_window.append((0, -1))
            elif not inst.consumers[d]:
                self.offload_window.append((lo, T - 1))  # to end in slow memory
                self.reload_window.append((0, -1))      # never read again
            else:
                # offload at t, reload at t' >= t + 2, read from t' + 1 <= hi
                self.offload_window.append((lo, hi - 3))
                self.reload_window.append((lo + 2, hi - 1))


    def candidates_of(self, v: int) -> list[int]:
        """The FREE stages that may start ``v``."""
        return self._starts[v]


def _closure_counts(inst: Instance) -> tuple[list[int], list[int]]:
    """Number of ancestors and of descendants of every task (bitsets)."""
    return [a.bit_count() for a in task_ancestors(inst)], [d.bit_count() for d in task_descendants(inst)]


__all__ = ["FREE", "StageLayout", "Windows", "LayoutError", "normalize_plan"]
