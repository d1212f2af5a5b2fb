"""Foundation benchmark: load every graph, its lower bound and baseline peaks; load time at 50k tasks.

    python benchmarks/foundation.py [--shared ../shared/benchmarks] [--no-large]

Prints two tables and writes ``results/foundation.csv``,
``results/foundation-load.csv`` and ``results/foundation.md``:

1. every graph of ``../shared/benchmarks/nodelink`` and of ``instances/``:
   tasks, data, edges, the lower bound max_v(inputs + outputs + workspace)
   (and the results bound), the peak of each baseline order, and the load
   time;
2. the time to load a 50,000-task instance (random series-parallel, and a
   dense random layered graph) from YAML and from JSON, best of 3, split
   into parsing and building (validation included).
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from memopt import load_instance, save_instance  # noqa: E402
from memopt.core.bounds import results_bound, task_footprint_bound  # noqa: E402
from memopt.heuristics.orders import baseline_peaks  # noqa: E402
from memopt.core.files import read_raw
from memopt.core.instance_file import instance_from_dict  # noqa: E402


def graph_rows(paths: list[str]) -> list[dict]:
    rows = []
    for p in paths:
        t0 = time.perf_counter()
        inst = load_instance(p)
        load_s = time.perf_counter() - t0
        peaks = baseline_peaks(inst)
        lb = task_footprint_bound(inst)[0]
        rb = results_bound(inst)[0]
        best = min(peaks.values())
        rows.append({
            "instance": os.path.splitext(os.path.basename(p))[0], "source": os.path.basename(os.path.dirname(p)),
            "tasks": inst.n, "data": inst.m, "edges": inst.num_edges, "lower_bound": max(lb, rb),
            **{f"peak_{k}": v for k, v in peaks.items()},
            "best_over_bound": round(best / max(lb, rb), 4) if max(lb, rb) else "",
            "load_seconds": round(load_s, 4),
        })
    return rows


def load_rows() -> list[dict]:
    from memopt.generators import random_layered, random_series_parallel

    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name, make in (("series-parallel-50k", lambda: random_series_parallel(50_000, seed=1)),
                           ("layered-50k", lambda: random_layered(50_000, seed=1))):
            inst = make()
            for ext in ("json", "yaml"):
                path = os.path.join(d, f"{name}.{ext}")
                save_instance(inst, path)
                best = None
                for _ in range(3):
                    t0 = time.perf_counter()
                    raw = read_raw(path)
                    t1 = time.perf_counter()
                    back = instance_from_dict(raw, where=path)
                    t2 = time.perf_counter()
                    if best is None or t2 - t0 < best[0]:
                        best = (t2 - t0, t1 - t0, t2 - t1)
                assert back == inst
                rows.append({"instance": name, "tasks": inst.n, "edges": inst.num_edges, "format": ext,
                             "megabytes": round(os.path.getsize(path) / 1e6, 1),
                             "load_seconds": round(best[0], 2), "parse_seconds": round(best[1], 2),
                             "build_seconds": round(best[2], 2)})
    return rows


def table(rows: list[dict], cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(out)


def write_csv(rows: list[dict], path: str) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "benchmarks"))
    ap.add_argument("--no-large", action="store_true", help="skip the 50k-task load measurement")
    args = ap.parse_args()
    paths = sorted(glob.glob(os.path.join(args.shared, "nodelink", "*.json")))
    paths += sorted(glob.glob(os.path.join(ROOT, "instances", "*.yaml")) + glob.glob(os.path.join(ROOT, "instances", "*.json")))
    rows = graph_rows(paths)
    cols = ["instance", "tasks", "edges", "lower_bound", "peak_given", "peak_dfs", "peak_rpo", "peak_greedy",
            "best_over_bound", "load_seconds"]
    md = ["# Foundation benchmark", "", "Every graph: size, lower bound max(max_v(inputs + outputs + workspace), "
          "Σ results), peak of each baseline order, load time (seconds).", "", table(rows, cols)]
    print(table(rows, cols))
    os.makedirs(os.path.join(ROOT, "results"), exist_ok=True)
    write_csv(rows, os.path.join(ROOT, "results", "foundation.csv"))
    if not args.no_large:
        lrows = load_rows()
        lcols = ["instance", "tasks", "edges", "format", "megabytes", "load_seconds", "parse_seconds", "build_seconds"]
        print()
        print(table(lrows, lcols))
        md += ["", "Loading a 50,000-task instance (best of 3; parse = YAML/JSON to Python objects, "
               "build = validation and index arrays):", "", table(lrows, lcols)]
        write_csv(lrows, os.path.join(ROOT, "results", "foundation-load.csv"))
    with open(os.path.join(ROOT, "results", "foundation.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
