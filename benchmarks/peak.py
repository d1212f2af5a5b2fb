"""Peak benchmark: the optimal pure-schedule peak of every graph, by every peak method.

    python benchmarks/peak.py [--shared ../shared/benchmarks] [--only TEXTS] [--methods LABELS]
        [--fresh] [--quick] [--out DIR]

Graphs: ``../shared/benchmarks/nodelink/*.json``, every instance shipped under
``instances/`` (machine budget removed: the objective is the optimal peak),
random series-parallel graphs of 50,000 tasks (buffer, tensor and general
forms) and random layered graphs of 1,000 tasks.

Methods: the best baseline order, ``liu``, ``series-parallel``,
``downset-dp``, ``peak-cp`` (CP-SAT), ``peak-milp`` with HiGHS and with CBC,
and ``auto``; each with a time limit (``auto``: 10 s, 60 s on the layered
1,000-task graphs; the others 10 s). A method that does not apply says why
(status ``refused``). Formulations are skipped above 5,000 tasks.

Each run is a fresh process (:mod:`memopt.bench.harness`): its wall time and
peak memory (``wall_seconds``, ``max_rss_mb``) are measured with its result.
Writes ``results/peak.csv`` (one row per graph and method; resumed: a run
already there is kept unless ``--fresh``) and ``results/peak.md`` (the
summary per graph, the status of every method, and the savings of the
optimal order over the baselines on the shipped instances), and prints the
standard table. ``--quick``: four small graphs, 2 s per method, into
``results/tmp``.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from collections.abc import Callable

from memopt import Instance, load_instance
from memopt.bench.harness import (
    ResultsCSV,
    Schema,
    add_common_args,
    format_table,
    out_dir,
    run_cases,
    solve_case,
    write_text,
)
from memopt.heuristics.orders import baseline_peaks
from memopt.transforms.reduction import reduce_peak

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = [("baseline", None), ("liu", None), ("series-parallel", None), ("downset-dp", None),
           ("peak-cp", None), ("peak-milp", "highs"), ("peak-milp", "cbc"), ("auto", None)]
FORMULATION_MAX_TASKS = 5000
SCHEMA = Schema.of("group instance tasks:int edges:int reduced:int reduce_seconds:float best_baseline:num "
                   "baseline_name peak_given:num peak_dfs:num peak_rpo:num peak_greedy:num method time_limit:float "
                   "status value:num bound:num gap:float seconds:float plan_by bound_by message")
KEY = ("instance", "method")


def graphs(shared: str, quick: bool) -> list[tuple[str, str, Callable[[], Instance]]]:
    """(group, name, loader) for every graph of the benchmark (``quick``: four small ones)."""
    from memopt.generators import random_layered, random_series_parallel

    out: list[tuple[str, str, Callable[[], Instance]]] = []
    if quick:
        for p in glob.glob(os.path.join(shared, "nodelink", "fcn8-test.json")):
            out.append(("shared", "fcn8-test", lambda p=p: load_instance(p)))
        for name in ("tiny",):
            out.append(("instances", name, lambda name=name: load_instance(os.path.join(ROOT, "instances",
                                                                                        name + ".yaml"))))
        out.append(("sp-small", "sp-n1000-general-s1", lambda: random_series_parallel(1000, seed=1, form="general")))
        out.append(("layered-small", "layered-n100-s1", lambda: random_layered(100, seed=1)))
        return out
    for p in sorted(glob.glob(os.path.join(shared, "nodelink", "*.json"))):
        out.append(("shared", os.path.splitext(os.path.basename(p))[0], lambda p=p: load_instance(p)))
    shipped = sorted(glob.glob(os.path.join(ROOT, "instances", "**", "*.yaml"), recursive=True)
                     + glob.glob(os.path.join(ROOT, "instances", "**", "*.json"), recursive=True))
    for p in shipped:
        name = os.path.relpath(p, os.path.join(ROOT, "instances"))
        out.append(("instances", os.path.splitext(name)[0], lambda p=p: load_instance(p)))
    for form in ("buffer", "tensor", "general"):
        for s in (1, 2, 3):
            out.append(("sp-50k", f"sp-n50000-{form}-s{s}",
                        lambda s=s, form=form: random_series_parallel(50000, seed=s, form=form)))
    for s in (1, 2, 3):
        out.append(("layered-1k", f"layered-n1000-s{s}", lambda s=s: random_layered(1000, seed=s)))
    return out


def label(method: str, backend: str | None) -> str:
    return method + (f":{backend}" if backend else "")


def time_limit(group: str, method: str, quick: bool) -> float:
    if quick:
        return 2.0
    if method == "auto":
        return 60.0 if group == "layered-1k" else 10.0
    return 10.0


def graph_fields(group: str, name: str, inst: Instance) -> dict:
    """The columns of a graph, the same for every method: size, reduction, baseline peaks."""
    t0 = time.perf_counter()
    red = reduce_peak(inst)
    red_s = time.perf_counter() - t0
    peaks = baseline_peaks(inst)
    return {"group": group, "instance": name, "tasks": inst.n, "edges": inst.num_edges,
            "reduced": red.n, "reduce_seconds": round(red_s, 3), "best_baseline": min(peaks.values()),
            "baseline_name": min(peaks, key=peaks.get), **{f"peak_{k}": v for k, v in peaks.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "benchmarks"))
    ap.add_argument("--only", default=None, help="only graphs whose name contains one of these texts or whose "
                    "group is one (comma separated; groups: shared, instances, sp-50k, layered-1k)")
    ap.add_argument("--methods", default=None, help="only these methods (comma separated, e.g. auto,peak-milp:highs)")
    ap.add_argument("--update", action="store_true", help="the same as --fresh (kept for old command lines)")
    add_common_args(ap)
    args = ap.parse_args(argv)
    want = None if args.methods is None else set(args.methods.split(","))
    out = out_dir(args)
    table = ResultsCSV(os.path.join(out, "peak.csv"), SCHEMA, KEY)
    fresh = args.fresh or args.update
    rows: list[dict] = []
    for group, name, load in graphs(args.shared, args.quick):
        if args.only and not any(t in name or t == group for t in args.only.split(",")):
            continue
        labels = [label(m, b) for m, b in METHODS if want is None or label(m, b) in want]
        if not fresh and all((name, m) in table for m in labels):
            continue  # every run of this graph is in the table already: do not even load it
        inst = load()
        if inst.machine.budget is not None:
            inst = inst.with_machine(budget=None)  # the optimal peak, whatever the machine
        base = graph_fields(group, name, inst)
        cases = []
        for method, backend in METHODS:
            if label(method, backend) not in labels:
                continue
            if method in ("peak-cp", "peak-milp") and inst.n > FORMULATION_MAX_TASKS:
                continue
            limit = time_limit(group, method, args.quick)
            fields = {**base, "method": label(method, backend), "time_limit": limit}
            cases.append(solve_case(fields, inst, "peak", method, time_limit=limit,
                                    options={"backend": backend} if backend else None,
                                    stats=("plan_by", "bound_by")))
        rows += run_cases(cases, table, fresh=fresh, lock=args.lock)
    print()
    print(format_table(rows))
    md = markdown(table.rows)
    write_text(os.path.join(out, "peak.md"), md)
    print(md)
    return 0


def _fmt(x) -> str:
    if x is None or x == "":
        return ""
    if isinstance(x, float):
        return f"{x:.2f}"
    return str(x)


def markdown(rows: list[dict]) -> str:
    by: dict[str, dict[str, dict]] = {}
    order: list[str] = []
    for r in rows:
        if r["instance"] not in by:
            by[r["instance"]] = {}
            order.append(r["instance"])
        by[r["instance"]][r["method"]] = r
    methods = [m + (f":{b}" if b else "") for m, b in METHODS]
    out = ["# Optimal peak (objective `peak`)", "",
           ("Generated by `python benchmarks/peak.py` (2 cores; timings measured while other work ran may be "
            "provisional). Machine budgets are removed: this is the minimum peak of a pure schedule. "
            "`reduced`: clusters left by the peak-preserving reductions (`memopt info --reduce`). "
            "`auto` has 10 s (60 s on the 1,000-task layered graphs); the other methods 10 s each. "
            "Each run is its own process: `max RSS` is its peak resident memory (MiB; empty for rows made "
            "before it was measured). Rows may come from different (resumed or `--fresh`) runs."), "",
           "## auto, per graph", "",
           ("| group | instance | tasks | reduced | best baseline | auto value | bound | status | gap | seconds "
            "| saving vs baseline | plan from | bound from | max RSS MB |"),
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in order:
        a = by[name].get("auto")
        if a is None:
            continue
        saving = ""
        if a.get("value") not in (None, "") and a["best_baseline"]:
            saving = f"{100 * (a['best_baseline'] - a['value']) / a['best_baseline']:.1f}%"
        gap = "" if a.get("gap") in ("", None) else f"{100 * a['gap']:.2f}%"
        out.append(f"| {a['group']} | {name} | {a['tasks']} | {a['reduced']} "
                   f"| {a['best_baseline']} ({a['baseline_name']}) "
                   f"| {_fmt(a.get('value'))} | {_fmt(a.get('bound'))} | {a['status']} | {gap} | {a['seconds']:.2f} "
                   f"| {saving} | {_fmt(a.get('plan_by'))} | {_fmt(a.get('bound_by'))} | {_fmt(a.get('max_rss_mb'))} |")
    out += ["", "## every method: status and seconds", "",
            ("o = optimal (proven), f = feasible (bound not reached), i = infeasible, – = refused (does not "
             "apply), blank = not run (formulations above 5,000 tasks)."), "",
            "| instance | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    short = {"optimal": "o", "feasible": "f", "infeasible": "i", "refused": "–", "unknown": "?"}
    for name in order:
        cells = []
        for m in methods:
            r = by[name].get(m)
            if r is None:
                cells.append("")
            elif r["status"] == "refused":
                cells.append("–")
            else:
                cells.append(f"{short.get(r['status'], r['status'])} {r['seconds']:.2f}s")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += savings(order, by)
    # targets
    out += ["", "## targets", ""]
    shared = [by[n]["auto"] for n in order if by[n].get("auto") and by[n]["auto"]["group"] == "shared"]
    ok = [a for a in shared if a["status"] == "optimal" and a["seconds"] < 10]
    not_ok = ", ".join(f"{a['instance']} {a['status']} gap {100 * (a['gap'] or 0):.2f}%" for a in shared if a not in ok)
    out.append(f"- shared graphs proven optimal by `auto` in under 10 s: {len(ok)} of {len(shared)}"
               + ("" if len(ok) == len(shared) else " (not: " + not_ok + ")"))
    sp = [by[n]["auto"] for n in order if by[n].get("auto") and by[n]["auto"]["group"] == "sp-50k"]
    for form in ("buffer", "tensor", "general"):
        xs = [a for a in sp if f"-{form}-" in a["instance"]]
        if xs:
            okx = [a for a in xs if a["status"] == "optimal" and a["seconds"] < 10]
            out.append(f"- 50,000-task series-parallel graphs ({form} form) proven optimal in under 10 s: "
                       f"{len(okx)} of {len(xs)}; worst gap "
                       f"{max(100 * (a['gap'] or 0) for a in xs):.2f}%, slowest {max(a['seconds'] for a in xs):.2f}s")
    ly = [by[n]["auto"] for n in order if by[n].get("auto") and by[n]["auto"]["group"] == "layered-1k"]
    if ly:
        out.append("- 1,000-task layered graphs within 60 s: " + ", ".join(
            f"{a['instance']} {a['status']} gap {100 * (a['gap'] or 0):.2f}% in {a['seconds']:.1f}s" for a in ly))
    return "\n".join(out) + "\n"


def savings(order: list[str], by: dict[str, dict[str, dict]]) -> list[str]:
    """The optimal order against each baseline order, on the shipped instances."""
    out = ["", "## savings of the optimal order on the shipped instances", "",
           "Peak of each baseline order and of `auto`'s order; saving = 1 − auto / baseline (✓: proven optimal).",
           "",
           "| instance | tasks | given | dfs | rpo | greedy | optimal | vs given | vs best baseline |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name in order:
        a = by[name].get("auto")
        if a is None or a["group"] != "instances" or a.get("value") in (None, ""):
            continue
        v = a["value"]
        mark = " ✓" if a["status"] == "optimal" else f" (gap {100 * (a['gap'] or 0):.1f}%)"
        out.append(f"| {name} | {a['tasks']} | {a['peak_given']} | {a['peak_dfs']} | {a['peak_rpo']} | "
                   f"{a['peak_greedy']} | {v}{mark} | {_saving(a['peak_given'], v)} "
                   f"| {_saving(a['best_baseline'], v)} |")
    return out


def _saving(baseline, value) -> str:
    return f"{100 * (baseline - value) / baseline:.1f}%" if baseline else ""



if __name__ == "__main__":
    sys.exit(main())
