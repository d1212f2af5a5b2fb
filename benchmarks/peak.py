"""Peak benchmark: the optimal pure-schedule peak of every graph, by every peak method.

    flock /tmp/memopt-bench.lock python benchmarks/peak.py [--shared ../shared/benchmarks] [--quick]

Graphs: ``../shared/benchmarks/nodelink/*.json``, every instance shipped under
``instances/`` (machine budget removed: the objective is the optimal peak),
random series-parallel graphs of 50,000 tasks (buffer, tensor and general
forms) and random layered graphs of 1,000 tasks.

Methods: the best baseline order, ``liu``, ``series-parallel``,
``downset-dp``, ``peak-cp`` (CP-SAT), ``peak-milp`` with HiGHS and with CBC,
and ``auto``; each with a time limit (``auto``: 10 s, 60 s on the layered
1,000-task graphs; the others 10 s). A method that does not apply says why
(status ``refused``). Formulations are skipped above 5,000 tasks.

Writes ``results/peak.csv`` (one row per graph and method) and
``results/peak.md`` (the summary per graph, the status of every method, and
the savings of the optimal order over the baselines on the shipped
instances), and prints the summary.
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from memopt import MemoptError, load_instance, solve  # noqa: E402
from memopt.heuristics.orders import baseline_peaks  # noqa: E402
from memopt.transforms.reduction import reduce_peak  # noqa: E402

METHODS = [("baseline", None), ("liu", None), ("series-parallel", None), ("downset-dp", None),
           ("peak-cp", None), ("peak-milp", "highs"), ("peak-milp", "cbc"), ("auto", None)]
FORMULATION_MAX_TASKS = 5000


def graphs(shared: str, quick: bool) -> list[tuple[str, str, object]]:
    """(group, name, loader) for every graph of the benchmark."""
    out: list[tuple[str, str, object]] = []
    for p in sorted(glob.glob(os.path.join(shared, "nodelink", "*.json"))):
        out.append(("shared", os.path.splitext(os.path.basename(p))[0], lambda p=p: load_instance(p)))
    shipped = sorted(glob.glob(os.path.join(ROOT, "instances", "**", "*.yaml"), recursive=True)
                     + glob.glob(os.path.join(ROOT, "instances", "**", "*.json"), recursive=True))
    for p in shipped:
        name = os.path.relpath(p, os.path.join(ROOT, "instances"))
        out.append(("instances", os.path.splitext(name)[0], lambda p=p: load_instance(p)))
    from memopt.generators import random_layered, random_series_parallel

    seeds = (1,) if quick else (1, 2, 3)
    for form in ("buffer", "tensor", "general"):
        for s in seeds:
            out.append(("sp-50k", f"sp-n50000-{form}-s{s}",
                        lambda s=s, form=form: random_series_parallel(50000, seed=s, form=form)))
    for s in seeds:
        out.append(("layered-1k", f"layered-n1000-s{s}", lambda s=s: random_layered(1000, seed=s)))
    return out


def run_method(inst, method: str, backend: str | None, limit: float) -> dict:
    kw = {"backend": backend} if backend else {}
    t0 = time.perf_counter()
    try:
        res = solve(inst, "peak", method, time_limit=limit, **kw)
    except MemoptError as e:
        return {"status": "refused", "seconds": round(time.perf_counter() - t0, 3), "message": str(e).splitlines()[0][:160]}
    return {
        "status": res.status, "value": res.value, "bound": res.bound,
        "gap": "" if res.gap is None else round(res.gap, 5), "seconds": round(time.perf_counter() - t0, 3),
        "plan_by": res.stats.get("plan_by", ""), "bound_by": res.stats.get("bound_by", ""), "message": (res.message or "")[:160],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "benchmarks"))
    ap.add_argument("--quick", action="store_true", help="one seed per generated family, 3 s per method")
    ap.add_argument("--only", default=None, help="only graphs whose name contains one of these texts or whose group is one (comma separated; groups: shared, instances, sp-50k, layered-1k)")
    ap.add_argument("--out", default=os.path.join(ROOT, "results"))
    ap.add_argument("--methods", default=None, help="only these methods (comma separated, e.g. auto,peak-milp:highs)")
    ap.add_argument("--update", action="store_true",
                    help="keep the rows of results/peak.csv that are not re-run (with --only/--methods)")
    args = ap.parse_args(argv)
    want = None if args.methods is None else set(args.methods.split(","))
    rows: list[dict] = []
    for group, name, load in graphs(args.shared, args.quick):
        if args.only and not any(t in name or t == group for t in args.only.split(",")):
            continue
        inst = load()
        if inst.machine.budget is not None:
            inst = inst.with_machine(budget=None)  # the optimal peak, whatever the machine
        t0 = time.perf_counter()
        red = reduce_peak(inst)
        red_s = time.perf_counter() - t0
        peaks = baseline_peaks(inst)
        base = {"group": group, "instance": name, "tasks": inst.n, "edges": inst.num_edges,
                "reduced": red.n, "reduce_seconds": round(red_s, 3), "best_baseline": min(peaks.values()),
                "baseline_name": min(peaks, key=peaks.get), **{f"peak_{k}": v for k, v in peaks.items()}}
        for method, backend in METHODS:
            if want and method + (f":{backend}" if backend else "") not in want:
                continue
            if method in ("peak-cp", "peak-milp") and inst.n > FORMULATION_MAX_TASKS:
                continue
            if method == "auto":
                limit = 60.0 if group == "layered-1k" else 10.0
            else:
                limit = 3.0 if args.quick else 10.0
            r = run_method(inst, method, backend, limit)
            row = {**base, "method": method + (f":{backend}" if backend else ""), "time_limit": limit, **r}
            rows.append(row)
            print(f"{name:42s} {row['method']:16s} {r['status']:10s} {str(r.get('value', '')):>14s} "
                  f"{str(r.get('bound', '')):>14s} {r['seconds']:8.2f}s", flush=True)
    os.makedirs(args.out, exist_ok=True)
    if args.update:
        rows = merge_rows(os.path.join(args.out, "peak.csv"), rows)
    fields = ["group", "instance", "tasks", "edges", "reduced", "reduce_seconds", "best_baseline", "baseline_name",
              "peak_given", "peak_dfs", "peak_rpo", "peak_greedy", "method", "time_limit", "status", "value", "bound", "gap", "seconds", "plan_by", "bound_by", "message"]
    with open(os.path.join(args.out, "peak.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in fields})
    md = markdown(rows)
    with open(os.path.join(args.out, "peak.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


def merge_rows(path: str, new: list[dict]) -> list[dict]:
    """The rows of ``path`` with those re-run replaced by ``new`` (same instance and method), in file order."""
    if not os.path.exists(path):
        return new
    fresh = {(r["instance"], r["method"]): r for r in new}
    out: list[dict] = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            r = {k: _typed(v) for k, v in r.items()}
            out.append(fresh.pop((r["instance"], r["method"]), r))
    return out + list(fresh.values())


def _typed(x: str):
    """A CSV cell back to int/float where it is one (the markdown does arithmetic on them)."""
    for t in (int, float):
        try:
            return t(x)
        except ValueError:
            pass
    return x


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
           "Generated by `python benchmarks/peak.py` (2 cores; timings measured while other work ran may be "
           "provisional). Machine budgets are removed: this is the minimum peak of a pure schedule. "
           "`reduced`: clusters left by the peak-preserving reductions (`memopt info --reduce`). "
           "`auto` has 10 s (60 s on the 1,000-task layered graphs); the other methods 10 s each. "
           "Rows of `auto` and `downset-dp` may come from a later partial re-run (`--update`) than the other methods'.", "",
           "## auto, per graph", "",
           "| group | instance | tasks | reduced | best baseline | auto value | bound | status | gap | seconds | saving vs baseline | plan from | bound from |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in order:
        a = by[name].get("auto")
        if a is None:
            continue
        saving = ""
        if a.get("value") not in (None, "") and a["best_baseline"]:
            saving = f"{100 * (a['best_baseline'] - a['value']) / a['best_baseline']:.1f}%"
        gap = "" if a.get("gap") in ("", None) else f"{100 * a['gap']:.2f}%"
        out.append(f"| {a['group']} | {name} | {a['tasks']} | {a['reduced']} | {a['best_baseline']} ({a['baseline_name']}) "
                   f"| {_fmt(a.get('value'))} | {_fmt(a.get('bound'))} | {a['status']} | {gap} | {a['seconds']:.2f} "
                   f"| {saving} | {a.get('plan_by', '')} | {a.get('bound_by', '')} |")
    out += ["", "## every method: status and seconds", "",
            "o = optimal (proven), f = feasible (bound not reached), i = infeasible, – = refused (does not apply), "
            "blank = not run (formulations above 5,000 tasks).", "",
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
    out.append(f"- shared graphs proven optimal by `auto` in under 10 s: {len(ok)} of {len(shared)}"
               + ("" if len(ok) == len(shared) else " (not: " + ", ".join(
                   f"{a['instance']} {a['status']} gap {100 * (a['gap'] or 0):.2f}%" for a in shared if a not in ok) + ")"))
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
        out.append(f"- 1,000-task layered graphs within 60 s: " + ", ".join(
            f"{a['instance']} {a['status']} gap {100 * (a['gap'] or 0):.2f}% in {a['seconds']:.1f}s" for a in ly))
    return "\n".join(out) + "\n"


def savings(order: list[str], by: dict[str, dict[str, dict]]) -> list[str]:
    """The optimal order against each baseline order, on the shipped instances."""
    out = ["", "## savings of the optimal order on the shipped instances", "",
           "Peak of each baseline order and of `auto`'s order; saving = 1 − auto / baseline "
           "(✓: proven optimal).", "",
           "| instance | tasks | given | dfs | rpo | greedy | optimal | vs given | vs best baseline |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name in order:
        a = by[name].get("auto")
        if a is None or a["group"] != "instances" or a.get("value") in (None, ""):
            continue
        v = a["value"]
        pct = lambda b: f"{100 * (b - v) / b:.1f}%" if b else ""  # noqa: E731
        mark = " ✓" if a["status"] == "optimal" else f" (gap {100 * (a['gap'] or 0):.1f}%)"
        out.append(f"| {name} | {a['tasks']} | {a['peak_given']} | {a['peak_dfs']} | {a['peak_rpo']} | "
                   f"{a['peak_greedy']} | {v}{mark} | {pct(a['peak_given'])} | {pct(a['best_baseline'])} |")
    return out


if __name__ == "__main__":
    sys.exit(main())
