"""The stage models (Checkmate, POET, stage, joint) against brute force and the evaluator.

- every formulation and backend reaches the optimum of a brute force over
  the same layout's plans (:mod:`stage_brute`, judged by the evaluator):
  recomputation, offloading, both; fixed and free orders; lazy and complete
  memory rows;
- every plan returned by :func:`memopt.solve` passes the evaluator with the
  reported value; the reported bound is the problem's, the model's is in
  ``stats``;
- the special cases: a budget at the order's pure peak costs nothing; with
  offloading, an unbounded bandwidth and room for transfers, any budget at
  the task-footprint bound costs nothing; the free-order pure model is
  complete (its infeasibility agrees with the exhaustive peak optimum);
- any valid plan becomes a complete hint of the model of its layout.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from stage_brute import brute_stage_time
from strategies import instances

import memopt
from memopt import Plan, from_tensors
from memopt.backends.linear import BACKENDS, solve_linear
from memopt.core.bounds import peak_lower_bound, task_footprint_bound
from memopt.core.deadline import Deadline
from memopt.core.errors import MemoptError
from memopt.core.evaluate import schedule_peak
from memopt.formulations.stage import (
    HintError,
    StageLayout,
    build_stage_model,
    plan_hint,
    prune_plan,
    solve_stage_model,
)
from memopt.formulations.stage.layout import normalize_plan
from memopt.formulations.stage.variables import Scale
from memopt.pipeline import make_request

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))


def _budget(inst, frac: int, offload: bool = False) -> int | None:
    """A budget between the simple lower bound and the given order's pure peak (None: no room)."""
    pk = schedule_peak(inst, inst.topological_order)
    lb = peak_lower_bound(inst, offload=offload)[0]
    if pk <= lb:
        return None
    return lb + (pk - lb) * frac // 100


def _solve(req, layout, backend, detailed="lazy", limit=20.0, upper=None):
    sm = build_stage_model(req, layout, detailed=detailed, upper=upper)
    return solve_stage_model(sm, Deadline(limit), threads=1, backend=backend, cutoff=upper)


def _agree(req, layout, backends=BACKENDS, detailed=("lazy",)):
    expected = brute_stage_time(req, layout)
    for be in backends:
        for det in detailed:
            out = _solve(req, layout, be, det)
            if expected is None:
                assert out.plan is None and out.model_status == "infeasible", (be, det)
                continue
            assert out.model_status == "optimal", (be, det, out.stats)
            ev = req.evaluate(out.plan)
            assert ev.valid, (be, det, ev.violation)
            assert ev.makespan == expected[0], (be, det)
            assert out.model_bound == pytest.approx(expected[0]), (be, det)
    if expected is not None:
        # a cutoff at the optimum (the value of a known plan) removes no optimal plan
        out = _solve(req, layout, "cpsat", upper=expected[0])
        assert out.model_status == "optimal" and out.value == expected[0]


# --------------------------------------------------------------- exactness
@settings(max_examples=25, **SETTINGS)
@given(instances(max_tasks=4, max_size=6), st.integers(0, 100), st.booleans())
def test_recomputation_models_match_brute_force(inst, frac, free):
    b = _budget(inst, frac)
    assume(b is not None)
    req = make_request(inst, "time", budget=b, recompute=True)
    order = list(inst.topological_order)
    layout = StageLayout.joint(inst, order) if free else StageLayout.fixed(inst, order)
    _agree(req, layout, detailed=("lazy", "all"))


@settings(max_examples=25, **SETTINGS)
@given(instances(max_tasks=3, max_size=6), st.integers(0, 100), st.booleans(), st.booleans(),
       st.integers(0, 1), st.sampled_from([1, 2, 0.5, 3, math.inf]))
def test_offloading_models_match_brute_force(inst, frac, free, recompute, k, beta):
    inst = inst.with_machine(bandwidth=beta)
    b = _budget(inst, frac, offload=True)
    assume(b is not None)
    req = make_request(inst, "time", budget=b, recompute=recompute, offload=True)
    order = list(inst.topological_order)
    layout = StageLayout.joint(inst, order, k) if free else StageLayout.fixed(inst, order, k)
    _agree(req, layout)


@settings(max_examples=15, **SETTINGS)
@given(instances(max_tasks=4, max_size=6), st.integers(0, 100), st.booleans())
def test_peak_under_a_time_limit_matches_brute_force(inst, frac, offload):
    """min peak s.t. makespan ≤ T = the least budget whose brute-force time optimum is ≤ T."""
    inst = inst.with_machine(bandwidth=2)
    order = list(inst.topological_order)
    layout = StageLayout.fixed(inst, order)
    limit = inst.total_time + frac // 10
    req = make_request(inst, "peak", max_makespan=limit, recompute=True, offload=offload)
    out = _solve(req, layout, "cpsat")
    assert out.model_status == "optimal"
    ev = req.evaluate(out.plan)
    assert ev.valid and ev.makespan <= limit
    lo = task_footprint_bound(inst)[0]
    for m in range(lo, ev.peak + 1):
        bf = brute_stage_time(make_request(inst, "time", budget=m, recompute=True, offload=offload), layout)
        if bf is not None and bf[0] <= limit:
            assert m == ev.peak
            break
    else:
        pytest.fail("the brute force finds no plan at the model's peak")


# ------------------------------------------------------------ via solve()
METHODS = ("checkmate", "poet", "joint")


@settings(max_examples=20, **SETTINGS)
@given(instances(max_tasks=6), st.integers(0, 100), st.sampled_from(METHODS), st.sampled_from(BACKENDS),
       st.booleans())
def test_every_returned_plan_passes_the_evaluator(inst, frac, method, backend, warm):
    inst = inst.with_machine(bandwidth=3)
    offload = method == "poet"
    b = _budget(inst, frac, offload=offload)
    assume(b is not None)
    res = memopt.solve(inst, "time", method, budget=b, recompute=True, offload=offload, time_limit=20,
                       backend=backend, threads=1, warm_start=warm)
    if res.plan is None:
        assert res.status in ("unknown", "infeasible")
        return
    ev = memopt.evaluate(inst, res.plan, budget=b)
    assert ev.valid and ev.makespan == res.value and ev.peak <= b
    assert res.bound <= res.value
    assert res.bound >= inst.total_time  # the problem's bound, never the model's
    if "model_bound" in res.stats and res.stats["model_status"] == "optimal":
        if res.stats.get("returned") == "warm start":
            # a warm start outside the model's class (its stages could not be cut to fit) beat the model
            assert res.value < res.stats["model_bound"] + 1e-6
        else:
            assert res.stats["model_bound"] == pytest.approx(res.value)


@settings(max_examples=20, **SETTINGS)
@given(instances(max_tasks=7), st.booleans())
def test_budget_at_the_order_peak_costs_nothing(inst, free):
    order = list(inst.topological_order)
    req = make_request(inst, "time", budget=schedule_peak(inst, order), recompute=True)
    layout = StageLayout.joint(inst, order) if free else StageLayout.fixed(inst, order)
    out = _solve(req, layout, "cpsat")
    assert out.model_status == "optimal" and out.value == inst.total_time


@settings(max_examples=20, **SETTINGS)
@given(instances(max_tasks=5), st.booleans())
def test_unbounded_bandwidth_and_footprint_budget_cost_nothing(inst, recompute):
    """Offload outputs, free them, reload the next inputs, compute: two transfer stages per task."""
    inst = inst.with_machine(bandwidth=math.inf)
    req = make_request(inst, "time", budget=task_footprint_bound(inst)[0], recompute=recompute, offload=True)
    layout = StageLayout.fixed(inst, list(inst.topological_order), transfer_stages=2)
    out = _solve(req, layout, "cpsat")
    assert out.model_status == "optimal" and out.value == inst.total_time


@settings(max_examples=10, **SETTINGS)
@given(instances(max_tasks=6), st.booleans())
def test_auto_at_the_footprint_bound_with_unbounded_bandwidth_costs_nothing(inst, recompute):
    inst = inst.with_machine(bandwidth=math.inf)
    b = task_footprint_bound(inst)[0]
    res = memopt.solve(inst, "time", "auto", budget=b, recompute=recompute, offload=True, time_limit=10, threads=1)
    assert res.status == "optimal" and res.value == inst.total_time


@settings(max_examples=20, **SETTINGS)
@given(instances(max_tasks=6, max_size=9), st.integers(0, 100))
def test_the_pure_stage_model_is_complete(inst, frac):
    """``stage`` finds a schedule within M iff the exhaustive peak optimum is ≤ M."""
    best = memopt.solve(inst, "peak", "exhaustive")
    lb = peak_lower_bound(inst)[0]
    b = lb + (best.value + 2 - lb) * frac // 100
    res = memopt.solve(inst, "time", "stage", budget=b, warm_start=False, threads=1)
    if best.value <= b:
        assert res.status == "optimal" and res.value == inst.total_time
    else:
        assert res.status == "infeasible" and res.plan is None
    peak = memopt.solve(inst, "peak", "stage", warm_start=False, threads=1)
    assert peak.status == "optimal" and peak.value == best.value


# ------------------------------------------------------------------ hints
@settings(max_examples=20, **SETTINGS)
@given(instances(max_tasks=6), st.integers(0, 100), st.booleans(), st.booleans())
def test_any_valid_plan_is_a_complete_hint(inst, frac, offload, free):
    inst = inst.with_machine(bandwidth=2)
    b = _budget(inst, frac, offload=offload)
    assume(b is not None)
    req = make_request(inst, "time", budget=b, recompute=True, offload=offload)
    out = _solve(req, StageLayout.fixed(inst, list(inst.topological_order), int(offload)), "highs")
    assume(out.plan is not None)
    # a second model on the plan's own layout holds it exactly, with every row satisfied
    layout, cut = StageLayout.from_plan(inst, out.plan, free=free)
    assert req.evaluate(cut).valid
    sm = build_stage_model(req, layout, detailed="all")
    values = plan_hint(sm, cut)
    assert not sm.lm.check(values)
    # the hint's objective is the plan's makespan (exact units)
    obj = sum(a * values[i] for i, a in sm.lm.objective.items()) + sm.lm.objective_constant
    assert sm.to_real(obj) == pytest.approx(req.evaluate(cut).makespan)
    # and the solver keeps (at least) its value
    sol = solve_linear(sm.lm, "cpsat", time_limit=10, threads=1)
    assert sol.status == "optimal" and sm.to_real(sol.objective) <= req.evaluate(cut).makespan + 1e-9


def test_a_plan_outside_the_layout_is_refused_with_a_reason():
    inst = from_tensors([("a", 1, 2, []), ("b", 1, 2, ["a"]), ("c", 1, 2, ["a"])])
    req = make_request(inst, "time", budget=10, recompute=True)
    sm = build_stage_model(req, StageLayout.fixed(inst, [0, 1, 2]))
    with pytest.raises(HintError, match="elsewhere"):
        plan_hint(sm, Plan.from_order(inst, [0, 2, 1]))


def test_normalize_splits_stages_with_several_new_tasks():
    inst = from_tensors([("a", 1, 2, []), ("b", 2, 3, ["a"]), ("c", 1, 1, ["b"])])
    plan = Plan([[("compute", "a"), ("compute", "b"), ("free", "a")], [("compute", "c"), ("free", "b")]])
    cut = normalize_plan(inst, plan, {0: 0, 1: 1, 2: 2})
    assert [len([e for e in st if e.kind == "compute"]) for st in cut.stages] == [1, 1, 1]
    assert memopt.evaluate(inst, cut).valid


def test_merge_stages_overlaps_a_transfer_with_the_next_computes():
    from memopt import Datum, Instance, Machine, Task
    from memopt.formulations.stage.plans import merge_stages

    inst = Instance([Task("a", 1), Task("b", 4)],
                    [Datum("r", "a", (), 4), Datum("d", "a", ("b",), 1), Datum("e", "b", (), 1)],
                    Machine(bandwidth=1))
    req = make_request(inst, "time", budget=10, offload=True)
    plan = Plan([[("compute", "a")], [("offload", "r")], [("compute", "b"), ("free", "d")]])
    assert req.evaluate(plan).makespan == 9  # 1 + 4 (transfer alone) + 4
    merged = merge_stages(req, plan)
    ev = req.evaluate(merged)
    assert ev.valid and ev.makespan == 5 and len(merged) == 2


def test_prune_drops_useless_recomputations():
    inst = from_tensors([("a", 1, 2, []), ("b", 2, 3, ["a"])])
    plan = Plan([[("compute", "a"), ("free", "a"), ("compute", "a")], [("compute", "b"), ("free", "a")]])
    pruned = prune_plan(inst, plan)
    assert memopt.evaluate(inst, pruned).valid
    assert pruned.count("compute") == 3  # the second a is read by b: kept
    plan = Plan([[("compute", "a")], [("compute", "b")], [("compute", "a"), ("free", "a")]])
    pruned = prune_plan(inst, plan)
    assert pruned.count("compute") == 2


# ----------------------------------------------------------------- units
def test_transfer_times_are_scaled_to_exact_integers():
    inst = from_tensors([("a", 6, 5, []), ("b", 4, 3, ["a"])]).with_machine(bandwidth=0.4)
    sc = Scale(inst, offload=True)
    # times 6, 4 (gcd 2 -> 3, 2); transfers 5/0.4 = 12.5 and 3/0.4 = 7.5 time units
    for d, s in enumerate(inst.size):
        assert sc.real_time(sc.transfer[d]) == pytest.approx(s / 0.4)
    assert sc.exact_time and sc.real_time(sc.time[0]) == 6


def test_peak_objective_respects_the_time_limit_and_reports_model_bounds():
    inst = memopt.load_instance("instances/chain-train-12.yaml")
    limit = inst.total_time * 1.1
    res = memopt.solve(inst, "peak", "checkmate", recompute=True, max_makespan=limit, time_limit=20)
    assert res.plan is not None and res.makespan <= limit
    assert res.stats["bound_scope"].startswith("model only")


def test_offloading_without_bandwidth_is_an_input_error():
    inst = memopt.load_instance("instances/chain-20.yaml")
    with pytest.raises(MemoptError, match="bandwidth"):
        memopt.solve(inst, "time", "poet", budget=30, offload=True)


def test_a_tiny_time_limit_returns_the_warm_start():
    inst = memopt.load_instance("instances/layered-general-40.yaml")
    first = memopt.solve(inst, "time", "checkmate", budget="0.8x", recompute=True, time_limit=5, threads=1)
    assert first.plan is not None
    res = memopt.solve(inst, "time", "checkmate", budget="0.8x", recompute=True, time_limit=0.01,
                       warm_start=first.plan, threads=1)
    assert res.plan is not None and res.value <= first.value
    assert res.stats["warm_start"] == "given"
