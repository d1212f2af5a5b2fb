"""The Moccasin retention-interval CP model: brute-force optimum, exactness rule, hints, refusals."""

import pytest
from brute_budget import brute_time
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import Datum, Instance, MemoptError, Task, from_tensors, solve
from memopt.core.bounds import peak_lower_bound
from memopt.core.request import Request
from memopt.formulations.moccasin_model import moccasin_model, plan_computations, useful_computations
from memopt.heuristics.orders import best_baseline
from memopt.heuristics.planner import plan_under_budget


def budget_between(inst, frac):
    lb, _ = peak_lower_bound(inst)
    _, peak, _ = best_baseline(inst)
    return lb + (peak - lb) * frac // 100


@settings(max_examples=50)
@given(instances(max_tasks=5, no_recompute=True, max_size=5), st.integers(0, 100), st.booleans(), st.booleans(),
       st.sampled_from([2, 8]), st.sampled_from(["exact", "off", "chains"]))
def test_matches_brute_force(inst, frac, rc, warm, intervals, fuse):
    assume(inst.m <= 6)
    B = budget_between(inst, frac)
    best = brute_time(inst, B, recompute=rc, offload=False)
    r = solve(inst, "time", "moccasin", budget=B, recompute=rc, warm_start=warm, intervals=intervals, fuse=fuse)
    if not r.stats.get("fusion_exact", True):
        assert fuse == "chains" and r.stats.get("exact_model", False) is False
    if best is None:
        assert r.plan is None and r.status in ("infeasible", "unknown")
        if r.stats.get("exact_model") and fuse != "chains":
            assert r.status == "infeasible"
        return
    if fuse == "chains" and r.plan is None:
        assert r.status == "unknown"  # heuristic fusion may lose every plan, and then claims nothing
        return
    assert r.plan is not None  # solve() evaluated it: valid, within the budget
    assert r.value >= best[0]
    if r.stats.get("exact_model"):
        assert r.status == "optimal" and r.value == best[0]
    if r.status == "optimal":
        assert r.value == best[0]


def test_useful_computations():
    chain = from_tensors([("a", 1, 1, []), ("b", 1, 1, ["a"]), ("c", 1, 1, ["b"])])
    assert useful_computations(chain) == [1, 1, 1]
    # a feeds b and c, b feeds c: a can be useful for b's and c's computations
    tri = from_tensors([("a", 1, 1, []), ("b", 1, 1, ["a"]), ("c", 1, 1, ["a", "b"])])
    assert useful_computations(tri) == [2, 1, 1]
    assert useful_computations(tri, recompute=False) == [1, 1, 1]


def test_hint_is_a_solution_of_the_model():
    from ortools.sat.python import cp_model

    inst = from_tensors([("a", 1, 4, []), ("b", 2, 2, ["a"]), ("c", 2, 1, ["b"]), ("d", 2, 1, ["c"]),
                         ("e", 1, 1, ["a", "d"])])
    req = Request(inst, "time", 6, None, True, False)
    plan = plan_under_budget(req)
    assert plan_computations(inst, plan) == [2, 1, 1, 1, 1]
    model = moccasin_model(req, hint=plan)
    solver = cp_model.CpSolver()
    solver.parameters.fix_variables_to_their_hinted_value = True
    solver.parameters.num_workers = 1
    assert solver.solve(model.cp) == cp_model.OPTIMAL
    back = model.plan(solver.value)
    assert req.evaluate(back).valid and req.evaluate(back).makespan == req.evaluate(plan).makespan == 9
    assert _unhinted(model) == []


def _unhinted(model) -> list[str]:
    """Names of the model's variables (not fixed) that the hint leaves out."""
    proto = model.cp.proto
    hinted = set(proto.solution_hint.vars)
    return [v.name for i, v in enumerate(proto.variables)
            if i not in hinted and not (len(v.domain) == 2 and v.domain[0] == v.domain[1])]


@settings(max_examples=30, deadline=None)
@given(instances(max_tasks=7, max_size=5), st.integers(0, 100))
def test_planner_hint_is_complete_and_feasible(inst, frac):
    # a complete hint is checked by CP-SAT at once; a partial one is completed by search (seconds on
    # a few hundred tasks before the first solution)
    from ortools.sat.python import cp_model

    req = Request(inst, "time", budget_between(inst, frac), None, True, False)
    plan = plan_under_budget(req)
    assume(plan is not None)
    # useless recomputations: the model drops such a hint
    assume(all(k <= u for k, u in zip(plan_computations(inst, plan), useful_computations(inst))))
    model = moccasin_model(req, hint=plan)
    assert _unhinted(model) == []
    solver = cp_model.CpSolver()
    solver.parameters.fix_variables_to_their_hinted_value = True
    solver.parameters.num_workers = 1
    assert solver.solve(model.cp) in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    back = model.plan(solver.value)
    assert req.evaluate(back).valid and req.evaluate(back).makespan <= req.evaluate(plan).makespan


def test_proves_infeasibility_when_exact():
    # pure scheduling (C_v = 1, exact): a budget between the simple bound and the optimal peak
    inst = from_tensors([("a", 1, 4, []), ("b", 1, 10, ["a"]), ("c", 1, 1, ["a"]), ("d", 1, 1, ["b", "c"])])
    assert peak_lower_bound(inst)[0] <= 14 < 15  # 15 is the optimal peak
    r = solve(inst, "time", "moccasin", budget=14)
    assert r.status == "infeasible" and r.plan is None
    r = solve(inst, "time", "moccasin", budget=15)
    assert r.status == "optimal" and r.value == inst.total_time


def test_refuses_what_it_cannot_model():
    inst = from_tensors([("a", 1, 1, [])]).with_machine(bandwidth=1)
    with pytest.raises(MemoptError, match="offloading"):
        solve(inst, "time", "moccasin", budget=5, offload=True)
    with pytest.raises(MemoptError, match="objective"):
        solve(inst, "peak", "moccasin", recompute=True)


def test_fixed_order_restriction_is_never_reported_optimal_by_its_bound():
    inst = from_tensors([("a", 1, 4, []), ("b", 2, 2, ["a"]), ("c", 2, 1, ["b"]), ("d", 2, 1, ["c"]),
                         ("e", 1, 1, ["a", "d"])])
    r = solve(inst, "time", "moccasin", budget=6, recompute=True, order="fixed", intervals=4)
    assert r.value == 9 and r.stats["exact_model"] is False
    assert r.bound == inst.total_time  # only the simple bound


def test_a_fixed_order_may_need_a_useless_first_computation():
    """Three independent results in the given order t0, t2, t1; t1 has a workspace of 1 and the budget is 4:
    t2 is computed at its place, dropped for t1 and computed again (7), which needs 2 computations of t2
    where a free order needs 1 (t1 first). Found by the property test below."""
    inst = from_tensors([("t0", 3, 3, []), ("t2", 2, 1, []), ("t1", 0, 0, [])])
    inst = inst.replace(tasks=[t if t.id != "t1" else t.__class__(t.id, t.time, 1, False) for t in inst.tasks])
    assert [inst.tasks[v].id for v in inst.topological_order] == ["t0", "t2", "t1"]
    assert useful_computations(inst)[inst.task_index["t2"]] == 1
    assert useful_computations(inst, fixed_order=True)[inst.task_index["t2"]] == 2
    assert brute_time(inst, 4, recompute=True, offload=False)[0] == 5  # free order: t1 first, no rerun
    for warm in (False, True):
        r = solve(inst, "time", "moccasin", budget=4, recompute=True, warm_start=warm, order="given", intervals=8)
        assert r.value == 7
    # Checkmate's stages end with the last first computation unless a warm start brings more (the paper's layout)
    c = solve(inst, "time", "checkmate", budget=4, recompute=True, warm_start=True, order="given")
    assert c.value == 7


@settings(max_examples=30)
@given(instances(max_tasks=5, no_recompute=True, max_size=5), st.integers(0, 100), st.booleans())
def test_given_order_is_followed_and_matches_checkmate_on_it(inst, frac, warm):
    """order=given (the literature's protocol): first computations in instance order; the same optimum as
    checkmate, unless Moccasin's plan computes after the last first computation, where Checkmate's stages end
    (then no worse than checkmate's)."""
    B = budget_between(inst, frac)
    r = solve(inst, "time", "moccasin", budget=B, recompute=True, warm_start=warm, order="given", intervals=8)
    c = solve(inst, "time", "checkmate", budget=B, recompute=True, warm_start=warm, order="given")
    assume(r.plan is not None)
    first = list(dict.fromkeys(r.plan.compute_order()))
    returned_model = r.stats.get("returned") == "model"
    if returned_model:
        assert first == [inst.tasks[v].id for v in inst.topological_order]
    if r.status == "optimal":  # only when nothing beats Σ c(v)
        assert r.value == inst.total_time
    if returned_model and r.stats.get("restricted_optimal") and c.plan is not None \
            and c.stats.get("model_status") == "optimal":
        if _computes_after_the_last_first(r.plan):
            # a result freed for room and made again at the end: outside Checkmate's stages (the paper's layout)
            assert r.value <= c.value
        else:
            assert r.value == c.value


def test_moccasin_may_recompute_a_result_after_the_last_first_computation():
    """Found by the property above: t2's result t2.0 is freed for room, and made again once t4 is done and
    t0.0 freed — after the last first computation, where Checkmate's stages (the paper's layout) end, so
    Checkmate computes t0 twice instead."""
    tasks = [Task("t3", 0, 0, False), Task("t1", 0, 0, False), Task("t4", 0, 0, False), Task("t2", 0, 2, True),
             Task("t0", 1, 0, True)]
    data = [Datum("t0.0", "t0", ("t3", "t4"), 1), Datum("t1.0", "t1", ("t3",), 2), Datum("t2.0", "t2", (), 1),
            Datum("t2.1", "t2", ("t3",), 0), Datum("t3.0", "t3", (), 2), Datum("t4.0", "t4", (), 0)]
    inst = Instance(tasks, data)
    r = solve(inst, "time", "moccasin", budget=5, recompute=True, warm_start=False, order="given", intervals=8)
    c = solve(inst, "time", "checkmate", budget=5, recompute=True, warm_start=False, order="given")
    assert r.value == inst.total_time == 1 and _computes_after_the_last_first(r.plan)
    assert c.value == 2 and not _computes_after_the_last_first(c.plan)


def _computes_after_the_last_first(plan) -> bool:
    """Whether the plan computes anything after its last first computation."""
    computes = [e.target for _, e in plan.events() if e.kind == "compute"]
    last = plan.compute_order()[-1]
    return len(computes) - 1 > computes.index(last)


def test_unknown_order_option_is_an_input_error():
    inst = from_tensors([("a", 1, 1, []), ("b", 1, 1, ["a"])])
    with pytest.raises(MemoptError, match="order"):
        solve(inst, "time", "moccasin", budget=2, recompute=True, order="sideways")


def test_search_option():
    inst = from_tensors([("a", 1, 4, []), ("b", 2, 2, ["a"]), ("c", 2, 1, ["b"]), ("d", 2, 1, ["c"]),
                         ("e", 1, 1, ["a", "d"])])
    with pytest.raises(MemoptError, match="search"):
        solve(inst, "time", "moccasin", budget=6, recompute=True, search="fast")
    # LNS workers only: a valid plan, never claimed optimal by a proof it did not make
    r = solve(inst, "time", "moccasin", budget=6, recompute=True, search="lns", time_limit=2)
    assert r.stats["search"] == "lns" and r.plan is not None and r.value >= 9
    assert solve(inst, "time", "moccasin", budget=6, recompute=True).stats["search"] == "complete"


def test_a_proven_floor_stops_the_search_at_the_optimum():
    # a feeds b and d; b -> c -> d: with budget 4 a runs twice (optimum 13 = Σ c + 5)
    inst = from_tensors([("a", 5, 2, []), ("b", 1, 2, ["a"]), ("c", 1, 1, ["b"]), ("d", 1, 1, ["a", "c"])])
    for floor in (None, 0, 13):
        kw = {} if floor is None else {"floor": floor}
        r = solve(inst, "time", "moccasin", budget=4, recompute=True, search="lns", time_limit=5, **kw)
        assert r.value == 13
        if floor == 13:
            # the search ends, proven within the floored model, long before the time limit
            assert r.stats["cp_status"] == "optimal" and r.stats["floor"] == 13 and r.stats["cp_seconds"] < 4
            # but a floor is the caller's word: the method claims neither a bound nor optimality from it
            assert r.status == "feasible" and r.bound == inst.total_time
    # a wrong floor (above the optimum 13) never turns into "infeasible" nor into a bound
    r = solve(inst, "time", "moccasin", budget=4, recompute=True, time_limit=5, floor=20)
    assert r.status != "infeasible" and (r.bound is None or r.bound <= 13)
