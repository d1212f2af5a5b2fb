"""Fitting a memory budget: every formulation of the budget issue on the shared graphs.

    python benchmarks/budget.py [--sets fixed,free,schedule,offload] [--lock /tmp/memopt-bench.lock]
        [--ratios 0.9,0.8] [--time-limit 60] [--threads 2] [--only PATTERN] [--methods LABELS]
        [--shared ../shared/benchmarks] [--fresh] [--quick] [--out DIR]

Budgets follow the literature's protocol: ``ceil(r × peak of the instance's
own topological order)`` (the listed order made topological), r ∈ {0.9, 0.8},
each run with ``--time-limit`` seconds and ``--threads`` threads, in its own
process (:mod:`memopt.bench.harness`: killed 60 s past the limit; its wall
time and peak memory measured), holding the shared benchmark lock
(``--lock``, ``flock``) for that run only, so that a long table does not
keep other benchmarks waiting for hours.

Sets (each row says which):

- ``fixed`` — recomputation with the *given* order of first computations,
  the problem Checkmate (MILP) and Moccasin (CP-SAT) solve in the
  literature: ``checkmate`` with each backend (``order=given``), warm
  started by the planner on that order and cold, and our Moccasin model on
  the same order (``moccasin -O order=given``), warm and cold;
- ``free`` — recomputation, the order free (memopt's problem): ``auto``
  (``auto-time``), ``joint`` (free-order stage model, graphs ≤ 100 tasks;
  CP-SAT, HiGHS), ``moccasin`` (retention intervals), ``planner`` (the
  heuristic alone);
- ``schedule`` — neither (pure scheduling under the budget): ``auto``,
  ``stage`` (free-order stage model, complete for schedules: cold, so that
  the model itself is measured; ≤ 100 tasks), ``moccasin`` (one interval
  per task);
- ``offload`` — offloading with and without recomputation on graphs with a
  bandwidth (the ``instances/nn`` training graphs; the random layered graphs
  with β = 4 size units per time unit): ``poet`` (CP-SAT, HiGHS; CBC ≤ 100
  tasks), ``joint`` (≤ 100 tasks), ``auto``, ``planner``.

Graphs: the training graphs of ``<shared>/nodelink`` (their inference
graphs are chains whose footprint bound is their peak: every budget below it
is infeasible, so they are skipped), ``random-layered-n100``/``n250`` of
the same folder, generated random layered graphs of 200 and 300 tasks
(:func:`memopt.generators.random_layered`, seeds 1 and 2), and the
MobileNetV2 / ResNet-50 / ResNet-18 training graphs (batch 8) of
``instances/nn``.

Columns: value (the evaluator's makespan), bound (the problem's bound
reported by memopt: Σ c(v) unless proven better), gap, overhead (value /
Σ c − 1), the model's own status and bound (``model_*``: the best plan of the
model's space, e.g. with the order fixed), seconds, time to the first plan,
the run's wall seconds and peak memory (``wall_seconds``, ``max_rss_mb``).
Results go to ``results/budget.csv`` (appended; a run already there is
skipped unless ``--fresh``) and ``results/budget.md``. Timings taken while
other jobs share the machine are provisional. ``--quick``: one generated
60-task graph, r = 0.9, 1 s per run, every set, into ``results/tmp``.

``--curve INSTANCE`` instead draws the budget-versus-overhead table of one
instance (``auto``; scheduling only, recomputation, offloading, both; budgets as ratios of
the best baseline peak, ``--curve-ratios``) into ``results/budget-curve.csv``
and ``results/budget-curve.md`` — the table of the README.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memopt import Instance, load_instance, schedule_peak
from memopt.bench.harness import (
    Case,
    ResultsCSV,
    Schema,
    add_common_args,
    fmt,
    format_table,
    out_dir,
    run_cases,
    solve_case,
    write_text,
)
from memopt.catalog import CATALOG

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = Schema.of("set instance tasks:int ratio:float budget:int recompute:bool offload:bool method status "
                   "value:num bound:num gap:float overhead:float model_status model_bound:num model_gap:float "
                   "seconds:float first_plan:float peak:num stages:int message")
KEY = ("set", "instance", "ratio", "method")
STATS = ("model_status", "restricted_optimal", "model_bound", "model_gap")
NAMES = {"instance": lambda r: f"{r['instance']} r={r['ratio']}", "method": lambda r: f"{r['set']}/{r['method']}"}


@dataclass
class Variant:
    """A formulation as run in the table: a registered method with options."""

    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    max_tasks: int | None = None


FIXED = [
    Variant("checkmate-cpsat", "checkmate", {"backend": "cpsat", "order": "given"}),
    Variant("checkmate-highs", "checkmate", {"backend": "highs", "order": "given"}),
    Variant("checkmate-cbc", "checkmate", {"backend": "cbc", "order": "given"}),
    Variant("checkmate-cpsat-cold", "checkmate", {"backend": "cpsat", "order": "given", "warm_start": False}),
    Variant("checkmate-highs-cold", "checkmate", {"backend": "highs", "order": "given", "warm_start": False}),
    Variant("moccasin-given", "moccasin", {"order": "given"}),
    Variant("moccasin-given-cold", "moccasin", {"order": "given", "warm_start": False}),
]
FREE = [
    Variant("auto", "auto"),
    Variant("joint-cpsat", "joint", {"backend": "cpsat"}, max_tasks=100),
    Variant("joint-highs", "joint", {"backend": "highs"}, max_tasks=100),
    Variant("moccasin", "moccasin"),
    Variant("planner", "planner"),
]
SCHEDULE = [
    Variant("auto", "auto"),
    Variant("stage-cpsat", "stage", {"backend": "cpsat", "warm_start": False}, max_tasks=100),
    Variant("stage-highs", "stage", {"backend": "highs", "warm_start": False}, max_tasks=100),
    Variant("moccasin", "moccasin"),
]
OFFLOAD = [
    Variant("auto", "auto"),
    Variant("poet-cpsat", "poet", {"backend": "cpsat"}),
    Variant("poet-highs", "poet", {"backend": "highs"}),
    Variant("poet-cbc", "poet", {"backend": "cbc"}, max_tasks=100),
    Variant("joint-cpsat", "joint", {"backend": "cpsat"}, max_tasks=100),
    Variant("planner", "planner"),
]
LAYERED_BANDWIDTH = 4


def graphs(shared: str, quick: bool) -> list[tuple[str, Callable[[], Instance]]]:
    """(name, loader) of every graph of the benchmark (``quick``: one generated 60-task graph)."""
    from memopt.generators import random_layered

    if quick:
        return [("layered-n60-s1", lambda: random_layered(60, seed=1))]
    out: list[tuple[str, Callable[[], Instance]]] = []
    for p in sorted(glob.glob(os.path.join(shared, "nodelink", "*-train.json"))):
        out.append((os.path.splitext(os.path.basename(p))[0], lambda p=p: load_instance(p)))
    for p in sorted(glob.glob(os.path.join(shared, "nodelink", "random-layered-*.json"))):
        out.append((os.path.splitext(os.path.basename(p))[0], lambda p=p: load_instance(p)))
    for n, seed in ((200, 1), (300, 2)):
        out.append((f"layered-n{n}-s{seed}", lambda n=n, seed=seed: random_layered(n, seed=seed)))
    for name in ("resnet18-train-b8", "mobilenetv2-train-b8", "resnet50-train-b8"):
        p = os.path.join(ROOT, "instances", "nn", f"{name}.yaml")
        if os.path.exists(p):
            out.append((name, lambda p=p: load_instance(p)))
    return out


def case(set_name: str, name: str, inst: Instance, ratio: float, v: Variant, *, recompute: bool,
         offload: bool, time_limit: float, threads: int) -> Case:
    """The run of variant ``v`` at budget ceil(ratio × peak of the given order)."""
    budget = math.ceil(ratio * schedule_peak(inst, inst.topological_order))
    fields = {"set": set_name, "instance": name, "tasks": inst.n, "ratio": ratio, "budget": budget,
              "recompute": recompute, "offload": offload, "method": v.label}
    return solve_case(fields, inst, "time", v.method, time_limit=time_limit, budget=budget, recompute=recompute,
                      offload=offload, threads=threads, options=v.options, stats=STATS,
                      kill_after=time_limit + 60)


def finish(c: Case, row: dict[str, Any]) -> dict[str, Any]:
    """The table's own columns from a solve's (the model's status, the overhead, seconds of the solve)."""
    total = c.call.kwargs["instance"].total_time
    value = row.get("value")
    model_status = row.get("model_status")
    row.update(overhead=None if value is None else round(value / total - 1, 6),
               model_status=model_status if model_status is not None else row.get("restricted_optimal"),
               first_plan=row.get("first_plan_seconds"))
    if row.get("solve_seconds") is not None:
        row["seconds"] = round(row["solve_seconds"], 2)
    return row


def pct(x: Any) -> str:
    return "" if x is None else f"{100 * float(x):.2f}%"


def write_markdown(rows: list[dict[str, Any]], path: str) -> None:
    """``results/budget.md``: the summary, then one table per set (typed rows of the CSV)."""
    lines = ["# Fitting a budget: every formulation (`benchmarks/budget.py`)", "",
             ("Budget = ceil(r × peak of the given topological order). `value`: the evaluated makespan; "
              "`bound`: the problem's bound memopt reports; `model`: the model's own status and gap (the best "
              "plan of its space: e.g. the order fixed); seconds to return and to the first plan; `MB`: the "
              "run's peak resident memory (its own process; empty for rows made before it was measured). "
              "Timings are provisional when other jobs shared the machine."), ""]
    lines += summary(rows)
    order = {}
    for r in rows:  # rows of one graph together, in the order the graphs were first run
        order.setdefault(r["instance"], len(order))
    rows = sorted(rows, key=lambda r: (order[r["instance"]], -r["ratio"]))
    for set_name in ("fixed", "free", "schedule", "offload", "offload+recompute"):
        sel = [r for r in rows if r["set"] == set_name]
        if not sel:
            continue
        lines += [f"## {set_name}", "",
                  ("| instance | n | r | method | status | value | overhead | gap | model | model gap | s "
                   "| first plan s | MB |"),
                  "|---|---:|---:|---|---|---:|---:|---:|---|---:|---:|---:|---:|"]
        for r in sel:
            lines.append(f"| {r['instance']} | {r['tasks']} | {r['ratio']} | {r['method']} | {r['status']} | "
                         f"{fmt(r.get('value'))} | {pct(r.get('overhead'))} | {pct(r.get('gap'))} | "
                         f"{fmt(r.get('model_status'))} | {pct(r.get('model_gap'))} | "
                         f"{fmt(r.get('seconds'))} | {fmt(r.get('first_plan'))} | {fmt(r.get('max_rss_mb'), 0)} |")
        lines.append("")
    write_text(path, "\n".join(lines))


def _f(x: Any) -> float | None:
    return None if x is None else float(x)


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """The targets of the budget issue, measured from the rows."""
    out = ["## Summary", ""]
    # 1. the literature's protocol on random-layered-n100: time to the model's proven optimum
    lit = [r for r in rows if r["set"] == "fixed" and r["instance"] == "random-layered-n100"]
    if lit:
        out += [("**The literature's protocol** (order of first computations fixed to the given one; "
                 "Moccasin's own CP-SAT model needs 45 s at r = 0.9 and 51 s at r = 0.8 to prove this optimum on "
                 "this kind of machine, Checkmate's MILP with HiGHS 81 s at 0.9): seconds until the model's "
                 "optimum is proven on random-layered-n100 (— : not proven in the time limit)."), "",
                "| method | r = 0.9 | r = 0.8 |", "|---|---:|---:|"]
        for m in dict.fromkeys(r["method"] for r in lit):
            cells = []
            for ratio in (0.9, 0.8):
                r = next((x for x in lit if x["method"] == m and x["ratio"] == ratio), None)
                if r is None:
                    cells.append("")
                elif r["model_status"] in ("optimal", "True"):
                    cells.append(f"{float(r['seconds']):.1f} s (overhead {100 * float(r['overhead']):.2f} %)")
                else:
                    cells.append(f"— (best {100 * float(r['overhead']):.2f} %)" if r.get("overhead") is not None
                                 else "—")
            out.append(f"| {m} | " + " | ".join(cells) + " |")
        out.append("")
    # 2. a plan within 5 % of the bound on every graph of up to 400 tasks, in 60 s: best of memopt's methods
    free = [r for r in rows if r["set"] == "free" and int(r["tasks"]) <= 400]
    if free:
        out += [("**Recomputation, the order free** (memopt's problem), graphs of up to 400 tasks: the best plan "
                 "of any method against the best bound any method proved (gap = (value − bound) / value), and "
                 "`auto`'s alone against its own; ✗ = proven infeasible."), "",
                "| instance | n | r | best gap | by | auto gap | auto s | auto first plan s |",
                "|---|---:|---:|---:|---|---:|---:|---:|"]
        keys = list(dict.fromkeys((r["instance"], r["ratio"]) for r in free))
        worst = 0.0
        for inst, ratio in keys:
            sel = [r for r in free if r["instance"] == inst and r["ratio"] == ratio]
            if all(r["status"] == "infeasible" for r in sel):
                out.append(f"| {inst} | {sel[0]['tasks']} | {ratio} | ✗ | {(sel[0]['message'] or '')[:60]} | | | |")
                continue
            with_plan = [r for r in sel if _f(r.get("gap")) is not None]
            if not with_plan:
                out.append(f"| {inst} | {sel[0]['tasks']} | {ratio} | no plan | | | | |")
                worst = math.inf
                continue
            # every row's bound is a proven bound of the same problem: the best plan against the best bound
            best = min(with_plan, key=lambda r: float(r["value"]))
            top = max(sel, key=lambda r: _f(r.get("bound")) or 0.0)
            value, bound = float(best["value"]), _f(top.get("bound")) or 0.0
            gap = max(0.0, (value - bound) / value) if value else 0.0
            worst = max(worst, gap)
            same_bound = _f(top.get("bound")) == _f(best.get("bound"))
            by = best["method"] + ("" if same_bound else f" (bound: {top['method']})")
            a = next((r for r in sel if r["method"] == "auto"), None)
            ag = "" if a is None or _f(a.get("gap")) is None else f"{100 * float(a['gap']):.2f} %"
            a_seconds = "" if a is None else fmt(a["seconds"])
            a_first = "" if a is None else Schema.cell(a.get("first_plan"))
            out.append(f"| {inst} | {best['tasks']} | {ratio} | {100 * gap:.2f} % | {by} | "
                       f"{ag} | {a_seconds} | {a_first} |")
        out += ["", f"Worst best gap: {100 * worst:.2f} % (target: within 5 %).", ""]
    # 3. time to the first plan on the largest networks
    big = [r for r in rows if r["instance"] in ("mobilenetv2-train-b8", "resnet50-train-b8")
           and r["set"] in ("fixed", "free")]
    if big:
        out += [("**Time to the first plan** on the MobileNetV2 and ResNet-50 training graphs (Moccasin's own "
                 "model finds none in 60 s on Checkmate's MobileNet at 0.8 and ResNet-50 at 0.9):"), "",
                "| instance | r | set | method | first plan s | overhead |", "|---|---:|---|---|---:|---:|"]
        for r in big:
            fp = Schema.cell(r.get("first_plan")) or "none"
            ov = "" if _f(r.get("overhead")) is None else f"{100 * float(r['overhead']):.2f} %"
            out.append(f"| {r['instance']} | {r['ratio']} | {r['set']} | {r['method']} | {fp} | {ov} |")
        out.append("")
    return out


CURVE_SCHEMA = Schema.of("instance ratio:float budget:int technique recompute:bool offload:bool method status "
                         "value:num bound:num overhead:float seconds:float message")
TECHNIQUES = [("schedule only", False, False), ("recompute", True, False), ("offload", False, True),
              ("both", True, True)]


def curve(args: argparse.Namespace, out: str) -> int:
    """Overhead of ``auto`` at decreasing budgets with each technique."""
    from memopt.heuristics.orders import best_baseline

    inst = load_instance(args.curve)
    base = best_baseline(inst)[1]
    techniques = TECHNIQUES if inst.machine.bandwidth is not None else TECHNIQUES[:2]
    name = os.path.relpath(args.curve, ROOT)
    default_ratios = "1.0,0.8" if args.quick else "1.0,0.9,0.8,0.7,0.6,0.5"
    ratios = [float(x) for x in (args.curve_ratios or default_ratios).split(",")]
    table = ResultsCSV(os.path.join(out, "budget-curve.csv"), CURVE_SCHEMA, ("instance", "ratio", "technique"))
    cases = []
    for r in ratios:
        for label, rc, off in techniques:
            fields = {"instance": name, "ratio": r, "budget": math.ceil(r * base), "technique": label,
                      "recompute": rc, "offload": off, "method": "auto"}
            cases.append(solve_case(fields, inst, "time", "auto", time_limit=args.time_limit, budget=f"{r}x",
                                    recompute=rc, offload=off, threads=args.threads))

    def overhead(c: Case, row: dict[str, Any]) -> dict[str, Any]:
        v = row.get("value")
        row["overhead"] = None if v is None else round(v / inst.total_time - 1, 6)
        return row

    rows = run_cases(cases, table, fresh=args.fresh, lock=args.lock, finish=overhead,
                     names={"method": "technique"})
    lines = [f"# Budget versus overhead: `{name}`", "",
             (f"`memopt solve {name} --objective time --budget <r>x <technique> -t {args.time_limit:g}` (method "
              f"`auto`); best baseline peak {base}, Σ c(v) = {inst.total_time}"
              + (f", bandwidth {inst.machine.bandwidth:g}" if inst.machine.bandwidth else "") + ". "
              "Each cell: overhead (makespan / Σ c − 1) and status (✓ optimal, ~ feasible, ✗ infeasible, "
              "? nothing found). Timings provisional."), "",
             "| budget | " + " | ".join(t[0] for t in techniques) + " |",
             "|---|" + "---:|" * len(techniques)]
    by = {(r["ratio"], r["technique"]): r for r in rows}
    for r in ratios:
        cells = []
        for label, _, _ in techniques:
            row = by[(r, label)]
            mark = {"optimal": "✓", "feasible": "~", "infeasible": "✗"}.get(row["status"], "?")
            cells.append(mark if row.get("overhead") is None else f"{100 * row['overhead']:.2f} % {mark}")
        lines.append(f"| {r:g}× ({math.ceil(r * base)}) | " + " | ".join(cells) + " |")
    print(format_table(rows, {"method": "technique"}))
    write_text(os.path.join(out, "budget-curve.md"), "\n".join(lines))
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "benchmarks"))
    ap.add_argument("--sets", default="fixed,free,schedule,offload")
    ap.add_argument("--ratios", default=None, help="budget ratios (default 0.9,0.8; --quick: 0.9)")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds per run (default 60; --quick: 1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=None, help="fnmatch pattern(s) of graph names, comma separated")
    ap.add_argument("--methods", default=None, help="labels of the variants to run, comma separated")
    ap.add_argument("--curve", default=None, metavar="INSTANCE", help="budget-versus-overhead table of one instance")
    ap.add_argument("--curve-ratios", default=None, help="default 1.0,0.9,0.8,0.7,0.6,0.5 (--quick: 1.0,0.8)")
    add_common_args(ap, lock="/tmp/memopt-bench.lock")
    args = ap.parse_args(argv)
    if args.time_limit is None:
        args.time_limit = 1.0 if args.quick else 60.0
    out = out_dir(args)
    if args.curve:
        return curve(args, out)
    ratios = [float(r) for r in (args.ratios or ("0.9" if args.quick else "0.9,0.8")).split(",")]
    sets = args.sets.split(",")
    want = None if args.methods is None else set(args.methods.split(","))
    pats = None if args.only is None else args.only.split(",")
    table = ResultsCSV(os.path.join(out, "budget.csv"), SCHEMA, KEY)
    rows: list[dict[str, Any]] = []
    for name, load in graphs(args.shared, args.quick):
        if pats and not any(fnmatch.fnmatch(name, p) for p in pats):
            continue
        inst = load()
        plans = []
        if "fixed" in sets:
            plans.append(("fixed", inst, FIXED, True, False))
        if "free" in sets:
            plans.append(("free", inst, FREE, True, False))
        if "schedule" in sets:
            plans.append(("schedule", inst, SCHEDULE, False, False))
        if "offload" in sets:
            off = inst if inst.machine.bandwidth is not None else (
                inst.with_machine(bandwidth=LAYERED_BANDWIDTH) if "layered" in name else None)
            if off is not None:
                plans.append(("offload", off, OFFLOAD, False, True))
                plans.append(("offload+recompute", off, OFFLOAD, True, True))
        cases = []
        for set_name, g, variants, rc, off in plans:
            for ratio in ratios:
                for v in variants:
                    if want and v.label not in want:
                        continue
                    if v.method not in CATALOG or (v.max_tasks and g.n > v.max_tasks):
                        continue
                    cases.append(case(set_name, name, g, ratio, v, recompute=rc, offload=off,
                                      time_limit=args.time_limit, threads=args.threads))
        rows += run_cases(cases, table, fresh=args.fresh, lock=args.lock, finish=finish, names=NAMES)
    print()
    print(format_table(rows, NAMES))
    write_markdown(table.rows, os.path.join(out, "budget.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
