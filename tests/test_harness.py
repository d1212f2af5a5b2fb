"""The benchmark harness (memopt.bench.harness, memopt.bench.isolate): typed resumable tables, isolated runs."""

from __future__ import annotations

import csv
import io
import os
import sys
import textwrap

import pytest

from memopt import load_instance
from memopt.bench.harness import (
    Case,
    IsolatedExecutor,
    ResultsCSV,
    Schema,
    run_cases,
    solve_case,
)
from memopt.bench.isolate import Call, call_isolated, rss_launcher, spawn_measured

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "..", "instances", "tiny.yaml")
SCHEMA = Schema.of("instance method tasks:int ratio:float ok:bool value:num status message")


def test_table_is_typed_keyed_and_resumable(tmp_path):
    path = str(tmp_path / "t.csv")
    t = ResultsCSV(path, SCHEMA, ("instance", "method"))
    t.put({"instance": "a", "method": "m", "tasks": 3, "ratio": 0.9, "ok": True, "value": 17, "status": "optimal"})
    t.put({"instance": "b", "method": "m", "tasks": 4, "ratio": 0.8, "ok": False, "value": 2.5, "message": "x\ny"})
    t.put({"instance": "a", "method": "m", "tasks": 3, "ratio": 0.9, "ok": True, "value": 16, "status": "optimal"})
    back = ResultsCSV(path, SCHEMA, ("instance", "method"))
    assert len(back.rows) == 2  # the second "a" replaced the first
    a = back.get(("a", "m"))
    assert a["value"] == 16 and a["tasks"] == 3 and a["ratio"] == 0.9 and a["ok"] is True
    b = back.get(("b", "m"))
    assert b["value"] == 2.5 and b["ok"] is False and b["status"] is None and b["message"] == "x y"
    assert ("a", "m") in back and ("c", "m") not in back


def test_old_table_keeps_its_rows_and_columns(tmp_path):
    path = tmp_path / "old.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["instance", "method", "value", "legacy"])
        w.writerow(["a", "m", "5", "kept"])
    t = ResultsCSV(str(path), SCHEMA, ("instance", "method"))
    t.put({"instance": "b", "method": "m", "value": 7, "wall_seconds": 1.5})
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["instance"] for r in rows] == ["a", "b"]
    assert rows[0]["legacy"] == "kept" and rows[1]["wall_seconds"] == "1.5" and rows[0]["wall_seconds"] == ""


def test_solve_cases_run_isolated_measured_and_resume(tmp_path):
    inst = load_instance(TINY)
    schema = Schema.of("instance method status value:num bound:num seconds:float message")
    table = ResultsCSV(str(tmp_path / "r.csv"), schema, ("instance", "method"))
    cases = [solve_case({"instance": "tiny", "method": m}, inst, "peak", m, time_limit=10)
             for m in ("baseline", "liu", "no-such-method")]
    rows = run_cases(cases, table, stream=io.StringIO())
    by = {r["method"]: r for r in rows}
    assert by["baseline"]["status"] == "optimal" and by["baseline"]["value"] == by["baseline"]["bound"]
    assert by["liu"]["status"] in ("optimal", "refused")
    assert by["no-such-method"]["status"] == "refused" and "unknown method" in by["no-such-method"]["message"]
    assert all(r["wall_seconds"] > 0 and r["max_rss_mb"] > 0 for r in rows)
    # resumed: nothing runs again (a case that would fail is taken from the table)
    broken = [Case({"instance": "tiny", "method": "baseline"}, Call("no.such.module:f"))]
    again = run_cases(broken, table, stream=io.StringIO())
    assert again[0]["status"] == "optimal"
    fresh = run_cases(broken, table, fresh=True, stream=io.StringIO())
    assert fresh[0]["status"] == "error" and "ModuleNotFoundError" in fresh[0]["message"]


def test_script_functions_run_by_file(tmp_path):
    script = tmp_path / "bench_x.py"
    script.write_text(textwrap.dedent("""
        import sys
        from memopt import MemoptError

        def double(x):
            return {"value": 2 * x}

        def refuse():
            raise MemoptError("no")

        if __name__ == "__main__":
            sys.exit("must not run")
    """))
    out = call_isolated(Call(f"{script}:double", {"x": 21}))
    assert out.error is None and out.value == {"value": 42}
    bad = call_isolated(Call(f"{script}:refuse"))
    assert bad.error == "no" and bad.user_error


def test_a_run_past_its_margin_is_killed_and_measured():
    run = spawn_measured([sys.executable, "-c", "import time; x = bytearray(50 * 2**20); time.sleep(30)"],
                         kill_after=1.5)
    assert run.killed and run.returncode == -9 and run.wall < 10
    if rss_launcher():
        assert run.max_rss is not None and run.max_rss > 50 * 2**20


@pytest.mark.skipif(rss_launcher() is None, reason="needs GNU time")
def test_a_child_does_not_inherit_this_process_memory():
    ballast = bytearray(300 * 2**20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    run = spawn_measured([sys.executable, "-c", "pass"])
    assert run.returncode == 0 and run.max_rss < 100 * 2**20


def test_isolated_executor_runs_a_grid(tmp_path):
    from memopt.bench import BenchSpec, run_bench

    ex = IsolatedExecutor(1)
    spec = BenchSpec([TINY], objective="peak", budgets=["none"], methods=["baseline", "dfs"], time_limit=10)
    s = run_bench(spec, str(tmp_path / "g.csv"), executor=ex, progress=False)
    assert s.ran == 2 and s.statuses == {"optimal": 2}
    assert len(ex.measured) == 2 and all(o.max_rss for o in ex.measured.values())


def test_a_runs_memory_counts_its_helper_processes():
    """GNU time keeps the largest process of a tree, not the sum: the run's own sampled sum wins when larger."""
    from types import SimpleNamespace

    from memopt.bench.isolate import tree_rss

    assert tree_rss(100, {"peak_memory": 300}) == 300 and tree_rss(100, {"peak_memory": 50}) == 100
    assert tree_rss(100, {"peak_memory": None}) == 100 and tree_rss(None, {}) is None
    assert tree_rss(None, SimpleNamespace(statistics=SimpleNamespace(peak_memory=7))) == 7
    assert tree_rss(100, "a value") == 100
