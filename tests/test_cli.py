"""The command line: every command runs, user mistakes exit 2 with one message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from memopt import evaluate, load_instance, load_plan
from memopt.cli import build_parser, main

TINY = """name: tiny
machine: {budget: 100, bandwidth: 4}
tasks:
  - {id: a, time: 3, size: 10}
  - {id: b, time: 2, size: 4, inputs: [a]}
  - {id: c, time: 5, size: 1, inputs: [a, b], workspace: 2, recompute: false}
"""


@pytest.fixture
def tiny(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY)
    return p


def test_info(tiny, capsys):
    assert main(["info", str(tiny)]) == 0
    out = capsys.readouterr().out
    for key in ("tasks", "data", "edges", "total time", "lower bound", "peak (greedy order)"):
        assert key in out
    assert "lower bound        17" in out or "17" in out


def test_solve_writes_the_plan_and_it_evaluates(tiny, tmp_path, capsys):
    out = tmp_path / "plan.yaml"
    assert main(["solve", str(tiny), "-o", str(out), "--method", "greedy"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("tiny | greedy | peak | optimal | value 17 | bound 17")
    plan = load_plan(out)
    assert evaluate(load_instance(tiny), plan).peak == 17
    assert main(["evaluate", str(tiny), str(out)]) == 0
    assert "valid       yes" in capsys.readouterr().out


def test_solve_time_objective_with_ratio_budget(tiny, capsys):
    assert main(["solve", str(tiny), "--objective", "time", "--budget", "1x", "--method", "baseline"]) == 0
    assert "| time | optimal | value 10 (overhead 0.00%) | bound 10" in capsys.readouterr().out


def test_evaluate_rejects_a_broken_plan_naming_rule_and_stage(tiny, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n- [{compute: a}]\n- [{compute: c}]\n")
    assert main(["evaluate", str(tiny), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "valid       no" in out
    assert "stage 2, event 1: compute 'c': input(s) 'b' not in fast memory [input-not-resident]" in out


def test_evaluate_pure_flag_and_memory_listing(tiny, tmp_path, capsys):
    p = tmp_path / "p.yaml"
    p.write_text("stages:\n- [{compute: a}]\n- [{compute: a}]\n- [{compute: b}]\n- [{compute: c}]\n")
    assert main(["evaluate", str(tiny), str(p)]) == 0
    assert main(["evaluate", str(tiny), str(p), "--pure"]) == 1
    assert "recompute-disabled" in capsys.readouterr().out
    assert main(["evaluate", str(tiny), str(p), "--memory"]) == 0
    assert "compute a" in capsys.readouterr().out


@pytest.mark.parametrize("argv,msg", [
    (["info", "missing.yaml"], "missing.yaml: no such file"),
    (["solve", "{tiny}", "--method", "nope"], "unknown method 'nope'"),
    (["solve", "{tiny}", "--objective", "time", "--budget", "abc"], "--budget: expected a size like 1000"),
    (["solve", "{tiny}", "--objective", "time", "--budget", "3"], "status"),
    (["solve", "{tiny}", "--time-limit", "-1"], "expected seconds > 0, or 0/none for no limit"),
    (["evaluate", "{tiny}", "{tiny}"], "'stages' list"),
    (["solve"], "give an INSTANCE"),
])
def test_user_mistakes_exit_2_with_one_line(tiny, capsys, argv, msg):
    argv = [a.replace("{tiny}", str(tiny)) for a in argv]
    code = main(argv)
    cap = capsys.readouterr()
    if msg == "status":  # a budget below the lower bound is an answer (exit 3: proven infeasible), not an error
        assert code == 3 and "infeasible" in cap.out and "below the lower bound 17" in cap.out
        return
    assert code == 2
    assert msg in cap.err and "Traceback" not in cap.err
    assert cap.err.startswith("memopt: error: ")


def test_bad_instance_lists_every_problem(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("tasks:\n  - {id: a, size: -1}\n  - {id: b, inputs: [zz]}\n")
    assert main(["info", str(p)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: task 'a': size must be >= 0" in err
    assert "bad.yaml: task 'b': input 'zz' is not a known datum or task (unknown id)" in err


def test_every_command_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert {"info", "solve", "evaluate"} <= set(sub.choices)
    for name in sub.choices:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert "usage: memopt " + name in capsys.readouterr().out


def test_list_methods(capsys):
    assert main(["solve", "--list-methods"]) == 0
    out = capsys.readouterr().out
    for name in ("given", "dfs", "rpo", "greedy", "baseline", "auto"):
        assert name in out


def test_console_script_module_entry(tiny):
    r = subprocess.run([sys.executable, "-m", "memopt", "info", str(tiny)], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and "tasks" in r.stdout
