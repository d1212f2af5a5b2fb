"""Speed of the generators, the training-graph builder and the importers.

Prints the standard table (what, n, tasks, data, arcs, seconds, memory) and
writes ``results/generators.csv``. Seconds are the best of --repeat runs and
include the validation of the Instance (what a user waits for); each row is
measured in a fresh process (:mod:`memopt.bench.harness`), with its wall time
and peak memory. The series-parallel generator is the one the 50,000-task
peak target relies on. Rows already in the CSV are kept unless ``--fresh``.

    python benchmarks/generators.py [--repeat 3] [--fresh] [--quick] [--out DIR]
    python benchmarks/generators.py --nodelink /path/to/nodelink/   # also time the importer on real graphs

``--quick``: 1,000-task graphs, one run each, no import, into ``results/tmp``.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time

from memopt.bench.harness import (
    Case,
    ResultsCSV,
    Schema,
    add_common_args,
    format_table,
    out_dir,
    run_cases,
)
from memopt.bench.isolate import Call, script_target

SCHEMA = Schema.of("what n:int tasks:int data:int arcs:int seconds:float")
NAMES = {"instance": "what", "method": lambda r: f"n={r['n']}", "value": "tasks", "bound": lambda r: None}
CASES = [("chain", 50_000, "tensor"), ("in-tree", 50_000, "tensor"), ("out-tree", 50_000, "buffer"),
         ("series-parallel", 1_000, "tensor"), ("series-parallel", 10_000, "tensor"),
         ("series-parallel", 50_000, "tensor"), ("series-parallel", 50_000, "buffer"),
         ("series-parallel", 50_000, "general"), ("layered", 1_000, "tensor"), ("layered", 5_000, "tensor")]
TRAINING = [("series-parallel", 10_000), ("layered", 1_000)]


def _make(kind: str, n: int, form: str = "tensor"):
    from memopt import generators

    fn = {"chain": generators.chain, "in-tree": generators.in_tree, "out-tree": generators.out_tree,
          "series-parallel": generators.random_series_parallel, "layered": generators.random_layered}[kind]
    return fn(n, seed=1, form=form)


def best_of(repeat: int, fn):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _row(sec: float, inst) -> dict:
    return {"tasks": inst.n, "data": inst.m, "arcs": inst.num_edges, "seconds": round(sec, 4)}


def generate_row(kind: str, n: int, form: str, repeat: int) -> dict:
    """Best of ``repeat`` generations (in the child)."""
    return _row(*best_of(repeat, lambda: _make(kind, n, form)))


def training_row(kind: str, n: int, repeat: int) -> dict:
    """Best of ``repeat`` training-graph builds of a generated forward graph of ``n`` tasks (in the child)."""
    from memopt.training import training_graph

    fwd = _make(kind, n)
    return _row(*best_of(repeat, lambda: training_graph(fwd)))


def import_row(path: str, repeat: int) -> dict:
    """Best of ``repeat`` imports of a node-link file (in the child)."""
    from memopt import load_instance

    return _row(*best_of(repeat, lambda: load_instance(path)))


def cases(args: argparse.Namespace) -> list[Case]:
    from memopt import load_instance

    out = []

    def target(fn) -> str:
        return script_target(__file__, fn)

    for kind, n, form in dict.fromkeys((k, min(n, 1_000) if args.quick else n, f) for k, n, f in CASES):
        out.append(Case({"what": f"generate {kind} ({form})", "n": n},
                        Call(target(generate_row), {"kind": kind, "n": n, "form": form, "repeat": args.repeat}),
                        time_limit=600))
    for kind, n in TRAINING:
        n = min(n, 1_000) if args.quick else n
        out.append(Case({"what": f"training_graph of {kind}", "n": n},
                        Call(target(training_row), {"kind": kind, "n": n, "repeat": args.repeat}), time_limit=600))
    if os.path.isdir(args.nodelink) and not args.quick:
        for path in sorted(glob.glob(os.path.join(args.nodelink, "*.json"))):
            n = load_instance(path).n  # the key of the row (its size), known before it runs
            out.append(Case({"what": f"import {os.path.basename(path)}", "n": n},
                            Call(target(import_row), {"path": path, "repeat": args.repeat}), time_limit=600))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=None, help="runs per row, the best counts (default 3; --quick: 1)")
    ap.add_argument("--nodelink", default="/work/shared/benchmarks/nodelink",
                    help="folder of node-link JSON graphs to import (skipped when absent)")
    add_common_args(ap)
    args = ap.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)
    table = ResultsCSV(os.path.join(out_dir(args), "generators.csv"), SCHEMA, ("what", "n"))
    rows = run_cases(cases(args), table, fresh=args.fresh, lock=args.lock, names=NAMES)
    print()
    print(format_table(rows, NAMES))
    print(f"wrote {table.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
