"""The planner's second walker: moves of the best order in a helper process (memopt.heuristics.planner.walker)."""

import math
import multiprocessing
import os
import signal
import threading
import time

import pytest
from brute_budget import brute_time
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import instances
from test_budget_planner import budget_between

from memopt import solve
from memopt.core.deadline import Deadline, StopSignal
from memopt.core.request import Request
from memopt.heuristics.planner import PlannerConfig, plan_portfolio, run_planner
from memopt.heuristics.planner import portfolio as portfolio_module
from memopt.heuristics.planner.walker import Walker, can_walk
from memopt.io import load_instance
from memopt.pipeline import make_request

pytestmark = pytest.mark.skipif(not can_walk(), reason="the walker forks (Linux only)")


def sp_request():
    """A shipped instance at 0.65x with both techniques, where moves of the best order improve the plan."""
    return make_request(load_instance("instances/sp-offload-80.yaml"), "time", budget="0.65x", recompute=True,
                        offload=True)


def training_request():
    """A shipped training graph at 0.5x with both techniques, where moves go on improving for seconds."""
    return make_request(load_instance("instances/nn/mobilenetv2-train-b1.yaml"), "time", budget="0.5x",
                        recompute=True, offload=True)


def no_children_left() -> bool:
    return multiprocessing.active_children() == []


def test_a_walker_sends_better_plans_and_stops_on_the_parents_word():
    req = sp_request()
    order = list(req.instance.topological_order)
    w = Walker(req, PlannerConfig(), order, math.inf, Deadline(20), stream=1, stale_limit=10**9, run=run_planner)
    try:
        got = w.wait(time.perf_counter() + 15)
        assert got, "the walker sent no plan"  # its first valid plan beats inf
        for r in got:
            ev = req.evaluate(r.plan)
            assert ev.valid and ev.makespan == r.makespan, ev.violation
        assert w.alive
    finally:
        t0 = time.perf_counter()
        w.close()
    assert time.perf_counter() - t0 < 5 and not w.alive and w.moves >= 1 and no_children_left()


def test_a_walker_ignores_ctrl_c():
    """Ctrl-C reaches the whole process group: the parent ends the search, the child must not die of it first
    (nor count it in the parent's wakeup pipe)."""
    req = sp_request()
    w = Walker(req, PlannerConfig(), list(req.instance.topological_order), math.inf, Deadline(20), stream=1,
               stale_limit=10**9, run=run_planner)
    try:
        os.kill(w._proc.pid, signal.SIGINT)
        time.sleep(0.5)
        assert w._proc.is_alive()
    finally:
        w.close()
    assert no_children_left()


def test_a_walker_ends_at_its_deadline_and_says_so():
    req = sp_request()
    w = Walker(req, PlannerConfig(), list(req.instance.topological_order), math.inf, Deadline(1), stream=1,
               stale_limit=10**9, run=run_planner)
    end = time.perf_counter() + 10
    while w.alive and time.perf_counter() < end:
        w.wait(end)
    assert not w.alive and w.moves >= 1  # its "done" came before the parent's word
    w.close()
    assert no_children_left()


@pytest.mark.parametrize("workers", [1, 2])
def test_the_portfolio_takes_the_walkers_plans_through_the_evaluator(monkeypatch, workers):
    monkeypatch.setattr(portfolio_module, "MIN_WALK_SECONDS", 0.5)
    req = training_request()
    seen = []
    res = plan_portfolio(req, restarts=0, moves=10**9, deadline=Deadline(3),
                         on_improve=lambda plan, m: seen.append(m), workers=workers)
    ev = req.evaluate(res.plan)
    assert ev.valid and ev.makespan == res.makespan == seen[-1] and res.invalid == []
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == len(seen)  # only improvements offered
    assert res.walkers == (workers - 1)
    assert (res.walker_moves >= 1) == (workers > 1) and res.improved_by_walker <= res.improved_by_moves
    assert no_children_left()


def test_a_stopped_portfolio_stops_its_walker(monkeypatch):
    monkeypatch.setattr(portfolio_module, "MIN_WALK_SECONDS", 0.5)
    req = training_request()
    stop = StopSignal()
    threading.Timer(1.0, stop.set, args=("interrupted",)).start()
    t0 = time.perf_counter()
    res = plan_portfolio(req, restarts=0, moves=10**9, deadline=Deadline(60, stop=stop), workers=2)
    assert 1 <= time.perf_counter() - t0 < 5 and res.walkers == 1 and no_children_left()
    assert req.evaluate(res.plan).valid


def test_the_planner_method_walks_with_the_runs_threads():
    inst = load_instance("instances/nn/mobilenetv2-train-b1.yaml")
    kw = dict(budget="0.5x", recompute=True, offload=True, time_limit=5)
    r2 = solve(inst, "time", "planner", threads=2, **kw)
    r1 = solve(inst, "time", "planner", threads=1, **kw)
    assert r2.stats["walker_moves"] >= 1 and r1.stats["walker_moves"] == 0
    req = make_request(inst, "time", budget="0.5x", recompute=True, offload=True)
    for r in (r1, r2):
        ev = req.evaluate(r.plan)
        assert r.status == "feasible" and ev.valid and ev.makespan == r.value, ev.violation
    assert no_children_left()


@settings(max_examples=12, deadline=None)
@given(instances(max_tasks=4, no_recompute=True, max_size=5), st.integers(0, 100), st.booleans(),
       st.sampled_from([1, 2, 0.5]))
def test_a_walkers_plans_are_valid_and_never_below_brute_force(inst, frac, rc, bw):
    assume(inst.m <= 5)
    inst = inst.with_machine(bandwidth=bw)
    B = budget_between(inst, frac, True)
    req = Request(inst, "time", B, None, rc, True)
    w = Walker(req, PlannerConfig(), list(inst.topological_order), math.inf, Deadline(0.3), stream=1,
               stale_limit=30, run=run_planner)
    end = time.perf_counter() + 5
    got = []
    while w.alive and time.perf_counter() < end:
        got += w.wait(end)
    got += w.close()
    assert w.invalid == []
    best = brute_time(inst, B, recompute=rc, offload=True)
    for r in got:
        ev = req.evaluate(r.plan)
        assert ev.valid and ev.makespan == r.makespan, ev.violation
        assert best is not None and r.makespan >= best[0]


def test_a_walker_killed_at_the_memory_limit_leaves_the_parent_searching(monkeypatch):
    """The memory watchdog kills the run's own children at the limit: the parent goes on alone, to its
    deadline, with a valid plan."""
    from memopt.core.interrupt import kill_children

    monkeypatch.setattr(portfolio_module, "MIN_WALK_SECONDS", 0.5)
    req = training_request()
    threading.Timer(1.0, kill_children).start()
    t0 = time.perf_counter()
    res = plan_portfolio(req, restarts=0, moves=10**9, deadline=Deadline(3), workers=2)
    assert time.perf_counter() - t0 >= 2.5 and res.walkers == 1 and no_children_left()
    ev = req.evaluate(res.plan)
    assert ev.valid and ev.makespan == res.makespan


def test_telling_the_walker_never_blocks_the_search():
    """An order of many tasks is more than a pipe holds, and the child reads only between its runs: the parent's
    message goes through a thread of its own (the child ignores this one: it is no better than its plan)."""
    def slow_run(*args):  # a long planner run (the 70B shape's take 8-30 s): the child reads nothing meanwhile
        time.sleep(3)
        return run_planner(*args)

    req = sp_request()
    w = Walker(req, PlannerConfig(), list(req.instance.topological_order), 10**9, Deadline(20), stream=1,
               stale_limit=10**9, run=slow_run)
    try:
        time.sleep(0.2)  # the child is in its first run
        t0 = time.perf_counter()
        for _ in range(3):
            w.tell(PlannerConfig(), list(range(300_000)), math.inf)
        assert time.perf_counter() - t0 < 0.5
        time.sleep(0.3)
        assert w._proc.is_alive()
    finally:
        w.close()
    assert no_children_left() and not w._sender.is_alive()
