"""The constraints of a stage model (SPEC §2 stage semantics).

Every function adds one group of rows to the :class:`~memopt.formulations.
linear.LinearModel` behind a :class:`~.variables.StageVariables`. The rows
are written once and solved by CP-SAT, HiGHS and CBC alike.

Memory follows Checkmate's running sum (Jain et al., MLSys 2020, eq. 5-6):
the memory after slot ``k`` is the memory after slot ``k − 1``, minus the
data freed after it, plus the outputs of slot ``k``. Frees are *allowed*
decisions ``X[t,d,k]``: only at a slot that uses ``d``, only when no later
slot of the stage reads ``d``, and never for a datum kept into the next
stage or transferred in this one (SPEC: a datum may not be freed in the
stage that transfers it). Checkmate's free variable is forced to one by its
"hazard" rows; for a memory ≤ M model only the upper bounds matter (the
solver frees whatever it may), which is why they are the only rows here —
and why the extracted plan frees every datum after its last use
(:mod:`.plans`), so that its memory is at most the model's.

Offloading follows POET (Patil et al., ICML 2022) with SPEC's rules:
``offload d`` needs ``d`` resident at the stage start and holds it through
the stage; ``reload d`` takes its memory from the stage start and makes
``d`` usable from the next stage; a datum is transferred at most once per
stage and never offloaded twice (its slow copy stays).

Model restrictions (they shrink the plan space, never admit a wrong plan):
a task is not recomputed while one of its outputs is resident (its outputs would be
resident already: SPEC counts only the new ones); a datum is not reloaded
in a stage that recomputes it or right after a stage that transferred it.
"""

from __future__ import annotations

from memopt.formulations.stage.layout import FREE
from memopt.formulations.stage.variables import CONST, StageVariables, add_row, neg


def add_starts(V: StageVariables) -> None:
    """Every FREE stage starts one task; every task starts in one stage (N)."""
    lm, win = V.lm, V.win
    for t in range(V.T):
        if V.layout.new[t] == FREE:
            add_row(lm, [(V.N[t, v], 1) for v in win.candidates[t]], 1, 1, f"start[{t}]")
    if V.N:
        by_task: dict[int, list[int]] = {}
        for (_t, v), i in V.N.items():
            by_task.setdefault(v, []).append(i)
        for v in range(V.inst.n):
            add_row(lm, [(i, 1) for i in by_task.get(v, [])], 1, 1, f"once[{v}]")
        # precedence of first computations (implied by the input rows; tightens the LP):
        # Σ_t t·N[t,u] < Σ_t t·N[t,v] for every arc u -> v
        for v in range(V.inst.n):
            for u in V.inst.preds[v]:
                add_row(lm, [(V.N[t, v], t) for t in V.win.candidates_of(v)]
                        + [(V.N[t, u], -t) for t in V.win.candidates_of(u)], lo=1)


def add_inputs(V: StageVariables) -> None:
    """A compute needs its inputs: resident at the stage start or recomputed earlier in it."""
    lm, inst = V.lm, V.inst
    producer = inst.producer
    for t in range(V.T):
        for u in V.win.recompute[t]:
            for d in inst.inputs[u]:
                p = producer[d]
                add_row(lm, [(V.R[t, u], 1)] + neg(V.resident(t, d)) + neg(V.var(V.R, (t, p))), hi=0)
        new = V.layout.new[t]
        if new is None:
            continue
        if new == FREE:
            need: dict[int, list[int]] = {}
            for v in V.win.candidates[t]:
                for d in inst.inputs[v]:
                    need.setdefault(d, []).append(V.N[t, v])
            for d, ns in need.items():
                p = producer[d]
                add_row(lm, [(i, 1) for i in ns] + neg(V.resident(t, d)) + neg(V.var(V.R, (t, p))), hi=0)
        else:
            for d in inst.inputs[new]:
                p = producer[d]
                add_row(lm, V.resident(t, d) + V.var(V.R, (t, p)), lo=1, name=f"input[{t},{d}]")


def add_residency(V: StageVariables) -> None:
    """F[t+1,d] ≤ F[t,d] + computed(t, p(d)) + L[t,d], and the dominance rows on F and R."""
    lm, inst = V.lm, V.inst
    producer, consumers = inst.producer, inst.consumers
    for (t1, d), f in V.F.items():
        t = t1 - 1
        if t < 0:
            add_row(lm, [(f, 1)], hi=0)
            continue
        add_row(lm, [(f, 1)] + neg(V.resident(t, d)) + neg(V.computed(t, producer[d])) + neg(V.var(V.L, (t, d))),
                hi=0)
    for (t, d), f in V.F.items():
        if t >= V.T:
            continue
        comp = V.computed(t, producer[d])
        if comp and any(i != CONST for i, _ in comp):
            # recomputing p(d) while d is resident: SPEC would not count d twice; never needed
            add_row(lm, [(f, 1)] + comp, hi=1)
        if f != CONST:
            # a resident datum is read, kept or offloaded in the stage (else: a leading free)
            used = []
            for c in consumers[d]:
                used += V.computed(t, c)
            add_row(lm, [(f, 1)] + neg(V.resident(t + 1, d)) + neg(V.var(V.O, (t, d))) + neg(used), hi=0)
    # a recomputation produces something read later in the stage or kept
    for (t, u), r in V.R.items():
        useful = []
        for d in inst.outputs[u]:
            useful += V.resident(t + 1, d)
            for c in consumers[d]:
                useful += V.computed(t, c)
        add_row(lm, [(r, 1)] + neg(useful), hi=0)


def add_results(V: StageVariables) -> None:
    """Every result exists at the end, in fast memory or offloaded (a freed result can be recomputed)."""
    for d in V.inst.results:
        add_row(V.lm, V.resident(V.T, d) + V.slow_before(V.T, d), lo=1, name=f"result[{d}]")


def add_transfers(V: StageVariables) -> None:
    """SPEC's transfer rules, POET's page-in/page-out, and the slow-memory capacity."""
    lm, inst = V.lm, V.inst
    by_datum: dict[int, list[int]] = {}
    for (t, d), o in V.O.items():
        add_row(lm, [(o, 1)] + neg(V.resident(t, d)), hi=0)  # offload needs d resident
        by_datum.setdefault(d, []).append(o)
    for os_ in by_datum.values():
        add_row(lm, [(o, 1) for o in os_], hi=1)  # the slow copy stays: offload once
    for (t, d), r in V.L.items():
        # reload needs d in slow memory (offloaded at least two stages before: not in the previous one)
        add_row(lm, [(r, 1)] + neg(V.slow_before(t - 1, d)), hi=0)
        # not in fast memory at the stage start: not kept, not transferred in the previous stage
        add_row(lm, [(r, 1)] + V.resident(t, d), hi=1)
        prev = V.var(V.O, (t - 1, d)) + V.var(V.L, (t - 1, d))
        if prev:
            add_row(lm, [(r, 1)] + prev, hi=1)
        comp = V.computed(t, inst.producer[d])
        if comp:
            add_row(lm, [(r, 1)] + comp, hi=1)
    cap = inst.machine.slow_capacity
    if cap is not None and V.O:
        g = V.scale.mem
        add_row(lm, [(o, inst.size[d] // g) for (t, d), o in V.O.items()], hi=cap // g, name="slow")


def _cap_row(V: StageVariables, terms: list, peak: int | None, name: str) -> None:
    if peak is None:
        add_row(V.lm, terms, hi=V.cap, name=name)
    else:
        add_row(V.lm, terms + [(peak, -1)], hi=0, name=name)


def add_stage_memory(V: StageVariables, peak: int | None) -> None:
    """Memory at every stage start and at every new task's compute ≤ the cap (or ≤ P).

    Both are exact: at the start of stage ``t`` the memory is the resident
    data plus the reloads (SPEC §2); at the new task (the last compute of
    the stage) the data still live are exactly those kept into stage ``t+1``,
    read by the new task or transferred in the stage — every other datum has
    been freed after its last use — plus the new task's outputs and
    workspace. ``Z[t,d]`` ≥ each of those conditions where more than one
    may hold. The memory at recomputation slots is added per stage by
    :func:`add_detailed_memory`.
    """
    lm, inst = V.lm, V.inst
    g = V.scale.mem
    size = [s // g for s in inst.size]
    out = [sum(size[d] for d in inst.outputs[v]) for v in range(inst.n)]
    ws = [w // g for w in inst.workspace]
    producer, consumers = inst.producer, inst.consumers
    starts: dict[int, list] = {t: [] for t in range(V.T)}
    for (t, d), f in V.F.items():
        if t < V.T and size[d]:
            starts[t].append((f, size[d]))
    for (t, d), r in V.L.items():
        if size[d]:
            starts[t].append((r, size[d]))
    V.start_terms = starts
    for t in range(V.T):
        if starts[t]:
            _cap_row(V, starts[t], peak, f"mem0[{t}]")
    for t in range(V.T):
        new = V.layout.new[t]
        if new is None:
            continue
        terms: list = []
        if new == FREE:
            cands = V.win.candidates[t]
            terms += [(V.N[t, v], out[v] + ws[v]) for v in cands if out[v] + ws[v]]
            data: set[int] = set()
            for v in cands:
                data.update(inst.inputs[v])
        else:
            terms.append((CONST, out[new] + ws[new]))
            data = set(inst.inputs[new])
        data.update(d for (tt, d) in V.O if tt == t)
        data.update(d for (tt, d) in V.L if tt == t)
        data.update(d for (tt, d) in V.F if tt == t + 1)
        for d in sorted(data):
            if not size[d]:
                continue
            if new != FREE:
                if d in inst.outputs[new]:
                    continue
                if d in inst.inputs[new]:
                    terms.append((CONST, size[d]))
                    continue
            conds: list[list] = []
            kept = V.resident(t + 1, d)
            if kept:
                made = V.var(V.N, (t, producer[d]))  # kept outputs of the new task are in its outputs
                conds.append(kept + neg(made))
            if new == FREE:
                reads = [(V.N[t, c], 1) for c in consumers[d] if (t, c) in V.N]
                if reads:
                    conds.append(reads)
            conds += [x for x in (V.var(V.O, (t, d)), V.var(V.L, (t, d))) if x]
            if len(conds) == 1 and len(conds[0]) == 1 and conds[0][0][1] == 1:
                terms.append((conds[0][0][0], size[d]))
                continue
            z = lm.binary(f"Z[{t},{d}]")
            V.Z[t, d] = z
            for c in conds:
                add_row(lm, [(z, 1)] + neg(c), lo=0)
            terms.append((z, size[d]))
        _cap_row(V, terms, peak, f"memN[{t}]")


def add_detailed_memory(V: StageVariables, peak: int | None, stages) -> None:
    """The memory after every recomputation of the given stages ≤ the cap (or ≤ P).

    Checkmate's running sum over the slots of the stage with the allowed
    frees ``X[t,d,k]`` (see the module docstring). Stages already detailed
    are skipped, so this can be called again with more stages (lazy rows).
    """
    lm, inst = V.lm, V.inst
    g = V.scale.mem
    size = [s // g for s in inst.size]
    out = [sum(size[d] for d in inst.outputs[v]) for v in range(inst.n)]
    ws = [w // g for w in inst.workspace]
    for t in sorted(set(stages) - V.detailed):
        V.detailed.add(t)
        start = V.start_terms[t]
        slots = V.slots[t]
        K = len(slots)
        last_new = V.layout.new[t] is not None
        # the new task's point is covered exactly by add_stage_memory; detail the recomputations
        Kr = K - 1 if last_new else K
        if Kr <= 0:
            continue
        frees: list[list[tuple[int, int]]] = [[] for _ in range(K)]
        for d, ks in V._users[t].items():
            if not size[d]:
                continue
            if V.layout.new[t] not in (None, FREE) and d in inst.inputs[V.layout.new[t]]:
                continue  # the stage's new task reads d last
            # a free after the last recomputation slot changes no detailed point
            cand = [k for k in ks if k < Kr - 1]
            if not cand or V.F.get((t + 1, d)) == CONST:
                continue  # (a datum certainly kept is never freed in the stage)
            xs = {}
            for k in cand:
                x = lm.binary(f"X[{t},{d},{k}]")
                V.X[t, d, k] = x
                xs[k] = x
                add_row(lm, [(x, 1)] + neg(V.slot_on(t, k)), hi=0)
                frees[k].append((x, size[d]))
            total = [(x, 1) for x in xs.values()]
            for j in ks:  # not before a later read in the stage
                reads = V.slot_reads(t, j, d)
                before = [(xs[k], 1) for k in cand if k < j]
                if reads and before:
                    add_row(lm, before + reads, hi=1)
            kept = V.resident(t + 1, d)
            if kept:
                add_row(lm, total + kept, hi=1)
            if (t, d) in V.O:
                add_row(lm, total + [(V.O[t, d], 1)], hi=1)
        prev = None
        for k in range(Kr):
            u = lm.var(f"U[{t},{k}]", 0, V.cap, True)
            V.U[t, k] = u
            terms = [(u, 1)]
            if prev is None:
                terms += neg(start)
            else:
                terms += [(prev, -1)] + [(x, s) for x, s in frees[k - 1]]
            terms += neg(V.slot_sum(t, k, out))
            add_row(lm, terms, 0, 0)
            w = V.slot_sum(t, k, ws)
            if w or peak is not None:
                _cap_row(V, [(u, 1)] + w, peak, f"mem[{t},{k}]")
            prev = u


def stage_compute(V: StageVariables, t: int) -> list:
    """Terms of the compute time of stage ``t`` (model units)."""
    time = V.scale.time
    terms: list = []
    for u in V.win.recompute[t]:
        if time[u]:
            terms.append((V.R[t, u], time[u]))
    new = V.layout.new[t]
    if new == FREE:
        terms += [(V.N[t, v], time[v]) for v in V.win.candidates[t] if time[v]]
    elif new is not None and time[new]:
        terms.append((CONST, time[new]))
    return terms


def add_durations(V: StageVariables) -> list:
    """D[t] ≥ compute(t), D[t] ≥ transfer(t) for stages that may transfer; returns the makespan terms.

    SPEC: a stage lasts max(Σ c(v), Σ s(d)/β). Stages without transfer
    variables last their compute time (no D variable).
    """
    lm = V.lm
    tr = V.scale.transfer
    moves: dict[int, list] = {}
    for (t, d), o in V.O.items():
        if tr[d]:
            moves.setdefault(t, []).append((o, tr[d]))
    for (t, d), r in V.L.items():
        if tr[d]:
            moves.setdefault(t, []).append((r, tr[d]))
    makespan: list = []
    for t in range(V.T):
        comp = stage_compute(V, t)
        if t not in moves:
            makespan += comp
            continue
        hi = sum(a for _, a in comp if a > 0) + sum(a for _, a in moves[t])
        dv = lm.var(f"D[{t}]", 0, hi, True)
        V.D[t] = dv
        add_row(lm, [(dv, 1)] + neg(comp), lo=0)
        add_row(lm, [(dv, 1)] + neg(moves[t]), lo=0)
        makespan.append((dv, 1))
    return makespan


__all__ = ["add_detailed_memory", "add_durations", "add_inputs", "add_residency", "add_results", "add_stage_memory",
           "add_starts", "add_transfers", "stage_compute"]
