"""Exact peak methods against exhaustive search on small random graphs of every shape and form."""

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import CATALOG, Datum, Instance, MemoptError, Plan, Task, evaluate, from_tensors, solve
from memopt.core.evaluate import schedule_peak
from memopt.exact.downset_dp import beam_search, downset_search, greedy_cluster_order
from memopt.exact.exhaustive import exhaustive_peak, topological_orders
from memopt.exact.liu import liu_check, liu_tree_schedule
from memopt.exact.peak_bounds import lifetime_bound
from memopt.exact.release_relaxation import release_relaxation
from memopt.exact.series_parallel import series_parallel_check, series_parallel_schedule
from memopt.generators import in_tree, out_tree, random_layered, random_series_parallel
from memopt.heuristics.orders import BASELINES, best_baseline
from memopt.pipeline import make_request
from memopt.transforms.reduction import reduce_peak

get_method = CATALOG.__getitem__


def is_topological(inst, order):
    pos = {v: k for k, v in enumerate(order)}
    return sorted(order) == list(range(inst.n)) and all(pos[u] < pos[v] for v in range(inst.n) for u in inst.preds[v])


def test_exhaustive_lists_every_topological_order():
    # a diamond a -> {b, c} -> d has exactly two orders
    inst = from_tensors([("a", 1, 1, []), ("b", 1, 1, ["a"]), ("c", 1, 1, ["a"]), ("d", 1, 1, ["b", "c"])])
    assert len(list(topological_orders(inst))) == 2


def test_exhaustive_hand_example():
    # a feeds two branches; running the one that frees memory first wins
    inst = from_tensors([("a", 1, 4, []), ("b", 1, 10, ["a"]), ("c", 1, 1, ["a"]), ("d", 1, 1, ["b", "c"])])
    opt, order = exhaustive_peak(inst)
    assert opt == schedule_peak(inst, order) == 15  # a, c (4+1), b (4+1+10), d
    assert evaluate(inst, Plan.from_order(inst, order)).peak == opt


@given(instances(max_tasks=8))
def test_liu_and_series_parallel_are_optimal_when_they_apply(inst):
    opt, _ = exhaustive_peak(inst)
    if liu_check(inst) is None:
        order = liu_tree_schedule(inst)
        assert is_topological(inst, order)
        assert schedule_peak(inst, order) == opt
    if series_parallel_check(inst) is None:
        order = series_parallel_schedule(inst)
        assert is_topological(inst, order)
        assert schedule_peak(inst, order) == opt


@settings(max_examples=30)
@given(st.sampled_from(["in", "out"]), st.integers(2, 9), st.integers(0, 10**6),
       st.sampled_from(["tensor", "buffer", "general"]), st.booleans())
def test_liu_on_generated_trees(kind, n, seed, form, ws):
    gen = in_tree if kind == "in" else out_tree
    inst = gen(n, seed=seed, form=form, max_children=3, workspace=(0, 3) if ws else None)
    opt, _ = exhaustive_peak(inst)
    why = liu_check(inst)
    if kind == "in" or form == "buffer":
        assert why is None  # in-trees, and out-trees in buffer form, have fixed effects
    if why is None:
        assert schedule_peak(inst, liu_tree_schedule(inst)) == opt
    rr = release_relaxation(inst)
    assert rr.lower <= opt <= rr.peak
    if rr.optimal:
        assert rr.peak == opt


@settings(max_examples=30)
@given(st.integers(2, 9), st.integers(0, 10**6), st.sampled_from(["tensor", "buffer", "general"]),
       st.floats(0.1, 0.9))
def test_series_parallel_on_generated_graphs(n, seed, form, p_series):
    inst = random_series_parallel(n, seed=seed, form=form, p_series=p_series, sizes=(0, 9))
    opt, _ = exhaustive_peak(inst)
    why = series_parallel_check(inst)
    if form == "buffer":
        assert why is None
    if why is None:
        assert schedule_peak(inst, series_parallel_schedule(inst)) == opt
    else:
        assert "not fixed" in why or "depends on the order" in why
    rr = release_relaxation(inst)
    assert rr is not None and rr.lower <= opt <= rr.peak
    assert schedule_peak(inst, rr.order) == rr.peak and is_topological(inst, rr.order)
    if rr.optimal:
        assert rr.peak == opt


@given(instances(max_tasks=8), st.booleans(), st.booleans(), st.booleans())
def test_downset_search_matches_exhaustive(inst, reduce, warm, lookahead):
    opt, _ = exhaustive_peak(inst)
    red = reduce_peak(inst) if reduce else None
    inc = best_baseline(inst)[0] if warm else None
    res = downset_search(inst, red, incumbent=inc, lower_bound=lifetime_bound(inst)[0], lookahead=lookahead)
    assert res.optimal and res.peak == opt == res.bound
    assert is_topological(inst, res.order) and schedule_peak(inst, res.order) == opt


@given(instances(max_tasks=7), st.integers(-3, 1))
def test_downset_search_proves_infeasible_budgets(inst, delta):
    opt, _ = exhaustive_peak(inst)
    budget = opt + delta
    assume(budget >= 0)
    res = downset_search(inst, reduce_peak(inst), budget=budget)
    if budget < opt:
        assert res.infeasible and budget < res.bound <= opt
    else:
        assert res.optimal and res.peak == opt


def test_downset_search_stops_on_state_limit_with_a_valid_bound():
    inst = random_layered(60, seed=3)
    opt_free = downset_search(inst, reduce_peak(inst))
    assert opt_free.optimal
    res = downset_search(inst, None, max_states=50, incumbent=best_baseline(inst)[0],
                         lower_bound=lifetime_bound(inst)[0])
    assert res.stopped == "states"
    assert res.bound <= opt_free.peak <= res.peak


@given(instances(max_tasks=8))
def test_bounds_and_heuristics_never_cross_the_optimum(inst):
    opt, _ = exhaustive_peak(inst)
    assert lifetime_bound(inst)[0] <= opt
    for fn in BASELINES.values():
        order = fn(inst)
        assert is_topological(inst, order) and schedule_peak(inst, order) >= opt
    red = reduce_peak(inst)
    for order in (beam_search(inst, red, width=2), beam_search(inst, None, width=4), greedy_cluster_order(inst, red)):
        assert is_topological(inst, order)
        assert schedule_peak(inst, order) >= opt


@given(instances(max_tasks=8), st.sampled_from(["auto", "downset-dp", "liu", "series-parallel", "exhaustive"]),
       st.integers(-2, 3))
def test_every_exact_method_through_solve(inst, method, delta):
    opt, _ = exhaustive_peak(inst)
    budget = None if delta == 3 else max(0, opt + delta)
    req = make_request(inst, "peak", budget=budget)
    if get_method(method).refuse(req):
        with pytest.raises(MemoptError):
            solve(inst, "peak", method, budget=budget)
        return
    res = solve(inst, "peak", method, budget=budget, threads=1)
    if budget is not None and opt > budget:
        assert res.status == "infeasible" and res.plan is None and budget < res.bound <= opt
    else:
        assert res.status == "optimal" and res.value == res.bound == opt
        assert res.evaluation.valid


def test_liu_refuses_a_non_tree_clearly():
    inst = from_tensors([("a", 1, 1, []), ("b", 1, 1, ["a"]), ("c", 1, 1, ["a"]), ("d", 1, 1, ["b", "c"])])
    with pytest.raises(MemoptError, match="not a forest.*'a' has 2 successors.*'d' has 2 predecessors"):
        solve(inst, "peak", "liu")


def test_series_parallel_refuses_shared_tensors_naming_the_datum():
    # a's output is read by two parallel branches: which one frees it is a decision
    inst = from_tensors([("a", 1, 5, []), ("b", 1, 1, ["a"]), ("c", 1, 1, ["a"]), ("d", 1, 1, ["b", "c"])])
    with pytest.raises(MemoptError, match="datum 'a'.*depends on the order"):
        solve(inst, "peak", "series-parallel")
    # but the relaxation still brackets it, and auto proves it
    assert solve(inst, "peak", "auto").status == "optimal"


def test_series_parallel_refuses_non_sp_graphs():
    # the "N" graph a->c, b->c, b->d is not series-parallel
    tasks = [Task(x, 1) for x in "abcd"]
    data = [Datum("a->c", "a", ("c",), 1), Datum("b->c", "b", ("c",), 1), Datum("b->d", "b", ("d",), 1)]
    inst = Instance(tasks, data)
    with pytest.raises(MemoptError, match="not series-parallel"):
        solve(inst, "peak", "series-parallel")


def test_exhaustive_refuses_large_graphs():
    with pytest.raises(MemoptError, match="at most"):
        solve(random_layered(30, seed=1), "peak", "exhaustive")


def test_large_series_parallel_buffer_graph_is_solved_exactly_by_auto():
    inst = random_series_parallel(3000, seed=2, form="buffer")
    res = solve(inst, "peak", "auto")
    assert res.status == "optimal" and res.value == res.bound
    assert res.value <= min(schedule_peak(inst, f(inst)) for f in BASELINES.values())


def test_auto_gives_a_plan_and_honest_bound_when_time_runs_out():
    inst = random_layered(400, seed=5)
    res = solve(inst, "peak", "auto", time_limit=2.0)
    assert res.plan is not None and res.evaluation.valid
    assert res.bound <= res.value
    assert res.status in ("optimal", "feasible")
    assert res.value <= best_baseline(inst)[1]


@settings(max_examples=40)
@given(instances(max_tasks=7))
def test_lookahead_bound_is_admissible(inst):
    """h(S) never exceeds the peak of the rest of any order through S."""
    from memopt.core.evaluate import evaluate
    from memopt.exact.lookahead import Lookahead
    from memopt.transforms.clusters import identity_reduction

    red = identity_reduction(inst)
    look = Lookahead(inst, red, k=inst.n)
    index = {c[0]: k for k, c in enumerate(red.clusters)}
    for n_orders, order in enumerate(topological_orders(inst)):
        if n_orders >= 30:
            break
        mem = [p.memory for p in evaluate(inst, Plan.from_order(inst, order)).memory if p.kind == "compute"]
        S = live = 0
        for k, v in enumerate(order):
            assert look.h(S, live) <= max(mem[k:])
            c = index[v]
            live = look.live_after(c, S, live)
            S |= 1 << c
