"""PyTorch's own order against memopt's optimal order, on every shipped network.

    flock /tmp/memopt-bench.lock python benchmarks/nn_models.py [--method auto] [--time-limit 60]
        [--only 'resnet*'] [--instances instances/nn]

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
  picked), ``seconds`` its wall time.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import glob
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from memopt import load_instance, schedule_peak, solve  # noqa: E402
from memopt.heuristics.orders import baseline_peaks  # noqa: E402

FIELDS = ["instance", "tasks", "data", "traced_peak", "best_baseline", "baseline", "value", "bound", "status",
          "saving", "gap", "method", "seconds"]


def mib(x) -> str:
    return "" if x in ("", None) else f"{x / 2 ** 20:,.1f}"


def run(paths: list[str], method: str, time_limit: float) -> list[dict]:
    rows = []
    print(f"{'instance':<24} {'tasks':>6} {'traced MiB':>11} {'baseline MiB':>12} {'memopt MiB':>11} "
          f"{'bound MiB':>10} {'status':>9} {'saving':>7} {'seconds':>8}  method", flush=True)
    for p in paths:
        inst = load_instance(p)
        traced = schedule_peak(inst, inst.topological_order)
        peaks = baseline_peaks(inst)
        bname = min(peaks, key=peaks.get)
        t0 = time.perf_counter()
        res = solve(inst, objective="peak", method=method, time_limit=time_limit)
        secs = time.perf_counter() - t0
        row = {
            "instance": inst.name, "tasks": inst.n, "data": inst.m, "traced_peak": traced,
            "best_baseline": peaks[bname], "baseline": bname, "value": res.value, "bound": res.bound,
            "status": res.status,
            "saving": round(1 - res.value / traced, 4) if traced and res.value is not None else "",
            "gap": "" if res.gap is None else round(res.gap, 4), "method": res.method, "seconds": round(secs, 2),
        }
        rows.append(row)
        print(f"{row['instance']:<24} {inst.n:>6} {mib(traced):>11} {mib(peaks[bname]):>12} {mib(res.value):>11} "
              f"{mib(res.bound):>10} {res.status:>9} {100 * (row['saving'] or 0):>6.1f}% {secs:>8.2f}  {res.method}",
              flush=True)
    return rows


def write(rows: list[dict], method: str, time_limit: float) -> None:
    os.makedirs(os.path.join(ROOT, "results"), exist_ok=True)
    with open(os.path.join(ROOT, "results", "nn_models.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    lines = [
        "# PyTorch's order against memopt's order (peak memory, MiB)",
        "",
        f"`python benchmarks/nn_models.py --method {method} --time-limit {time_limit:g}` on the instances of "
        "`instances/nn/` (`memopt build`). *traced*: the peak of the order PyTorch runs the traced graph in; "
        "*memopt*: the evaluator's peak of the order returned by `memopt.solve(objective='peak')`; *bound*: the "
        "best proven lower bound; *saving*: 1 − memopt / traced. Parameters are not counted (the instances "
        "hold activations, gradients and temporaries).",
        "",
        "| instance | tasks | traced | best baseline | memopt | bound | status | saving | method | seconds |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|---:|",
    ]
    for r in rows:
        saving = "" if r["saving"] == "" else f"{100 * r['saving']:.1f}%"
        lines.append(f"| {r['instance']} | {r['tasks']} | {mib(r['traced_peak'])} | {mib(r['best_baseline'])} "
                     f"({r['baseline']}) | {mib(r['value'])} | {mib(r['bound'])} | {r['status']} | {saving} | "
                     f"{r['method']} | {r['seconds']} |")
    with open(os.path.join(ROOT, "results", "nn_models.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", default=os.path.join(ROOT, "instances", "nn"))
    ap.add_argument("--method", default="auto", help="memopt method for the optimal order (default auto)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per instance (default 60)")
    ap.add_argument("--only", action="append", help="glob on instance names (repeatable)")
    args = ap.parse_args(argv)
    paths = sorted(glob.glob(os.path.join(args.instances, "*.yaml"))
                   + glob.glob(os.path.join(args.instances, "*.json")))
    if args.only:
        paths = [p for p in paths if any(fnmatch.fnmatch(os.path.basename(p).rsplit(".", 1)[0], g) for g in args.only)]
    # smallest first: a long exact run on a big graph comes last
    paths.sort(key=lambda p: os.path.getsize(p))
    rows = run(paths, args.method, args.time_limit)
    write(rows, args.method, args.time_limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
