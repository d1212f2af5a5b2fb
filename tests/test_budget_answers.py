"""Answers a user can act on: infeasible budgets with their reason, bandwidth errors, ratio budgets end to end."""

import math

import pytest
from brute_budget import brute_time
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import MemoptError, from_tensors, load_plan, solve
from memopt.cli import main
from memopt.core.bounds import end_bound, peak_lower_bound
from memopt.core.evaluate import evaluate
from memopt.core.instance import Task
from memopt.exact.peak_bounds import budget_lower_bound, retention_bound
from memopt.heuristics.orders import best_baseline
from memopt.pipeline import parse_budget

FLAGS = [(True, False), (False, True), (True, True), (False, False)]


@settings(max_examples=80)
@given(instances(max_tasks=4, no_recompute=True, max_size=5), st.sampled_from(FLAGS))
def test_budget_bounds_are_valid(inst, flags):
    """No plan of any kind exists below the bound (brute force over every SPEC plan)."""
    assume(inst.m <= 5)
    inst = inst.with_machine(bandwidth=1)
    rc, off = flags
    lb, why = budget_lower_bound(inst, recompute=rc, offload=off)
    assert lb >= peak_lower_bound(inst, offload=off)[0] and why
    if lb > 0:
        assert brute_time(inst, lb - 1, recompute=rc, offload=off) is None, why


def test_end_bound_beats_the_simple_bounds():
    # two results of 5 each; the last compute also holds the input of whichever task runs last
    inst = from_tensors([("a", 1, 3, []), ("r1", 1, 5, ["a"]), ("r2", 1, 5, ["a"])])
    assert peak_lower_bound(inst)[0] == 10
    assert end_bound(inst, recompute=False)[0] == 13   # r1 or r2 last, with a (3) as input
    assert end_bound(inst, recompute=True)[0] == 13    # a may rerun last, but then holds its output (3)
    for rc in (False, True):
        assert brute_time(inst, 12, recompute=rc, offload=False) is None
        assert brute_time(inst, 13, recompute=rc, offload=False) is not None


def test_retention_bound_counts_data_that_cannot_come_back():
    # a cannot rerun; its output is read by d at the end, so it is resident while b and c run
    inst = from_tensors([("a", 1, 4, []), ("b", 1, 3, ["a"]), ("c", 1, 3, ["b"]), ("d", 1, 1, ["a", "c"])])
    inst = inst.replace(tasks=[Task(t.id, t.time, t.workspace, t.id != "a") for t in inst.tasks])
    lb, why = retention_bound(inst, recompute=True)
    assert lb == 10 and "cannot rerun" in why     # at c: a (4) + b (3) + c (3)
    assert brute_time(inst, 9, recompute=True, offload=False) is None
    assert brute_time(inst, 10, recompute=True, offload=False) is not None


def test_infeasible_budget_gets_the_reason():
    inst = from_tensors([("a", 1, 3, []), ("r1", 1, 5, ["a"]), ("r2", 1, 5, ["a"])])
    r = solve(inst, "time", "planner", budget=12)
    assert r.status == "infeasible" and r.plan is None
    assert "below the lower bound 13" in r.message and "results" in r.message
    assert solve(inst, "time", "planner", budget=12, recompute=True).status == "infeasible"
    r = solve(inst.with_machine(bandwidth=1), "time", "planner", budget=12, offload=True)
    assert r.status in ("feasible", "optimal") and r.peak <= 12  # a result may wait in slow memory


def test_offloading_without_bandwidth_is_an_input_error(tmp_path, capsys):
    inst = from_tensors([("a", 1, 3, []), ("b", 1, 1, ["a"])])
    with pytest.raises(MemoptError, match="bandwidth"):
        solve(inst, "time", "planner", budget=4, offload=True)
    p = tmp_path / "nobw.yaml"
    p.write_text("tasks:\n  - {id: a, time: 1, size: 3}\n  - {id: b, time: 1, size: 1, inputs: [a]}\n")
    assert main(["solve", str(p), "--objective", "time", "--budget", "4", "--offload", "-m", "planner"]) == 2
    err = capsys.readouterr().err
    assert "bandwidth" in err and "Traceback" not in err


RATIO = """name: ratio
tasks:
  - {id: a, time: 2, size: 4}
  - {id: b, time: 2, size: 2, inputs: [a]}
  - {id: c, time: 2, size: 1, inputs: [b]}
  - {id: d, time: 2, size: 1, inputs: [c]}
  - {id: e, time: 1, size: 1, inputs: [a, d]}
"""


def test_ratio_budget_end_to_end(tmp_path, capsys):
    p = tmp_path / "ratio.yaml"
    p.write_text(RATIO)
    out = tmp_path / "plan.yaml"
    assert main(["solve", str(p), "--objective", "time", "--budget", "0.9x", "--recompute",
                 "-m", "planner", "-o", str(out)]) == 0
    line = capsys.readouterr().out
    assert "feasible" in line or "optimal" in line
    from memopt import load_instance

    inst = load_instance(str(p))
    peak = best_baseline(inst)[1]
    assert peak == 7 and parse_budget("0.9x", inst) == math.ceil(0.9 * 7) == 7
    res = load_plan(str(out))
    plan = res.plan if hasattr(res, "plan") else res
    assert evaluate(inst, plan, budget=7).valid
    # 0.8x = 6: the skip connection a -> e needs a recomputation
    assert main(["solve", str(p), "--objective", "time", "--budget", "0.8x", "--recompute",
                 "-m", "planner", "-o", str(out)]) == 0
    plan = load_plan(str(out))
    plan = plan.plan if hasattr(plan, "plan") else plan
    ev = evaluate(inst, plan, budget=6)
    assert ev.valid and ev.recomputes >= 1
    # far below the footprint of e: infeasible with its reason, exit 3 (an answer, not an error)
    assert main(["solve", str(p), "--objective", "time", "--budget", "0.5x", "--recompute", "-m", "planner"]) == 3
    assert "infeasible" in capsys.readouterr().out
    assert main(["solve", str(p), "--objective", "time", "--budget", "0.8", "-m", "planner"]) == 2
    assert "ratio" in capsys.readouterr().err
