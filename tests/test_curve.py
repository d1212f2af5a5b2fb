"""The trade-off curve: monotone, every plan passes the evaluator at its budget, bounds below values and the
brute-force optimum, infeasible exactly where proven; the budget grid; the command."""

from __future__ import annotations

import csv
from fractions import Fraction

import pytest
from brute_budget import brute_time
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import from_tensors
from memopt.bench.curve import budget_grid, trade_off_curve
from memopt.cli import main
from memopt.core.request import Request
from memopt.core.status import Objective


def check_curve(inst, curve, recompute, offload):
    """The properties every curve has, whatever the method found."""
    pts = sorted(curve.points, key=lambda p: p.budget)
    assert [p.budget for p in curve.points] == sorted((p.budget for p in pts), reverse=True)
    last = None
    for p in pts:
        if p.plan is not None:
            ev = Request(inst, Objective.TIME, p.budget, None, recompute, offload).evaluate(p.plan)
            assert ev.valid, (p.label, ev.violation)
            assert ev.makespan == p.makespan and ev.peak == p.peak <= p.budget
            assert p.status in ("optimal", "feasible")
            assert p.bound is not None and p.bound <= p.makespan
            assert (p.status == "optimal") == (p.makespan == p.bound)
            if last is not None:
                assert p.makespan <= last  # overhead never increases with the budget
            last = p.makespan
        else:
            assert last is None, f"{p.label}: no plan although a smaller budget has one"
            assert p.status in ("infeasible", "unknown")
        if p.budget < curve.lower_bound:
            assert p.status == "infeasible"
    bounds = [p.bound for p in pts if p.bound is not None]
    assert bounds == sorted(bounds, reverse=True)  # a bound at M holds below M


@settings(max_examples=12, deadline=None)
@given(instances(max_tasks=4, max_size=5, no_recompute=True), st.sampled_from([(True, False), (False, True),
                                                                              (True, True), (False, False)]))
def test_curve_against_brute_force(inst, flags):
    assume(inst.m <= 5 and inst.n >= 2)
    recompute, offload = flags
    inst = inst.with_machine(bandwidth=1)
    curve = trade_off_curve(inst, ["1.0x", "0.8x", "auto"], recompute=recompute, offload=offload, time_limit=5,
                            step="0.2", threads=1)
    check_curve(inst, curve, recompute, offload)
    for p in curve.points:
        best = brute_time(inst, p.budget, recompute=recompute, offload=offload)
        if best is None:
            assert p.plan is None and p.status in ("infeasible", "unknown"), p.label
        else:
            assert p.status != "infeasible", p.label
            assert p.bound <= best[0]
            assert p.makespan is None or p.makespan >= best[0]


CHAIN = from_tensors([("a", 4, 3, []), ("b", 2, 3, ["a"]), ("c", 3, 2, ["b"]), ("d", 1, 2, ["c", "a"]),
                      ("e", 2, 1, ["d", "b"])])


def test_curve_on_a_small_graph_reaches_down_to_the_bound():
    curve = trade_off_curve(CHAIN, ["1.0x", "0.9x", "auto"], recompute=True, time_limit=10, threads=1)
    check_curve(CHAIN, curve, True, False)
    assert curve.points[0].label == "1.0x" and curve.points[0].status == "optimal"
    assert curve.points[0].overhead == 0
    assert curve.points[-1].label == "bound" and curve.points[-1].budget == curve.lower_bound
    # the whole grid between: steps of 0.1 of the base peak, above the bound
    assert all(p.budget > curve.lower_bound for p in curve.points[:-1])
    # a budget below the proven bound is infeasible without a run
    below = trade_off_curve(CHAIN, [str(curve.lower_bound - 1), "1.0x"], recompute=True, time_limit=5, threads=1)
    assert below.points[-1].status == "infeasible" and below.points[-1].seconds == 0


def test_a_plan_without_overhead_answers_every_larger_budget():
    curve = trade_off_curve(CHAIN, ["1.2x", "1.1x", "1.0x"], recompute=True, time_limit=5, threads=1)
    assert [p.status for p in curve.points] == ["optimal"] * 3
    assert {p.source for p in curve.points} == {"1.0x"}  # one run: the smallest budget's plan serves the others


def test_budget_grid():
    assert budget_grid(["1.0x", "0.9x", "auto"], 100, 65) == [
        ("1.0x", 100), ("0.9x", 90), ("0.8x", 80), ("0.7x", 70), ("bound", 65)]
    assert budget_grid(["1.0x", "auto"], 100, 71, Fraction(1, 4)) == [("1.0x", 100), ("0.75x", 75), ("bound", 71)]
    assert budget_grid(["auto"], 10, 7) == [("1x", 10), ("0.9x", 9), ("0.8x", 8), ("bound", 7)]
    assert budget_grid(["100", "1.0x", "0.95x"], 100, 1) == [("100", 100), ("0.95x", 95)]  # one point per budget


def test_total_time_is_shared():
    curve = trade_off_curve(CHAIN, ["1.0x", "0.9x", "0.8x"], recompute=True, time_limit=None, total_time=6,
                            threads=1)
    assert sum(p.seconds for p in curve.points) <= 6 + 3
    check_curve(CHAIN, curve, True, False)


def test_command_writes_csv_markdown_and_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "g.yaml"
    path.write_text("tasks:\n  - {id: a, time: 4, size: 3}\n  - {id: b, time: 2, size: 3, inputs: [a]}\n"
                    "  - {id: c, time: 3, size: 2, inputs: [b]}\n  - {id: d, time: 1, size: 2, inputs: [c, a]}\n")
    out, md, fig = tmp_path / "c.csv", tmp_path / "c.md", tmp_path / "c.png"
    rc = main(["curve", str(path), "--budgets", "1.0x,0.9x,auto", "--recompute", "-t", "5", "--threads", "1",
               "-o", str(out), "--md", str(md), "--plot", str(fig), "-q"])
    assert rc == 0
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["label"] == "1.0x" and rows[0]["status"] == "optimal" and rows[-1]["label"] == "bound"
    assert "| budget |" in md.read_text() and fig.stat().st_size > 0
    assert "Trade-off curve" in capsys.readouterr().out


@pytest.mark.parametrize("argv, what", [
    (["--budgets", "0.9y"], "budget"),
    (["--budgets", "1.0x", "-o", "x.txt"], ".csv"),
    (["--budgets", "1.0x", "--offload"], "bandwidth"),
])
def test_command_mistakes_are_one_line(tmp_path, capsys, argv, what):
    path = tmp_path / "g.yaml"
    path.write_text("tasks:\n  - {id: a, time: 4, size: 3}\n  - {id: b, time: 2, size: 3, inputs: [a]}\n")
    assert main(["curve", str(path), *argv]) == 2
    err = capsys.readouterr().err
    assert what in err and "Traceback" not in err
