"""Budget planner benchmark: the planner alone, and what its warm start changes for the models.

    flock /tmp/memopt-bench.lock python benchmarks/planner.py [--shared ../shared/benchmarks]
        [--time-limit 60] [--methods moccasin,checkmate,joint] [--ratios 0.9,0.8] [--fresh] [--quick] [--out DIR]

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
printed, with the standard table. Every row is measured in a fresh process
(:mod:`memopt.bench.harness`: ``wall_seconds``, ``max_rss_mb``); rows already
in the CSVs are kept unless ``--fresh``. Timings taken while other jobs share
the machine are provisional. ``--quick``: one generated 60-task graph, r =
0.9, ``moccasin`` only, 2 s (restarts 1 s), into ``results/tmp``.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import sys
import time
from collections.abc import Callable

from memopt import CATALOG, Instance, load_instance, schedule_peak
from memopt.bench.harness import (
    Case,
    ResultsCSV,
    Schema,
    add_common_args,
    format_table,
    md_table,
    out_dir,
    run_cases,
    solve_case,
    write_text,
)
from memopt.bench.isolate import Call, script_target

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PART1 = Schema.of("graph tasks:int ratio:float budget:int budget_lb:int sum_c:num status overhead_pct:float "
                  "seconds:float config order overhead_restarts_pct:float restarts_seconds:float restart_runs:int")
PART2 = Schema.of("graph tasks:int ratio:float budget:int method warm_start:bool sum_c:num status value:num "
                  "bound:num overhead_pct:float gap_pct:float seconds:float first_plan_seconds:float returned "
                  "model_status warm_source message")
NAMES1 = {"instance": lambda r: f"{r['graph']} r={r['ratio']}", "method": lambda r: "planner portfolio",
          "value": lambda r: None if r.get("overhead_pct") is None else f"+{r['overhead_pct']}%",
          "bound": "budget_lb"}
NAMES2 = {"instance": lambda r: f"{r['graph']} r={r['ratio']}",
          "method": lambda r: r["method"] + (" warm" if r["warm_start"] else " cold")}


def graphs(shared: str, quick: bool) -> list[tuple[str, Callable[[], Instance]]]:
    from memopt.generators import random_layered

    if quick:
        return [("layered-n60-s1", lambda: random_layered(60, seed=1))]
    out: list[tuple[str, Callable[[], Instance]]] = []
    for p in sorted(glob.glob(os.path.join(shared, "nodelink", "*-train.json"))):
        out.append((os.path.splitext(os.path.basename(p))[0], lambda p=p: load_instance(p)))
    for p in sorted(glob.glob(os.path.join(shared, "nodelink", "random-layered-*.json"))):
        out.append((os.path.splitext(os.path.basename(p))[0], lambda p=p: load_instance(p)))
    for n in (100, 200):
        out.append((f"layered-n{n}-s1", lambda n=n: random_layered(n, seed=1)))
    for name in ("mobilenetv2-train-b8", "resnet50-train-b8"):
        p = os.path.join(ROOT, "instances", "nn", f"{name}.yaml")
        if os.path.exists(p):
            out.append((name, lambda p=p: load_instance(p)))
    return out


def overhead(value, total) -> float | None:
    return None if value is None else round(100 * (value / total - 1), 2)


def part1(inst: Instance, budget: int, restarts_seconds: float) -> dict:
    """The planner's portfolio without restarts, then with restarts for ``restarts_seconds`` (in the child)."""
    from memopt.core.deadline import Deadline
    from memopt.core.request import Request
    from memopt.exact.peak_bounds import budget_lower_bound
    from memopt.heuristics.planner.portfolio import plan_portfolio

    req = Request(inst, "time", budget, None, True, False)
    lb, _ = budget_lower_bound(inst, recompute=True, offload=False)
    row = {"budget_lb": lb}
    if lb > budget:
        row.update(status="infeasible")
        return row
    t0 = time.perf_counter()
    a = plan_portfolio(req, restarts=0)
    t1 = time.perf_counter()
    b = plan_portfolio(req, deadline=Deadline(restarts_seconds))
    t2 = time.perf_counter()
    row.update(status="feasible" if a.plan is not None else "unknown",
               overhead_pct=overhead(a.makespan, inst.total_time), seconds=round(t1 - t0, 2),
               config=a.config.label() if a.config else "", order=a.order or "",
               overhead_restarts_pct=overhead(b.makespan, inst.total_time), restarts_seconds=round(t2 - t1, 2),
               restart_runs=b.runs)
    return row


def finish2(case: Case, row: dict) -> dict:
    total = row["sum_c"]
    row.update(overhead_pct=overhead(row.get("value"), total),
               gap_pct=None if row.get("gap") is None else round(100 * row["gap"], 2),
               model_status=row.get("model_status") or row.get("cp_status"),
               warm_source=row.get("warm_source") or ("planner" if row.get("warm_start_makespan") else None))
    if row.get("seconds") is not None:
        row["seconds"] = round(row["seconds"], 1)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "benchmarks"))
    ap.add_argument("--time-limit", type=float, default=None, help="seconds per model run (default 60; --quick: 2)")
    ap.add_argument("--methods", default=None, help="default moccasin,checkmate,joint (--quick: moccasin)")
    ap.add_argument("--ratios", default=None, help="default 0.9,0.8 (--quick: 0.9)")
    ap.add_argument("--skip-part2", action="store_true")
    add_common_args(ap)
    args = ap.parse_args(argv)
    limit = args.time_limit or (2.0 if args.quick else 60.0)
    restarts = 1.0 if args.quick else 10.0
    ratios = [float(x) for x in (args.ratios or ("0.9" if args.quick else "0.9,0.8")).split(",")]
    meths = [m for m in (args.methods or ("moccasin" if args.quick else "moccasin,checkmate,joint")).split(",")
             if m in CATALOG]
    out = out_dir(args)
    t1 = ResultsCSV(os.path.join(out, "planner.csv"), PART1, ("graph", "ratio"))
    t2 = ResultsCSV(os.path.join(out, "warmstart.csv"), PART2, ("graph", "ratio", "method", "warm_start"))
    rows1, rows2 = [], []
    for name, load in graphs(args.shared, args.quick):
        inst = load()
        peak = schedule_peak(inst, list(inst.topological_order))
        for r in ratios:
            B = math.ceil(r * peak)
            base = {"graph": name, "tasks": inst.n, "ratio": r, "budget": B, "sum_c": inst.total_time}
            c1 = Case(base, Call(script_target(__file__, part1), {"inst": inst, "budget": B,
                                                                  "restarts_seconds": restarts}),
                      time_limit=restarts + 60)
            rows1 += run_cases([c1], t1, fresh=args.fresh, lock=args.lock, names=NAMES1)
            if args.skip_part2 or rows1[-1].get("status") == "infeasible":
                continue
            cases = [solve_case({**base, "method": m, "warm_start": warm}, inst, "time", m, time_limit=limit, budget=B,
                                recompute=True, options={"warm_start": warm},
                                stats={"returned": "returned", "model_status": "model_status",
                                       "cp_status": "cp_status", "warm_start": "warm_source",
                                       "warm_start_makespan": "warm_start_makespan"})
                     for m in meths for warm in (True, False)]
            rows2 += run_cases(cases, t2, fresh=args.fresh, lock=args.lock, finish=finish2, names=NAMES2)
    print()
    print(format_table(rows1, NAMES1))
    if rows2:
        print()
        print(format_table(rows2, NAMES2))
    cols1 = ["graph", "tasks", "ratio", "budget", "budget_lb", "status", "overhead_pct", "seconds", "config", "order",
             "overhead_restarts_pct", "restarts_seconds", "max_rss_mb"]
    md = ["# Budget planner and warm start", "",
          (f"Recomputation only; budgets as ratios of the given order's peak; time limit {limit:g} s, "
           "2 threads. Overheads are makespan / Σ c − 1 in %, of the evaluated plans; `max_rss_mb`: the peak "
           "memory of the run's process. Timings are provisional when other jobs shared the 2 cores."), "",
          "## The planner alone", "",
          md_table(cols1, [[r.get(c) for c in cols1] for r in rows1], "l" * len(cols1), cell=Schema.cell), ""]
    if rows2:
        cols2 = ["graph", "ratio", "method", "warm_start", "status", "overhead_pct", "gap_pct", "first_plan_seconds",
                 "seconds", "model_status", "returned", "max_rss_mb"]
        md += ["## Models with and without the warm start", "",
               md_table(cols2, [[r.get(c) for c in cols2] for r in rows2], "l" * len(cols2), cell=Schema.cell), ""]
    write_text(os.path.join(out, "planner.md"), "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
