"""Options of a group from the budget planner and the exact models, on the group's own instance.

The *block instance* of group g holds its tasks (the non-pinned forward
ones, the backward ones) and four helpers, all of time 0:

- ``IN`` (first, runs once) makes what the group reads from before it: the
  checkpoint ``X[g−1]`` (its size) and the pinned data (size 0: they are
  resident throughout, the chain DP counts them);
- ``BAR``, the *barrier* between the forward and the backward: it reads
  ``X[g]`` and comes after every forward task and before every backward
  task; its workspace E stands for what the groups after g use while the
  tape is held;
- ``DIN`` (right after ``BAR``) makes the gradients the backward reads from
  later groups;
- a sink for an output nothing in the group reads (so it is not a result).

A plan of the block instance under a budget P with barrier workspace E
holds at most P − E at the barrier: a tape no larger than that. Its
computes before ``BAR`` are an option's forward, those after it its
backward, and the forward data resident at ``BAR`` its tape
(:func:`option_from_plan`); the option is then measured in the chain DP's
own terms (:func:`.options.make_option`) — the block instance only guides
the search. :func:`planner_options` runs the budget planner over a grid of
(P, E) (milliseconds per run on a layer's 100 tasks);
:func:`model_option` re-solves one (P, E) with the stage model on the
planner's order (Checkmate, Jain et al. 2020), warm-started from the
option it improves (Rockmate's ILP per block, Zhao et al. 2023).
"""

from __future__ import annotations

from dataclasses import dataclass

from memopt.core.deadline import Deadline
from memopt.core.instance import Datum, Instance, Task
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.status import Objective
from memopt.strategies.hierarchical.chain import B_SIDE, Chain
from memopt.strategies.hierarchical.options import Option, make_option
from memopt.strategies.hierarchical.sequence import SequenceError, liveness_frees, plan_from_sequence, sequence_of

IN, BAR, DIN = "__block_in__", "__block_barrier__", "__block_gradients__"


@dataclass
class BlockInstance:
    """The block instance of a group (module docstring) and what is needed to read its plans back."""

    group: int
    inst: Instance
    order: list[int]          # IN, forward, BAR, DIN, backward (block task indices)
    tape_candidates: set[int]  # block data that may form the tape (forward data, not X[g])
    full_peak: int            # peak of the order's pure schedule with E = 0
    bar_rest: int             # memory at BAR in that schedule, without the tape
    full_tape: int            # the tape at BAR in that schedule


def block_instance(ch: Chain, g: int) -> BlockInstance:
    """The block instance of group g (module docstring). O(size of the group)."""
    inst = ch.inst
    tasks_f, tasks_b = list(ch.F[g]), list(ch.B[g])
    mine = set(tasks_f) | set(tasks_b)
    tids = [t.id for t in inst.tasks]
    dids = [d.id for d in inst.data]
    xg = ch.xset(g)
    tasks = [Task(IN, 0, 0, False)]
    tasks += [Task(tids[v], inst.time[v], inst.workspace[v], inst.can_recompute[v]) for v in tasks_f]
    tasks += [Task(BAR, 0, 0, False), Task(DIN, 0, 0, False)]
    tasks += [Task(tids[v], inst.time[v], inst.workspace[v], inst.can_recompute[v]) for v in tasks_b]
    data: list[Datum] = []
    outside: dict[int, list[str]] = {}
    for v in mine:
        for d in inst.inputs[v]:
            if inst.producer[d] not in mine:
                outside.setdefault(d, []).append(tids[v])
    for d, cons in outside.items():
        p = inst.producer[d]
        late = ch.side[p] == B_SIDE and ch.group[p] > g  # a gradient from a later group
        size = inst.size[d] if (late or d in ch.xset(g - 1)) else 0  # pinned data: counted by the chain DP
        data.append(Datum(dids[d], DIN if late else IN, tuple(cons), size))
    sinks = 0
    for v in tasks_f + tasks_b:
        for d in inst.outputs[v]:
            cons = [tids[c] for c in inst.consumers[d] if c in mine]
            if d in xg:
                cons.append(BAR)
            elif not cons and inst.consumers[d]:  # read only outside the group (pinned readers): a sink
                sid = f"__block_sink_{sinks}__"
                sinks += 1
                tasks.append(Task(sid, 0, 0, True))
                cons = [sid]
            data.append(Datum(dids[d], tids[v], tuple(cons), inst.size[d]))
    leaves = [tids[v] for v in tasks_f if not any(c in mine and ch.side[c] != B_SIDE
                                                  for d in inst.outputs[v] for c in inst.consumers[d])]
    for k, x in enumerate(leaves):
        data.append(Datum(f"__block_fwd_{k}__", x, (BAR,), 0))
    roots = [tids[v] for v in tasks_f + tasks_b if not any(inst.producer[d] in mine for d in inst.inputs[v])]
    data.append(Datum("__block_in_token__", IN, tuple(roots) or (BAR,), 0))
    data.append(Datum("__block_barrier_token__", BAR, (DIN,) + tuple(tids[v] for v in tasks_b), 0))
    sub = Instance(tasks, data, name=f"{inst.name}[group {g}]")
    six = sub.task_index
    order = [six[IN]] + [six[tids[v]] for v in tasks_f] + [six[BAR], six[DIN]] + [six[tids[v]] for v in tasks_b]
    order += [v for v in range(sub.n) if sub.tasks[v].id.startswith("__block_sink_")]
    cand = {sub.datum_index[dids[d]] for v in tasks_f for d in inst.outputs[v] if d not in xg}
    # the pure schedule of the order: its peak, and the memory at BAR without the tape
    plan = plan_from_sequence(sub, _with_sinks(sub, order))
    ev = Request(sub, Objective.TIME, recompute=True).evaluate(plan, trace=True)
    bar_mem = next(p.memory for p in ev.memory if p.kind == "compute" and p.target == BAR)
    seq = sequence_of(sub, plan)
    at_bar = _resident_at(sub, seq, seq.index(six[BAR]))
    tape = sum(sub.size[d] for d in at_bar if d in cand)
    return BlockInstance(g, sub, order, cand, ev.peak, bar_mem - tape, tape)


def _with_sinks(sub: Instance, order: list[int]) -> list[int]:
    """``order`` with each sink right after its datum's producer."""
    sinks = {v for v in order if sub.tasks[v].id.startswith("__block_sink_")}
    out = []
    for v in order:
        if v in sinks:
            continue
        out.append(v)
        for d in sub.outputs[v]:
            out.extend(c for c in sub.consumers[d] if c in sinks)
    return out


def _resident_at(sub: Instance, seq: list[int], i: int) -> set[int]:
    """The data resident right before compute i of the liveness plan of ``seq``."""
    frees = liveness_frees(sub, seq)
    cur: set[int] = set()
    for k in range(i):
        cur.update(sub.outputs[seq[k]])
        cur.difference_update(frees[k])
    return cur


def option_from_plan(ch: Chain, g: int, bi: BlockInstance, plan: Plan, pos: dict[int, int],
                     source: str) -> Option | None:
    """The option of a block plan: computes before ``BAR``, the tape it holds there, computes after it."""
    sub = bi.inst
    seq = sequence_of(sub, plan)
    bar = sub.task_index[BAR]
    if bar not in seq:
        return None
    i = seq.index(bar)
    tape = {d for d in _resident_at(sub, seq, i) if d in bi.tape_candidates}
    tix = ch.inst.task_index
    dix = ch.inst.datum_index

    def real(part: list[int]) -> list[int]:
        return [tix[sub.tasks[v].id] for v in part if not sub.tasks[v].id.startswith("__block_")]

    try:
        return make_option(ch, g, real(seq[:i]), [dix[sub.data[d].id] for d in tape], real(seq[i + 1:]), pos,
                           source)
    except SequenceError:
        return None


def block_request(bi: BlockInstance, budget: int, barrier: int) -> Request:
    """The block instance with the barrier's workspace set, as a ``time`` request under ``budget``."""
    sub = bi.inst
    bar = sub.task_index[BAR]
    tasks = list(sub.tasks)
    tasks[bar] = Task(BAR, 0, max(0, barrier), False)
    return Request(sub.replace(tasks=tasks), Objective.TIME, budget=budget, recompute=True)


GRID_PEAK = (1.0, 0.8, 0.65, 0.5)
GRID_TAPE = (1.0, 0.5, 0.25, 0.0)


def planner_options(ch: Chain, g: int, bi: BlockInstance, pos: dict[int, int], deadline: Deadline | None = None
                    ) -> list[Option]:
    """Options from the budget planner over the grid of peaks (of the full tape's) and tapes (module docstring)."""
    from memopt.heuristics.planner.portfolio import run_planner

    out: list[Option] = []
    seen: set[tuple] = set()
    for fp in GRID_PEAK:
        P = int(bi.full_peak * fp)
        for ft in GRID_TAPE:
            if deadline is not None and deadline.expired():
                return out
            E = P - bi.bar_rest - int(ft * bi.full_tape)
            if E < 0:
                continue
            req = block_request(bi, P, E)
            plan = run_planner(req, bi.order, deadline=deadline)
            if plan is None or not req.evaluate(plan).valid:
                continue
            o = option_from_plan(ch, g, bi, plan, pos, f"planner P={fp:g} tape<={ft:g}")
            if o is not None and o.key() not in seen:
                seen.add(o.key())
                out.append(o)
    return out


__all__ = ["BAR", "BlockInstance", "DIN", "IN", "block_instance", "block_request", "model_option", "option_from_plan",
           "planner_options"]


def model_option(ch: Chain, g: int, bi: BlockInstance, pos: dict[int, int], budget: int, barrier: int,
                 warm: Option | None, deadline: Deadline, threads: int = 2, seed: int = 0) -> Option | None:
    """The option of Checkmate's best plan of the block instance under ``budget`` and ``barrier`` (the order:
    the base order; the warm start: ``warm``'s sequences when they fit)."""
    from memopt.formulations.stage.layout import LayoutError, StageLayout
    from memopt.formulations.stage.model import build_stage_model
    from memopt.formulations.stage.solver import solve_stage_model

    req = block_request(bi, budget, barrier)
    sub = req.instance
    hint = None
    if warm is not None:
        six = sub.task_index
        tids = [t.id for t in ch.inst.tasks]
        seq = ([six[IN]] + [six[tids[v]] for v in warm.ft] + [six[BAR], six[DIN]] + [six[tids[v]] for v in warm.b])
        cand = plan_from_sequence(sub, _with_sinks(sub, seq + [v for v in bi.order if sub.tasks[v].id.startswith(
            "__block_sink_")]))
        if req.evaluate(cand).valid:
            hint = cand
    try:
        if hint is not None:
            lay, cut = StageLayout.from_plan(sub, hint)
        else:
            lay, cut = StageLayout.fixed(sub, bi.order), None
    except LayoutError:
        return None
    upper = req.evaluate(hint).makespan if hint is not None else None
    sm = build_stage_model(req, lay, upper=upper, deadline=deadline)
    if sm is None:
        return None
    out = solve_stage_model(sm, deadline, threads=threads, seed=seed, warm=cut, cutoff=upper)
    if out.plan is None:
        return None
    return option_from_plan(ch, g, bi, out.plan, pos, f"checkmate tape<={budget - barrier - bi.bar_rest}")
