"""Recomputations turned into reloads (:mod:`memopt.heuristics.planner.reloads`): valid plans, never worse
than the plan they start from, never better than the brute-force optimum, and the gain where the channel
hides the transfers."""

from __future__ import annotations

from brute_budget import brute_time, brute_time_or_reject
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import instances
from test_budget_planner import budget_between

import memopt
from memopt import from_tensors
from memopt.core.instance import Machine
from memopt.core.request import Request
from memopt.generators import repeated_blocks
from memopt.heuristics.planner import PlannerConfig, offload_recomputations, plan_under_budget, run_planner
from memopt.heuristics.planner.reloads import _convert, _Unpackable, plan_steps
from memopt.training import training_graph


def _planned(inst, frac: int, bw: float, moving: bool):
    """The instance with bandwidth ``bw``, a budget, the request with both techniques, and the planner's plan
    (with both techniques when ``moving``, else recomputation only); the draw is rejected without a plan."""
    inst = inst.with_machine(bandwidth=bw)
    B = budget_between(inst, frac, False)
    both = Request(inst, "time", B, None, True, True)
    plan = plan_under_budget(both if moving else Request(inst, "time", B, None, True, False))
    assume(plan is not None)
    return inst, B, both, plan


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(instances(max_tasks=8, max_time=9, no_recompute=True), st.integers(0, 60), st.sampled_from([1, 2, 0.5, 4]),
       st.booleans(), st.data())
def test_every_subset_of_recomputations_reloaded_is_a_valid_plan(inst, frac, bw, moving, data):
    """Whichever recomputations of a plan are turned into reloads — a plan that only recomputes, or one that
    offloads too (``moving``: its reloads stay, their offloads placed again) — the plan built (when the
    packing finds one) passes the evaluator with the same budget, runs fewer computes, and offloads each
    datum at most once (a chosen recomputation whose outputs feed nothing is simply dropped)."""
    inst, B, both, plan = _planned(inst, frac, bw, moving)
    seq = plan_steps(inst, plan)
    seen, recomputes = set(), []
    for i, (kind, v) in enumerate(seq):
        if kind == 0:
            if v in seen:
                recomputes.append(i)
            seen.add(v)
    assume(recomputes)
    chosen = set(data.draw(st.lists(st.sampled_from(recomputes), min_size=1, unique=True)))
    out = None
    try:
        out = _convert(both, seq, chosen, None)
    except _Unpackable as e:  # a reload needed right where its offload must end: refused, never planned
        assert e.positions and e.positions <= chosen
    assume(out is not None)
    ev = both.evaluate(out)
    assert ev.valid, ev.violation
    assert out.count("compute") <= plan.count("compute") - len(chosen)
    offloads = [e.target for _, e in out.events() if e.kind == "offload"]
    assert len(offloads) == len(set(offloads))
    # at most one reload per output of a chosen recomputation (none when it fed nothing), besides the plan's
    assert out.count("reload") <= plan.count("reload") + sum(len(inst.outputs[seq[i][1]]) for i in chosen)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(instances(min_tasks=4, max_tasks=5, max_size=4, max_time=9, no_recompute=True), st.integers(0, 40),
       st.sampled_from([1, 2, 4]), st.booleans())
def test_reloads_improve_on_their_plan_and_never_beat_the_brute_force_optimum(inst, frac, bw, moving):
    """The answer is a valid plan strictly shorter than the plan it started from (one that only recomputes,
    or the planner's with both techniques), and never shorter than the least makespan over every SPEC plan
    with both techniques (Dijkstra over plans, tests/brute_budget.py). (About one draw in twenty has a
    recomputation that a reload improves: tight budgets, costly tasks.)"""
    assume(inst.m <= 6)
    inst, B, both, plan = _planned(inst, frac, bw, moving)
    out = offload_recomputations(both, plan)
    assume(out is not None)
    ev = both.evaluate(out[0])
    assert ev.valid and float(ev.makespan) == out[1] < float(both.evaluate(plan).makespan)
    best = brute_time_or_reject(inst, B, recompute=True, offload=True)
    assert best is not None and out[1] >= float(best[0]) - 1e-9


def _reloaded(p_inputs: list[str]):
    """a (4 time units) must leave memory while q runs and comes back for r (budget 4); p reads
    ``p_inputs``. The recomputation-only plan of the order a, p, q, r (13), and the pass's answer."""
    inst = from_tensors([("a", 4, 1, []), ("p", 2, 2, p_inputs), ("q", 2, 2, ["p"]), ("r", 1, 1, ["a", "q"])],
                        machine=Machine(bandwidth=1))
    rec = Request(inst, "time", 4, None, True, False)
    plan = run_planner(rec, [0, 1, 2, 3], PlannerConfig())
    assert rec.evaluate(plan).makespan == 13
    both = Request(inst, "time", 4, None, True, True)
    out = offload_recomputations(both, plan)
    assert out is not None and both.evaluate(out[0]).valid
    return inst, rec, both, plan, out


def test_a_recomputation_reloaded_where_the_channel_is_idle():
    """p reads a. Recomputed, a costs 4 more: 13. Offloaded beside p and reloaded in a stage of its own
    after q (q's compute has no room for it): 1 unit of channel each way, one of them hidden: 10, the
    optimum (brute force)."""
    inst, rec, both, plan, out = _reloaded(["a"])
    assert out[1] == 10
    assert out[0].count("compute") == 4 and out[0].count("offload") == out[0].count("reload") == 1
    assert float(brute_time(inst, 4, recompute=True, offload=True)[0]) == 10
    # without a channel, or without a recomputation left, there is nothing to do
    assert offload_recomputations(rec, plan) is None
    assert offload_recomputations(both, out[0]) is None


def test_an_offloaded_copy_is_kept_past_its_last_read_to_hide_its_offload():
    """p does not read a: freed at once after it is made (its last read), a's offload would need a stage
    of its own (11). Kept resident beside p while memory allows, the offload hides: 10 for this order of
    computes (another order fits without any transfer, 9: the brute force)."""
    inst, _, _, _, out = _reloaded([])
    assert out[1] == 10
    assert float(brute_time(inst, 4, recompute=True, offload=True)[0]) == 9


def test_hierarchical_and_auto_reload_the_chain_plans_recomputations():
    """On a large training graph of repeated blocks with a channel, ``hierarchical`` (with both techniques)
    and ``auto`` turn the recomputation-only plan's recomputations into reloads: the answer is shorter than
    that plan, valid, and offloads."""
    import memopt
    from memopt.generators import repeated_blocks
    from memopt.heuristics.orders import best_baseline
    from memopt.training import training_graph

    inst = training_graph(repeated_blocks(600, block_size=6, seed=4)).with_machine(bandwidth=2)
    b = int(0.6 * best_baseline(inst)[1])
    for method in ("hierarchical", "auto"):
        res = memopt.solve(inst, "time", method, budget=b, recompute=True, offload=True, time_limit=10)
        gains = [rl for rl in res.stats["reloads"].values() if rl["after"] is not None]
        assert gains and all(rl["after"] < rl["before"] and rl["reloads"] > 0 for rl in gains), method
        ev = memopt.evaluate(inst, res.plan, budget=b)
        assert ev.valid and res.plan.count("reload") > 0, method
        assert res.value == ev.makespan <= min(rl["after"] for rl in gains), method


@settings(max_examples=200, deadline=None)
@given(instances(max_tasks=9, no_recompute=True), st.sampled_from([1, 2, 0.5, 4]), st.data())
def test_the_plan_offloading_every_datum_holds_one_task_footprint(inst, bw, data):
    """Every datum of size > 0 offloaded after its producer and reloaded before each reader: a valid plan (with
    offloading alone) in any topological order, whose peak is exactly the task footprint bound and whose
    makespan is Σ c plus every transfer's time (each stands in a stage without computes)."""
    from memopt.core.bounds import task_footprint_bound
    from memopt.core.plan import COMPUTE
    from memopt.heuristics.offload_all import offload_all_plan

    inst = inst.with_machine(bandwidth=bw)
    order = data.draw(st.sampled_from([inst.topological_order, best_baseline_order(inst)]))
    footprint = task_footprint_bound(inst)[0]
    req = Request(inst, "time", footprint, None, False, True)
    plan = offload_all_plan(req, order)
    ev = req.evaluate(plan)
    assert ev.valid, ev.violation
    assert ev.peak == footprint
    size = {d.id: d.size for d in inst.data}
    moved = sum(size[e.target] for st_ in plan.stages for e in st_ if e.kind in ("offload", "reload"))
    assert ev.makespan == inst.total_time + moved / inst.machine.bandwidth
    assert sum(e.kind == COMPUTE for st_ in plan.stages for e in st_) == inst.n
    if footprint > 0:
        assert not Request(inst, "time", footprint - 1, None, True, True).evaluate(plan).valid


def best_baseline_order(inst):
    from memopt.heuristics.orders import best_baseline

    return best_baseline(inst)[0]


def test_hierarchical_offers_the_plan_offloading_every_datum_when_the_chain_has_none(monkeypatch):
    """No chain plan and no planner: with offloading, a first plan at once (every datum offloaded), and the
    flat route still runs as if there were none — its plan, far better, is the answer."""
    from memopt.strategies.hierarchical import method

    monkeypatch.setattr(method.ChainRun, "start", lambda self, deadline: False)  # the chain finds nothing
    inst = training_graph(repeated_blocks(12, block_size=4)).with_machine(bandwidth=2)
    res = memopt.solve(inst, "time", "hierarchical", budget="0.85x", recompute=True, offload=True, time_limit=10,
                       planner=False)
    plans = [i for i in res.statistics.improvements if i.value is not None]
    assert "every datum offloaded" in plans[0].source
    assert res.stats["flat_route"] == "plan" and res.value < plans[0].value
    req = memopt.make_request(inst, "time", budget="0.85x", recompute=True, offload=True)
    assert req.evaluate(res.plan).valid
