"""The evaluator, rule by rule, and against an independent computation."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import Instance, Plan, evaluate, instance_from_dict, schedule_peak
from memopt.core.evaluate import RULES
from memopt.core.plan import Event
from memopt.heuristics.orders import BASELINES

TINY = {
    "name": "tiny",
    "machine": {"budget": 100, "bandwidth": 4},
    "tasks": [
        {"id": "a", "time": 3, "size": 10},
        {"id": "b", "time": 2, "size": 4, "inputs": ["a"]},
        {"id": "c", "time": 5, "size": 1, "inputs": ["a", "b"], "workspace": 2, "recompute": False},
    ],
}


def tiny(**machine) -> Instance:
    raw = dict(TINY)
    raw["machine"] = {**TINY["machine"], **machine}
    return instance_from_dict(raw)


def P(*stages: str) -> Plan:
    """Plan from compact strings: 'compute a; free b' per stage."""
    out = []
    for s in stages:
        evs = []
        for part in filter(None, (p.strip() for p in s.split(";"))):
            kind, target = part.split()
            evs.append(Event(kind, target))
        out.append(evs)
    return Plan(out)


SPEC_PLAN = P("compute a", "compute b; offload a", "free a", "reload a", "compute c; free a; free b")


# ------------------------------------------------------------ the example
def test_spec_worked_example():
    ev = evaluate(tiny(), SPEC_PLAN)
    assert ev.valid, ev.violation
    assert ev.peak == 17
    assert ev.makespan == 13
    assert ev.stage_durations == [3, 2.5, 0, 2.5, 5]
    assert ev.overhead == pytest.approx(13 / 10 - 1)
    # memory at each stage start and compute point (SPEC's comments)
    starts = {mp.stage: mp.memory for mp in ev.memory if mp.event == 0}
    assert starts == {1: 0, 2: 10, 3: 4, 4: 14, 5: 14}
    computes = {mp.target: mp.memory for mp in ev.memory if mp.kind == "compute"}
    assert computes == {"a": 10, "b": 14, "c": 17}
    assert ev.offloads == 1 and ev.reloads == 1 and ev.transferred == 20


def test_pure_schedule_of_tiny():
    inst = tiny()
    plan = Plan.from_order(inst, ["a", "b", "c"])
    ev = evaluate(inst, plan, allow_recompute=False, allow_offload=False)
    assert ev.valid
    assert ev.peak == 17 and ev.makespan == 10 and ev.overhead == 0
    assert plan.stages[2] == (Event("compute", "c"), Event("free", "a"), Event("free", "b"))


# ------------------------------------------------------------ every rule
def _rule(inst, plan, **kw):
    ev = evaluate(inst, plan, **kw)
    assert not ev.valid
    return ev.violation


BROKEN = [
    # (rule, plan, evaluate kwargs, machine changes, stage of the violation)
    ("unknown-event", Plan([[Event("jump", "a")]]), {}, {}, 1),
    ("unknown-task", P("compute z"), {}, {}, 1),
    ("unknown-datum", P("compute a", "free z"), {}, {}, 2),
    ("double-transfer", P("compute a", "offload a; offload a"), {}, {}, 2),
    ("offload-not-resident", P("offload a"), {}, {}, 1),
    ("offload-not-resident", P("compute a; offload a"), {}, {}, 1),  # produced in the same stage
    ("reload-not-offloaded", P("compute a", "free a", "reload a"), {}, {}, 3),
    ("reload-resident", P("compute a", "offload a", "reload a"), {}, {}, 3),
    ("no-bandwidth", P("compute a", "offload a"), {}, {"bandwidth": None}, 2),
    ("offload-disabled", P("compute a", "offload a"), {"allow_offload": False}, {}, 2),
    ("free-not-resident", P("compute a", "free a", "free a"), {}, {}, 3),
    ("free-not-resident", P("free a"), {}, {}, 1),
    ("free-in-transfer", P("compute a", "compute b; offload a; free a"), {}, {}, 2),
    ("free-in-transfer", P("compute a", "offload a", "free a", "reload a; free a"), {}, {}, 4),
    ("input-not-resident", P("compute b"), {}, {}, 1),
    ("input-not-resident", P("compute a", "compute b; offload a", "free a", "reload a; compute c"), {}, {}, 4),
    ("recompute-forbidden", P("compute a", "compute b", "compute c", "compute c"), {}, {}, 4),
    ("recompute-disabled", P("compute a", "compute a", "compute b", "compute c"), {"allow_recompute": False}, {}, 2),
    ("task-never-ran", P("compute a", "compute b"), {}, {}, None),
    ("result-missing", P("compute a", "compute b", "compute c; free c"), {}, {}, None),
    ("budget", P("compute a", "compute b", "compute c"), {}, {"budget": 16}, 3),
    ("budget", SPEC_PLAN, {"budget": 13}, {}, 2),
    ("slow-capacity", SPEC_PLAN, {}, {"slow_capacity": 9}, 2),
    ("makespan-limit", SPEC_PLAN, {"max_makespan": 12.5}, {}, None),
]


@pytest.mark.parametrize("rule,plan,kw,mach,stage", BROKEN, ids=[f"{b[0]}-{i}" for i, b in enumerate(BROKEN)])
def test_each_rule_is_enforced(rule, plan, kw, mach, stage):
    inst = tiny(**mach)
    v = _rule(inst, plan, **kw)
    assert v.rule == rule, str(v)
    assert v.stage == stage, str(v)
    assert rule in RULES
    assert str(v)  # a readable message


def test_every_rule_has_a_test():
    assert {b[0] for b in BROKEN} == set(RULES)


def test_budget_is_checked_at_stage_start_with_reloads():
    inst = instance_from_dict({"machine": {"bandwidth": 6}, "tasks": [
        {"id": "a", "time": 1, "size": 6}, {"id": "x", "time": 1, "size": 6},
        {"id": "c", "time": 1, "size": 1, "inputs": ["a"]}]})
    plan = P("compute a", "offload a", "free a", "compute x", "offload x", "reload a", "free x; compute c")
    ev = evaluate(inst, plan)
    assert ev.valid and ev.peak == 12
    v = evaluate(inst, plan, budget=11).violation
    assert v.rule == "budget" and v.stage == 6 and v.event is None
    assert "start of the stage" in v.message


def test_soft_rules_still_report_true_peak_and_makespan():
    ev = evaluate(tiny(budget=5), P("compute a", "compute b", "compute c"))
    assert not ev.valid and ev.violation.rule == "budget"
    assert ev.peak == 17 and ev.makespan == 10 and ev.complete


def test_reload_memory_counts_from_stage_start_and_data_usable_next_stage():
    inst = tiny()
    # reload a while computing nothing else: a not usable by c in that same stage
    v = _rule(inst, P("compute a", "compute b; offload a", "free a", "reload a; compute c"))
    assert v.rule == "input-not-resident"
    # leading frees happen before reloads take their memory
    plan = P("compute a", "compute b; offload a", "free a", "free b; reload a")
    ev = evaluate(inst, plan)
    assert ev.memory[-1].memory == 10 and ev.memory[-1].event == 0


def test_transfer_and_compute_overlap_duration_is_max():
    inst = tiny(bandwidth=1)
    # offloading a (10 units at β=1) beside b (time 2): the stage lasts 10
    ev = evaluate(inst, P("compute a", "compute b; offload a", "compute c"))
    assert ev.valid and ev.stage_durations == [3, 10, 5]
    inst = tiny(bandwidth=0.1)  # decimal bandwidths are exact
    ev = evaluate(inst, P("compute a", "offload a", "compute b", "compute c"))
    assert ev.stage_durations[1] == 100
    inst = tiny(bandwidth=math.inf)
    ev = evaluate(inst, SPEC_PLAN)
    assert ev.makespan == 10 and ev.valid


def test_recomputation_of_a_resident_output_takes_no_new_memory():
    inst = tiny()
    ev = evaluate(inst, P("compute a", "compute a", "compute b", "compute c"))
    assert ev.valid and ev.recomputes == 1 and ev.peak == 17 and ev.makespan == 13


def test_recomputation_after_free():
    inst = tiny()
    plan = P("compute a", "compute b; free a", "compute a", "compute c; free a; free b")
    ev = evaluate(inst, plan)
    assert ev.valid and ev.recomputes == 1 and ev.makespan == 13
    assert ev.peak == 17


def test_results_may_end_in_slow_memory():
    inst = tiny()
    plan = P("compute a", "compute b", "compute c; free a; free b", "offload c", "free c")
    ev = evaluate(inst, plan)
    assert ev.valid and ev.makespan == 10 + 0.25


def test_several_computes_in_a_stage_and_leading_frees():
    inst = tiny()
    ev = evaluate(inst, P("compute a; compute b; compute c; free a; free b"))
    assert ev.valid and ev.peak == 17 and ev.makespan == 10 and len(ev.stage_durations) == 1


def test_workspace_counts_only_at_its_compute():
    inst = instance_from_dict({"tasks": [{"id": "a", "time": 1, "size": 3, "workspace": 50},
                                         {"id": "b", "time": 1, "size": 1, "inputs": ["a"]}]})
    ev = evaluate(inst, Plan.from_order(inst, ["a", "b"]))
    assert ev.peak == 53
    assert [mp.memory for mp in ev.memory if mp.kind == "compute"] == [53, 4]


def test_empty_instance_and_empty_plan():
    inst = Instance([], [])
    ev = evaluate(inst, Plan([]))
    assert ev.valid and ev.peak == 0 and ev.makespan == 0 and ev.overhead == 0.0


# ------------------------------------------------ against an independent computation
def naive_pure_peak(inst: Instance, order: list[int]) -> int:
    """SPEC §2, last paragraph, written without the evaluator's machinery."""
    pos = {v: k for k, v in enumerate(order)}
    peak = 0
    for k, v in enumerate(order):
        live = 0
        for d in inst.data:
            p = inst.task_index[d.producer]
            if pos[p] >= k:
                continue  # produced later, or by v itself
            needed_later = (not d.consumers) or any(pos[inst.task_index[c]] >= k for c in d.consumers)
            if needed_later:
                live += d.size
        outs = sum(d.size for d in inst.data if d.producer == inst.tasks[v].id)
        peak = max(peak, live + outs + inst.tasks[v].workspace)
    return peak


def random_topological_order(inst: Instance, rnd: random.Random) -> list[int]:
    indeg = [len(p) for p in inst.preds]
    ready = [v for v in range(inst.n) if indeg[v] == 0]
    order = []
    while ready:
        v = ready.pop(rnd.randrange(len(ready)))
        order.append(v)
        for w in inst.succs[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(w)
    return order


@settings(max_examples=150)
@given(instances(max_tasks=9), st.randoms(use_true_random=False))
def test_pure_schedule_peak_matches_independent_computation(inst, rnd):
    order = random_topological_order(inst, rnd)
    plan = Plan.from_order(inst, order)
    ev = evaluate(inst, plan, allow_recompute=False, allow_offload=False)
    assert ev.valid, ev.violation
    assert ev.peak == naive_pure_peak(inst, order)
    assert ev.peak == schedule_peak(inst, order)
    assert ev.makespan == inst.total_time


@settings(max_examples=100)
@given(instances(max_tasks=8))
def test_baseline_orders_give_valid_plans(inst):
    for name, fn in BASELINES.items():
        order = fn(inst)
        assert sorted(order) == list(range(inst.n)), name
        ev = evaluate(inst, Plan.from_order(inst, order), allow_recompute=False, allow_offload=False)
        assert ev.valid, (name, ev.violation)
        assert ev.peak == schedule_peak(inst, order)


@settings(max_examples=150)
@given(instances(min_tasks=2, max_tasks=8), st.randoms(use_true_random=False), st.integers(0, 5))
def test_broken_pure_schedules_are_rejected(inst, rnd, kind):
    """Mutations of a valid pure schedule: each one breaks a rule, and is caught."""
    order = random_topological_order(inst, rnd)
    plan = [list(st_) for st_ in Plan.from_order(inst, order).stages]
    k = rnd.randrange(len(plan))
    if kind == 0:  # drop a compute: the task never runs (or an input goes missing)
        plan[k] = [e for e in plan[k] if e.kind != "compute"]
        expect = {"task-never-ran", "input-not-resident", "free-not-resident"}
    elif kind == 1:  # run a task before one of its predecessors
        pairs = [(i, j) for i in range(len(order)) for j in range(i + 1, len(order))
                 if order[i] in inst.preds[order[j]]]
        assume(pairs)
        i, j = rnd.choice(pairs)
        plan[i], plan[j] = plan[j], plan[i]
        expect = {"input-not-resident", "free-not-resident"}
    elif kind == 2:  # free a datum twice
        frees = [e for s in plan for e in s if e.kind == "free"]
        assume(frees)
        plan[-1].append(rnd.choice(frees))
        expect = {"free-not-resident"}
    elif kind == 3:  # free a result: it is missing at the end
        assume(inst.results)
        plan.append([Event("free", inst.data[rnd.choice(inst.results)].id)])
        expect = {"result-missing"}
    elif kind == 4:  # a budget one below the peak
        ev = evaluate(inst, Plan(plan))
        assume(ev.peak > 0)
        v = evaluate(inst, Plan(plan), budget=ev.peak - 1).violation
        assert v is not None and v.rule == "budget"
        return
    else:  # free a datum right after it is produced, before its consumers run
        cand = [(k2, e) for k2, s_ in enumerate(plan) for e in s_ if e.kind == "free"]
        assume(cand)
        k2, e = rnd.choice(cand)
        prod = order.index(inst.producer[inst.datum_index[e.target]])
        assume(prod != k2)  # freed where produced: every consumer is this very task
        plan[k2].remove(e)
        plan[prod].append(e)
        expect = {"input-not-resident"}
    ev = evaluate(inst, Plan(plan), allow_recompute=False, allow_offload=False)
    assert not ev.valid
    assert ev.violation.rule in expect, (kind, str(ev.violation))


@settings(max_examples=100)
@given(instances(max_tasks=7), st.randoms(use_true_random=False))
def test_offload_everything_and_reload_plans(inst, rnd):
    """A plan that offloads each datum after production and reloads it before use is valid."""
    inst = inst.with_machine(bandwidth=2)
    order = random_topological_order(inst, rnd)
    stages: list[list[Event]] = []
    in_fast: set[int] = set()
    for v in order:
        loads = [j for j in inst.inputs[v] if j not in in_fast]
        if loads:
            stages.append([Event("reload", inst.data[j].id) for j in loads])
            in_fast |= set(loads)
        stages.append([Event("compute", inst.tasks[v].id)])
        in_fast |= set(inst.outputs[v])
        # offload every resident datum, then free it
        off = sorted(in_fast)
        if off:
            stages.append([Event("offload", inst.data[j].id) for j in off])
            stages.append([Event("free", inst.data[j].id) for j in off])
            in_fast.clear()
    ev = evaluate(inst, Plan(stages))
    assert ev.valid, ev.violation
    # the peak: largest of (inputs + outputs + workspace) over tasks, and the reloads/offloads
    task_peak = max((inst.input_size[v] + inst.output_size[v] + inst.workspace[v] for v in range(inst.n)), default=0)
    assert ev.peak >= task_peak
    assert ev.makespan >= inst.total_time


def test_request_without_budget_ignores_the_machine_budget():
    from memopt.core.request import Request

    inst = tiny(budget=5)
    plan = Plan.from_order(inst, ["a", "b", "c"])
    assert not evaluate(inst, plan).valid  # the machine's budget applies by default
    assert evaluate(inst, plan, use_machine_budget=False).valid
    assert Request(inst, "peak", budget=None).evaluate(plan).valid
    assert not Request(inst, "peak", budget=16).evaluate(plan).valid
