"""Scale: every component on generated graphs of 1k / 5k / 20k / 50k tasks — seconds, peak memory, value.

    flock /tmp/memopt-bench.lock python benchmarks/scale.py --label after
        [--sizes 1000,5000,20000,50000] [--kinds layered-train,sp,chain-train]
        [--components load,evaluate,planner,lifetime,retention,cut,recompute,auto,curve]
        [--code PATH]        # run the workers on another copy of memopt (e.g. the code before a change)
        [--timeout 900]

Instances (``memopt.generators``, seed 0, cached as JSON and pickle under
``$MEMOPT_SCALE_CACHE``, default ``/tmp/memopt-scale``):

- ``layered-train``: ``training_graph(random_layered(N/2))`` (N + 1 tasks);
- ``sp``: ``random_series_parallel(N)``;
- ``chain-train``: ``training_graph(chain(N/2))``.

Components, each in its own process under ``/usr/bin/time -v`` (peak memory
= its maximum resident set size, the instance included; the instance is
read from the pickle, outside the timed part, except for ``load``):

- ``load``: ``load_instance`` of the JSON file;
- ``evaluate``: the best baseline order's plan through the evaluator;
- ``planner``: one planner run (default configuration) at 0.9x with recomputation, and its evaluation;
- ``lifetime`` / ``retention`` / ``cut`` / ``recompute``: the lower bounds
  (``cut``: 60 s limit, from the best baseline order; ``recompute``: at 0.9x, 30 s);
- ``auto``: ``memopt.solve(objective="time", budget="0.9x", recompute=True, time_limit=60)``;
- ``curve``: ``memopt.bench.curve.trade_off_curve`` at 1.0x, 0.9x, 0.8x and ``auto``, 60 s in total.

Rows are appended to ``results/scale.csv`` (one per label, instance and
component; a rerun replaces its rows) and ``results/scale.md`` puts the
labels side by side. Timings taken while other jobs share the machine are
provisional.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.environ.get("MEMOPT_SCALE_CACHE", "/tmp/memopt-scale")
KINDS = ("layered-train", "sp", "chain-train")
COMPONENTS = ("load", "evaluate", "planner", "lifetime", "retention", "cut", "recompute", "auto", "curve")
FIELDS = ("label", "instance", "tasks", "data", "edges", "component", "seconds", "peak_mib", "value", "note")


# ------------------------------------------------------------------ instances
def make_instance(kind: str, n: int):
    from memopt.generators import chain, random_layered, random_series_parallel
    from memopt.training import training_graph

    if kind == "layered-train":
        return training_graph(random_layered(n // 2, seed=0))
    if kind == "sp":
        return random_series_parallel(n, seed=0)
    if kind == "chain-train":
        return training_graph(chain(n // 2, seed=0))
    raise SystemExit(f"unknown kind {kind!r}")


def cached(kind: str, n: int) -> tuple[str, str]:
    """(json path, pickle path) of an instance, generated once."""
    os.makedirs(CACHE, exist_ok=True)
    base = os.path.join(CACHE, f"{kind}-{n}")
    if not (os.path.exists(base + ".json") and os.path.exists(base + ".pkl")):
        from memopt.io import save_instance

        inst = make_instance(kind, n)
        save_instance(inst, base + ".json")
        with open(base + ".pkl", "wb") as f:
            pickle.dump(inst, f, protocol=pickle.HIGHEST_PROTOCOL)
    return base + ".json", base + ".pkl"


# --------------------------------------------------------------------- worker
def worker(component: str, json_path: str, pkl_path: str) -> dict:
    """Run one component in this process; return {seconds, value, note}."""
    if component == "load":
        from memopt.io import load_instance

        t = time.perf_counter()
        inst = load_instance(json_path)
        return {"seconds": time.perf_counter() - t, "value": inst.n, "note": "tasks"}
    with open(pkl_path, "rb") as f:
        inst = pickle.load(f)
    from memopt.core.deadline import Deadline

    t = time.perf_counter()
    note = ""
    if component == "evaluate":
        from memopt.core.evaluate import evaluate
        from memopt.core.plan import Plan
        from memopt.heuristics.orders import best_baseline

        order, _, _ = best_baseline(inst)
        t = time.perf_counter()
        ev = evaluate(inst, Plan.from_order(inst, order), trace=False)
        value, note = ev.peak, "peak of the best baseline order"
    elif component == "planner":
        from memopt.core.request import Request
        from memopt.core.status import Objective
        from memopt.heuristics.orders import best_baseline
        from memopt.heuristics.planner import run_planner

        order, peak, _ = best_baseline(inst)
        req = Request(inst, Objective.TIME, -(-9 * peak // 10), None, True, False)
        t = time.perf_counter()
        plan = run_planner(req, order, deadline=Deadline(600))
        if plan is None:
            value, note = "", "no plan"
        else:
            ev = req.evaluate(plan)
            value, note = f"{100 * ev.overhead:.2f}", f"overhead % at 0.9x, valid={ev.valid}"
    elif component == "lifetime":
        from memopt.exact.peak_bounds import lifetime_bound

        value, note = lifetime_bound(inst)
        note = note[:60]
    elif component == "retention":
        from memopt.exact.peak_bounds import retention_bound

        value, note = retention_bound(inst)
        note = note[:60]
    elif component == "cut":
        from memopt.exact.cut_bound import cut_bound
        from memopt.heuristics.orders import best_baseline

        order, _, _ = best_baseline(inst)
        t = time.perf_counter()
        cb = cut_bound(inst, [order], deadline=Deadline(60))
        value, note = cb.value, f"flows={cb.flows} complete={cb.complete}"
    elif component == "recompute":
        from memopt.exact.recompute_bound import recompute_bound
        from memopt.heuristics.orders import best_baseline

        _, peak, _ = best_baseline(inst)
        t = time.perf_counter()
        rb = recompute_bound(inst, -(-9 * peak // 10), deadline=Deadline(30))
        value = rb.extra
        note = f"examined={rb.examined} infeasible={rb.infeasible_at is not None}"
    elif component == "auto":
        import memopt

        res = memopt.solve(inst, "time", budget="0.9x", recompute=True, time_limit=60)
        value = "" if res.value is None else f"{100 * (res.value / inst.total_time - 1):.2f}"
        note = f"{res.status} overhead %, bound {res.bound}"
    elif component == "curve":
        from memopt.bench.curve import trade_off_curve

        cv = trade_off_curve(inst, ["1.0x", "0.9x", "0.8x", "auto"], recompute=True, time_limit=None, total_time=60)
        value = len(cv.points)
        note = " ".join(f"{p.label}:{p.status}" for p in cv.points)[:80]
    else:
        raise SystemExit(f"unknown component {component!r}")
    return {"seconds": time.perf_counter() - t, "value": value, "note": note}


def run_one(component: str, kind: str, n: int, code: str, timeout: float) -> dict:
    js, pk = cached(kind, n)
    env = dict(os.environ, PYTHONPATH=code)
    cmd = ["/usr/bin/time", "-v", sys.executable, os.path.abspath(__file__), "--worker", component, js, pk]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd="/tmp",
                            start_new_session=True)
    try:
        out_text, err_text = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the worker too, not only /usr/bin/time
        proc.communicate()
        return {"seconds": timeout, "value": "", "note": "timeout", "peak_mib": ""}
    p = subprocess.CompletedProcess(cmd, proc.returncode, out_text, err_text)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    peak = round(int(m.group(1)) / 1024) if m else ""
    line = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not line:
        err = [x for x in p.stderr.splitlines() if x.strip() and not x.startswith("\t")]
        return {"seconds": "", "value": "", "note": f"failed: {(err or ['?'])[-1][:80]}", "peak_mib": peak}
    out = json.loads(line[-1])
    out["peak_mib"] = peak
    return out


# ---------------------------------------------------------------------- table
def read_rows(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_md(rows: list[dict], path: str) -> None:
    labels = list(dict.fromkeys(r["label"] for r in rows))
    keys = list(dict.fromkeys((r["instance"], r["tasks"], r["component"]) for r in rows))
    by = {(r["label"], r["instance"], r["component"]): r for r in rows}
    head = ["instance", "tasks", "component"]
    for lab in labels:
        head += [f"{lab} s", f"{lab} MiB", f"{lab} value"]
    lines = ["# Scale: seconds, peak memory (max RSS, instance included) and value per component", "",
             ("`python benchmarks/scale.py` (see its docstring). Value: the bound, the peak, the overhead % "
              "or the number of points; a blank cell: not run."), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for inst, tasks, comp in keys:
        cells = [str(inst), str(tasks), str(comp)]
        for lab in labels:
            r = by.get((lab, inst, comp))
            if r is None:
                cells += ["", "", ""]
                continue
            s = r["seconds"]
            s = f"{float(s):.2f}" if s not in ("", None) else ""
            v = r["value"]
            note = r.get("note") or ""
            if note in ("timeout",) or note.startswith("failed"):
                v = note
            cells += [s, str(r["peak_mib"]), str(v)]
        lines.append("| " + " | ".join(cells) + " |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", nargs=3, metavar=("COMPONENT", "JSON", "PICKLE"), help=argparse.SUPPRESS)
    ap.add_argument("--label", default="after")
    ap.add_argument("--sizes", default="1000,5000,20000,50000")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--components", default=",".join(COMPONENTS))
    ap.add_argument("--code", default=ROOT, help="the directory holding the memopt package the workers import")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--csv", default=os.path.join(ROOT, "results", "scale.csv"))
    ap.add_argument("--md", default=os.path.join(ROOT, "results", "scale.md"))
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker), default=str))
        return 0
    sys.path.insert(0, ROOT)
    rows = read_rows(args.csv)
    for kind in args.kinds.split(","):
        for n in (int(x) for x in args.sizes.split(",")):
            js, pk = cached(kind, n)
            with open(pk, "rb") as f:
                inst = pickle.load(f)
            name = f"{kind}-{n}"
            for comp in args.components.split(","):
                out = run_one(comp, kind, n, args.code, args.timeout)
                row = {"label": args.label, "instance": name, "tasks": inst.n, "data": inst.m,
                       "edges": inst.num_edges, "component": comp,
                       "seconds": "" if out["seconds"] == "" else f"{float(out['seconds']):.3f}",
                       "peak_mib": out["peak_mib"], "value": out["value"], "note": out["note"]}
                print(" ".join(f"{k}={row[k]}" for k in FIELDS), flush=True)
                rows = [r for r in rows if (r["label"], r["instance"], r["component"]) != (args.label, name, comp)]
                rows.append(row)
                os.makedirs(os.path.dirname(args.csv), exist_ok=True)
                with open(args.csv, "w", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=FIELDS)
                    w.writeheader()
                    w.writerows(rows)
                write_md(rows, args.md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
