"""The run contract of ``memopt solve`` (issue "Every run ends well"): time limits, Ctrl-C, SIGTERM, memory limit.

The signal tests send real signals to a real ``memopt solve`` process and
check the plan it wrote with the evaluator.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import memopt
from memopt.core.interrupt import process_memory
from memopt.generators import random_layered
from memopt.training import training_graph

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals and /proc are POSIX")


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A 200-layer training graph at 0.6x: no schedule fits, the planner finds a plan, models run for long."""
    inst = training_graph(random_layered(200, seed=2))
    p = tmp_path_factory.mktemp("contract") / "big.json"
    memopt.save_instance(inst, p)
    return p


def _start(big, out, *extra):
    cmd = [sys.executable, "-m", "memopt", "solve", str(big), "--objective", "time", "--recompute",
           "--budget", "0.6x", "-t", "120", "--log", "-o", str(out), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_plan(proc, seconds=180.0):
    """Read the log until the first improvement with a plan ('best ...'), then return."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        line = proc.stderr.readline()
        if not line:
            break
        if " best " in line:
            return
    raise AssertionError("no plan reported in time")


def _check_written(big, out, status):
    res = memopt.core.result.Result.load(out)
    assert res.status == status
    inst = memopt.load_instance(big)
    ev = memopt.evaluate(inst, res.plan, budget=res.budget)
    assert ev.valid and ev.makespan == res.value and res.bound <= res.value


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_solve_with_its_best_plan(big, tmp_path, sig):
    out = tmp_path / "plan.yaml"
    proc = _start(big, out)
    _wait_for_plan(proc)
    time.sleep(1.0)
    proc.send_signal(sig)
    t0 = time.perf_counter()
    stdout, _ = proc.communicate(timeout=30)
    took = time.perf_counter() - t0
    assert proc.returncode == 130
    assert took < 10, took  # about a second on an idle machine; generous for a loaded CI
    assert "| interrupted |" in stdout
    _check_written(big, out, "interrupted")


def test_a_second_ctrl_c_exits_at_once_and_still_writes_the_plan(big, tmp_path):
    out = tmp_path / "plan.yaml"
    proc = _start(big, out)
    _wait_for_plan(proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)  # two signals sent at once may arrive as one (POSIX signals are not queued)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    # 130 when the second signal found the solve still stopping (memopt exits at once, writing the best plan);
    # killed by it (-SIGINT) when the first had already ended the run and written its answer
    assert proc.returncode in (130, -signal.SIGINT)
    _check_written(big, out, "interrupted")


def test_the_time_limit_is_kept(big):
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "memopt", "solve", str(big), "--objective", "time", "--recompute",
                        "--budget", "0.6x", "-t", "4"], capture_output=True, text=True, timeout=120, check=False)
    wall = time.perf_counter() - t0
    assert r.returncode == 0 and "| feasible |" in r.stdout and "of 4s" in r.stdout
    assert wall < 4 + 8, wall  # the process: interpreter start, loading, solving, writing


def test_the_time_limit_counts_from_the_start_of_the_run(big):
    from memopt.pipeline import MIN_SEARCH_SHARE, make_request, solve_request

    req = make_request(memopt.load_instance(big), "time", budget="0.6x", recompute=True)
    # reading the input took 2 s of a 4 s limit: the search has the 2 s left, and the run ends at 4 s
    t0 = time.perf_counter()
    res = solve_request(req, "auto", time_limit=4, started=t0 - 2)
    assert res.plan is not None and 3.5 <= res.solve_seconds <= 4 + 2, res.solve_seconds
    assert time.perf_counter() - t0 <= 2 + 2
    # reading took longer than the limit: the search still keeps its share of it
    t0 = time.perf_counter()
    res = solve_request(req, "auto", time_limit=4, started=t0 - 100)
    assert time.perf_counter() - t0 >= 4 * MIN_SEARCH_SHARE * 0.9
    assert res.solve_seconds <= 4 + 2


def test_a_default_time_limit(tmp_path, capsys):
    from memopt.cli import main

    assert main(["solve", "instances/tiny.yaml"]) == 0
    assert "of 60s" in capsys.readouterr().out
    assert main(["solve", "instances/tiny.yaml", "-t", "none"]) == 0
    assert "(no time limit)" in capsys.readouterr().out


def test_a_model_too_large_for_the_memory_left_is_not_built():
    inst = training_graph(random_layered(150, seed=1))
    res = memopt.solve(inst, "time", "checkmate", budget="0.6x", recompute=True, time_limit=30,
                       memory_limit=process_memory() + 50 * 2**20)
    assert res.plan is not None and res.status == "feasible"  # the warm start stands
    assert "not_built" in res.stats and "GiB" in res.stats["not_built"]
    assert res.statistics.peak_memory <= res.statistics.memory_limit


def test_at_the_memory_limit_the_search_stops_with_its_best_plan():
    inst = training_graph(random_layered(200, seed=1))
    limit = int(process_memory() * 0.97)  # already past it: the watchdog stops the search at once
    t0 = time.perf_counter()
    res = memopt.solve(inst, "time", "auto", budget="0.6x", recompute=True, time_limit=60, memory_limit=limit)
    assert time.perf_counter() - t0 < 30
    assert res.statistics.stop_reason == "memory limit"
    if res.plan is not None:
        assert memopt.evaluate(inst, res.plan, budget=res.budget).valid
        assert "memory limit" in res.message
    # the stop ended with the solve: a library call after it is not stopped before it starts
    from memopt.core.deadline import STOP, Deadline

    assert STOP.reason is None and not Deadline(5).expired()


def test_bench_keeps_every_finished_row_on_ctrl_c_and_resumes(big, tmp_path):
    import csv

    table = tmp_path / "b.csv"
    cmd = [sys.executable, "-m", "memopt", "bench", "instances/tiny.yaml", "instances/chain-20.yaml", str(big),
           "--objective", "time", "--recompute", "--budgets", "0.6x", "--methods", "auto", "--time-limit", "60",
           "--executor", "serial", "--out", str(table)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.perf_counter()
    # the two small instances are done within a second (infeasible); auto on the big one takes its 60 s
    while time.perf_counter() - t0 < 60:
        if table.exists() and len(list(csv.DictReader(table.open()))) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "run the same command to resume" in err
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 2 and {r["status"] for r in rows} <= {"optimal", "feasible", "infeasible"}
    dry = subprocess.run(cmd + ["--dry-run"], capture_output=True, text=True, timeout=60, check=True)
    assert "1 run(s) to do, 2 already in" in dry.stdout


def test_progress_lines_and_the_summary_carry_the_instance_units():
    r = subprocess.run([sys.executable, "-m", "memopt", "solve", "instances/nn/resnet18-train-b8.yaml", "--objective",
                        "time", "--recompute", "--budget", "0.8x", "-t", "6", "--log"],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0
    progress = [ln for ln in r.stderr.splitlines() if " best " in ln]
    assert progress and all(" ms" in ln and "bound" in ln and "gap" in ln for ln in progress)
    assert " ms (overhead " in r.stdout and " MiB | budget " in r.stdout  # the summary: times and sizes with units
    quiet = subprocess.run([sys.executable, "-m", "memopt", "solve", "instances/tiny.yaml", "-q"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_units_are_readable_and_precise_enough():
    from memopt.core.units import format_size, format_time, plain

    assert format_size(618943748, "B") == "590.3 MiB" and format_size(14_656_000_000, "B") == "13.65 GiB"
    assert format_time(10_960_000, "ns") == "10.96 ms" and format_time(92_571, "us") == "92.57 ms"
    assert plain(618943748) == "618,943,748"


# ------------------------------------------------- the long steps of auto-time keep the time limit
# (flat auto-time on a 20,005-task training graph ran 62-67 s of a 60 s limit: the planner's evictions
# between two looks at the clock, Moccasin started after the limit, the unchecked tail of its build, and
# CP-SAT's load of a model that size, which its own time limit does not cut short)


class _ExpiresAfter:
    """A deadline that expires after ``calls`` questions (a build that reaches its limit at a chosen step)."""

    def __init__(self, calls: int):
        self.left = calls

    def expired(self) -> bool:
        self.left -= 1
        return self.left < 0


def test_the_moccasin_build_stops_in_its_last_steps_too():
    import math

    from memopt.backends.model import BuildStopped
    from memopt.core.deadline import Deadline, StopSignal
    from memopt.formulations.moccasin_model import moccasin_model
    from memopt.heuristics.planner import plan_under_budget
    from memopt.pipeline import make_request

    inst = training_graph(random_layered(40, seed=1))
    req = make_request(inst, "time", budget="0.7x", recompute=True)
    # (its own stop signal: the test does not depend on the process's)
    hint = plan_under_budget(req, deadline=Deadline(30, stop=StopSignal()))
    assert hint is not None
    # the two loops over the tasks ask every 64 tasks: a deadline that expires right after them must still
    # stop the rest (the results, the objective, the hint: 1.6 s of Python on 20,005 tasks)
    asked = 2 * math.ceil(inst.n / 64)
    moccasin_model(req, hint=hint, deadline=_ExpiresAfter(asked + 1000))  # never expires: built
    with pytest.raises(BuildStopped):
        moccasin_model(req, hint=hint, deadline=_ExpiresAfter(asked))


def test_moccasin_keeps_time_for_what_a_solve_costs_outside_cp_sats_limit(monkeypatch):
    from memopt.core.deadline import Deadline
    from memopt.core.incumbent import Incumbent
    from memopt.core.method import Context
    from memopt.formulations import moccasin
    from memopt.pipeline import make_request

    inst = training_graph(random_layered(40, seed=1))
    real, given = moccasin.run_cpsat, []

    def spy(model, deadline, **kw):
        given.append(deadline.remaining())
        return real(model, deadline, **kw)

    monkeypatch.setattr(moccasin, "run_cpsat", spy)
    monkeypatch.setattr(moccasin, "SOLVE_RESERVE_SHARE", 5.0)  # a model "costing" 5x its build outside CP-SAT
    res = memopt.solve(inst, "time", "moccasin", budget="0.7x", recompute=True, time_limit=4)
    reserve = res.stats["solve_reserve_seconds"]
    assert given and reserve > 0 and given[0] <= 4 - reserve  # CP-SAT's limit leaves the reserve
    # a model that would be done with less than twice its reserve left is not built on, nor solved: the warm
    # start stands
    given.clear()
    monkeypatch.setattr(moccasin, "SOLVE_RESERVE_SHARE", 1e9)
    res = memopt.solve(inst, "time", "moccasin", budget="0.7x", recompute=True, time_limit=30)
    assert not given and "too late to be solved" in res.stats["not_built"] and res.status == "feasible"
    assert memopt.evaluate(inst, res.plan, budget=res.budget).valid
    # a build that ends past its share (its last steps between two looks at the clock): not solved either
    monkeypatch.setattr(moccasin, "SOLVE_RESERVE_SHARE", 0.4)
    build = moccasin.moccasin_model

    def slow_tail(*a, deadline, **kw):
        model = build(*a, deadline=deadline, **kw)
        while time.perf_counter() < deadline.end + 0.3:
            time.sleep(0.01)
        return model

    monkeypatch.setattr(moccasin, "moccasin_model", slow_tail)
    res = memopt.solve(inst, "time", "moccasin", budget="0.7x", recompute=True, time_limit=3)
    assert not given and "not_solved" in res.stats and res.status == "feasible"
    assert memopt.evaluate(inst, res.plan, budget=res.budget).valid
    # an expired deadline: nothing is started (not even the warm start)
    req = make_request(inst, "time", budget="0.7x", recompute=True)
    dl = Deadline(0)
    ctx = Context(moccasin.MoccasinParams(), dl, Incumbent(req, dl))
    out = moccasin.run_moccasin(req, ctx)
    assert out.plan is None and ctx.stats["not_built"] == "no time left" and not given


def test_auto_time_starts_no_model_once_the_planner_used_the_time(monkeypatch):
    from memopt.strategies import auto_time

    real = auto_time.continue_portfolio

    def late(req, ctx, orders, configs, *, deadline, **kw):
        """The planner's first plan comes at the run's end (it may go on past its share up to there)."""
        res = real(req, ctx, orders, configs, deadline=deadline, **kw)
        while not deadline.run_expired():
            time.sleep(0.01)
        return res

    monkeypatch.setattr(auto_time, "continue_portfolio", late)
    inst = training_graph(random_layered(60, seed=1))
    t0 = time.perf_counter()
    res = memopt.solve(inst, "time", "auto-time", budget="0.6x", recompute=True, time_limit=2, hierarchical=False)
    assert time.perf_counter() - t0 < 2 + 0.5
    assert res.stats.get("model_skipped", "").endswith("no time left") and "model" not in res.stats
    assert res.plan is not None and memopt.evaluate(inst, res.plan, budget=res.budget).valid


def test_the_planner_looks_at_the_clock_before_every_eviction(monkeypatch):
    from memopt.core.deadline import Deadline
    from memopt.heuristics.planner import simulation
    from memopt.heuristics.planner.portfolio import run_planner
    from memopt.pipeline import make_request

    inst = training_graph(random_layered(60, seed=1))
    req = make_request(inst, "time", budget="0.7x", recompute=True)
    victims = []
    real = simulation.Simulation._victim
    monkeypatch.setattr(simulation.Simulation, "_victim", lambda self: victims.append(1) or real(self))
    assert run_planner(req, inst.topological_order) is not None and len(victims) > 1  # it evicts
    victims.clear()
    # out of time from the start: not one victim is chosen (a choice scans the resident data)
    assert run_planner(req, inst.topological_order, deadline=Deadline(0)) is None
    assert not victims


def test_a_stop_kills_only_the_processes_the_run_started():
    """The memory limit, a first Ctrl-C and CBC's deadline kill the run's own child processes (the planner's
    walker, the CBC binary), never the caller's other children (a data loader's workers, multiprocessing's
    resource tracker: a library call used to kill every child of its process)."""
    from memopt.core.interrupt import child_pids, disown_child, kill_children, own_child

    before = child_pids()
    theirs = subprocess.Popen(["sleep", "30"])
    ours = subprocess.Popen(["sleep", "30"])
    try:
        own_child(ours.pid)
        kill_children()
        assert ours.wait(5) == -9 and theirs.poll() is None
        disown_child(ours.pid)
        cbc = subprocess.Popen(["sleep", "30"])  # a solver's binary started after the snapshot
        kill_children(besides=before | {theirs.pid})
        assert cbc.wait(5) == -9 and theirs.poll() is None
    finally:
        theirs.kill()
        theirs.wait()
