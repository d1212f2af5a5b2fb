"""A lower bound on the recomputation a budget forces: the state at one task's first computation.

**Definition.** Fix a plan (recomputation, no offloading) whose peak is at
most M, and a task v. At v's *first* computation let B be the tasks
computed before (a down-set with anc(v) ⊆ B, B ∩ ({v} ∪ desc(v)) = ∅, as
in :mod:`memopt.exact.cut_bound`), H the data then in memory (produced in
B; inputs(v) ⊆ H) and R the tasks of B computed again afterwards. Then

- Σ_{d ∈ H} s(d) ≤ M − out(v) − w(v) (SPEC §2: the memory at that compute);
- every datum d of a task w ∈ B that is read by a task outside B, or is a
  result, is in H or w ∈ R (it is needed later: kept since, or made again);
- every input d' of a task w ∈ R is in H or its producer is in R (a
  recomputation needs its inputs, and their producers lie in B);
- w ∈ R only if w may be recomputed.

Every task of R runs once more than the plan's first computations, so the
makespan is at least Σ c(v) + OPT(v), where OPT(v) is the least Σ_{w ∈ R}
c(w) over all (B, H, R) meeting these conditions, and at least Σ c(v) +
max_v OPT(v). If no (B, H, R) meets them for some v, no plan fits M at all.

**Computation.** OPT(v) is a small 0-1 program (a variable per task for B,
per datum for H, per task for R; a row per edge) solved by CP-SAT; any
proven bound of it (even at a time limit) keeps the bound valid. Only tasks
whose min-cut memory cut(v) exceeds M can have OPT(v) > 0 (otherwise the
least-memory down-set fits with R = ∅), so the tasks are examined by
decreasing cut(v). On layered-n300-s2 at 0.8× the given order's peak: OPT =
608 at the critical task (0.4 % of Σ c), about a second.

The argument counts the recomputations one moment forces, not those of
several moments: a valid but partial bound. It is ours (a recomputation
analogue of the min-cut bound of docs/peak.md §8).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from memopt.core.deadline import Deadline, as_deadline
from memopt.core.instance import Instance
from memopt.graph.masks import task_ancestors, task_descendants


@dataclass
class RecomputeBound:
    """``extra``: a proven lower bound on the recomputation time beyond Σ c(v) (0: none found).

    ``infeasible_at``: a task at whose first computation no state fits the
    budget (then no plan exists); ``values``: OPT(v) bounds per examined task.
    """

    extra: int = 0
    task: int | None = None
    infeasible_at: int | None = None
    values: dict[int, float] = field(default_factory=dict)
    examined: int = 0
    seconds: float = 0.0


def moment_program(inst: Instance, v: int, budget: int):
    """The 0-1 program of OPT(v) (module docstring) as a :class:`~memopt.backends.linear.LinearModel`.

    Returns ``None`` when v's own memory (inputs, outputs, workspace) exceeds the budget.
    """
    from memopt.backends.linear import LinearModel

    n = inst.n
    anc, desc = task_ancestors(inst)[v], task_descendants(inst)[v]
    cap = budget - inst.output_size[v] - inst.workspace[v]
    if cap < sum(inst.size[d] for d in inst.inputs[v]):
        return None
    lm = LinearModel(f"moment-{v}")
    # x[w]: w in B — True/False when forced, else a variable index
    x: dict[int, bool | int] = {}
    for w in range(n):
        if (anc >> w) & 1:
            x[w] = True
        elif w == v or (desc >> w) & 1:
            x[w] = False
        else:
            x[w] = lm.binary(f"B[{w}]")
    for w in range(n):  # a down-set (a task outside anc(v), desc(v) only has such predecessors or ancestors)
        if isinstance(x[w], bool):
            continue
        for u in inst.preds[w]:
            if x[u] is False:
                lm.fix(x[w], 0)
            elif not isinstance(x[u], bool):
                lm.add_le([(x[w], 1), (x[u], -1)], 0)
    r = {w: lm.binary(f"R[{w}]") for w in range(n) if x[w] is not False and inst.can_recompute[w]}
    for w, rv in r.items():
        if not isinstance(x[w], bool):
            lm.add_le([(rv, 1), (x[w], -1)], 0)
    h = {}
    for d in range(inst.m):
        p = inst.producer[d]
        if x[p] is False or inst.size[d] == 0:
            continue  # a datum of size 0 can always be held
        h[d] = lm.binary(f"H[{d}]")
        if not isinstance(x[p], bool):
            lm.add_le([(h[d], 1), (x[p], -1)], 0)
    for d in inst.inputs[v]:
        if d in h:
            lm.fix(h[d], 1)
    for d, hd in h.items():
        p = inst.producer[d]
        later = [(hd, 1)] + ([(r[p], 1)] if p in r else [])
        readers = list(inst.consumers[d]) or [None]  # None: a result, needed at the end
        for a in readers:
            xa = False if a is None else x[a]
            if xa is True:
                continue
            # held or made again whenever p is in B and a is not: later >= x[p] - x[a]
            terms, rhs = list(later), 0
            if x[p] is True:
                rhs += 1
            else:
                terms.append((x[p], -1))
            if xa is not False:
                terms.append((xa, 1))
            lm.add_ge(terms, rhs)
    for w, rv in r.items():
        for d in inst.inputs[w]:
            if d not in h:
                continue
            p = inst.producer[d]
            lm.add_ge([(h[d], 1)] + ([(r[p], 1)] if p in r else []) + [(rv, -1)], 0)
    lm.add_le([(hd, inst.size[d]) for d, hd in h.items()], cap)
    lm.minimize([(rv, inst.time[w]) for w, rv in r.items() if inst.time[w]])
    return lm


def recompute_bound(inst: Instance, budget: int, *, deadline: Deadline | float | None = None, max_tasks: int = 8,
                    orders: list[list[int]] | None = None, threads: int = 2) -> RecomputeBound:
    """max over the examined tasks v of a proven bound on OPT(v) (module docstring).

    Tasks are examined by decreasing min-cut memory, only those above the
    budget, at most ``max_tasks``, until ``deadline`` (perf_counter). An
    infeasible program proves the budget infeasible (``infeasible_at``).
    """
    from memopt.backends.linear import solve_linear
    from memopt.exact.cut_bound import cut_bound

    t0 = time.perf_counter()
    out = RecomputeBound()
    cb = cut_bound(inst, orders or [list(inst.topological_order)], floor=budget, min_flows=max_tasks,
                   deadline=deadline)
    cand = sorted((v for v, c in cb.values.items() if c > budget), key=lambda v: -cb.values[v])[:max_tasks]
    deadline = as_deadline(deadline)
    for v in cand:
        left = deadline.remaining()
        if left <= 0.05:
            break
        out.examined += 1
        lm = moment_program(inst, v, budget)
        if lm is None:
            out.infeasible_at = v
            break
        sol = solve_linear(lm, "cpsat", deadline=deadline, threads=threads)
        if sol.status == "infeasible":
            out.infeasible_at = v
            break
        if sol.bound is None:
            continue
        b = math.ceil(sol.bound - 1e-6)
        out.values[v] = b
        if b > out.extra:
            out.extra, out.task = b, v
    out.seconds = time.perf_counter() - t0
    return out


__all__ = ["RecomputeBound", "moment_program", "recompute_bound"]
