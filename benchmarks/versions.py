"""The spine against the code before it: rows of results/peak.csv and results/budget.csv, old and new, side by side.

    python benchmarks/versions.py [--old f97e1d2] [--tree /tmp/memopt-old] [--benchmarks peak,budget]
        [--only TEXTS] [--methods A,B] [--max-seconds S] [--all] [--fresh] [--quick] [--out DIR]

The old code is the commit before the spine (``--old``, default ``f97e1d2``),
checked out once as a git worktree (``--tree``, default ``/tmp/memopt-old``:
``git worktree add --detach``). Each selected row of the committed
``results/peak.csv`` and ``results/budget.csv`` (same instance, method,
options, budget and time limit) is solved twice, by ``python -P -c`` calling
``memopt.solve(instance, objective, method, time_limit=, budget=,
recompute=, offload=, threads=, **options)`` — once with ``PYTHONPATH`` set to
the old tree, once to this one — in separate processes whose wall time and
peak memory are measured (:func:`memopt.bench.isolate.spawn_measured`). Old
and new alternate per row (old first on even rows, new first on odd ones) so
that both share the machine's noise. Each side loads or generates the
instance with its own code. Both get the same ``-t``: the old code had no
default time limit.

Rows: by default the rows that finished before 90 % of their time limit in
the committed tables (``--all``: every row that was not refused), of at most
``--max-seconds`` committed seconds when given; ``budget.csv`` rows run with
``--budget-time-limit`` (default 60 s, the table's) and 2 threads.

Writes ``results/versions.csv`` (per row: old and new status, value, bound,
solve seconds, wall seconds, peak RSS; ratio = new / old solve seconds, with
0.01 s as the floor; whether the new value and bound are the same, better or
worse; resumed unless ``--fresh``) and ``results/versions.md`` (per
benchmark: the geometric mean of the ratios, the value and bound checks, and
the rows slower than noise: ratio > 1.25 and more than 0.2 s slower).
``--quick``: three fast rows, into ``results/tmp``.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import subprocess
import sys
from typing import Any

from memopt.bench.harness import (
    Case,
    ResultsCSV,
    Schema,
    add_common_args,
    fmt,
    geomean,
    locked,
    md_table,
    out_dir,
    run_cases,
    write_text,
)
from memopt.bench.isolate import Call, last_line, load_script, spawn_measured

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIDE = "status value:num bound:num seconds:float wall:float mb:float"
SCHEMA = Schema.of(["benchmark", "row", "instance", "method", "time_limit:float"]
                   + [f"old_{w}" for w in SIDE.split()] + [f"new_{w}" for w in SIDE.split()]
                   + ["ratio:float", "wall_ratio:float", "value_check", "bound_check", "message"], measured=False)
KEY = ("benchmark", "row")
NAMES = {"instance": "row", "method": lambda r: "old → new", "status": lambda r: f"{r['old_status']}→{r['new_status']}",
         "value": lambda r: f"{fmt(r['old_value'])}→{fmt(r['new_value'])}",
         "bound": lambda r: f"{fmt(r['old_bound'])}→{fmt(r['new_bound'])}",
         "seconds": lambda r: f"{fmt(r['old_seconds'])}→{fmt(r['new_seconds'])}",
         "wall_seconds": lambda r: f"{fmt(r['old_wall'])}→{fmt(r['new_wall'])}",
         "max_rss_mb": lambda r: f"{fmt(r['old_mb'], 0)}→{fmt(r['new_mb'], 0)}"}
QUICK = {"peak": [("tiny", "auto"), ("fcn8-train", "downset-dp")],
         "budget": [("free", "vgg16-train", "0.9", "planner")]}

#: what each side runs: load or generate the instance, solve, print one JSON line (old and new API alike)
CHILD = r"""
import json, sys, time
spec = json.loads(sys.argv[1])
import memopt
src = spec["source"]
if src.get("path"):
    inst = memopt.load_instance(src["path"])
else:
    import memopt.generators as gen
    inst = getattr(gen, src["generator"])(**src["args"])
if src.get("machine"):
    inst = inst.with_machine(**src["machine"])
try:
    res = memopt.solve(inst, spec["objective"], spec["method"], time_limit=spec["time_limit"], budget=spec["budget"],
                       recompute=spec["recompute"], offload=spec["offload"], threads=spec["threads"], **spec["options"])
    out = {"status": str(getattr(res.status, "value", res.status)), "value": res.value, "bound": res.bound,
           "seconds": res.solve_seconds}
except memopt.MemoptError as e:
    out = {"status": "refused", "message": str(e).splitlines()[0]}
print("MEMOPT-VERSIONS " + json.dumps(out, default=float))
"""


def worktree(tree: str, commit: str) -> str:
    """The old code checked out at ``tree`` (made once with ``git worktree add --detach``)."""
    want = subprocess.run(["git", "-C", ROOT, "rev-parse", commit], check=True, capture_output=True,
                          text=True).stdout.strip()
    if not os.path.isdir(tree):
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", tree, want], check=True,
                       stdout=subprocess.DEVNULL)
    have = subprocess.run(["git", "-C", tree, "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    if have != want:
        sys.exit(f"{tree} is at {have[:10]}, not {commit}: remove it (git worktree remove {tree}) or give --tree")
    return tree


# ------------------------------------------------------------------ rows of the committed tables
def peak_source(shared: str, group: str, name: str) -> dict | None:
    """How both sides get the instance of a results/peak.csv row (machine budget removed, as peak.py does)."""
    machine = {"budget": None}
    if group == "shared":
        return {"path": os.path.join(shared, "nodelink", f"{name}.json"), "machine": machine}
    if group == "instances":
        found = glob.glob(os.path.join(ROOT, "instances", f"{name}.yaml")) + glob.glob(
            os.path.join(ROOT, "instances", f"{name}.json"))
        return {"path": found[0], "machine": machine} if found else None
    if group == "sp-50k":  # sp-n50000-FORM-sSEED
        _, n, form, seed = name.split("-")
        return {"generator": "random_series_parallel", "args": {"n": int(n[1:]), "seed": int(seed[1:]), "form": form},
                "machine": machine}
    if group == "layered-1k":  # layered-nN-sSEED
        _, n, seed = name.split("-")
        return {"generator": "random_layered", "args": {"n": int(n[1:]), "seed": int(seed[1:])}, "machine": machine}
    return None


def budget_source(shared: str, name: str, offload: bool) -> dict | None:
    """How both sides get the instance of a results/budget.csv row (budget.py's graphs)."""
    nodelink = os.path.join(shared, "nodelink", f"{name}.json")
    nn = os.path.join(ROOT, "instances", "nn", f"{name}.yaml")
    if os.path.exists(nodelink):
        src: dict[str, Any] = {"path": nodelink}
    elif os.path.exists(nn):
        src = {"path": nn}
    elif name.startswith("layered-n"):  # layered-nN-sSEED
        _, n, seed = name.split("-")
        src = {"generator": "random_layered", "args": {"n": int(n[1:]), "seed": int(seed[1:])}}
    else:
        return None
    if offload and "layered" in name:
        src["machine"] = {"bandwidth": 4}  # budget.py's LAYERED_BANDWIDTH (a graph without one)
    return src


def finished(r: dict, limit: float, args: argparse.Namespace) -> bool:
    secs = float(r["seconds"]) if r.get("seconds") else None
    if secs is None:
        return False
    if args.max_seconds is not None and secs > args.max_seconds:
        return False
    return args.all or secs < 0.9 * limit


def wanted(name: str, method: str, args: argparse.Namespace) -> bool:
    return ((args.only is None or any(t in name for t in args.only.split(",")))
            and (args.methods is None or method in args.methods.split(",")))


def peak_specs(args: argparse.Namespace) -> list[tuple[dict, dict]]:
    with open(os.path.join(ROOT, "results", "peak.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["status"] not in ("refused", "error")]
    if args.quick:
        rows = [r for want in QUICK["peak"] for r in rows if (r["instance"], r["method"]) == want][:2]
    out = []
    for r in rows:
        limit = float(r["time_limit"])
        if not args.quick and not (finished(r, limit, args) and wanted(r["instance"], r["method"], args)):
            continue
        if args.sets and r["set"] not in args.sets.split(","):
            continue
        src = peak_source(args.shared, r["group"], r["instance"])
        if src is None:
            continue
        method, _, backend = r["method"].partition(":")
        fields = {"benchmark": "peak", "row": f"{r['instance']} {r['method']}", "instance": r["instance"],
                  "method": r["method"], "time_limit": limit}
        out.append((fields, {"source": src, "objective": "peak", "method": method, "time_limit": limit,
                             "budget": None, "recompute": False, "offload": False, "threads": 2,
                             "options": {"backend": backend} if backend else {}}))
    return out


def budget_specs(args: argparse.Namespace) -> list[tuple[dict, dict]]:
    mod = load_script(os.path.join(ROOT, "benchmarks", "budget.py"))  # its variants: labels -> method, options
    variants = {}
    for set_name, vs in (("fixed", mod.FIXED), ("free", mod.FREE), ("schedule", mod.SCHEDULE),
                         ("offload", mod.OFFLOAD), ("offload+recompute", mod.OFFLOAD)):
        for v in vs:
            variants[(set_name, v.label)] = v
    with open(os.path.join(ROOT, "results", "budget.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["status"] not in ("refused", "error")]
    if args.quick:
        rows = [r for want in QUICK["budget"] for r in rows
                if (r["set"], r["instance"], r["ratio"], r["method"]) == want]
    out = []
    limit = args.budget_time_limit
    for r in rows:
        if not args.quick and not (finished(r, limit, args) and wanted(r["instance"], r["method"], args)):
            continue
        if args.sets and r["set"] not in args.sets.split(","):
            continue
        v = variants.get((r["set"], r["method"]))
        offload = r["offload"] == "True"
        src = budget_source(args.shared, r["instance"], offload)
        if v is None or src is None:
            continue
        fields = {"benchmark": "budget", "row": f"{r['set']} {r['instance']} r={r['ratio']} {r['method']}",
                  "instance": r["instance"], "method": r["method"], "time_limit": limit}
        out.append((fields, {"source": src, "objective": "time", "method": v.method, "time_limit": limit,
                             "budget": int(r["budget"]), "recompute": r["recompute"] == "True", "offload": offload,
                             "threads": 2, "options": dict(v.options)}))
    return out


# ------------------------------------------------------------------ running one row, old and new
def run_side(tree: str, spec: dict, kill_after: float) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = tree
    run = spawn_measured([sys.executable, "-P", "-c", CHILD, json.dumps(spec)], kill_after=kill_after, env=env,
                         cwd="/tmp", capture_stdout=True)
    out: dict[str, Any] = {"wall": round(run.wall, 3),
                           "mb": None if run.max_rss is None else round(run.max_rss / 2**20, 1)}
    line = next((x for x in run.stdout.decode(errors="replace").splitlines() if x.startswith("MEMOPT-VERSIONS ")), None)
    if line is None:
        out.update(status="killed" if run.killed else "error", message=last_line(run.stderr)[:200])
    else:
        res = json.loads(line.split(" ", 1)[1])
        out.update(status=res["status"], value=res.get("value"), bound=res.get("bound"),
                   seconds=None if res.get("seconds") is None else round(res["seconds"], 3),
                   message=res.get("message"))
    return out


def check(old: Any, new: Any, lower_is_better: bool) -> str:
    if old is None and new is None:
        return "-"
    if old is None:
        return "better"
    if new is None:
        return "worse"
    tol = 1e-9 * max(1.0, abs(old))
    if abs(new - old) <= tol:
        return "same"
    return "better" if (new < old) == lower_is_better else "worse"


def run_row(case: Case, *, lock: str | None = None) -> dict[str, Any]:
    """Old and new on one row, in the case's order (``case.call.kwargs``: trees, spec, order)."""
    kw = case.call.kwargs
    sides = {}
    with locked(lock):
        for side in kw["order"]:
            sides[side] = run_side(kw[side], kw["spec"], case.kill_margin)
    row = dict(case.fields)
    for side, res in sides.items():
        row.update({f"{side}_{k}": v for k, v in res.items() if k != "message"})
    o, n = sides["old"], sides["new"]
    if o.get("seconds") is not None and n.get("seconds") is not None:
        row["ratio"] = round(max(n["seconds"], 0.01) / max(o["seconds"], 0.01), 3)
    row["wall_ratio"] = round(n["wall"] / o["wall"], 3) if o["wall"] else None
    row["value_check"] = check(o.get("value"), n.get("value"), lower_is_better=True)
    row["bound_check"] = check(o.get("bound"), n.get("bound"), lower_is_better=False)
    row["message"] = "; ".join(f"{s}: {r['message']}" for s, r in sides.items() if r.get("message"))
    return row


def slower(r: dict) -> bool:
    """Slower than noise: more than 25 % and more than 0.2 s slower."""
    return (r.get("ratio") is not None and r["ratio"] > 1.25
            and (r["new_seconds"] or 0) - (r["old_seconds"] or 0) > 0.2)


def _checks(rows: list[dict], col: str) -> str:
    return " / ".join(str(sum(1 for r in rows if r.get(col) == what)) for what in ("same", "better", "worse"))


TITLE = "The spine against the code before it"


def markdown(rows: list[dict], commit: str, new: str, title: str = TITLE) -> str:
    lines = [f"# {title}", "",
             (f"`python benchmarks/versions.py`: rows of `results/peak.csv` and `results/budget.csv`, solved by the "
              f"code of {commit} (old) and by {'this tree' if new == ROOT else new} (new), "
              "alternately in fresh processes with the same time "
              "limit. `ratio` = new / old solve seconds (floor 0.01 s); `wall`: the whole process (start-up, "
              "loading, solving); MB: its peak resident memory. Timings are provisional when other jobs shared "
              "the machine."), "", "## Per benchmark", ""]
    summary = []
    for bench in dict.fromkeys(r["benchmark"] for r in rows):
        sel = [r for r in rows if r["benchmark"] == bench]
        g, gw = geomean(r.get("ratio") for r in sel), geomean(r.get("wall_ratio") for r in sel)
        summary.append([bench, len(sel), fmt(g, 3), fmt(gw, 3), _checks(sel, "value_check"),
                        _checks(sel, "bound_check"), sum(1 for r in sel if slower(r))])
    lines.append(md_table(["benchmark", "rows", "geomean ratio", "geomean wall ratio",
                           "value same / better / worse", "bound same / better / worse", "slower than noise"],
                          summary, "lrrrrrr"))
    cols = ["row", "old_status", "old_value", "old_bound", "old_seconds", "old_wall", "old_mb", "new_status",
            "new_value", "new_bound", "new_seconds", "new_wall", "new_mb", "ratio", "value_check", "bound_check"]
    bad = [r for r in rows if r.get("value_check") == "worse" or r.get("bound_check") == "worse" or slower(r)]
    if bad:
        lines += ["", "## Worse values or bounds, or slower than noise", "",
                  md_table(cols, [[r.get(c) for c in cols] for r in bad], "l" + "r" * (len(cols) - 1))]
    lines += ["", "## Every row", "", md_table(cols, [[r.get(c) for c in cols] for r in rows],
                                                "l" + "r" * (len(cols) - 1))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", default="f97e1d2", help="the old commit (default f97e1d2, the one before the spine)")
    ap.add_argument("--tree", default="/tmp/memopt-old", help="where its worktree is (made if missing)")
    ap.add_argument("--new-tree", default=ROOT, help="the new code (default: this working tree)")
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "benchmarks"))
    ap.add_argument("--benchmarks", default="peak,budget")
    ap.add_argument("--only", default=None, help="only rows whose instance contains one of these texts")
    ap.add_argument("--methods", default=None, help="only rows of these methods (as the tables name them)")
    ap.add_argument("--max-seconds", type=float, default=None, help="only rows that took at most this long")
    ap.add_argument("--all", action="store_true", help="also the rows that ran to their time limit")
    ap.add_argument("--sets", default=None, help="only these sets of results/budget.csv (offload,offload+recompute)")
    ap.add_argument("--title", default=TITLE, help="the Markdown report's title (another old/new comparison)")
    ap.add_argument("--budget-time-limit", type=float, default=60.0, help="-t of the budget.csv rows (default 60)")
    add_common_args(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.budget_time_limit = 5.0
    tree = worktree(args.tree, args.old)
    specs = []
    if "peak" in args.benchmarks.split(","):
        specs += peak_specs(args)
    if "budget" in args.benchmarks.split(","):
        specs += budget_specs(args)
    cases = []
    for i, (fields, spec) in enumerate(specs):
        order = ("old", "new") if i % 2 == 0 else ("new", "old")
        cases.append(Case(fields, time_limit=spec["time_limit"],
                          call=Call("", {"old": tree, "new": args.new_tree, "spec": spec, "order": order})))
    out = out_dir(args)
    table = ResultsCSV(os.path.join(out, "versions.csv"), SCHEMA, KEY)
    print(f"{len(cases)} rows, each old and new", file=sys.stderr)
    rows = run_cases(cases, table, fresh=args.fresh, lock=args.lock, names=NAMES, runner=run_row)
    md = markdown(rows, args.old, args.new_tree, args.title)
    write_text(os.path.join(out, "versions.md"), md)
    print()
    print(md.split("\n## Every row")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
