"""A lower bound on the recomputation a budget forces: the states at two tasks' first computations, linked.

**Definition.** Fix a plan (recomputation, no offloading) within the
budget M and tasks v₁, v₂ with v₁ an ancestor of v₂ (so v₁'s first compute
comes first). At v_j's first compute let B_j be the tasks computed so far
(down-sets, anc(v_j) ⊆ B_j, B₁ ∪ {v₁} ⊆ B₂) and H_j the data in memory;
let I be the tasks of B₁ run again between the two moments and A the tasks
of B₂ run again after v₂. Then, besides the memory rows
Σ_{H_j} s ≤ M − out(v_j) − w(v_j) (inputs(v_j) ⊆ H_j):

- a datum of a task p ∈ B₁ read by a task first run between the moments is
  in H₁ or p ∈ I (it was kept since v₁, or made again in between);
- a datum of p ∈ B₂ read after v₂ (by a task outside B₂, or a result) is
  in H₂ or p ∈ A;
- every input of a task of I is in H₁ or made again in between (its
  producer in I); every input of a task of A is in H₂ or its producer in A;
- **the link**: a datum of p ∈ B₁ in H₂ is in H₁ or p ∈ I — what memory
  holds at v₂ was held at v₁ or made in between;
- only tasks that may rerun are in I or A.

I and A are runs beyond the first ones, disjoint in time, so the makespan
is at least Σ c(v) + min Σ_{I} c + Σ_{A} c. The one-moment program of
:mod:`memopt.exact.recompute_bound` at v₁ counts a recomputation once,
wherever it happens; the link makes the pair count one that must happen
twice: a training step whose loss gradient fills memory must drop the
activations (v₁) and recompute them for the first backward task (v₂),
and what it could not keep at v₁ it cannot hold at v₂ for the layers'
backward either. The link is a three-literal clause (not a closure row),
so this is a 0-1 program for CP-SAT; any proven bound of it is valid.

Size: O(n + m) variables and O(n + e) rows. The argument is ours (an
extension of the moment bound, docs/budget.md §8).
"""

from __future__ import annotations

from memopt.backends.model import LinearModel
from memopt.core.instance import Instance
from memopt.graph.csr import graph_arrays

Literal = bool | int
"""A constant or a 0-1 variable of the model."""


def clause(lm: LinearModel, pos: list[Literal], neg: list[Literal]) -> None:
    """(∨ pos) ∨ (∨ ¬neg), constants folded (a clause already true adds no row; an empty one is infeasible)."""
    if any(x is True for x in pos) or any(x is False for x in neg):
        return
    p = [x for x in pos if x is not False]
    q = [x for x in neg if x is not True]
    lm.add_ge([(x, 1) for x in p] + [(x, -1) for x in q], 1 - len(q))


def down_set(lm: LinearModel, inst: Instance, forced_in, forced_out, tag: str) -> list[Literal]:
    """The tasks run before a moment: per task True (``forced_in``), False (``forced_out``) or a 0-1 variable,
    with the rows that make them a down-set (a task in only with its predecessors)."""
    b: list[Literal] = [True if forced_in[w] else False if forced_out[w] else lm.binary(f"{tag}[{w}]")
                        for w in range(inst.n)]
    for w in range(inst.n):
        for u in inst.preds[w]:
            clause(lm, [b[u]], [b[w]])
    return b


def moment_pair_program(inst: Instance, v1: int, v2: int, budget: int) -> LinearModel | None:
    """The 0-1 program of the pair (v₁, v₂) (module docstring), v₁ an ancestor of v₂; ``None`` when a task's own
    memory exceeds the budget (no plan exists)."""
    n, m = inst.n, inst.m
    ga = graph_arrays(inst)
    if not ga.ancestors(v2)[v1]:
        raise ValueError(f"moment pair: task {inst.tasks[v1].id!r} is not an ancestor of {inst.tasks[v2].id!r}")
    rooms = [budget - inst.output_size[v] - inst.workspace[v] for v in (v1, v2)]
    if any(r < sum(inst.size[d] for d in inst.inputs[v]) for r, v in zip(rooms, (v1, v2), strict=True)):
        return None
    anc1, desc1 = ga.ancestors(v1), ga.descendants(v1)
    anc2, desc2 = ga.ancestors(v2), ga.descendants(v2)
    desc1[v1] = desc2[v2] = True
    lm = LinearModel(f"moment-pair-{v1}-{v2}")
    b1 = down_set(lm, inst, anc1, desc1, "B1")
    b2 = down_set(lm, inst, anc2, desc2, "B2")
    for w in range(n):
        clause(lm, [b2[w]], [b1[w]])
    again = [(lm.binary(f"I[{w}]") if b1[w] is not False else False,
              lm.binary(f"A[{w}]") if b2[w] is not False else False) if inst.can_recompute[w] else (False, False)
             for w in range(n)]
    for w, (i, a) in enumerate(again):
        clause(lm, [b1[w]], [i])
        clause(lm, [b2[w]], [a])
    held: list[tuple[Literal, Literal]] = []
    for d in range(m):
        p = inst.producer[d]
        if inst.size[d] == 0:
            held.append((True, True))  # a datum of size 0 can always be held
            continue
        hs = []
        for j, b in enumerate((b1, b2)):
            h = lm.binary(f"H{j + 1}[{d}]") if b[p] is not False else False
            clause(lm, [b[p]], [h])
            hs.append(h)
        held.append((hs[0], hs[1]))
    for j, v in enumerate((v1, v2)):
        for d in inst.inputs[v]:
            if not isinstance(held[d][j], bool):
                lm.fix(held[d][j], 1)
    for d in range(m):
        p = inst.producer[d]
        (h1, h2), (i, a) = held[d], again[p]
        for r in list(inst.consumers[d]) or [None]:  # None: a result, needed at the end
            if r is not None:  # read by a task first run between the moments
                clause(lm, [h1, i, b1[r]], [b1[p], b2[r]])
            clause(lm, [h2, a] + ([b2[r]] if r is not None else []), [b2[p]])
        clause(lm, [h1, i], [h2, b1[p]])  # the link
    for w, (i, a) in enumerate(again):
        for d in inst.inputs[w]:
            p = inst.producer[d]
            clause(lm, [held[d][0], again[p][0]], [i])
            clause(lm, [held[d][1], again[p][1]], [a])
    for j, room in enumerate(rooms):
        terms = [(held[d][j], inst.size[d]) for d in range(m) if not isinstance(held[d][j], bool)]
        fixed = sum(inst.size[d] for d in range(m) if held[d][j] is True and inst.size[d])
        lm.add_le(terms, room - fixed)
    lm.minimize([(x, inst.time[w]) for w, pair in enumerate(again) for x in pair
                 if not isinstance(x, bool) and inst.time[w]])
    return lm


__all__ = ["Literal", "clause", "down_set", "moment_pair_program"]
