"""memopt bench: the grid, the CSV, resuming, the evaluator re-check, the executors."""

from __future__ import annotations

import csv
import os

import pytest
from hypothesis import given, settings
from strategies import instances

import memopt
from memopt import CATALOG, Datum, Instance, Machine, Plan, Task, methods
from memopt.bench import (
    COLUMNS,
    BenchSpec,
    LocalExecutor,
    SerialExecutor,
    build_grid,
    pool_size,
    read_rows,
    run_bench,
    run_job,
)
from memopt.bench.table import ResultsTable, make_row, recheck
from memopt.bench.worker import Outcome
from memopt.cli import main
from memopt.core.errors import MemoptError
from memopt.pipeline import make_request

methods_for = CATALOG.for_request

HERE = os.path.dirname(__file__)
TINY = os.path.join(os.path.dirname(HERE), "instances", "tiny.yaml")
PLUGIN = ("bench_plugin",)


@pytest.fixture(autouse=True)
def _plugin_allowed(monkeypatch):
    """The methods of bench_plugin (imported only by worker processes) work in these tests only."""
    monkeypatch.setenv("MEMOPT_TEST_PLUGIN", "1")


def chain(n: int = 6, size: int = 5) -> Instance:
    """a chain with a skip connection: t0 is read by every later task."""
    tasks = [Task(f"t{i}", time=1 + i % 3) for i in range(n)]
    data = [Datum(f"t{i}", f"t{i}", tuple(f"t{j}" for j in range(i + 1, n) if j == i + 1 or i == 0), size + i)
            for i in range(n)]
    return Instance(tasks, data, Machine(budget=1000, bandwidth=2.0), name="chain")


@pytest.fixture
def two(tmp_path):
    """Two instance files: the shipped tiny example and a small chain."""
    path = str(tmp_path / "chain.yaml")
    memopt.save_instance(chain(), path)
    return [TINY, path]


def spec_for(files, **kw) -> BenchSpec:
    kw.setdefault("methods", ["given", "greedy"])
    return BenchSpec(list(files), **kw)


# ------------------------------------------------------------------- grid
def test_default_methods_are_the_registry_s(two):
    spec = BenchSpec(two, objective="time", budgets=["1x", "0.9x"])
    insts = {p: memopt.load_instance(p) for p in two}
    jobs, _ = build_grid(spec, insts, "plans")
    for p in two:
        for b in ("1x", "0.9x"):
            req = make_request(insts[p], "time", budget=b)
            assert sorted(j.method for j in jobs if j.instance_file == p and j.budget == b) == methods_for(req)
    assert "auto" not in {j.method for j in jobs}  # composites are not a formulation of their own


def test_grid_is_instances_x_budgets_x_methods_x_repeats(two):
    spec = spec_for(two, objective="time", budgets=["1x", "0.9x", "500"], repeat=2)
    jobs, _ = build_grid(spec, {p: memopt.load_instance(p) for p in two}, "plans")
    assert len(jobs) == 2 * 3 * 2 * 2
    assert len({j.key for j in jobs}) == len(jobs)
    assert len({j.plan_file for j in jobs}) == len(jobs)
    again, _ = build_grid(spec_for(two + two[:1], objective="time", budgets=["1x", "0.9x", "500", "1x"], repeat=2,
                                   methods=["given", "greedy", "given"]),
                          {p: memopt.load_instance(p) for p in two}, "plans")
    assert [j.key for j in again] == [j.key for j in jobs]  # a name given twice runs once
    ref = memopt.solve(memopt.load_instance(TINY), "peak", "baseline").value
    assert {j.budget_value for j in jobs if j.instance_file == TINY} == {ref, int(0.9 * ref + 0.999), 500}


# -------------------------------------------------------------------- CSV
def test_csv_columns_and_plans(tmp_path, two):
    out = str(tmp_path / "res" / "grid.csv")
    s = run_bench(spec_for(two, objective="time", budgets=["1x", "0.9x"]), out, executor=SerialExecutor(),
                  progress=False)
    assert s.ran == s.total == 8 and s.errors == 0
    with open(out, newline="") as f:
        assert tuple(next(csv.reader(f))) == COLUMNS
    rows = read_rows(out)
    assert len(rows) == 8
    for r in rows:
        assert r["tasks"] == str(memopt.load_instance(r["instance_file"]).n)
        if r["status"] in ("optimal", "feasible"):
            # the recorded plan file replays to the recorded numbers
            inst = memopt.load_instance(r["instance_file"])
            ev = memopt.evaluate(inst, memopt.load_plan(r["plan"]), budget=int(r["budget_value"]),
                                 allow_recompute=False, allow_offload=False)
            assert ev.valid
            assert (str(ev.makespan), str(ev.peak)) == (r["value"], r["peak"]) == (r["makespan"], r["peak"])
            assert r["plan"].startswith(str(tmp_path / "res" / "grid" / "plans"))
            assert float(r["seconds"]) >= 0 and r["first_plan_seconds"] != ""
            assert float(r["gap"]) >= 0 and float(r["bound"]) <= float(r["value"])
        else:
            assert r["plan"] == "" and r["value"] == ""
    # 0.9x of the best baseline is below every pure schedule's peak on tiny: no plan there
    assert {r["status"] for r in rows if r["instance"] == "tiny" and r["budget"] == "0.9x"} <= {"infeasible", "unknown"}


def test_errors_become_rows_not_crashes(tmp_path, two):
    out = str(tmp_path / "e.csv")
    # the chain has no budget of its own... it has; tiny's machine has a budget; an unknown method fails per run
    s = run_bench(spec_for(two, methods=["given", "no-such-method"]), out, executor=SerialExecutor(),
                  progress=False)
    rows = read_rows(out)
    bad = [r for r in rows if r["method"] == "no-such-method"]
    assert len(bad) == 2 and all(r["status"] == "error" and "unknown method" in r["message"] for r in bad)
    assert all(r["status"] != "error" for r in rows if r["method"] == "given")
    assert s.errors == 2


def test_a_request_that_cannot_be_made_is_an_error_row(tmp_path):
    path = str(tmp_path / "nobudget.yaml")
    memopt.save_instance(chain().with_machine(budget=None, bandwidth=None), path)
    out = str(tmp_path / "x.csv")
    run_bench(BenchSpec([path], objective="time"), out, executor=SerialExecutor(), progress=False)
    (row,) = read_rows(out)
    assert row["status"] == "error" and "needs a budget" in row["message"] and row["method"] == "*"


# ----------------------------------------------------------------- resume
def test_resume_skips_done_runs(tmp_path, two):
    out = str(tmp_path / "r.csv")
    spec = spec_for(two, objective="time", budgets=["1x"])
    first = run_bench(spec, out, executor=SerialExecutor(), progress=False)
    assert first.ran == 4
    again = run_bench(spec_for(two, objective="time", budgets=["1x"]), out, executor=SerialExecutor(),
                      progress=False)
    assert again.ran == 0 and again.skipped == 4
    more = run_bench(spec_for(two, objective="time", budgets=["1x", "0.8x"], methods=["given", "greedy", "dfs"]),
                     out, executor=SerialExecutor(), progress=False)
    assert more.ran == 2 * 2 * 3 - 4 and more.skipped == 4
    rows = read_rows(out)
    assert len(rows) == 12 and len({(r["instance_file"], r["method"], r["budget"]) for r in rows}) == 12


def test_resume_runs_a_changed_instance_again(tmp_path, two, capsys):
    out = str(tmp_path / "r.csv")
    run_bench(spec_for(two), out, executor=SerialExecutor(), progress=False)
    before = {r["instance_file"]: r["instance_hash"] for r in read_rows(out)}
    memopt.save_instance(chain(7), two[1])  # the chain's file now holds another graph
    assert main(["bench", *two, "--methods", "given,greedy", "--out", out, "--dry-run"]) == 0
    assert "2 run(s) to do, 2 already in" in capsys.readouterr().out
    s = run_bench(spec_for(two), out, executor=SerialExecutor(), progress=False)
    assert s.ran == 2 and s.skipped == 2 and any("changed" in n for n in s.notes)
    rows = read_rows(out)
    assert len(rows) == 4
    after = {r["instance_file"]: r["instance_hash"] for r in rows}
    assert after[two[0]] == before[two[0]] and after[two[1]] != before[two[1]]
    assert {r["tasks"] for r in rows if r["instance_file"] == two[1]} == {"7"}


def test_resume_after_an_interrupted_write(tmp_path, two):
    out = str(tmp_path / "r.csv")
    run_bench(spec_for(two), out, executor=SerialExecutor(), progress=False)
    with open(out, "rb+") as f:  # a write cut in the middle of the last row
        data = f.read()
        f.truncate(len(data) - 7)
    s = run_bench(spec_for(two), out, executor=SerialExecutor(), progress=False)
    assert s.ran == 1 and len(read_rows(out)) == 4


def test_retry_errors_runs_only_the_error_rows_again(tmp_path, two):
    out = str(tmp_path / "r.csv")
    run_bench(spec_for(two, methods=["given", "nope"]), out, executor=SerialExecutor(), progress=False)
    s = run_bench(spec_for(two, methods=["given", "nope"]), out, executor=SerialExecutor(), progress=False,
                  retry_errors=True)
    assert s.ran == 2 and s.skipped == 2
    rows = read_rows(out)
    assert len(rows) == 4 and sum(r["status"] == "error" for r in rows) == 2


def test_resume_refuses_another_time_limit(tmp_path, two):
    out = str(tmp_path / "r.csv")
    run_bench(spec_for(two, time_limit=5), out, executor=SerialExecutor(), progress=False)
    with pytest.raises(MemoptError, match="--time-limit"):
        run_bench(spec_for(two, time_limit=10), out, executor=SerialExecutor(), progress=False)


def test_a_foreign_csv_is_refused(tmp_path, two):
    out = tmp_path / "other.csv"
    out.write_text("a,b\n1,2\n")
    with pytest.raises(MemoptError, match="not a memopt results table"):
        run_bench(spec_for(two), str(out), executor=SerialExecutor(), progress=False)


# ---------------------------------------------------------------- recheck
def _job_and_result(tmp_path, budget=None):
    inst = memopt.load_instance(TINY)
    spec = spec_for([TINY], methods=["given"], budgets=[str(budget)] if budget else [])
    (job,) = build_grid(spec, {TINY: inst}, str(tmp_path / "plans"))[0]
    return job, run_job(job)


def test_recheck_passes_an_honest_row(tmp_path):
    job, out = _job_and_result(tmp_path)
    row = make_row(job, out)
    assert row["status"] == "optimal" and os.path.exists(row["plan"])


def test_recheck_marks_an_invalid_plan_as_error(tmp_path):
    job, out = _job_and_result(tmp_path)
    # a plan that never frees anything and computes c before b: input not resident
    out.result.plan = Plan([[("compute", "a")], [("compute", "c")], [("compute", "b")]])
    row = make_row(job, out)
    assert row["status"] == "error" and "re-check failed" in row["message"] and "input" in row["message"]
    assert row["plan"]  # the offending plan is kept for inspection


def test_recheck_marks_an_over_budget_plan_as_error(tmp_path):
    job, out = _job_and_result(tmp_path, budget=100)
    req = job.request.__class__(job.request.instance, "peak", 16)  # the same plan under a smaller budget
    job = job.__class__(**{**job.__dict__, "request": req})
    row = make_row(job, out)
    assert row["status"] == "error" and "budget" in row["message"]


def test_recheck_marks_a_misreported_value_as_error(tmp_path):
    job, out = _job_and_result(tmp_path)
    out.result.value = out.result.value - 1
    out.result.bound = out.result.value
    row = make_row(job, out)
    assert row["status"] == "error" and "the evaluator says" in row["message"]


def test_recheck_reads_the_saved_file(tmp_path):
    job, out = _job_and_result(tmp_path)
    out.result.save(job.plan_file)
    with open(job.plan_file) as f:
        text = f.read()
    with open(job.plan_file, "w") as f:  # what a user would get is broken: the re-check must see it
        f.write(text.replace("{compute: b}", "{compute: a}"))
    why, _ = recheck(job.request, out.result, job.plan_file)
    assert why is not None and "re-check failed" in why


def test_a_claimed_optimum_above_the_bound_is_an_error(tmp_path):
    job, out = _job_and_result(tmp_path)
    out.result.bound = out.result.value - 1  # optimal claimed, but not proven
    row = make_row(job, out)
    assert row["status"] == "error" and "optimal" in row["message"]


def test_error_outcome_row(tmp_path):
    job, _ = _job_and_result(tmp_path)
    row = make_row(job, Outcome(error="solver exploded"))
    assert row["status"] == "error" and row["message"] == "solver exploded" and row["plan"] == ""


@settings(max_examples=25)
@given(instances(max_tasks=6))
def test_rows_agree_with_the_evaluator_on_random_instances(tmp_path_factory, inst):
    tmp = tmp_path_factory.mktemp("rand")
    path = str(tmp / "i.yaml")
    memopt.save_instance(inst, path)
    out = str(tmp / "r.csv")
    run_bench(BenchSpec([path], methods=["greedy", "baseline"]), out, executor=SerialExecutor(), progress=False)
    for r in read_rows(out):
        assert r["status"] in ("optimal", "feasible")
        ev = memopt.evaluate(inst, memopt.load_plan(r["plan"]), allow_recompute=False, allow_offload=False)
        assert ev.valid and str(ev.peak) == r["value"]
        assert float(r["bound"]) <= ev.peak


# -------------------------------------------------------------- executors
def test_pool_size_keeps_workers_times_threads_within_cores():
    assert pool_size(1, cores=2) == 2
    assert pool_size(2, cores=2) == 1
    assert pool_size(4, cores=2) == 1  # never zero
    assert pool_size(3, cores=8) == 2
    assert pool_size(2, jobs=3, cores=2) == 3  # an explicit --jobs wins
    with pytest.raises(MemoptError):
        pool_size(1, jobs=0)


def _probe_jobs(tmp_path, files, threads=2, **kw):
    spec = spec_for(files, methods=["test-probe"], imports=PLUGIN, threads=threads, repeat=2, **kw)
    return build_grid(spec, {p: memopt.load_instance(p) for p in files}, str(tmp_path / "plans"))[0]


def test_local_executor_runs_each_job_in_a_child_with_its_threads(tmp_path, two):
    jobs = _probe_jobs(tmp_path, two, threads=2)
    got = list(LocalExecutor(2).run(jobs))
    assert sorted(j.key for j, _ in got) == sorted(j.key for j in jobs)
    for job, out in got:
        assert out.error is None, out.error
        st = out.result.stats
        assert st["pid"] != os.getpid() and st["threads"] == 2 and st["seed"] == job.repeat
    assert "test-probe" not in methods()  # the plugin stayed in the children


def test_local_executor_gives_the_same_rows_as_serial(tmp_path, two):
    spec = dict(objective="time", budgets=["1x", "0.9x"], methods=["given", "greedy", "rpo"])
    a = run_bench(spec_for(two, **spec), str(tmp_path / "a.csv"), executor=SerialExecutor(), progress=False)
    b = run_bench(spec_for(two, **spec), str(tmp_path / "b.csv"), executor=LocalExecutor(2), progress=False)
    strip = ("seconds", "first_plan_seconds", "plan", "peak_memory")  # measurements
    key = lambda r: (r["instance_file"], r["method"], r["budget"])  # noqa: E731
    ra = sorted(({k: v for k, v in r.items() if k not in strip} for r in read_rows(a.path)), key=key)
    rb = sorted(({k: v for k, v in r.items() if k not in strip} for r in read_rows(b.path)), key=key)
    assert ra == rb and len(ra) == 12


def test_local_executor_kills_a_stuck_run_and_keeps_going(tmp_path):
    out = str(tmp_path / "k.csv")
    spec = BenchSpec([TINY], methods=["test-stuck", "test-crash", "test-probe"], imports=PLUGIN,
                     time_limit=0.2, kill_after=1.0)
    s = run_bench(spec, out, executor=LocalExecutor(2), progress=False)
    rows = {r["method"]: r for r in read_rows(out)}
    assert rows["test-stuck"]["status"] == "error" and "killed" in rows["test-stuck"]["message"]
    assert rows["test-crash"]["status"] == "error" and "ValueError: boom" in rows["test-crash"]["message"]
    assert rows["test-probe"]["status"] in ("optimal", "feasible")
    assert s.errors == 2


def test_dask_executor_on_a_local_cluster(tmp_path, two):
    distributed = pytest.importorskip(
        "distributed", reason="Dask distributed is not installed (optional extra: pip install 'memopt[cluster]')")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
                                  resources={"cores": 2}) as cluster:
        with distributed.Client(cluster) as client:
            _dask_runs(tmp_path, two, client)
        # the command line, given the scheduler's address (and no default client in this process)
        out = str(tmp_path / "cli.csv")
        assert main(["bench", TINY, "--methods", "given,greedy", "--executor", "dask", "--address",
                     cluster.scheduler_address, "--out", out, "--no-progress"]) == 0
        assert [r["status"] for r in read_rows(out)] == ["optimal", "optimal"]


def _dask_runs(tmp_path, two, client):
    """Runs on the cluster of ``client``: the same rows as serially, isolation, threads, errors."""
    from memopt.bench import DaskExecutor

    # in-process on the worker (no kill margin): the same rows as a serial run
    spec = dict(objective="time", budgets=["1x", "0.9x"], methods=["given", "greedy"])
    a = run_bench(spec_for(two, **spec), str(tmp_path / "a.csv"), executor=SerialExecutor(), progress=False)
    b = run_bench(spec_for(two, **spec), str(tmp_path / "b.csv"), executor=DaskExecutor(client=client),
                  progress=False)
    strip = ("seconds", "first_plan_seconds", "plan", "peak_memory")  # measurements
    key = lambda r: (r["instance_file"], r["method"], r["budget"])  # noqa: E731
    ra = sorted(({k: v for k, v in r.items() if k not in strip} for r in read_rows(a.path)), key=key)
    rb = sorted(({k: v for k, v in r.items() if k not in strip} for r in read_rows(b.path)), key=key)
    assert ra == rb and len(ra) == 8
    # with a kill margin each run is its own process on the worker; plans come back here
    jobs = _probe_jobs(tmp_path, [TINY], threads=2, time_limit=5)
    got = list(DaskExecutor(client=client).run(jobs))
    assert len(got) == 2
    for job, out in got:
        assert out.error is None, out.error
        assert out.result.stats["pid"] != os.getpid() and out.result.stats["threads"] == 2
        assert make_row(job, out)["status"] in ("optimal", "feasible")
    # runs wanting more threads than a worker's cores still run (capped), and a crash is a row
    # (isolated by the time limit: the plugin's methods must not enter this process's registry)
    jobs = build_grid(spec_for([TINY], methods=["test-probe", "test-crash"], imports=PLUGIN, threads=3,
                               time_limit=5), {TINY: memopt.load_instance(TINY)}, str(tmp_path / "p3"))[0]
    got = {j.method: o for j, o in DaskExecutor(client=client).run(jobs)}
    assert got["test-probe"].result.stats["threads"] == 3
    assert got["test-crash"].error.startswith("ValueError: boom (at bench_plugin.py:")
    assert "test-probe" not in methods()


def test_dask_executor_unreachable_scheduler_is_a_clear_error():
    pytest.importorskip("distributed",
                        reason="Dask distributed is not installed (optional extra: pip install 'memopt[cluster]')")
    from memopt.bench import DaskExecutor

    with pytest.raises(MemoptError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        list(DaskExecutor(address="tcp://127.0.0.1:9", timeout=1).run([]))


def test_dask_executor_needs_an_address():
    from memopt.bench import DaskExecutor

    with pytest.raises(MemoptError, match="--address"):
        DaskExecutor()


# -------------------------------------------------------------------- CLI
def test_cli_bench_then_rerun(tmp_path, two, capsys):
    out = str(tmp_path / "cli.csv")
    args = ["bench", *two, "--objective", "time", "--budgets", "1x,0.9x", "--methods", "given,greedy",
            "--out", out, "--no-progress", "--executor", "serial"]
    assert main(args) == 0
    assert "8 run(s)" in capsys.readouterr().out
    assert main(args) == 0
    assert "0 run(s): nothing; 8 already done" in capsys.readouterr().out
    assert main(args[:-2] + ["--dry-run", "--budgets", "1x,0.8x"]) == 0
    assert "4 run(s) to do, 4 already in" in capsys.readouterr().out


def test_cli_bench_reports_errors_in_its_exit_status(tmp_path, capsys):
    out = str(tmp_path / "cli.csv")
    assert main(["bench", TINY, "--methods", "given,nope", "--out", out, "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "1 error" in captured.out and "unknown method 'nope'" in captured.err


def test_cli_bench_bad_instance_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [{id: a, time: -1}]\n")
    assert main(["bench", str(bad), "--out", str(tmp_path / "x.csv"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("memopt: error:") and "bad.yaml" in err


def test_instances_with_the_same_file_name_keep_their_own_plans(tmp_path):
    paths = []
    for d in ("a", "b"):
        os.makedirs(tmp_path / d)
        paths.append(str(tmp_path / d / "model.yaml"))
        memopt.save_instance(chain(4 if d == "a" else 5), paths[-1])
    out = str(tmp_path / "same.csv")
    run_bench(spec_for(paths, methods=["given"]), out, executor=SerialExecutor(), progress=False)
    rows = read_rows(out)
    assert len({r["plan"] for r in rows}) == 2
    for r in rows:  # each plan replays on its own instance
        inst = memopt.load_instance(r["instance_file"])
        assert memopt.evaluate(inst, memopt.load_plan(r["plan"])).valid


def test_budget_none_drops_the_machine_budget(tmp_path):
    inst = memopt.load_instance(TINY).with_machine(budget=10)  # below every schedule's peak
    spec = BenchSpec([TINY], methods=["given"], budgets=["none", ""])
    jobs, _ = build_grid(spec, {TINY: inst}, str(tmp_path / "plans"))
    none, machine = jobs
    assert none.request.budget is None and none.budget_value is None
    assert none.request.instance.machine.budget is None  # else the evaluator would apply it
    assert machine.request.budget == inst.machine.budget == 10
    assert make_row(none, run_job(none))["status"] == "optimal"  # 17, with no budget in the way
    time_spec = BenchSpec([TINY], objective="time", methods=["given"], budgets=["none"])
    (bad,), _ = build_grid(time_spec, {TINY: inst}, str(tmp_path / "p"))
    assert bad.error and "needs a budget" in bad.error


def test_local_executor_with_threads_running_uses_a_safe_start_method(tmp_path):
    """fork is unsafe once threads exist (e.g. after a Dask client): the executor must still work."""
    import threading

    from memopt.bench.executors import _context

    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:
        assert _context().get_start_method() != "fork"
        jobs = _probe_jobs(tmp_path, [TINY], threads=1)
        got = list(LocalExecutor(2).run(jobs))
        assert len(got) == 2 and all(o.error is None and o.result.stats["pid"] != os.getpid() for _, o in got)
    finally:
        stop.set()
        t.join()


def test_fit_only_leaves_out_methods_that_refuse(tmp_path, two):
    # the core's refusal: a pure-only method on a recompute problem
    spec = spec_for(two, objective="time", recompute=True, budgets=["1x"], methods=["given", "greedy"])
    insts = {p: memopt.load_instance(p) for p in two}
    jobs, _ = build_grid(spec, insts, "plans")
    assert len(jobs) == 4  # refusals become error rows when not fit_only
    spec.fit_only = True
    fit = [m for m in ("given", "greedy") if methods()[m].recompute]
    jobs, notes = build_grid(spec, insts, "plans")
    assert sorted({j.method for j in jobs}) == fit
    if not fit:
        assert any("none of the given methods handles" in n for n in notes)


def test_rows_carry_the_run_statistics_with_their_real_types(tmp_path, two):
    from memopt.bench.table import STATISTICS_COLUMNS, typed_row

    out = str(tmp_path / "r.csv")
    run_bench(spec_for(two, objective="peak", budgets=["none"], methods=["greedy"]), out, executor=SerialExecutor(),
              progress=False)
    rows = [typed_row(r) for r in read_rows(out)]
    for r in rows:
        assert r["stop_reason"] == "done" and isinstance(r["improvements"], int) and r["improvements"] >= 1
        assert isinstance(r["tasks"], int) and isinstance(r["value"], float) and r["recompute"] is False
        assert isinstance(r["peak_memory"], int) and r["peak_memory"] > 0
    # a table of an older memopt (without the statistics columns) is read, and upgraded when resumed
    old = tmp_path / "old.csv"
    with open(out) as f, open(old, "w", newline="") as g:
        rd = csv.DictReader(f)
        keep = [c for c in rd.fieldnames if c not in STATISTICS_COLUMNS]
        w = csv.DictWriter(g, fieldnames=keep)
        w.writeheader()
        for r in rd:
            w.writerow({c: r[c] for c in keep})
    assert [r["stop_reason"] for r in read_rows(str(old))] == ["", ""]
    ResultsTable(str(old))
    with open(old) as f:
        assert tuple(next(csv.reader(f))) == COLUMNS
