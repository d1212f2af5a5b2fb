"""memopt plot and memopt report: the figures and tables are written, and say the right things."""

from __future__ import annotations

import math
import os

import pytest

import memopt
from memopt import Plan
from memopt.bench import BenchSpec, SerialExecutor, run_bench
from memopt.bench.report import make_report, shifted_geomean
from memopt.cli import main
from memopt.core.errors import MemoptError

pytest.importorskip("matplotlib", reason="figures need matplotlib (optional extra: pip install 'memopt[plot]')")

from memopt.bench.figures import budget_ratio, performance_profile, plot_overhead, plot_profile
from memopt.plots import event_positions, plan_lanes, plot_plan

HERE = os.path.dirname(__file__)
TINY = os.path.join(os.path.dirname(HERE), "instances", "tiny.yaml")
PNG = b"\x89PNG\r\n\x1a\n"

# SPEC §4: a is offloaded while b runs and brought back for c
OFFLOAD = Plan([[("compute", "a")], [("compute", "b"), ("offload", "a")], [("free", "a")], [("reload", "a")],
                [("compute", "c"), ("free", "a"), ("free", "b")]])
# a is dropped after b and computed again for c
RECOMPUTE = Plan([[("compute", "a")], [("compute", "b"), ("free", "a")], [("compute", "a")],
                  [("compute", "c"), ("free", "a"), ("free", "b")]])


def _png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG and os.path.getsize(path) > 5000


def _text(path) -> str:
    with open(path) as f:
        return f.read()


# -------------------------------------------------------------- plan plot
def test_plot_plan_writes_png_and_svg(tmp_path):
    inst = memopt.load_instance(TINY)
    out = plot_plan(inst, OFFLOAD, [str(tmp_path / "p.png"), str(tmp_path / "p.svg")], budget=20)
    assert out == [str(tmp_path / "p.png"), str(tmp_path / "p.svg")]
    assert _png(out[0])
    svg = _text(out[1])
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for text in ("budget 20", "peak 17", "offload", "reload", "copy in slow memory"):
        assert text in svg, text  # the legend names what is drawn


def test_plot_plan_lanes_follow_the_plan():
    inst = memopt.load_instance(TINY)
    spans = [(k + 0.5, k + 1.5) for k in range(len(OFFLOAD))]
    lanes = plan_lanes(inst, OFFLOAD, spans, event_positions(inst, OFFLOAD, spans, "stage"))
    (a,) = lanes
    assert inst.data[a.datum].id == "a"
    assert len(a.offloads) == len(a.reloads) == 1 and not a.recomputes
    assert a.offloads[0] == 2.0 and a.reloads[0] == 4.0  # mid-stage: the transfer runs across it
    assert len(a.fast) == 2 and a.fast[0][1] == 2.5  # freed at the start of stage 3 (a leading free)
    assert a.fast[1][0] == 3.5  # the reload takes its memory from the start of stage 4
    assert a.slow == [(2.5, 5.5)]  # in slow memory from the end of stage 2 on

    spans = [(k + 0.5, k + 1.5) for k in range(len(RECOMPUTE))]
    (a,) = plan_lanes(inst, RECOMPUTE, spans, event_positions(inst, RECOMPUTE, spans, "stage"))
    assert len(a.recomputes) == 1 and not a.offloads and len(a.fast) == 2


def test_time_axis_places_computes_where_they_start():
    inst = memopt.load_instance(TINY)
    ev = memopt.evaluate(inst, RECOMPUTE)
    spans, t = [], 0.0
    for d in ev.stage_durations:
        spans.append((t, t + d))
        t += d
    pos = event_positions(inst, RECOMPUTE, spans, "time")
    assert pos[1] == [3.0, 3.0, 5.0]  # stage 2 starts at 3: compute b at 3, free a when b ends at 5
    assert spans[-1][1] == ev.makespan == 13


def test_plot_of_a_pure_schedule_and_of_an_invalid_plan(tmp_path):
    inst = memopt.load_instance(TINY)
    res = memopt.solve(inst, "peak", "greedy")
    assert _png(plot_plan(inst, res.plan, str(tmp_path / "pure.png"))[0])
    bad = Plan([[("compute", "c")]])
    svg = plot_plan(inst, bad, str(tmp_path / "bad.svg"))[0]
    assert "INVALID" in _text(svg)


def test_plot_rejects_an_unknown_format(tmp_path):
    inst = memopt.load_instance(TINY)
    with pytest.raises(MemoptError, match=".png, .svg or .pdf"):
        plot_plan(inst, OFFLOAD, str(tmp_path / "p.gif"))


def test_cli_plot(tmp_path, capsys):
    plan = tmp_path / "tiny.plan.yaml"
    assert main(["solve", TINY, "-m", "greedy", "-o", str(plan)]) == 0
    assert main(["plot", TINY, str(plan), "--x", "time"]) == 0
    assert _png(str(tmp_path / "tiny.plan.png"))
    assert main(["plot", TINY, str(plan), "-o", str(tmp_path / "x.gif")]) == 2
    assert ".png, .svg or .pdf" in capsys.readouterr().err


# ----------------------------------------------------------------- report
def test_performance_profile_ratios():
    times = {"a": {1: 1.0, 2: 4.0, 3: math.inf}, "b": {1: 2.0, 2: 2.0, 3: 5.0}, "c": {1: math.inf}}
    r = performance_profile(times)
    assert r["a"] == [1.0, 2.0, math.inf]
    assert r["b"] == [1.0, 1.0, 2.0]
    assert r["c"] == [math.inf, math.inf, math.inf]  # a problem it did not run counts as unsolved
    assert performance_profile({"a": {1: math.inf}, "b": {}}) == {"a": [], "b": []}  # nobody solved it


def test_budget_ratio_and_geomean():
    assert budget_ratio({"budget": "0.8x"}) == 0.8
    assert budget_ratio({"budget": "50", "budget_value": "50", "baseline_peak": "100"}) == 0.5
    assert budget_ratio({"budget": "", "budget_value": "", "baseline_peak": "100"}) is None
    assert shifted_geomean([0.0, 0.0]) == 0.0
    assert abs(shifted_geomean([1.0, 3.0]) - (math.sqrt(2 * 4) - 1)) < 1e-12


def _fake_rows():
    """A results table with every kind of cell, as methods yet to come will fill it."""
    rows = []
    for inst, ref in (("i1", 100), ("i2", 200)):
        for b in ("1x", "0.9x", "0.8x"):
            r = float(b[:-1])
            for m, ov, st, sec in (("fast", 0.3 * (1 - r), "feasible", 0.01), ("exact", 0.2 * (1 - r), "optimal", 3.0),
                                   ("weak", None, "unknown", 10.0)):
                rows.append({
                    "instance": inst, "instance_file": f"{inst}.yaml", "tasks": "10", "objective": "time",
                    "recompute": "true", "offload": "false", "max_makespan": "", "budget": b,
                    "budget_value": str(math.ceil(r * ref)), "baseline_peak": str(ref), "method": m,
                    "repeat": "0", "threads": "1", "time_limit": "10", "status": st,
                    "value": "" if ov is None else str(100 * (1 + ov)), "bound": "100",
                    "gap": "", "seconds": str(sec), "first_plan_seconds": "", "peak": "", "makespan": "",
                    "overhead": "" if ov is None else str(ov), "plan": "", "message": "",
                })
    return rows


def test_overhead_and_profile_figures(tmp_path):
    rows = _fake_rows()
    assert _png(plot_overhead(rows, str(tmp_path / "o.png"))[0])
    svg = plot_profile(rows, str(tmp_path / "p.svg"))[0]
    text = _text(svg)
    assert "fast" in text and "exact" in text and "6 problems; solved = with a plan" in text
    with pytest.raises(MemoptError, match="objective 'time'"):
        plot_overhead([dict(r, objective="peak") for r in rows], str(tmp_path / "none.png"))


def test_report_from_a_real_bench(tmp_path, capsys):
    out = str(tmp_path / "res.csv")
    run_bench(BenchSpec([TINY], objective="time", budgets=["1x", "0.9x"], methods=["given", "greedy", "nope"]),
              out, executor=SerialExecutor(), progress=False)
    run_bench(BenchSpec([TINY], objective="peak", methods=["given", "greedy", "nope"]),
              out, executor=SerialExecutor(), progress=False)
    assert main(["report", out, "--format", "png"]) == 0
    printed = capsys.readouterr().out.split()
    d = str(tmp_path / "res")
    assert printed[0] == os.path.join(d, "report.md")
    for name in ("time-overhead.png", "time-profile.png", "peak-ratio.png", "peak-profile.png",
                 "time-profile-optimal.png", "peak-profile-optimal.png"):
        assert os.path.join(d, name) in printed and _png(os.path.join(d, name))
    md = _text(os.path.join(d, "report.md"))
    assert "## time" in md and "## peak" in md and "## Errors" in md
    assert "| greedy | 2 | 1 | 1 | 1 | 0 | 0 | 1 |" in md  # time: 2 runs, a plan at 1x, infeasible at 0.9x
    assert "| tiny | 3 | 0.9x | infeasible | infeasible | error |" in md
    assert "+0.0% ✓" in md and "17 ✓" in md
    assert "![overhead against budget](time-overhead.png)" in md


def test_report_of_a_missing_or_empty_table(tmp_path):
    with pytest.raises(MemoptError, match="no such file"):
        make_report(str(tmp_path / "nope.csv"))
    from memopt.bench import COLUMNS

    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(COLUMNS) + "\n")
    with pytest.raises(MemoptError, match="no runs"):
        make_report(str(empty))


def test_the_readme_experiments_commands_parse():
    """The commands shown under "Experiments" in the README are real (docs stay true)."""
    import glob
    import re
    import shlex

    from memopt.cli import build_parser

    root = os.path.dirname(HERE)
    readme = _text(os.path.join(root, "README.md"))
    section = readme.split("## Experiments", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    block = block.replace("\\\n", " ")  # continuation lines
    commands = [line.split("  #")[0] for line in block.splitlines() if line.startswith("memopt ")]
    assert [c.split()[1] for c in commands] == ["bench", "bench", "report", "plot"]  # all run: tests/test_docs.py
    parser = build_parser()
    for c in commands:
        words = []
        for w in shlex.split(c)[1:]:
            words += sorted(glob.glob(os.path.join(root, w))) if "*" in w else [w]
        args = parser.parse_args(words)
        assert args.func is not None
    figure = re.search(r"!\[[^]]*\]\(([^)]+)\)", section).group(1)
    assert os.path.exists(os.path.join(root, figure))
