"""From a stage model's solution to a SPEC plan, and from a plan to a hint.

:func:`extract_plan` writes stage ``t`` of the model as SPEC stage ``t``:
the frees of data not needed in the stage first (leading frees), the
transfers, then the computes in slot order, each followed by the frees of
the data it read or wrote last (not kept into the next stage, not
transferred in this one). Every datum is thus freed at its last use, never
later than the model assumes, so the evaluated memory is at most the
model's (the evaluator confirms it: :func:`memopt.pipeline.finish`).

:func:`plan_hint` does the reverse for any valid plan that fits the
model's layout (see :meth:`.layout.StageLayout.from_plan`): it replays the
plan and sets every variable — computes, residency, transfers, frees, the
memory running sums, the durations — so that CP-SAT gets a complete hint
and the MILP solvers a complete starting solution. The hint is checked row
by row against the model; a plan that does not fit returns ``None`` and
the reason.

:func:`prune_plan` removes recomputations whose outputs are never used.
"""

from __future__ import annotations

from collections.abc import Sequence

from memopt.core.deadline import Deadline
from memopt.core.instance import Instance
from memopt.core.plan import COMPUTE, OFFLOAD, RELOAD, Event, Plan
from memopt.core.plan import FREE as FREE_EVENT
from memopt.formulations.stage.layout import FREE
from memopt.formulations.stage.model import StageModel
from memopt.formulations.stage.variables import CONST


def _on(values: Sequence[float], i: int) -> bool:
    return values[i] > 0.5


def solution_structure(sm: StageModel, values: Sequence[float]):
    """Per stage: computes (in slot order), offloads, reloads; and F as sets."""
    V = sm.V
    lay = sm.layout
    T = lay.T
    comps: list[list[int]] = []
    for t in range(T):
        c = [u for u in V.win.recompute[t] if _on(values, V.R[t, u])]
        new = lay.new[t]
        if new == FREE:
            chosen = [v for v in V.win.candidates[t] if _on(values, V.N[t, v])]
            if len(chosen) != 1:
                raise RuntimeError(f"stage model: stage {t} starts {len(chosen)} tasks")
            c.append(chosen[0])
        elif new is not None:
            c.append(new)
        comps.append(c)
    offl: list[set[int]] = [set() for _ in range(T)]
    rel: list[set[int]] = [set() for _ in range(T)]
    for (t, d), i in V.O.items():
        if _on(values, i):
            offl[t].add(d)
    for (t, d), i in V.L.items():
        if _on(values, i):
            rel[t].add(d)
    keep: list[set[int]] = [set() for _ in range(T + 1)]
    for (t, d), i in V.F.items():
        if i == CONST or _on(values, i):
            keep[t].add(d)
    return comps, offl, rel, keep


def extract_plan(sm: StageModel, values: Sequence[float]) -> Plan:
    """The SPEC plan of a solution (see the module docstring)."""
    inst = sm.request.instance
    comps, offl, rel, keep = solution_structure(sm, values)
    return build_plan(inst, comps, offl, rel, keep)


def build_plan(inst: Instance, comps: list[list[int]], offl: list[set[int]], rel: list[set[int]],
               keep: list[set[int]]) -> Plan:
    """Stages from their computes, transfers and the data kept at each stage start.

    ``keep[t]``: the data resident at the start of stage ``t`` after its
    leading frees (``keep[T]``: at the end). Raises ``RuntimeError`` when the
    decisions are inconsistent (a bug of the model, never a user mistake).
    """
    T = len(comps)
    tids = [t.id for t in inst.tasks]
    dids = [d.id for d in inst.data]
    in_fast: set[int] = set()
    in_slow: set[int] = set()
    stages: list[list[Event]] = []
    for t in range(T):
        ev: list[Event] = []
        comp = comps[t]
        moving = offl[t] | rel[t]
        stay = keep[t + 1] if t + 1 <= T else set()
        missing = keep[t] - in_fast
        if missing:
            raise RuntimeError(f"stage model: stage {t} keeps data that are not in fast memory: "
                               f"{sorted(dids[d] for d in missing)}")
        # the last compute (index in comp) of the stage that reads or writes each datum
        last: dict[int, int] = {}
        for i, v in enumerate(comp):
            for d in inst.inputs[v]:
                last[d] = i
            for d in inst.outputs[v]:
                last[d] = i
        lead = []
        for d in sorted(in_fast):
            needed = d in keep[t] and (d in last or d in stay or d in moving)
            if not needed:
                lead.append(d)
        for d in lead:
            ev.append(Event(FREE_EVENT, dids[d]))
            in_fast.discard(d)
        for d in sorted(offl[t]):
            ev.append(Event(OFFLOAD, dids[d]))
        for d in sorted(rel[t]):
            ev.append(Event(RELOAD, dids[d]))
        for i, v in enumerate(comp):
            ev.append(Event(COMPUTE, tids[v]))
            for d in inst.outputs[v]:
                in_fast.add(d)
            touched = list(dict.fromkeys(inst.inputs[v] + inst.outputs[v]))
            for d in touched:
                if last.get(d) != i or d in moving or d in stay:
                    continue
                ev.append(Event(FREE_EVENT, dids[d]))
                in_fast.discard(d)
        in_fast |= rel[t]
        in_slow |= offl[t]
        lost = (stay - in_fast)
        if lost:
            raise RuntimeError(f"stage model: stage {t + 1} keeps data not in fast memory: "
                               f"{sorted(dids[d] for d in lost)}")
        stages.append(ev)
    return Plan(stages)


def prune_plan(inst: Instance, plan: Plan) -> Plan:
    """Drop recomputations none of whose new outputs is ever read, offloaded or kept as a result.

    Also drops the frees of those outputs, the offloads of data that are
    neither results nor reloaded later, and stages left empty. Memory and
    makespan can only go down; repeated until nothing changes.
    O(rounds × events).
    """
    tix, dix = inst.task_index, inst.datum_index
    results = set(inst.results)
    stages = [list(st) for st in plan.stages]
    while True:
        in_fast: set[int] = set()
        runs = [0] * inst.n
        origin: dict[int, tuple[int, int]] = {}  # datum -> the recompute that created it
        used: set[int] = set()                   # data of `origin` read or offloaded since
        frees_of: dict[tuple[int, int], list[tuple[int, int]]] = {}
        useful: set[tuple[int, int]] = set()
        recomputes: list[tuple[int, int]] = []
        for k, st in enumerate(stages):
            for e in st:
                if e.kind == OFFLOAD and dix[e.target] in origin:
                    used.add(dix[e.target])
            for i, e in enumerate(st):
                if e.kind == COMPUTE:
                    v = tix[e.target]
                    for j in inst.inputs[v]:
                        if j in origin:
                            used.add(j)
                    new = [j for j in inst.outputs[v] if j not in in_fast]
                    if runs[v] > 0:
                        recomputes.append((k, i))
                        for j in new:
                            origin[j] = (k, i)
                            used.discard(j)
                    in_fast.update(new)
                    runs[v] += 1
                elif e.kind == FREE_EVENT:
                    j = dix[e.target]
                    in_fast.discard(j)
                    if j in origin:
                        o = origin.pop(j)
                        frees_of.setdefault(o, []).append((k, i))
                        if j in used:
                            useful.add(o)
            for e in st:
                if e.kind == RELOAD:
                    in_fast.add(dix[e.target])
        for j, o in origin.items():  # still in fast memory at the end
            if j in used or j in results:
                useful.add(o)
        victims = {r for r in recomputes if r not in useful}
        if not victims:
            break
        gone = set(victims)
        for r in victims:
            gone.update(frees_of.get(r, ()))
        stages = [[e for i, e in enumerate(st) if (k, i) not in gone] for k, st in enumerate(stages)]
    # offloads of data never reloaded later (and not results) move nothing anyone reads
    later_reload: set[int] = set()
    for k in range(len(stages) - 1, -1, -1):
        st = stages[k]
        stages[k] = [e for e in st if not (e.kind == OFFLOAD and dix[e.target] not in later_reload
                                           and dix[e.target] not in results)]
        later_reload.update(dix[e.target] for e in st if e.kind == RELOAD)
    return Plan([st for st in stages if st])


def merge_stages(req, plan: Plan, deadline: Deadline | None = None) -> Plan:
    """Merge consecutive stages while it shortens the plan and the evaluator accepts it.

    A stage lasts max(Σ c, Σ s/β): a transfer-bound stage followed by a
    compute-bound one is shorter as one stage when the memory allows (the
    merged stage holds its reloads from its start and its offloaded data to
    its end). The stage models start one task per stage, so their plans
    gain from this whenever transfers are longer than a single compute.
    Greedy, left to right; each candidate is checked by the evaluator.
    O(stages × events) evaluations' work; stops at ``deadline``. Plans without transfers are returned as is
    (their makespan does not depend on the stages).
    """
    if not any(e.kind in (OFFLOAD, RELOAD) for _, e in plan.events()):
        return plan
    stages = [list(st) for st in plan.stages]
    best = req.evaluate(Plan(stages))
    if not best.valid:
        return plan
    t = 0
    while t < len(stages) - 1 and not (deadline is not None and deadline.expired()):
        a, b = stages[t], stages[t + 1]
        if not any(e.kind in (OFFLOAD, RELOAD) for e in a + b):
            t += 1
            continue
        # frees of b listed before its first compute stay at the front of the merged stage's tail
        merged = a + [e for e in b if e.kind not in (OFFLOAD, RELOAD)]
        merged = [e for e in merged if e.kind not in (OFFLOAD, RELOAD)]
        moves = [e for e in a + b if e.kind in (OFFLOAD, RELOAD)]
        cand = stages[:t] + [moves + merged] + stages[t + 2:]
        ev = req.evaluate(Plan(cand))
        if ev.valid and ev.makespan < best.makespan:
            stages, best = cand, ev
            continue  # try to merge the next stage into this one too
        t += 1
    return Plan(stages)


class HintError(ValueError):
    """A plan that does not fit a stage model (the reason is the message)."""


def map_stages(sm: StageModel, plan: Plan) -> list[int]:
    """The model stage of each plan stage (monotone); raises :class:`HintError`.

    A plan stage must run recomputations in σ order and then at most one
    new task; a stage that starts a task goes to the model stage of that
    task (or a FREE one), any other stage to a ``None`` stage.
    """
    inst = sm.request.instance
    lay = sm.layout
    tix = inst.task_index
    pos = {v: k for k, v in enumerate(lay.sigma)}
    seen: set[int] = set()
    mapping: list[int] = []
    t = 0
    for k, st in enumerate(plan.stages):
        comp = [tix[e.target] for e in st if e.kind == COMPUTE]
        new = [v for v in comp if v not in seen]
        if len(new) > 1 or (new and comp[-1] != new[0]):
            raise HintError(f"plan stage {k + 1} starts several tasks or does not end with its new task")
        recs = comp[:-1] if new else comp
        if any(pos[a] >= pos[b] for a, b in zip(recs, recs[1:])):
            raise HintError(f"plan stage {k + 1} recomputes out of the model's slot order")
        if new:
            while t < lay.T and lay.new[t] is None:
                t += 1
            if t >= lay.T or lay.new[t] not in (new[0], FREE):
                raise HintError(f"plan stage {k + 1} starts task {inst.tasks[new[0]].id!r}, "
                                f"which the model starts elsewhere")
        elif t >= lay.T or lay.new[t] is not None:
            raise HintError(f"plan stage {k + 1} starts no task but the model has no such stage there")
        mapping.append(t)
        seen.update(comp)
        t += 1
    if any(lay.new[s] is not None for s in range(t, lay.T)):
        raise HintError("the plan ends before the model's last task")
    return mapping


def plan_hint(sm: StageModel, plan: Plan) -> list[float]:
    """A complete assignment of the model's variables that encodes ``plan``.

    ``plan`` must be valid for the request and fit the layout; it is pruned
    of useless recomputations first. Raises :class:`HintError` with the
    reason when the plan does not fit, or when the assignment breaks a row
    (e.g. the plan relies on something the model restricts).
    """
    inst = sm.request.instance
    V = sm.V
    lay = sm.layout
    T = lay.T
    lm = sm.lm
    tix, dix = inst.task_index, inst.datum_index
    plan = prune_plan(inst, plan)
    mapping = map_stages(sm, plan)
    comps: list[list[int]] = [[] for _ in range(T)]
    offl: list[set[int]] = [set() for _ in range(T)]
    rel: list[set[int]] = [set() for _ in range(T)]
    fast_start: list[set[int]] = [set() for _ in range(T)]
    reads: list[set[int]] = [set() for _ in range(T)]
    in_fast: set[int] = set()
    in_slow: set[int] = set()
    k = 0
    for t in range(T):
        if k < len(mapping) and mapping[k] == t:
            st = plan.stages[k]
            k += 1
        else:
            st = ()
        first = next((i for i, e in enumerate(st) if e.kind == COMPUTE), len(st))
        for e in st[:first]:
            if e.kind == FREE_EVENT:
                in_fast.discard(dix[e.target])
        fast_start[t] = set(in_fast)
        for e in st:
            if e.kind == OFFLOAD:
                offl[t].add(dix[e.target])
            elif e.kind == RELOAD:
                rel[t].add(dix[e.target])
        for e in st[first:]:
            if e.kind == COMPUTE:
                v = tix[e.target]
                comps[t].append(v)
                reads[t].update(inst.inputs[v])
                in_fast.update(inst.outputs[v])
            elif e.kind == FREE_EVENT:
                in_fast.discard(dix[e.target])
        in_fast |= rel[t]
        in_slow |= offl[t]
    values = [0.0] * lm.num_vars

    def put(table: dict, key, what: str) -> None:
        if key not in table:
            raise HintError(f"the plan needs {what}, outside the model's windows")
        values[table[key]] = 1.0

    for t in range(T):
        new = lay.new[t]
        recs = comps[t][:-1] if new is not None else comps[t]
        for u in recs:
            put(V.R, (t, u), f"a recomputation of {inst.tasks[u].id!r} in stage {t + 1}")
        if new == FREE:
            put(V.N, (t, comps[t][-1]), f"task {inst.tasks[comps[t][-1]].id!r} to start in stage {t + 1}")
        for d in offl[t]:
            put(V.O, (t, d), f"an offload of {inst.data[d].id!r} in stage {t + 1}")
        for d in rel[t]:
            put(V.L, (t, d), f"a reload of {inst.data[d].id!r} in stage {t + 1}")
    # residency, backwards: resident, needed in the stage, and not recomputed in it
    keep: list[set[int]] = [set() for _ in range(T + 1)]
    keep[T] = {d for d in in_fast if (T, d) in V.F}
    for t in range(T - 1, -1, -1):
        made = set()
        for v in comps[t]:
            made.update(inst.outputs[v])
        for d in fast_start[t]:
            if d in made:
                continue
            if d in reads[t] or d in offl[t] or d in keep[t + 1]:
                keep[t].add(d)
    for t in range(T + 1):
        for d in keep[t]:
            if V.F.get((t, d)) != CONST:
                put(V.F, (t, d), f"{inst.data[d].id!r} resident at the start of stage {t + 1}")
    for (t, d), i in V.F.items():
        if i == CONST and d not in keep[t]:
            raise HintError(f"the plan does not keep {inst.data[d].id!r} at stage {t + 1}, which the model must")
    # frees at the last use, running sums, durations, peak
    g = sm.scale.mem
    size = [x // g for x in inst.size]
    for t in range(T):
        slots = V.slots[t]
        K = len(slots)
        on = []
        for kk, u in enumerate(slots):
            if kk == K - 1 and lay.new[t] is not None:
                on.append(comps[t][-1])
            else:
                on.append(u if values[V.R[t, u]] > 0.5 else None)
        mem = sum(size[d] for d in keep[t]) + sum(size[d] for d in rel[t])
        live = set(keep[t])
        for kk in range(K):
            v = on[kk]
            if kk > 0:
                for d in list(live):
                    x = V.X.get((t, d, kk - 1))
                    if x is not None and values[x] > 0.5:
                        mem -= size[d]
                        live.discard(d)
            if v is not None:
                outs = list(inst.outputs[v])
                mem += sum(size[d] for d in outs)
                live.update(outs)
                # free after this slot the data it touched last (where the model has the variable)
                for d in set(inst.inputs[v]) | set(outs):
                    later = any(on[j] is not None and (d in inst.inputs[on[j]]) for j in range(kk + 1, K))
                    if later or d in keep[t + 1] or d in offl[t] or d in rel[t]:
                        continue
                    x = V.X.get((t, d, kk))
                    if x is not None:
                        values[x] = 1.0
            if (t, kk) in V.U:
                values[V.U[t, kk]] = float(mem)
        new = comps[t][-1] if lay.new[t] is not None else None
        for (tt, d), z in V.Z.items():
            if tt != t:
                continue
            kept = d in keep[t + 1] and (new is None or d not in inst.outputs[new])
            read = new is not None and d in inst.inputs[new]
            if kept or read or d in offl[t] or d in rel[t]:
                values[z] = 1.0
    for t, dv in V.D.items():
        comp = sum(sm.scale.time[v] for v in comps[t])
        tr = sum(sm.scale.transfer[d] for d in offl[t] | rel[t])
        values[dv] = float(max(comp, tr))
    if sm.peak_var is not None:
        P = sm.peak_var
        best = lm.lb[P]
        for idx, coef, _lo, hi in lm.rows:
            if P in idx:
                a = sum(c * values[i] for i, c in zip(idx, coef) if i != P)
                cp = coef[idx.index(P)]
                best = max(best, (a - hi) / -cp if cp < 0 and hi < float("inf") else best)
        values[P] = float(best)
    bad = lm.check(values)
    if bad:
        raise HintError(f"the plan breaks {len(bad)} row(s) of the model, e.g. {bad[0]}")
    return values


__all__ = ["extract_plan", "build_plan", "prune_plan", "merge_stages", "solution_structure", "plan_hint", "map_stages",
           "HintError"]
