"""Budget planner benchmark: the planner alone, and what its warm start changes for the models.

    flock /tmp/memopt-bench.lock python benchmarks/planner.py [--shared ../shared/benchmarks]
        [--time-limit 60] [--methods moccasin,checkmate,joint] [--ratios 0.9,0.8] [--quick]

Graphs: the training graphs of ``../shared/benchmarks/nodelink/`` (the
inference ones have no room below their peak: the footprint bound equals
it), random layered graphs of 100 and 200 tasks (:mod:`memopt.generators`),
and MobileNetV2 and ResNet-50 training graphs (batch 8) of ``instances/nn``.
Budgets: the ratios of the *given* topological order's peak (the
literature's protocol), with recomputation.

Part 1 (``results/planner.csv``): the planner alone — its whole portfolio
without restarts (deterministic) and with restarts for 10 s — its overhead
over Σ c, its time, and the static lower bound of the budget.

Part 2 (``results/warmstart.csv``): each model of ``--methods`` that is
registered, with the warm start (the planner's plan) and without, at the
time limit (default 60 s, 2 threads): status, value, bound, the time of the
first plan, whether the returned plan is the warm start's.

Both tables are also written as Markdown (``results/planner.md``) and
printed. Timings taken while other jobs share the machine are provisional.
"""

from __future__ import annotations

import argparse
import csv
import glob
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from memopt import MemoptError, load_instance, schedule_peak, solve  # noqa: E402
from memopt.exact.peak_bounds import budget_lower_bound  # noqa: E402
from memopt.heuristics.budget import plan_portfolio  # noqa: E402
from memopt.solve import Request, methods  # noqa: E402


def graphs(shared: str, quick: bool) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for p in sorted(glob.glob(os.path.join(shared, "nodelink", "*-train.json"))):
        out.append((os.path.splitext(os.path.basename(p))[0], lambda p=p: load_instance(p)))
    for p in sorted(glob.glob(os.path.join(shared, "nodelink", "random-layered-*.json"))):
        out.append((os.path.splitext(os.path.basename(p))[0], lambda p=p: load_instance(p)))
    from memopt.generators import random_layered

    for n in ((100,) if quick else (100, 200)):
        out.append((f"layered-n{n}-s1", lambda n=n: random_layered(n, seed=1)))
    for name in ("mobilenetv2-train-b8", "resnet50-train-b8"):
        p = os.path.join(ROOT, "instances", "nn", f"{name}.yaml")
        if os.path.exists(p):
            out.append((name, lambda p=p: load_instance(p)))
    if quick:
        out = out[:4]
    return out


def overhead(value, total) -> str:
    return "" if value is None else f"{100 * (value / total - 1):.2f}"


def part1(inst, name: str, B: int, ratio: float) -> dict:
    req = Request(inst, "time", B, None, True, False)
    lb, why = budget_lower_bound(inst, recompute=True, offload=False)
    row = {"graph": name, "tasks": inst.n, "ratio": ratio, "budget": B, "budget_lb": lb,
           "sum_c": inst.total_time}
    if lb > B:
        row.update(status="infeasible")
        return row
    t0 = time.perf_counter()
    a = plan_portfolio(req, restarts=0)
    t1 = time.perf_counter()
    b = plan_portfolio(req, time_limit=10)
    t2 = time.perf_counter()
    row.update(status="feasible" if a.plan is not None else "unknown",
               overhead_pct=overhead(a.makespan, inst.total_time), seconds=round(t1 - t0, 2),
               config=a.config.label() if a.config else "", order=a.order or "",
               overhead_restarts_pct=overhead(b.makespan, inst.total_time), restarts_seconds=round(t2 - t1, 2),
               restart_runs=b.runs)
    return row


def part2(inst, name: str, B: int, ratio: float, method: str, warm: bool, limit: float) -> dict:
    row = {"graph": name, "tasks": inst.n, "ratio": ratio, "budget": B, "method": method,
           "warm_start": warm, "sum_c": inst.total_time}
    t0 = time.perf_counter()
    try:
        res = solve(inst, "time", method, budget=B, recompute=True, time_limit=limit, warm_start=warm, threads=2)
    except MemoptError as e:
        row.update(status="refused", message=str(e).splitlines()[0][:120])
        return row
    st = res.stats
    row.update(status=res.status, value=res.value, bound=res.bound,
               overhead_pct=overhead(res.value, inst.total_time),
               gap_pct="" if res.gap is None else f"{100 * res.gap:.2f}",
               seconds=round(time.perf_counter() - t0, 1),
               first_plan_seconds=st.get("first_plan_seconds", ""),
               returned=st.get("returned", ""), model_status=st.get("model_status", st.get("cp_status", "")),
               warm_source=st.get("warm_start", "planner" if "warm_start_makespan" in st else ""),
               message=(res.message or "")[:120])
    return row


def write(rows: list[dict], path: str) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def markdown(rows: list[dict], cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "benchmarks"))
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--methods", default="moccasin,checkmate,joint")
    ap.add_argument("--ratios", default="0.9,0.8")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-part2", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "results"))
    args = ap.parse_args(argv)
    ratios = [float(x) for x in args.ratios.split(",")]
    known = methods()
    meths = [m for m in args.methods.split(",") if m in known]
    os.makedirs(args.out, exist_ok=True)
    rows1, rows2 = [], []
    for name, load in graphs(args.shared, args.quick):
        inst = load()
        peak = schedule_peak(inst, list(inst.topological_order))
        for r in ratios:
            B = math.ceil(r * peak)
            row = part1(inst, name, B, r)
            rows1.append(row)
            print("planner", *(f"{k}={row.get(k, '')}" for k in ("graph", "ratio", "status", "overhead_pct",
                                                                   "seconds", "overhead_restarts_pct")), flush=True)
            write(rows1, os.path.join(args.out, "planner.csv"))
            if args.skip_part2 or row["status"] == "infeasible":
                continue
            for m in meths:
                for warm in (True, False):
                    row2 = part2(inst, name, B, r, m, warm, args.time_limit)
                    rows2.append(row2)
                    print(" ", *(f"{k}={row2.get(k, '')}" for k in ("method", "warm_start", "status", "overhead_pct",
                                                                     "gap_pct", "first_plan_seconds", "seconds")),
                          flush=True)
                    write(rows2, os.path.join(args.out, "warmstart.csv"))
    md = ["# Budget planner and warm start", "",
          f"Recomputation only; budgets as ratios of the given order's peak; time limit {args.time_limit:g} s, "
          "2 threads. Overheads are makespan / Σ c − 1 in %, of the evaluated plans. "
          "Timings are provisional when other jobs shared the 2 cores.", "",
          "## The planner alone", "",
          markdown(rows1, ["graph", "tasks", "ratio", "budget", "budget_lb", "status", "overhead_pct", "seconds",
                           "config", "order", "overhead_restarts_pct", "restarts_seconds"]), ""]
    if rows2:
        md += ["## Models with and without the warm start", "",
               markdown(rows2, ["graph", "ratio", "method", "warm_start", "status", "overhead_pct", "gap_pct",
                                "first_plan_seconds", "seconds", "model_status", "returned"]), ""]
    with open(os.path.join(args.out, "planner.md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
