"""The shared linear model layer: the three backends agree with brute force."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memopt.backends.linear import BACKENDS, LinearModel, solve_linear


@st.composite
def small_models(draw):
    """A random pure-integer model over 3-4 small variables, with an indicator."""
    n = draw(st.integers(2, 4))
    m = LinearModel("rand")
    xs = [m.var(f"x{i}", 0, draw(st.integers(1, 3))) for i in range(n)]
    for _ in range(draw(st.integers(1, 3))):
        coef = [draw(st.integers(-3, 3)) for _ in xs]
        lo = draw(st.one_of(st.none(), st.integers(-4, 4)))
        hi = draw(st.one_of(st.none(), st.integers(-2, 8)))
        m.add(zip(xs, coef), -float("inf") if lo is None else lo, float("inf") if hi is None else hi)
    b = m.binary("b")
    m.add_indicator(b, [(xs[0], 1), (xs[1], 1)], lo=draw(st.integers(0, 3)))
    m.add_indicator(b, [(xs[-1], 2)], hi=draw(st.integers(0, 4)))
    obj = [(x, draw(st.integers(-3, 3))) for x in xs + [b]]
    m.minimize(obj, constant=draw(st.integers(-2, 2)))
    return m


def brute_force(m: LinearModel):
    best = None
    ranges = [range(int(m.lb[i]), int(m.ub[i]) + 1) for i in range(m.num_vars)]
    for vals in itertools.product(*ranges):
        if m.check(vals):
            continue
        obj = sum(a * vals[i] for i, a in m.objective.items()) + m.objective_constant
        best = obj if best is None else min(best, obj)
    return best


@settings(max_examples=25)
@given(small_models())
def test_backends_agree_with_brute_force(m):
    expected = brute_force(m)
    for be in BACKENDS:
        s = solve_linear(m, be, threads=1)
        if expected is None:
            assert s.status == "infeasible", be
        else:
            assert s.status == "optimal", be
            assert s.objective == pytest.approx(expected), be
            assert not m.check(s.values), be
            assert s.bound == pytest.approx(expected)


def test_fractional_coefficients_are_scaled_for_cpsat():
    m = LinearModel()
    x = m.var("x", 0, 10)
    y = m.var("y", 0, 10)
    m.add_ge([(x, 0.5), (y, 0.25)], 1.75)  # 2x + y >= 7
    m.minimize([(x, 3), (y, 1)])
    for be in BACKENDS:
        s = solve_linear(m, be)
        assert s.objective == pytest.approx(7), (be, s)


def test_time_limit_returns_best_solution_with_a_valid_bound():
    # a generalised assignment problem that none of the backends closes instantly
    import random

    r = random.Random(3)
    m = LinearModel("gap")
    n, k = 60, 6
    x = {(i, j): m.binary(f"x{i}_{j}") for i in range(n) for j in range(k)}
    for i in range(n):
        m.add_eq([(x[i, j], 1) for j in range(k)], 1)
    for j in range(k):
        m.add_le([(x[i, j], r.randint(5, 25)) for i in range(n)], int(n * 15 / k * 0.8))
    m.minimize([(x[i, j], r.randint(10, 50)) for i in range(n) for j in range(k)])
    # a trivial feasible hint is taken as a start
    for be in BACKENDS:
        s = solve_linear(m, be, time_limit=1.0, threads=1)
        assert s.status in ("optimal", "feasible"), be
        assert not m.check(s.values)
        if s.bound is not None:
            assert s.bound <= s.objective + 1e-6


def test_hint_is_passed_and_checked():
    m = LinearModel()
    xs = [m.binary(f"x{i}") for i in range(5)]
    m.add_eq([(x, 1) for x in xs], 2)
    m.minimize([(x, i + 1) for i, x in enumerate(xs)])
    m.set_hint({xs[3]: 1, xs[4]: 1, xs[0]: 0, xs[1]: 0, xs[2]: 0})
    for be in BACKENDS:
        s = solve_linear(m, be, warm_start=True)
        assert s.status == "optimal" and s.objective == 3, be


def test_continuous_variables_rejected_by_cpsat_but_fine_for_milp():
    m = LinearModel()
    x = m.var("x", 0, 1.5, integer=False)
    m.minimize([(x, -1)])
    assert solve_linear(m, "highs").objective == pytest.approx(-1.5)
    assert solve_linear(m, "cbc").objective == pytest.approx(-1.5)
    with pytest.raises(ValueError, match="integer"):
        solve_linear(m, "cpsat")


def test_backend_parameters_are_passed_through():
    m = LinearModel()
    x = m.var("x", 0, 10)
    y = m.var("y", 0, 10)
    m.add_ge([(x, 2), (y, 1)], 7)
    m.minimize([(x, 3), (y, 1)])
    s = solve_linear(m, "cpsat", threads=1, params={"subsolvers": ["max_lp"], "linearization_level": 2})
    assert s.status == "optimal" and s.objective == pytest.approx(7)
    s = solve_linear(m, "highs", params={"presolve": "off"})
    assert s.status == "optimal" and s.objective == pytest.approx(7)
    with pytest.raises(Exception):
        solve_linear(m, "cpsat", params={"no_such_parameter": 1})


def test_cpsat_gives_up_building_a_huge_model_at_the_time_limit():
    m = LinearModel("big")
    xs = [m.binary(f"x{i}") for i in range(200)]
    for k in range(30000):
        m.add_le({xs[k % 200]: 1, xs[(k + 1) % 200]: 1}, 1)
    m.minimize(dict.fromkeys(xs, -1))
    sol = solve_linear(m, "cpsat", time_limit=1e-6)
    assert sol.status == "unknown" and sol.values is None and sol.bound is None
    assert "aborted" in sol.stats
    assert solve_linear(m, "cpsat", time_limit=30).status == "optimal"  # the same model, given time


def test_cpsat_stops_where_asked():
    # a knapsack: the first improving solution asked about is returned as it is, marked stopped
    m = LinearModel("stop")
    xs = [m.binary(f"x{i}") for i in range(12)]
    m.add_le([(x, 3 + i % 5) for i, x in enumerate(xs)], 20)
    m.minimize([(x, -(2 + i % 7)) for i, x in enumerate(xs)])
    seen = []

    def stop(values):
        seen.append(values)
        return True

    sol = solve_linear(m, "cpsat", threads=1, stop_if=stop)
    assert len(seen) == 1 and sol.stats["stopped"] and sol.status in ("feasible", "optimal")
    assert sol.values == seen[0] and not m.check(sol.values)
    full = solve_linear(m, "cpsat", threads=1, stop_if=lambda values: False)
    assert full.status == "optimal" and not full.stats["stopped"] and full.objective <= sol.objective


def test_cbc_point_that_breaks_a_row_once_rounded_is_no_solution(monkeypatch):
    """CBC stopped at its limit may return a point that breaks rows: it must not come back as a solution."""
    import pulp

    from memopt.backends import cbc, linear

    class StoppedCBC:
        def actualSolve(self, prob, **kw):
            for v in prob.variables():
                v.varValue = 1.0  # x + y <= 1 broken
            prob.status, prob.sol_status = pulp.LpStatusNotSolved, pulp.LpSolutionIntegerFeasible
            return prob.status

    monkeypatch.setattr(cbc, "cbc_solver", lambda **kw: StoppedCBC())
    lm = linear.LinearModel("t")
    x, y = lm.binary("x"), lm.binary("y")
    lm.add_le([(x, 1), (y, 1)], 1)
    lm.minimize([(x, -1), (y, -1)])
    sol = linear.solve_linear(lm, "cbc", time_limit=5)
    assert sol.status == "unknown" and sol.values is None and sol.objective is None
    assert "rows broken" in sol.stats["rejected_solution"]


def test_cbc_kill_timer_spares_the_next_cbc_process(monkeypatch):
    """A deadline timer that fires as CBC returns kills nothing: the run's next CBC process (a lazy model's
    next round) would be killed instead, and its solve fail as a bug (seen once under load in test_docs)."""
    from memopt.backends import cbc, linear

    timers, kills = [], []

    class HeldTimer:  # the timer, held: the test fires it after the solve, as a late thread would
        daemon = False

        def __init__(self, seconds, fn, args=()):
            timers.append((fn, args))

        def start(self):
            pass

        def cancel(self):
            pass

    monkeypatch.setattr(cbc.threading, "Timer", HeldTimer)
    monkeypatch.setattr(cbc, "kill_children", lambda **kw: kills.append(1))
    m = LinearModel("late")
    x, y = m.binary("x"), m.binary("y")
    m.add_le([(x, 1), (y, 1)], 1)
    m.minimize([(x, -1), (y, -2)])
    sol = linear.solve_linear(m, "cbc", time_limit=5)
    assert sol.status == "optimal" and sol.objective == -2
    assert len(timers) == 1
    fn, args = timers[0]
    fn(*args)
    assert kills == []


def test_a_killed_cbc_leaves_no_file_behind(tmp_path, monkeypatch):
    """CBC stopped mid-solve (Ctrl-C, the deadline's kill): PuLP's model, warm start and log files are
    removed with the solve's own directory (a killed CBC used to leave its .mps and .mst in /tmp)."""
    import random
    import tempfile
    import threading

    from memopt.backends import linear
    from memopt.core.deadline import Deadline, StopSignal

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))   # where PuLP writes its files
    rng = random.Random(3)
    m = LinearModel("market split")  # hard for branch and bound: CBC is still searching when it is stopped
    xs = [m.binary(f"x{i}") for i in range(40)]
    for _ in range(4):
        a = [rng.randrange(100) for _ in xs]
        m.add_le(list(zip(xs, a)), sum(a) // 2)
        m.add_ge(list(zip(xs, a)), sum(a) // 2)
    m.minimize([(x, 1) for x in xs])
    m.set_hint(dict.fromkeys(range(len(xs)), 0.0))
    stop = StopSignal()
    timer = threading.Timer(1.0, stop.set, args=("test",))
    timer.start()
    try:
        sol = linear.solve_linear(m, "cbc", deadline=Deadline(60, stop=stop), threads=1)
    finally:
        timer.cancel()
    assert sol.stats["killed"] == "stopped"
    assert list(tmp_path.iterdir()) == []
