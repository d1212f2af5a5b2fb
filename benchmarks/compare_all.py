"""The committed comparison: every registered method on every problem and instance set.

    python benchmarks/compare_all.py            # resume: run only what is missing
    python benchmarks/compare_all.py --fresh    # re-measure everything
    python benchmarks/compare_all.py --methods auto   # add `auto` (a composite: not in the default grid)
    python benchmarks/compare_all.py --quick          # instances/tiny.yaml, 2 problems, 2 s, into results/tmp/compare

For each instance set (``shipped``: ``instances/*.yaml``; ``nn``: the
traced networks ``instances/nn/*.yaml``; ``nodelink``: the graphs of
``../shared/benchmarks/nodelink``, when that folder exists) and
each problem, it runs ``memopt bench`` (the library call, same grid, same
CSV) with every method that fits, then ``memopt report``, and writes the
index ``results/compare/README.md``. The problems:

- ``peak``: minimise the peak by scheduling, no budget;
- ``time+recompute``, ``time+offload``, ``time+recompute+offload``: minimise
  the makespan under budgets of 0.9× and 0.8× the best baseline order's peak
  (the protocol of Checkmate/Moccasin); offloading only on instances whose
  machine has a bandwidth.

Methods come from the registry, so a method registered later is compared
by re-running this script. Timings use the lock ``/tmp/memopt-bench.lock``
(so that timed runs do not overlap; ``--no-lock`` to skip it). Each run is a
fresh process (:class:`memopt.bench.harness.IsolatedExecutor`), so the
standard table printed at the end (instance, method, status, value, bound,
seconds, wall seconds, peak memory) has each run's own peak memory; the CSVs
are ``memopt bench``'s (``memopt report`` reads them) and do not store it.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import os
import shutil
import subprocess
import sys

from memopt import load_instance
from memopt.bench import BenchSpec, pool_size, read_rows, run_bench
from memopt.bench.grid import run_key
from memopt.bench.harness import (
    IsolatedExecutor,
    Schema,
    format_table,
    locked,
    measured_columns,
)
from memopt.bench.report import add_labels, make_report, summarize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = ["instances/tiny.yaml"]
NUMBERS = Schema.of("value:num bound:num seconds:float", measured=False)  # memopt bench's CSV text, for printing

PROBLEMS = {
    "peak": {"objective": "peak", "budgets": ["none"]},
    "time+recompute": {"objective": "time", "budgets": ["0.9x", "0.8x"], "recompute": True},
    "time+offload": {"objective": "time", "budgets": ["0.9x", "0.8x"], "offload": True},
    "time+recompute+offload": {"objective": "time", "budgets": ["0.9x", "0.8x"], "recompute": True, "offload": True},
}


def instance_sets(shared: str, quick: bool = False) -> dict[str, list[str]]:
    if quick:
        return {"shipped": QUICK}
    sets = {"shipped": sorted(glob.glob(os.path.join("instances", "*.yaml")))}
    nn = sorted(glob.glob(os.path.join("instances", "nn", "*.yaml")))
    if nn:
        sets["nn"] = nn
    nodelink = sorted(glob.glob(os.path.join(shared, "nodelink", "*.json")))
    if nodelink:
        sets["nodelink"] = [os.path.relpath(p) for p in nodelink]
    return sets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--time-limit", type=float, default=20.0, help="seconds per run (default 20)")
    ap.add_argument("--threads", type=int, default=1, help="threads per run (default 1)")
    ap.add_argument("--jobs", type=int, default=None, help="runs at the same time (default cores // threads)")
    ap.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated subset of: " + ", ".join(PROBLEMS))
    ap.add_argument("--sets", default="shipped,nn,nodelink", help="instance sets: shipped, nn, nodelink")
    ap.add_argument("--methods", default=None,
                    help="comma-separated methods (default: every registered method that fits each problem)")
    ap.add_argument("--shared", default=os.path.join("..", "shared", "benchmarks"),
                    help="folder with nodelink/*.json (default ../shared/benchmarks)")
    ap.add_argument("--fresh", action="store_true", help="delete the previous results first and re-measure all")
    ap.add_argument("--no-lock", action="store_true", help="do not take /tmp/memopt-bench.lock")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help=f"{', '.join(QUICK)}; problems peak and time+recompute, 2 s per run, into results/tmp/compare")
    ap.add_argument("--out", default=None,
                    help="folder of the CSVs (default results/compare; --quick: results/tmp/compare)")
    args = ap.parse_args(argv)
    if args.quick:
        args.problems = "peak,time+recompute" if args.problems == ",".join(PROBLEMS) else args.problems
        args.time_limit = 2.0 if args.time_limit == 20.0 else args.time_limit
    out = args.out or (os.path.join("results", "tmp", "compare") if args.quick else os.path.join("results", "compare"))

    os.chdir(ROOT)  # paths in the CSVs are relative to the repository
    problems = [p.strip() for p in args.problems.split(",") if p.strip()]
    for p in problems:
        if p not in PROBLEMS:
            ap.error(f"unknown problem {p!r}")
    sets = {k: v for k, v in instance_sets(args.shared, args.quick).items() if k in args.sets.split(",")}
    executor = IsolatedExecutor(pool_size(args.threads, args.jobs))
    made: list[tuple[str, int, dict | None]] = []
    ran: list[dict] = []  # the runs of this call, with their wall time and peak memory
    with locked(None if args.no_lock else "/tmp/memopt-bench.lock"):
        for set_name, files in sets.items():
            insts = {f: load_instance(f) for f in files}
            for prob in problems:
                kw = PROBLEMS[prob]
                chosen = [f for f in files if not kw.get("offload") or insts[f].machine.bandwidth is not None]
                if not chosen:
                    continue
                name = f"{set_name}-{prob.replace('+', '-')}"
                csv_path = os.path.join(out, f"{name}.csv")
                if args.fresh:
                    if os.path.exists(csv_path):
                        os.remove(csv_path)
                    shutil.rmtree(os.path.splitext(csv_path)[0], ignore_errors=True)
                names = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
                # with --methods: each problem gets those of them that fit it (no error rows for the others)
                spec = BenchSpec(chosen, time_limit=args.time_limit, threads=args.threads, methods=names,
                                 fit_only=True, **kw)
                print(f"== {name}: {len(chosen)} instances", file=sys.stderr, flush=True)
                s = run_bench(spec, csv_path, executor=executor, instances={f: insts[f] for f in chosen},
                              progress=not args.no_progress)
                for r in s.rows:
                    o = executor.measured.get(run_key(r))
                    ran.append({**r, **{c: NUMBERS.parse(c, r[c]) for c in NUMBERS.names},
                                "instance": f"{r['instance']} {r['budget']}".strip(),
                                "method": f"{prob}/{r['method']}", **(measured_columns(o) if o else {})})
                if not os.path.exists(csv_path):
                    print(f"   no method handles {prob} yet: nothing to report", file=sys.stderr)
                    made.append((name, len(chosen), None))
                    continue
                make_report(csv_path, title=f"{set_name} instances, {prob}")
                rows = read_rows(csv_path)
                statuses: dict[str, int] = {}
                for r in rows:
                    statuses[r["status"]] = statuses.get(r["status"], 0) + 1
                made.append((name, len(chosen), statuses))
                # the script's table (one line per method: runs, plans, optima, best, gap, time)
                add_labels(rows)
                print(f"\n## {name} ({s.ran} run now, {s.skipped} already done)\n")
                print(summarize(rows, kw["objective"])[0])
    # the index lists every comparison in results/compare, also those not re-run now (--sets/--problems)
    done = {name for name, _, _ in made}
    for csv_path in sorted(glob.glob(os.path.join(out, "*.csv"))):
        name = os.path.splitext(os.path.basename(csv_path))[0]
        if name in done:
            continue
        rows = read_rows(csv_path)
        statuses = {}
        for r in rows:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        made.append((name, len({r["instance_file"] for r in rows}), statuses))
    made.sort(key=lambda x: x[0])
    present: set[str] = set()  # the methods the CSVs hold (a run with --methods adds to earlier ones)
    for csv_path in glob.glob(os.path.join(out, "*.csv")):
        present.update(r["method"] for r in read_rows(csv_path))
    write_index(made, args, sorted(present), out)
    if ran:
        print("\n## every run of this call\n")
        print(format_table(ran))
    print(f"\nindex: {os.path.join(out, 'README.md')}")
    return 0


def write_index(made, args, method_names, out: str) -> None:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    lines = [
        "# The comparison of every formulation",
        "",
        "Made by `python benchmarks/compare_all.py` (re-run it to refresh; `--fresh` re-measures everything).",
        (f"Index written at memopt commit {commit}, {datetime.date.today().isoformat()}; time limit "
         f"{args.time_limit:g} s and {args.threads} thread(s) per run; {os.cpu_count()} cores."),
        (f"Methods in the tables: {', '.join(method_names)} (every registered method that fits each problem; "
         "`auto`, which picks among them, added by `--methods auto`)."),
        "",
        ("Every value was re-checked by the evaluator from the saved plan file. Timings were taken on a shared "
         "machine and are indicative only."),
        "",
        "| results | instances | runs | report |",
        "| :--- | ---: | :--- | :--- |",
    ]
    for name, n, statuses in made:
        if statuses is None:
            why = "none of the compared methods handles" if args.methods else "no registered method handles"
            lines.append(f"| {name} | {n} | {why} this problem yet | |")
            continue
        runs = ", ".join(f"{v} {k}" for k, v in sorted(statuses.items()))
        lines.append(f"| [{name}.csv]({name}.csv) | {n} | {runs} | [{name}/report.md]({name}/report.md) |")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
