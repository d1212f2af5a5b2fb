"""The run contract on inputs: each case once seen going wrong, and what memopt does now.

Issue 14 ("Every run ends well") listed what was seen before the spine:
large numbers read through floats or overflowing a solver, tracebacks for
user mistakes, nonsense accepted, misleading exit statuses and figures.
Each test below is one of those cases (its docstring names it) and checks
what memopt prints now and its exit status: an answer the evaluator
confirms (0), no plan found (1), a one-line input error before any solving
(2), proven infeasible (3); never a traceback or an internal error (4).
"""

from __future__ import annotations

import json
import os

import pytest
from test_cli import TINY
from test_fuzz import ends_well, run

from memopt import Datum, Instance, Task, evaluate, load_instance, load_plan
from memopt.catalog import CATALOG, entry
from memopt.core.errors import InstanceError, MemoptError
from memopt.core.instance_file import instance_from_dict
from memopt.core.result import Result

BIG = 2**70  # above int64 and above 2^53

# an in-tree (Liu's algorithm) that is also series-parallel, with a datum of size 2^70
HUGE = f"""name: huge
machine: {{bandwidth: 4}}
tasks:
  - {{id: a, time: 3, size: {BIG}}}
  - {{id: b, time: 2, size: 4}}
  - {{id: c, time: 5, size: 1, inputs: [a, b]}}
  - {{id: d, time: 1, size: 7}}
  - {{id: e, time: 1, size: 2, inputs: [c, d]}}
"""


class Files:
    """Files of a test in one folder: ``write(name, text)`` returns the path, ``path(name)`` too."""

    def __init__(self, folder):
        self.folder = folder

    def path(self, name: str) -> str:
        return str(self.folder / name)

    def write(self, name: str, text: str) -> str:
        (self.folder / name).write_text(text)
        return self.path(name)


@pytest.fixture
def files(tmp_path) -> Files:
    fs = Files(tmp_path)
    fs.write("tiny.yaml", TINY)
    fs.write("huge.yaml", HUGE)
    fs.write("good.yaml", "stages:\n- [{compute: a}]\n- [{compute: b}]\n- [{compute: c}]\n")
    fs.write("bad.yaml", "stages:\n- [{compute: a}]\n- [{compute: c}]\n")
    fs.write("empty.yaml", "")
    return fs


def usage_error(argv: list[str], *needles: str) -> str:
    """Run ``argv``: exit status 2, one line ``memopt: error: ...`` containing every needle, nothing solved."""
    rc, out, err = run(argv)
    ends_well(rc, err, (2,))
    assert out == "", out  # no summary: nothing was solved
    for n in needles:
        assert n in err, (n, err)
    return err.strip()


# ------------------------------------------------------------ large numbers
@pytest.mark.parametrize("method", ["downset-dp", "liu", "series-parallel", "planner", "auto", "exhaustive",
                                    "greedy"])
def test_size_above_int64_exact_methods_answer(files, method, tmp_path):
    """Case: a size above int64 (2^70) gave a traceback inside OR-Tools. Now the methods that compute on
    Python integers answer, exactly, and the evaluator confirms the value."""
    out = str(tmp_path / "plan.yaml")
    rc, stdout, err = run(["solve", files.path("huge.yaml"), "-m", method, "-t", "20", "-q", "-o", out])
    ends_well(rc, err, (0,))
    inst = load_instance(files.path("huge.yaml"))
    ev = evaluate(inst, load_plan(out), allow_recompute=False, allow_offload=False)
    assert ev.valid and ev.peak == Result.load(out).value > BIG
    assert "| optimal |" in stdout or method in ("greedy", "planner")


@pytest.mark.parametrize("argv,kind", [
    (["-m", "peak-cp"], "int64"),
    (["-m", "peak-milp"], "double"),
    (["-m", "peak-milp", "--backend", "highs"], "double"),
    (["-m", "stage", "--objective", "time", "--budget", str(2 * BIG)], "int64"),
    (["-m", "moccasin", "--objective", "time", "--recompute", "--budget", str(2 * BIG)], "int64"),
], ids=["peak-cp", "peak-milp", "peak-milp-highs", "stage", "moccasin"])
def test_size_above_int64_solver_methods_refuse_before_building(files, argv, kind):
    """Case: a size above int64 gave a traceback inside OR-Tools. Now a solver-based method refuses the
    instance before building a model: one line naming the datum and the arithmetic, exit status 2."""
    err = usage_error(["solve", files.path("huge.yaml")] + argv, "datum 'a'", f"more than {kind} arithmetic",
                      "cannot solve this instance exactly")
    assert "downset-dp" in err  # says which methods can


def test_sizes_whose_sum_overflows_int64_are_refused(files):
    """Case: sizes each inside int64 whose sums overflow it made CP-SAT answer MODEL_INVALID, reported as
    "feasible, gap 23 %". Now refused before building, naming the largest datum (exit status 2)."""
    text = "tasks:\n" + "".join(f"  - {{id: t{i}, time: 1, size: {2**61 + i}}}\n" for i in range(4))
    usage_error(["solve", files.write("sum.yaml", text), "-m", "peak-cp"], "the sizes sum to", "datum 't3'")


def test_model_invalid_is_a_bug_report_never_feasible(files, monkeypatch):
    """Case: MODEL_INVALID was reported as "feasible". Now run_cpsat raises, and the CLI says "internal error,
    a bug in memopt" with exit status 4: no status, no value."""
    from ortools.sat.python import cp_model

    from memopt.backends.cpsat import run_cpsat

    def run_invalid(req, ctx):
        """A method that builds a model CP-SAT rejects (a variable beyond int64 / 2)."""
        m = cp_model.CpModel()
        x = m.NewIntVar(0, 2**62, "x")
        m.Add(x >= 1)
        run_cpsat(m, ctx.deadline)

    CATALOG.register(entry("test-invalid-model", run_invalid))
    try:
        rc, out, err = run(["solve", files.path("tiny.yaml"), "-m", "test-invalid-model", "-q"])
    finally:
        CATALOG.unregister("test-invalid-model")
    assert rc == 4 and "internal error, a bug in memopt" in err and "invalid" in err
    assert "feasible" not in out and "optimal" not in out


def test_budget_above_2_53_is_exact(files):
    """Case: --budget was parsed through a float, so a budget above 2^53 was rounded and a plan that fits was
    called infeasible (a silent wrong answer). Now the budget is exact: 2^53 + 1 fits, 2^53 does not."""
    p = files.write("one.yaml", f"tasks:\n  - {{id: a, time: 1, size: {2**53 + 1}}}\n")
    rc, out, err = run(["solve", p, "--objective", "time", "--budget", str(2**53 + 1), "-q"])
    ends_well(rc, err, (0,))
    assert "| optimal |" in out
    rc, out, err = run(["solve", p, "--objective", "time", "--budget", str(2**53), "-q"])
    ends_well(rc, err, (3,))
    assert "| infeasible |" in out
    plan = files.write("p.yaml", "stages:\n- [{compute: a}]\n")
    assert run(["evaluate", p, plan, "--budget", str(2**53 + 1)])[0] == 0
    assert run(["evaluate", p, plan, "--budget", str(2**53)])[0] == 1


@pytest.mark.parametrize("text,suffix,size", [
    ("tasks:\n  - {id: a, time: 1, size: 1e20}\n", "yaml", 10**20),           # YAML reads 1e20 as a string
    ("tasks:\n  - {id: a, time: 1, size: 1.0e+20}\n", "yaml", 10**20),        # a YAML float
    ('{"tasks": [{"id": "a", "time": 1, "size": 1e20}]}', "json", 10**20),     # a JSON float
    ('{"tasks": [{"id": "a", "time": 1, "size": 12345678901234567891.0}]}', "json", 12345678901234567891),
], ids=["yaml-string-1e20", "yaml-float-1e20", "json-float-1e20", "json-float-20-digits"])
def test_numbers_in_files_are_read_exactly(files, text, suffix, size):
    """Case: numbers in files went through floats. Now a float's text is read exactly (Decimal): 1e20 is
    10^20 and 12345678901234567891.0 is that integer, not the nearest double."""
    assert load_instance(files.write(f"n.{suffix}", text)).size == (size,)


def test_python_float_above_2_53_is_refused_with_a_hint():
    """Case: a float above 2^53 (its text lost, e.g. a dict built in Python) cannot be trusted to be an exact
    integer: refused, naming the task and suggesting the integer."""
    with pytest.raises(InstanceError, match=r"task 'a': size is the float 1e\+20, above 2\^53 .* write it as an "
                                            r"integer \(e.g. 100000000000000000000\)"):
        instance_from_dict({"tasks": [{"id": "a", "time": 1, "size": 1e20}]})


def test_exact_methods_and_evaluator_on_huge_numbers_via_the_api():
    """Case: huge sizes and times: the evaluator, the planner and auto answer exactly through the API too."""
    import memopt

    inst = Instance([Task("a", 2**70), Task("b", 1)], [Datum("a", "a", ("b",), 2**80), Datum("b", "b", (), 1)])
    res = memopt.solve(inst, "peak", "auto", time_limit=20)
    assert res.status == "optimal" and res.value == 2**80 + 1
    res = memopt.solve(inst, "time", "planner", budget=2**80 + 1, recompute=True, time_limit=20)
    assert res.value == 2**70 + 1 and evaluate(inst, res.plan, budget=2**80 + 1).valid


@pytest.mark.parametrize("objective,method", [("peak", "auto"), ("peak", "downset-dp"), ("peak", "planner"),
                                              ("time", "auto"), ("time", "planner")])
def test_huge_sizes_on_a_larger_graph(objective, method):
    """Case: `auto` for the peak built an int64 max-flow network on sizes beyond int64 (found by the fuzzer: a
    WfCommons file size of 1e20 gave "internal error: Python int too large to convert to C long"). Now it
    skips that bound and answers; the evaluator confirms every plan."""
    import memopt
    from memopt.generators import random_layered

    base = random_layered(40, seed=3)
    inst = Instance(base.tasks, [Datum(d.id, d.producer, d.consumers, d.size * BIG + 1) for d in base.data])
    kw = {"budget": "0.9x", "recompute": True} if objective == "time" else {}
    res = memopt.solve(inst, objective, method, time_limit=20, **kw)
    assert res.status in ("optimal", "feasible") and res.plan is not None
    ev = evaluate(inst, res.plan, budget=res.budget, allow_recompute=res.recompute, allow_offload=False)
    assert ev.valid and ev.value(objective) == res.value


# ------------------------------------------------- tracebacks for user mistakes
@pytest.mark.parametrize("text,suffix,needles", [
    ("tasks:\n  - {id: a, time: .inf, size: 10}\n  - {id: b, time: 2, size: .nan, inputs: [a]}\n", "yaml",
     ["task 'a': time must be a finite number, got .inf", "task 'b': size must be a finite number, got .nan"]),
    ('{"tasks": [{"id": "a", "time": 3, "size": Infinity}]}', "json",
     ["task 'a': size must be a finite number, got Infinity"]),
    ('{"tasks": [{"id": "a", "time": NaN, "size": 1}]}', "json", ["task 'a': time must be a finite number"]),
    ("machine: {budget: .inf}\ntasks:\n  - {id: a, time: 3, size: 3}\n", "yaml",
     ["machine.budget: budget must be a finite number, got .inf"]),
    ("machine: {bandwidth: .nan}\ntasks:\n  - {id: a, time: 3, size: 3}\n", "yaml",
     ["machine.bandwidth: bandwidth must be a finite number"]),
    ("tasks:\n  - {id: .inf, time: 3, size: 3}\n", "yaml", ["id must be a string or a finite number, got inf"]),
    ("tasks:\n  - {id: a, time: true, size: 3}\n", "yaml", ["task 'a': time must be an integer, got true"]),
], ids=["yaml-inf-nan", "json-Infinity", "json-NaN", "budget-inf", "bandwidth-nan", "id-inf", "boolean-time"])
def test_non_finite_numbers_in_an_instance(files, text, suffix, needles):
    """Case: .inf/.nan in an instance file gave a traceback (OverflowError). Now: the file, the task or datum,
    the rule; exit status 2, for every command."""
    p = files.write(f"i.{suffix}", text)
    for argv in (["info", p], ["solve", p, "-q"], ["convert", p, files.path("c.yaml")],
                 ["evaluate", p, files.path("good.yaml")]):
        usage_error(argv, *needles)


def test_bandwidth_may_be_inf_or_a_decimal(files):
    """The one place where the spec allows inf (and decimals): machine.bandwidth."""
    for text, bw in (("inf", float("inf")), (".inf", float("inf")), ("2.5", 2.5), ("0.1", 0.1), ("4", 4)):
        p = files.write("b.yaml", f"machine: {{bandwidth: {text}}}\ntasks:\n  - {{id: a, time: 3, size: 3}}\n")
        assert load_instance(p).machine.bandwidth == bw
    p = files.write("b.yaml", "machine: {bandwidth: 0.12345678901234567891}\ntasks:\n  - {id: a, time: 3, size: 3}\n")
    usage_error(["info", p], "has more digits than a float holds exactly")


@pytest.mark.parametrize("argv,needles", [
    (["--budget", "inf"], ["--budget: expected a size like 1000 or a ratio like 0.8x, got 'inf'"]),
    (["--budget", "nanx"], ["--budget: expected a size like 1000 or a ratio like 0.8x, got 'nanx'"]),
    (["--budget", "1.5"], ["a budget is an integer size"]),
    (["--max-makespan", "nan"], ["--max-makespan: expected a finite number >= 0, got 'nan'"]),
    (["-t", "nan"], ["--time-limit/-t: expected seconds > 0"]),
    (["--threads", "0"], ["--threads: expected an integer >= 1, got '0'"]),
    (["--threads", "-1"], ["--threads: expected an integer >= 1"]),
    (["--threads", "1.5"], ["--threads: expected an integer >= 1, got '1.5'"]),
    (["--seed", "-1"], ["--seed: expected an integer >= 0"]),
    (["--memory-limit", "nan"], ["--memory-limit: expected a size like 8GiB"]),
    (["-m", "greedy", "-O", "width=3"], ["method 'greedy': unknown option(s) width (valid: none)"]),
    (["-m", "downset-dp", "-O", "colour=red"], ["unknown option(s) colour (valid: "]),
    (["-I", "batch=8"], ["options ['batch'] only apply to imported formats"]),
    (["-o", "plan.txt"], ["plan.txt: the plan file must end in .yaml, .yml or .json"]),
    (["--warm-start", "missing.yaml"], ["missing.yaml: no such file"]),
    (["--warm-start", "{empty}"], ["empty.yaml: the file is empty"]),
    (["--warm-start", "{bad}", "-m", "greedy"], ["the warm-start plan is not valid for this request",
                                                 "stage 2, event 1: compute 'c'"]),
    (["--offload"], ["offloading needs machine.bandwidth"]),
], ids=["budget-inf", "budget-nanx", "budget-decimal", "max-makespan-nan", "t-nan", "threads-0", "threads-minus-1",
        "threads-1.5", "seed-minus-1", "memory-limit-nan", "unknown-O-key", "unknown-O-key-lists-valid",
        "I-on-own-format", "o-plan.txt", "warm-start-missing", "warm-start-empty", "warm-start-invalid",
        "offload-without-bandwidth"])
def test_bad_solve_arguments(files, argv, needles, tmp_path):
    """Cases: `--budget inf`, `--budget nanx`, `--max-makespan nan` gave tracebacks; `-t nan`, `--threads 0`,
    `--threads -1` and an unknown `-O key=value` were accepted; `-o plan.txt` was refused only after the
    solve. Now each is one line and exit status 2 before any solving."""
    inst = files.path("tiny.yaml") if "--offload" not in argv else files.write("nobw.yaml", TINY.replace(
        "machine: {budget: 100, bandwidth: 4}\n", ""))
    argv = [a.format(empty=files.path("empty.yaml"), bad=files.path("bad.yaml")) for a in argv]
    usage_error(["solve", inst, "-q"] + argv, *needles)


def test_output_is_a_directory_refused_before_the_solve(files, tmp_path):
    """Case: `-o` pointing at a directory gave a traceback after the whole solve. Now refused first."""
    d = tmp_path / "plans.yaml"
    d.mkdir()
    usage_error(["solve", files.path("tiny.yaml"), "-o", str(d)], "is a directory")
    usage_error(["solve", files.path("tiny.yaml"), "-o", str(tmp_path / "nope" / "p.yaml")], "does not exist")


@pytest.mark.parametrize("content,needle", [
    ("", "the file is empty"),
    ("# nothing but a comment\n", "the file holds no data"),
    ("- a\n- b\n", "file: must be a mapping with a 'tasks' list, got a list"),
    ("just text\n", "file: must be a mapping with a 'tasks' list, got a string"),
    ("tasks: [ {id: a\n", "not valid YAML (line"),
], ids=["empty", "only-a-comment", "a-list", "a-string", "broken-yaml"])
def test_empty_or_non_mapping_instance(files, content, needle):
    """Case: an empty file said "got NoneType". Now: "the file is empty", or what the file holds instead."""
    p = files.write("e.yaml", content)
    for argv in (["info", p], ["solve", p], ["evaluate", p, files.path("good.yaml")], ["convert", p, p + ".json"]):
        usage_error(argv, needle)


@pytest.mark.parametrize("content,needle", [
    ("", "the file is empty"),
    ("- 3\n", "stage 1 must be a list of events, got 3"),
    ("name: x\n", "a plan file is a mapping with a 'stages' list"),
    ("stages:\n- [{compute: .inf}]\n", "stage 1, event 1: the id of a compute event must be a string"),
    ("stages:\n- [{jump: a}]\n", "unknown event kind 'jump'"),
], ids=["empty", "stage-not-a-list", "no-stages", "id-inf", "unknown-event"])
def test_empty_or_malformed_plan(files, content, needle):
    """Case: an empty or malformed plan file: one line naming the file (and stage, event), exit status 2."""
    p = files.write("p.yaml", content)
    usage_error(["evaluate", files.path("tiny.yaml"), p], needle)
    usage_error(["plot", files.path("tiny.yaml"), p, "-o", p + ".png"], needle)


# ------------------------------------------------------------ every command
@pytest.mark.parametrize("argv,needles", [
    (["info", "{tiny}", "-I", "x=1"], ["options ['x'] only apply to imported formats"]),
    (["evaluate", "{tiny}", "{good}", "--budget", "inf"], ["--budget: expected a size"]),
    (["evaluate", "{tiny}", "{good}", "--max-makespan", "nan"], ["--max-makespan: expected a finite number"]),
    (["convert", "{tiny}", "out.txt"], ["out.txt: the output file must end in .yaml, .yml or .json"]),
    (["convert", "{tiny}", "{dir}/no/x.yaml"], ["does not exist"]),
    (["convert", "{tiny}", "x.yaml", "--batch", "0"], ["--batch: expected an integer >= 1"]),
    (["convert", "{tiny}", "x.yaml", "--flops-per-second", "nan"], ["--flops-per-second: expected a finite"]),
    (["generate", "chain", "--n", "0", "-o", "{dir}/g.yaml"], ["--n: expected an integer >= 1"]),
    (["generate", "chain", "--n", "1.5", "-o", "{dir}/g.yaml"], ["--n: expected an integer >= 1, got '1.5'"]),
    (["generate", "chain", "--seed", "-1", "-o", "{dir}/g.yaml"], ["--seed: expected an integer >= 0"]),
    (["generate", "chain", "--sizes", "5,1", "-o", "{dir}/g.yaml"], ["--sizes: expected LO,HI"]),
    (["generate", "chain", "--times", "1,nan", "-o", "{dir}/g.yaml"], ["--times: expected LO,HI"]),
    (["generate", "chain", "--budget", "nan", "-o", "{dir}/g.yaml"], ["--budget: expected a size"]),
    (["generate", "chain", "--bandwidth", "nan", "-o", "{dir}/g.yaml"], ["bandwidth"]),
    (["generate", "chain", "-o", "{dir}/g.txt"], ["g.txt: the instance file must end in .yaml"]),
    (["generate", "layered", "--width", "nan", "-o", "{dir}/g.yaml"], ["width must be a number"]),
    (["plot", "{tiny}", "{good}", "--budget", "inf"], ["--budget: expected a size"]),
    (["plot", "{tiny}", "{good}", "--max-lanes", "0"], ["--max-lanes: expected an integer >= 1"]),
    (["plot", "{tiny}", "{good}", "-o", "{dir}/x.txt"], ["figures are .png, .svg or .pdf"]),
    (["curve", "{tiny}", "--plot", "{dir}/x.txt", "--out", "{dir}/b.csv"],
     ["curve: --plot", "x.txt: figures are .png, .svg or .pdf"]),
    (["bench", "{tiny}", "-t", "nan", "-o", "{dir}/b.csv"], ["--time-limit/-t: expected seconds > 0"]),
    (["bench", "{tiny}", "--threads", "0", "-o", "{dir}/b.csv"], ["--threads: expected an integer >= 1"]),
    (["bench", "{tiny}", "--repeat", "0", "-o", "{dir}/b.csv"], ["--repeat/-k: expected an integer >= 1"]),
    (["bench", "{tiny}", "--max-makespan", "nan", "-o", "{dir}/b.csv"], ["--max-makespan: expected a finite"]),
    (["bench", "{tiny}", "--budgets", "1x,nan", "-o", "{dir}/b.csv"], ["--budgets: expected a size", "'nan'"]),
    (["report", "{dir}/missing.csv"], ["missing.csv: no such file"]),
    (["report", "{tiny}"], ["not a memopt results table"]),
], ids=lambda x: " ".join(x) if isinstance(x, list) and x and x[0] in
    ("info", "evaluate", "convert", "generate", "plot", "bench", "report") else None)
def test_every_command_refuses_mistakes_in_one_line(files, argv, needles, tmp_path):
    """Case: each command's user mistakes: one line `memopt: error: ...`, exit status 2, before any work."""
    argv = [a.format(tiny=files.path("tiny.yaml"), good=files.path("good.yaml"), dir=str(tmp_path))
            for a in argv]
    usage_error(argv, *needles)
    assert not os.path.exists(tmp_path / "b.csv") and not os.path.exists(tmp_path / "g.yaml")


# ------------------------------------------------------------ exit statuses
def test_infeasible_exits_3_with_the_proof_and_no_plan(files, tmp_path):
    """Case: `infeasible` exited 0 and wrote an empty plan. Now exit status 3; the result file holds the
    status and the proof, and no stages."""
    out = tmp_path / "r.yaml"
    rc, stdout, err = run(["solve", files.path("tiny.yaml"), "--objective", "time", "--budget", "3", "-q",
                           "-o", str(out)])
    ends_well(rc, err, (3,))
    assert "| infeasible |" in stdout and "lower bound 17" in stdout
    res = Result.load(out)
    assert res.status == "infeasible" and res.plan is None and "lower bound 17" in res.message
    assert "stages" not in out.read_text()
    usage_error(["evaluate", files.path("tiny.yaml"), str(out)], "holds no plan", "status infeasible")


def test_unknown_exits_1_and_writes_no_plan_file(files, tmp_path):
    """Case: `unknown` exited 1 and also wrote a plan file with no stages. Now exit status 1 and no file."""
    from memopt.core.method import MethodOutput

    def run_nothing(req, ctx):
        """A method that finds nothing."""
        return MethodOutput()

    CATALOG.register(entry("test-nothing", run_nothing))
    out = tmp_path / "p.yaml"
    try:
        rc, stdout, err = run(["solve", files.path("tiny.yaml"), "-m", "test-nothing", "--no-warm-start", "-q",
                               "-o", str(out)])
    finally:
        CATALOG.unregister("test-nothing")
    ends_well(rc, err, (1,))
    assert "| unknown |" in stdout and "no plan to write" in err
    assert not out.exists()


def test_evaluate_invalid_plan_says_why_and_prints_no_figures(files):
    """Case: `evaluate` of an invalid plan printed an "overhead" of -70 %. Now it names the first broken rule
    with its stage and event, then the others, prints no peak/makespan/overhead, and exits 1."""
    rc, out, err = run(["evaluate", files.path("tiny.yaml"), files.path("bad.yaml"), "--max-makespan", "1"])
    ends_well(rc, err, (1,))
    assert out.splitlines()[0] == "valid       no"
    assert "broken rule stage 2, event 1: compute 'c': input(s) 'b' not in fast memory [input-not-resident]" in out
    for figure in ("peak", "makespan  ", "overhead", "computes"):
        assert figure not in out, out
    rc, out, err = run(["evaluate", files.path("tiny.yaml"), files.path("good.yaml"), "--budget", "5",
                        "--max-makespan", "1"])
    ends_well(rc, err, (1,))
    assert "broken rule stage 1, event 1: memory 10 exceeds the budget 5" in out
    assert "also        at the end: makespan 10 exceeds the limit 1 [makespan-limit]" in out
    assert "overhead" not in out
    rc, out, err = run(["evaluate", files.path("tiny.yaml"), files.path("good.yaml")])
    ends_well(rc, err, (0,))
    assert "valid       yes" in out and "peak        17" in out and "overhead    0.00%" in out


def test_evaluate_help_documents_the_exit_statuses():
    """`memopt evaluate --help` states its exit statuses (0 valid, 1 invalid, 2 input error)."""
    from memopt.cli import build_parser

    text = build_parser()._subparsers._group_actions[0].choices["evaluate"].format_help()
    assert "0 the plan is valid; 1 the plan is invalid" in text and "2 usage or input error" in text


def test_importer_unknown_options_are_listed(tmp_path):
    """-I keys unknown to an importer are refused with the list of the valid ones (exit status 2)."""
    data = os.path.join(os.path.dirname(__file__), "data")
    usage_error(["info", os.path.join(data, "nodelink_checkmate.json"), "-I", "colour=red"],
                "unknown option(s) 'colour' for the node-link importer (known: default_size")
    usage_error(["info", os.path.join(data, "wfformat_v15.json"), "-I", "colour=red"],
                "unknown option(s) 'colour' for the WfCommons importer (known: duplicate_outputs")


def test_huge_digit_counts_are_refused_not_built(files):
    """A number of 5000 digits (or 1e999999999) is refused with a message, not built (or hanging)."""
    usage_error(["info", files.write("d.yaml", "tasks:\n  - {id: a, time: 1, size: " + "9" * 5000 + "}\n")],
                "not valid YAML (Exceeds the limit (4300 digits)")
    usage_error(["info", files.write("d.json", json.dumps({"tasks": [{"id": "a", "time": 1, "size": "1e999999999"}]}))],
                "size has more than 4300 digits")
    with pytest.raises(MemoptError):
        instance_from_dict({"tasks": [{"id": "a", "time": 1, "size": "1e999999999"}]})


def test_solve_takes_an_instance_or_the_path_of_one(tmp_path):
    """``memopt.solve`` with a path reads the file (any format ``load_instance`` reads); anything else that is
    not an instance is one clear error, never an AttributeError from deep inside."""
    import memopt

    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    by_path = memopt.solve(str(path))
    assert by_path.status == "optimal" and by_path.value == memopt.solve(load_instance(path)).value
    assert memopt.solve(path).value == by_path.value  # a Path as well
    with pytest.raises(MemoptError, match="no such file"):
        memopt.solve(str(tmp_path / "missing.yaml"))
    with pytest.raises(MemoptError, match="instance must be an Instance or the path of an instance file, not int"):
        memopt.solve(42)
