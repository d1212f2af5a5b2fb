"""PyTorch's own order against memopt's optimal order, on every shipped network.

    flock /tmp/memopt-bench.lock python benchmarks/nn_models.py [--method auto] [--time-limit 60]
        [--only 'resnet*'] [--instances instances/nn] [--fresh] [--quick] [--out DIR]

For each instance of ``instances/nn/`` (built by ``memopt build`` from
``models/``), prints and writes to ``results/nn_models.csv`` and
``results/nn_models.md``:

- ``traced_peak``: the peak of the traced order — the order PyTorch runs
  the graph in (the instance's listed order; the importer's tests check that
  it equals the live storage PyTorch holds when it runs the traced graph);
- ``best_baseline``: the best of memopt's baseline orders;
- ``value``/``bound``/``status``: ``memopt.solve(inst, objective="peak",
  method=...)`` — the evaluator's peak of the returned order, the best proven
  lower bound, and ``optimal`` only when they meet;
- ``saving``: 1 − value / traced_peak, the memory memopt's order saves over
  PyTorch's;
- ``method``: the method that produced the plan (``auto`` names the one it
  picked), ``seconds`` its wall time;
- ``wall_seconds``, ``max_rss_mb``: the whole run, a fresh process
  (:mod:`memopt.bench.harness`), and its peak memory.

Rows already in the CSV (by instance) are kept unless ``--fresh``.
``--quick``: the two smallest instances, 5 s each, into ``results/tmp``.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import os
import sys

from memopt import load_instance, schedule_peak
from memopt.bench.harness import (
    Case,
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = Schema.of("instance tasks:int data:int traced_peak:num best_baseline:num baseline value:num bound:num "
                   "status saving:float gap:float method seconds:float")


def mib(x) -> str:
    return "" if x in ("", None) else f"{x / 2 ** 20:,.1f}"


def cases(paths: list[str], method: str, time_limit: float, table: ResultsCSV, fresh: bool) -> list[Case]:
    out = []
    for p in paths:
        inst = load_instance(p)
        if not fresh and (inst.name,) in table:
            out.append(Case({"instance": inst.name}))  # its row is in the table: never run
            continue
        traced = schedule_peak(inst, inst.topological_order)
        peaks = baseline_peaks(inst)
        bname = min(peaks, key=peaks.get)
        fields = {"instance": inst.name, "tasks": inst.n, "data": inst.m, "traced_peak": traced,
                  "best_baseline": peaks[bname], "baseline": bname}
        out.append(solve_case(fields, inst, "peak", method, time_limit=time_limit))
    return out


def finish(case: Case, row: dict) -> dict:
    traced, value = row["traced_peak"], row.get("value")
    row["saving"] = round(1 - value / traced, 4) if traced and value is not None else None
    row["gap"] = None if row.get("gap") is None else round(row["gap"], 4)
    row["method"] = row.get("method_used") or case.call.kwargs["method"]
    row["seconds"] = None if row.get("seconds") is None else round(row["seconds"], 2)
    return row


def write(rows: list[dict], method: str, time_limit: float, path: str) -> None:
    lines = [
        "# PyTorch's order against memopt's order (peak memory, MiB)",
        "",
        (f"`python benchmarks/nn_models.py --method {method} --time-limit {time_limit:g}` on the instances of "
         "`instances/nn/` (`memopt build`). *traced*: the peak of the order PyTorch runs the traced graph in; "
         "*memopt*: the evaluator's peak of the order returned by `memopt.solve(objective='peak')`; *bound*: the "
         "best proven lower bound; *saving*: 1 − memopt / traced; *RSS*: the peak memory of the solving process "
         "(MiB). Parameters are not counted (the instances hold activations, gradients and temporaries)."),
        "",
        "| instance | tasks | traced | best baseline | memopt | bound | status | saving | method | seconds | RSS |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|---:|---:|",
    ]
    for r in rows:
        saving = "" if r.get("saving") is None else f"{100 * r['saving']:.1f}%"
        rss = "" if r.get("max_rss_mb") is None else f"{r['max_rss_mb']:.0f}"
        lines.append(f"| {r['instance']} | {r['tasks']} | {mib(r['traced_peak'])} | {mib(r['best_baseline'])} "
                     f"({r['baseline']}) | {mib(r.get('value'))} | {mib(r.get('bound'))} | {r['status']} | {saving} | "
                     f"{r['method']} | {r['seconds']} | {rss} |")
    write_text(path, "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", default=os.path.join(ROOT, "instances", "nn"))
    ap.add_argument("--method", default="auto", help="memopt method for the optimal order (default auto)")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds per instance (default 60; --quick: 5)")
    ap.add_argument("--only", action="append", help="glob on instance names (repeatable)")
    add_common_args(ap)
    args = ap.parse_args(argv)
    limit = args.time_limit or (5.0 if args.quick else 60.0)
    paths = sorted(glob.glob(os.path.join(args.instances, "*.yaml"))
                   + glob.glob(os.path.join(args.instances, "*.json")))
    if args.only:
        paths = [p for p in paths if any(fnmatch.fnmatch(os.path.basename(p).rsplit(".", 1)[0], g) for g in args.only)]
    # smallest first: a long exact run on a big graph comes last
    paths.sort(key=lambda p: os.path.getsize(p))
    if args.quick:
        paths = paths[:2]
    out = out_dir(args)
    table = ResultsCSV(os.path.join(out, "nn_models.csv"), SCHEMA, ("instance",))
    rows = run_cases(cases(paths, args.method, limit, table, args.fresh), table, fresh=args.fresh, lock=args.lock,
                     finish=finish)
    print()
    print(format_table(rows))
    write(rows, args.method, limit, os.path.join(out, "nn_models.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
