"""Speed of the generators, the training-graph builder and the importers.

Prints a table (what, n, tasks, data, arcs, seconds) and writes
results/generators.csv. Seconds are the best of --repeat runs and include the
validation of the Instance (what a user waits for). The series-parallel
generator is the one the 50,000-task peak target relies on.

    flock /tmp/memopt-bench.lock python benchmarks/generators.py
    python benchmarks/generators.py --nodelink /path/to/nodelink/   # also time the importer on real graphs
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from memopt import load_instance  # noqa: E402
from memopt.generators import chain, in_tree, out_tree, random_layered, random_series_parallel  # noqa: E402
from memopt.training import training_graph  # noqa: E402


def best_of(repeat: int, fn):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nodelink", default="/work/shared/benchmarks/nodelink",
                    help="folder of node-link JSON graphs to import (skipped when absent)")
    ap.add_argument("--out", default="results/generators.csv")
    args = ap.parse_args()

    cases = [
        ("chain", 50_000, "tensor", lambda n, f: chain(n, seed=1, form=f)),
        ("in-tree", 50_000, "tensor", lambda n, f: in_tree(n, seed=1, form=f)),
        ("out-tree", 50_000, "buffer", lambda n, f: out_tree(n, seed=1, form=f)),
        ("series-parallel", 1_000, "tensor", lambda n, f: random_series_parallel(n, seed=1, form=f)),
        ("series-parallel", 10_000, "tensor", lambda n, f: random_series_parallel(n, seed=1, form=f)),
        ("series-parallel", 50_000, "tensor", lambda n, f: random_series_parallel(n, seed=1, form=f)),
        ("series-parallel", 50_000, "buffer", lambda n, f: random_series_parallel(n, seed=1, form=f)),
        ("series-parallel", 50_000, "general", lambda n, f: random_series_parallel(n, seed=1, form=f)),
        ("layered", 1_000, "tensor", lambda n, f: random_layered(n, seed=1, form=f)),
        ("layered", 5_000, "tensor", lambda n, f: random_layered(n, seed=1, form=f)),
    ]
    rows = []
    for kind, n, form, fn in cases:
        sec, inst = best_of(args.repeat, lambda: fn(n, form))
        rows.append((f"generate {kind} ({form})", n, inst.n, inst.m, inst.num_edges, sec))
    for kind, fwd in (("series-parallel", random_series_parallel(10_000, seed=1)),
                      ("layered", random_layered(1_000, seed=1))):
        sec, tr = best_of(args.repeat, lambda: training_graph(fwd))
        rows.append((f"training_graph of {kind}", fwd.n, tr.n, tr.m, tr.num_edges, sec))
    if os.path.isdir(args.nodelink):
        for path in sorted(glob.glob(os.path.join(args.nodelink, "*.json"))):
            sec, inst = best_of(args.repeat, lambda: load_instance(path))
            rows.append((f"import {os.path.basename(path)}", inst.n, inst.n, inst.m, inst.num_edges, sec))

    head = ("what", "n", "tasks", "data", "arcs", "seconds")
    w = max(len(r[0]) for r in rows)
    print(f"{head[0]:<{w}}  {'n':>7}  {'tasks':>7}  {'data':>8}  {'arcs':>8}  {'seconds':>8}")
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:>7}  {r[2]:>7}  {r[3]:>8}  {r[4]:>8}  {r[5]:>8.3f}")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(head)
        wr.writerows((r[0], r[1], r[2], r[3], r[4], f"{r[5]:.4f}") for r in rows)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
