"""Foundation benchmark: load every graph, its lower bound and baseline peaks; load time at 50k tasks.

    python benchmarks/foundation.py [--shared ../shared/benchmarks] [--no-large] [--fresh] [--quick] [--out DIR]

Prints the standard table and two tables, and writes ``results/foundation.csv``,
``results/foundation-load.csv`` and ``results/foundation.md``:

1. every graph of ``../shared/benchmarks/nodelink`` and of ``instances/``:
   tasks, data, edges, the lower bound max_v(inputs + outputs + workspace)
   (and the results bound), the peak of each baseline order, and the load
   time;
2. the time to load a 50,000-task instance (random series-parallel, and a
   dense random layered graph) from YAML and from JSON, best of 3, split
   into parsing and building (validation included).

Each row is measured in a fresh process (:mod:`memopt.bench.harness`), with
its wall time and peak memory (``wall_seconds``, ``max_rss_mb``: for part 2,
the memory of loading the file three times). Rows already in the CSVs are
kept unless ``--fresh``. ``--quick``: three shipped instances (and
``fcn8-test``), 2,000-task load files, into ``results/tmp``.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time

from memopt import load_instance, save_instance
from memopt.bench.harness import (
    Case,
    ResultsCSV,
    Schema,
    add_common_args,
    format_table,
    md_table,
    out_dir,
    run_cases,
    write_text,
)
from memopt.bench.isolate import Call, script_target

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRAPHS = Schema.of("instance source tasks:int data:int edges:int lower_bound:num peak_given:num peak_dfs:num "
                   "peak_rpo:num peak_greedy:num best_over_bound:float load_seconds:float")
LOADS = Schema.of("instance tasks:int edges:int format megabytes:float load_seconds:float parse_seconds:float "
                  "build_seconds:float")
GRAPH_NAMES = {"method": lambda r: "load + bounds", "value": lambda r: min(
    (r[k] for k in ("peak_given", "peak_dfs", "peak_rpo", "peak_greedy") if r.get(k) is not None), default=None),
    "bound": "lower_bound", "seconds": "load_seconds"}
LOAD_NAMES = {"method": lambda r: f"load {r['format']}", "value": lambda r: None, "bound": lambda r: None,
              "seconds": "load_seconds"}


def graph_row(path: str) -> dict:
    """Load ``path`` (timed), its lower bounds and the peak of each baseline order (in the child)."""
    from memopt.core.bounds import results_bound, task_footprint_bound
    from memopt.heuristics.orders import baseline_peaks

    t0 = time.perf_counter()
    inst = load_instance(path)
    load_s = time.perf_counter() - t0
    peaks = baseline_peaks(inst)
    lb = task_footprint_bound(inst)[0]
    rb = results_bound(inst)[0]
    best = min(peaks.values())
    return {"tasks": inst.n, "data": inst.m, "edges": inst.num_edges, "lower_bound": max(lb, rb),
            **{f"peak_{k}": v for k, v in peaks.items()},
            "best_over_bound": round(best / max(lb, rb), 4) if max(lb, rb) else None,
            "load_seconds": round(load_s, 4)}


def load_row(path: str, repeat: int = 3) -> dict:
    """Best of ``repeat`` loads of ``path``: total, parsing, building (in the child)."""
    from memopt.core.files import read_raw
    from memopt.core.instance_file import instance_from_dict

    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        raw = read_raw(path)
        t1 = time.perf_counter()
        instance_from_dict(raw, where=path)
        t2 = time.perf_counter()
        if best is None or t2 - t0 < best[0]:
            best = (t2 - t0, t1 - t0, t2 - t1)
    return {"load_seconds": round(best[0], 2), "parse_seconds": round(best[1], 2),
            "build_seconds": round(best[2], 2)}


def graph_cases(paths: list[str]) -> list[Case]:
    return [Case({"instance": os.path.splitext(os.path.basename(p))[0], "source": os.path.basename(os.path.dirname(p))},
                 Call(script_target(__file__, graph_row), {"path": p}), time_limit=300) for p in paths]


def load_cases(tmp: str, n: int, table: ResultsCSV, fresh: bool) -> list[Case]:
    """One case per (graph, format); the files are written here once (only for cases that will run)."""
    from memopt.generators import random_layered, random_series_parallel

    cases = []
    label = f"{n // 1000}k"
    for name, make in ((f"series-parallel-{label}", lambda: random_series_parallel(n, seed=1)),
                       (f"layered-{label}", lambda: random_layered(n, seed=1))):
        if not fresh and all((name, ext) in table for ext in ("json", "yaml")):
            # both rows are in the table: no file to write; these cases only fetch the rows (never run)
            cases += [Case({"instance": name, "format": ext}) for ext in ("json", "yaml")]
            continue
        inst = make()
        for ext in ("json", "yaml"):
            path = os.path.join(tmp, f"{name}.{ext}")
            save_instance(inst, path)
            fields = {"instance": name, "tasks": inst.n, "edges": inst.num_edges, "format": ext,
                      "megabytes": round(os.path.getsize(path) / 1e6, 1)}
            cases.append(Case(fields, Call(script_target(__file__, load_row), {"path": path}), time_limit=600))
    return cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "benchmarks"))
    ap.add_argument("--no-large", action="store_true", help="skip the 50k-task load measurement")
    add_common_args(ap)
    args = ap.parse_args(argv)
    out = out_dir(args)
    if args.quick:
        paths = sorted(glob.glob(os.path.join(args.shared, "nodelink", "fcn8-test.json")))
        paths += [os.path.join(ROOT, "instances", f) for f in ("tiny.yaml", "sp-50.yaml", "layered-100.yaml")]
    else:
        paths = sorted(glob.glob(os.path.join(args.shared, "nodelink", "*.json")))
        paths += sorted(glob.glob(os.path.join(ROOT, "instances", "*.yaml"))
                        + glob.glob(os.path.join(ROOT, "instances", "*.json")))
    graphs = ResultsCSV(os.path.join(out, "foundation.csv"), GRAPHS, ("source", "instance"))
    rows = run_cases(graph_cases(paths), graphs, fresh=args.fresh, lock=args.lock, names=GRAPH_NAMES)
    cols = ["instance", "tasks", "edges", "lower_bound", "peak_given", "peak_dfs", "peak_rpo", "peak_greedy",
            "best_over_bound", "load_seconds", "max_rss_mb"]
    md = ["# Foundation benchmark", "", ("Every graph: size, lower bound max(max_v(inputs + outputs + workspace), "
          "Σ results), peak of each baseline order, load time (seconds), peak memory of the process that loaded "
          "it and computed the rest (MiB)."), "",
          md_table(cols, [[r.get(c) for c in cols] for r in rows], cell=Schema.cell)]
    print()
    print(format_table(rows, GRAPH_NAMES))
    if not args.no_large:
        loads = ResultsCSV(os.path.join(out, "foundation-load.csv"), LOADS, ("instance", "format"))
        with tempfile.TemporaryDirectory() as tmp:
            lrows = run_cases(load_cases(tmp, 2_000 if args.quick else 50_000, loads, args.fresh), loads,
                              fresh=args.fresh, lock=args.lock, names=LOAD_NAMES)
        lcols = ["instance", "tasks", "edges", "format", "megabytes", "load_seconds", "parse_seconds",
                 "build_seconds", "max_rss_mb"]
        print()
        print(format_table(lrows, LOAD_NAMES))
        md += ["", ("Loading a large instance (best of 3; parse = YAML/JSON to Python objects, build = validation "
                    "and index arrays; memory: the process loading it three times):"), "",
               md_table(lcols, [[r.get(c) for c in lcols] for r in lrows], cell=Schema.cell)]
    write_text(os.path.join(out, "foundation.md"), "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
