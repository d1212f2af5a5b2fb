"""Moccasin's retention-interval CP-SAT model: its variables and constraints, the plan of a solution, the hint.

The model is described in :mod:`memopt.formulations.moccasin` (the method
that builds, hints and solves it).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from memopt.backends.model import BuildStopped
from memopt.core.deadline import Deadline
from memopt.core.errors import MemoptError
from memopt.core.instance import Instance
from memopt.core.plan import COMPUTE, Event, Plan
from memopt.core.request import Request

DEFAULT_INTERVALS = 2
_U_CAP = 1 << 20


def useful_computations(inst: Instance, recompute: bool = True, fixed_order: bool = False) -> list[int]:
    """U_v: at most this many computations of v are needed in an optimal plan without offloading.

    U_v = 1 if v cannot rerun, else max(1, Σ_{d ∈ out(v)} ([d result] + Σ_{w ∈ C(d)} U_w)),
    capped at 2^20: a computation none of whose copies is read later, nor kept as a result, can be
    dropped. With the order of first computations fixed (``fixed_order``) the first computation
    cannot be dropped even when useless, so a task that can rerun may need one more:
    U_v = 1 + Σ_{d ∈ out(v)} ([d result] + Σ_{w ∈ C(d)} U_w) (three independent results in a given
    order, the last with a workspace: the second is computed, dropped, and computed again at the
    end). O(n + Σ consumers).
    """
    U = [1] * inst.n
    if not recompute:
        return U
    for v in reversed(inst.topological_order):
        if not inst.can_recompute[v]:
            continue
        total = 0
        for d in inst.outputs[v]:
            total += (0 if inst.consumers[d] else 1) + sum(U[w] for w in inst.consumers[d])
        U[v] = min(1 + total if fixed_order else max(1, total), _U_CAP)
    return U


def plan_computations(inst: Instance, plan: Plan) -> list[int]:
    """How many times each task is computed in ``plan``."""
    cnt = [0] * inst.n
    for _, e in plan.events():
        if e.kind == COMPUTE:
            cnt[inst.task_index[e.target]] += 1
    return cnt


@dataclass
class MoccasinModel:
    """The CP-SAT model and its variables (see the module docstring)."""

    request: Request
    cp: Any
    C: list[int]
    T: int
    start: list[list[Any]]       # start[v][k]
    present: list[list[Any]]     # present[v][k] (literals)
    end: dict[tuple[int, int], Any]  # (datum, k) -> retention end
    exact: bool
    stats: dict[str, Any] = field(default_factory=dict)
    # the auxiliary variables, kept so that a hint can set every variable (a complete hint is
    # checked at once by CP-SAT; a partial one is completed by search: seconds on 300 tasks)
    length: dict[tuple[int, int], Any] = field(default_factory=dict)  # (datum, k) -> copy length
    reads: list[tuple[int, int, int, int, Any]] = field(default_factory=list)  # (v, k, d, j, z)
    keeps: list[tuple[int, int, Any]] = field(default_factory=list)  # (result d, k, y)
    count: Any = None  # K, the number of present computations

    def plan(self, value) -> Plan:
        """The SPEC plan of a solution (``value``: the solver's ``Value``)."""
        inst = self.request.instance
        comps = []
        for v in range(inst.n):
            for k in range(self.C[v]):
                if value(self.present[v][k]):
                    comps.append((value(self.start[v][k]), v, k))
        comps.sort()
        positions = [s for s, _, _ in comps]
        frees: list[list[int]] = [[] for _ in comps]
        for (d, k), e_var in self.end.items():
            v = inst.producer[d]
            if not value(self.present[v][k]):
                continue
            e = value(e_var)
            if e >= self.T - 1 and not inst.consumers[d]:
                continue  # a result's copy kept to the end
            idx = bisect.bisect_right(positions, e) - 1  # the last compute at a position <= e
            frees[idx].append(d)
        tids = [t.id for t in inst.tasks]
        dids = [dd.id for dd in inst.data]
        stages = []
        for i, (_, v, _) in enumerate(comps):
            st = [Event(COMPUTE, tids[v])]
            st += [Event("free", dids[d]) for d in sorted(frees[i])]
            stages.append(st)
        return Plan(stages)


def moccasin_model(req: Request, intervals: int | list[int] = DEFAULT_INTERVALS,
                   hint: Plan | None = None, order: list[int] | None = None,
                   deadline: Deadline | None = None) -> MoccasinModel:
    """Build the Moccasin CP-SAT model of ``req`` (objective ``time``, no offloading).

    ``order`` (task indices) fixes the order of the first computations, as
    Checkmate does; the model then solves that restriction only. Building
    stops with :class:`~memopt.backends.model.BuildStopped` when ``deadline``
    expires (thousands of tasks take seconds of Python).
    """

    def check(v: int) -> None:
        if deadline is not None and v % 64 == 0 and deadline.expired():
            raise BuildStopped(f"moccasin: the deadline expired while building the model (task {v} of {n})")

    from ortools.sat.python import cp_model

    inst = req.instance
    if req.offload:
        raise MemoptError("moccasin does not model offloading (retention intervals of fast memory only)")
    if req.budget is None:
        raise MemoptError("moccasin needs a budget")
    n = inst.n
    U = useful_computations(inst, req.recompute, fixed_order=order is not None)
    if isinstance(intervals, int):
        C = [min(U[v], max(1, intervals)) for v in range(n)]
    else:
        C = [min(U[v], max(1, c)) for v, c in enumerate(intervals)]
    hint_counts = None
    if hint is not None:
        hint_counts = plan_computations(inst, hint)
        # room for the hint: as many computations as it makes (still at most U_v)
        C = [max(C[v], min(hint_counts[v], U[v])) for v in range(n)]
        if any(hint_counts[v] > C[v] for v in range(n)):
            hint = None  # it uses useless computations: not representable, not needed
    exact = all(C[v] >= U[v] for v in range(n))
    T = sum(C)
    m = cp_model.CpModel()
    start = [[m.new_int_var(0, T - 1, f"s[{v},{k}]") for k in range(C[v])] for v in range(n)]
    present = [[m.new_constant(1) if k == 0 else m.new_bool_var(f"a[{v},{k}]") for k in range(C[v])]
               for v in range(n)]
    end: dict[tuple[int, int], Any] = {}
    lengths: dict[tuple[int, int], Any] = {}
    reads: list[tuple[int, int, int, int, Any]] = []
    keeps: list[tuple[int, int, Any]] = []
    size = inst.size
    mem_intervals, mem_demands = [], []
    unit_intervals = []
    for v in range(n):
        check(v)
        for k in range(C[v]):
            s, a = start[v][k], present[v][k]
            if k > 0:
                m.add_implication(a, present[v][k - 1])
                m.add(s == 0).only_enforce_if(~a)  # absent computations are fixed (no symmetric copies)
            unit_intervals.append(m.new_optional_fixed_size_interval_var(s, 1, a, f"c[{v},{k}]"))
            if inst.workspace[v] > 0:
                mem_intervals.append(unit_intervals[-1])
                mem_demands.append(inst.workspace[v])
            for d in inst.outputs[v]:
                e = m.new_int_var(0, T - 1, f"e[{d},{k}]")
                end[(d, k)] = e
                m.add(e >= s)
                if k > 0:
                    m.add(e == 0).only_enforce_if(~a)
                if size[d] > 0:
                    length = m.new_int_var(1, T, f"len[{d},{k}]")
                    lengths[(d, k)] = length
                    m.add(length == e - s + 1).only_enforce_if(a)
                    iv = m.new_optional_interval_var(s, length, e + 1, a, f"r[{d},{k}]")
                    mem_intervals.append(iv)
                    mem_demands.append(size[d])
            if k > 0:
                for d in inst.outputs[v]:
                    m.add(end[(d, k - 1)] < s).only_enforce_if(a)
    m.add_no_overlap(unit_intervals)
    # the present computations fill positions 0..K-1 (no gaps): removes the symmetry of empty positions
    K = m.new_int_var(n, T, "K")
    m.add(sum(present[v][k] for v in range(n) for k in range(1, C[v])) + n == K)
    for v in range(n):
        for k in range(C[v]):
            m.add(start[v][k] < K).only_enforce_if(present[v][k])
    if mem_intervals:
        m.add_cumulative(mem_intervals, mem_demands, int(req.budget))
    # precedence: first computations follow the task graph (redundant, helps propagation)
    for v in range(n):
        for u in inst.preds[v]:
            m.add(start[u][0] < start[v][0])
    if order is not None:
        for u, v in zip(order, order[1:]):
            m.add(start[u][0] < start[v][0])
        exact = False
    # precedence through the retention intervals
    for v in range(n):
        check(v)
        for k in range(C[v]):
            for d in inst.inputs[v]:
                u = inst.producer[d]
                lits = []
                for j in range(C[u]):
                    z = m.new_bool_var(f"z[{v},{k},{d},{j}]")
                    m.add_implication(z, present[u][j])
                    m.add(start[u][j] < start[v][k]).only_enforce_if(z)
                    m.add(end[(d, j)] >= start[v][k]).only_enforce_if(z)
                    lits.append(z)
                    reads.append((v, k, d, j, z))
                m.add_bool_or(lits).only_enforce_if(present[v][k])
    # results keep a copy to the end
    for i, d in enumerate(inst.results):
        if deadline is not None and i % 64 == 0 and deadline.expired():
            raise BuildStopped(f"moccasin: the deadline expired while building the model (result {i} of "
                               f"{len(inst.results)})")
        v = inst.producer[d]
        lits = []
        for k in range(C[v]):
            y = m.new_bool_var(f"y[{d},{k}]")
            m.add_implication(y, present[v][k])
            m.add(end[(d, k)] == T - 1).only_enforce_if(y)
            lits.append(y)
            keeps.append((d, k, y))
        m.add_bool_or(lits)
    obj = [(inst.time[v], present[v][k]) for v in range(n) for k in range(1, C[v])
           if inst.time[v] > 0]
    if obj:
        m.minimize(sum(c * a for c, a in obj))
    model = MoccasinModel(req, m, C, T, start, present, end, exact,
                          stats={"intervals": sum(C), "horizon": T, "exact_model": exact,
                                 "max_useful": max(U) if U else 0, "hinted": hint is not None},
                          length=lengths, reads=reads, keeps=keeps, count=K)
    if hint is not None:
        add_hint(model, hint, deadline)  # seconds on 20,005 tasks
    return model


def add_hint(model: MoccasinModel, plan: Plan, deadline: Deadline | None = None) -> None:
    """Hint every variable from a recompute-only plan: its k-th compute of v is computation k.

    Stops with :class:`~memopt.backends.model.BuildStopped` when ``deadline`` expires (1.4 s of Python on
    a 20,005-task training graph: the model is of no use without the time to solve it).
    """

    def check(i: int, of: int, what: str) -> None:
        if deadline is not None and i % 64 == 0 and deadline.expired():
            raise BuildStopped(f"moccasin: the deadline expired while hinting the model ({what} {i} of {of})")

    inst = model.request.instance
    m = model.cp
    n = inst.n
    pos = 0
    k_of = [0] * n
    starts: dict[tuple[int, int], int] = {}
    resident: dict[int, int] = {}   # datum -> computation k whose copy is resident
    ends: dict[tuple[int, int], int] = {}
    last_pos = -1
    for st in plan.stages:
        for e in st:
            if e.kind == COMPUTE:
                v = inst.task_index[e.target]
                k = k_of[v]
                k_of[v] += 1
                starts[(v, k)] = pos
                for d in inst.outputs[v]:
                    if d in resident:
                        # still resident from the previous computation: that copy ends just before
                        ends[(d, resident[d])] = pos - 1
                    resident[d] = k
                last_pos = pos
                pos += 1
            elif e.kind == "free":
                d = inst.datum_index[e.target]
                if d in resident:
                    ends[(d, resident.pop(d))] = max(last_pos, 0)
    for d, k in resident.items():
        ends[(d, k)] = model.T - 1
    end_of: dict[tuple[int, int], int] = {}
    for v in range(n):
        check(v, n, "task")
        for k in range(model.C[v]):
            on = (v, k) in starts
            if k > 0:
                m.add_hint(model.present[v][k], on)
            m.add_hint(model.start[v][k], starts.get((v, k), 0))
            for d in inst.outputs[v]:
                e = ends.get((d, k), starts.get((v, k), 0)) if on else 0
                end_of[(d, k)] = e
                m.add_hint(model.end[(d, k)], e)
                if (d, k) in model.length:
                    m.add_hint(model.length[(d, k)], e - starts[(v, k)] + 1 if on else 1)
    # the auxiliaries: the copy each computation reads (the one resident at its position), the copy
    # of each result kept to the end, and the number of computations
    chosen: set[tuple[int, int, int]] = set()
    for i, (v, k, d, j, z) in enumerate(model.reads):
        check(i, len(model.reads), "read")
        u = inst.producer[d]
        ok = (v, k) in starts and (u, j) in starts and starts[(u, j)] < starts[(v, k)] <= end_of[(d, j)]
        pick = ok and (v, k, d) not in chosen
        if pick:
            chosen.add((v, k, d))
        m.add_hint(z, pick)
    for d, k, y in model.keeps:
        v = inst.producer[d]
        m.add_hint(y, (v, k) in starts and end_of[(d, k)] == model.T - 1)
    if model.count is not None:
        m.add_hint(model.count, pos)


__all__ = ["DEFAULT_INTERVALS", "MoccasinModel", "add_hint", "moccasin_model", "plan_computations",
           "useful_computations"]
