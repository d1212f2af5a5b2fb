"""``memopt bench``: run instances × methods × budgets into a results CSV."""

from __future__ import annotations

import argparse
import sys

from memopt.commands._common import budget_text, exact_number, parse_kv, positive_int, seconds_or_none
from memopt.core.errors import MemoptError
from memopt.core.status import EXIT_INTERRUPTED


def _seconds(text: str) -> float:
    """Seconds: a finite number > 0."""
    t = seconds_or_none(text)
    if t is None:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return t


def _budgets(text: str | None) -> list[str]:
    """The budgets of --budgets, each checked as ``memopt solve --budget`` checks it (or ``none``)."""
    out = _list(text)
    for b in out:
        if b.lower() != "none":
            try:
                budget_text(b)
            except argparse.ArgumentTypeError as e:
                raise MemoptError(f"--budgets: {e}") from None
    return out


def _list(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="run a grid of instances x methods x budgets into a CSV",
        description="Run every method on every instance and budget (K times), one CSV row per run: instance, "
                    "tasks, method, objective, budget, status, value, bound, gap, seconds, time to first plan, "
                    "peak, makespan, plan file. Each plan is saved next to the CSV and re-checked by the "
                    "evaluator before its row is written. A rerun skips the runs already in the CSV.",
        epilog="example: memopt bench instances/*.yaml --objective time --budgets 1x,0.9x,0.8x "
               "--time-limit 60 --out results/mine.csv")
    p.add_argument("instances", nargs="+", metavar="INSTANCE", help="instance files")
    p.add_argument("--out", "-o", default="results/bench.csv", metavar="CSV",
                   help="results table (default results/bench.csv); plans go to CSV-without-.csv/plans/")
    g = p.add_argument_group("grid")
    g.add_argument("--objective", choices=("peak", "time"), default="peak",
                   help="peak: minimise the peak; time: minimise the makespan under each budget (default peak)")
    g.add_argument("--methods", "-m", default=None, metavar="A,B,...",
                   help="methods to compare (default: every registered method that fits each problem)")
    g.add_argument("--fit-only", action="store_true",
                   help="with --methods: leave out, per problem, the methods that refuse it (its structure, a "
                        "missing package) instead of writing error rows")
    g.add_argument("--budgets", "-b", default=None, metavar="B1,B2,...",
                   help="budgets: sizes or ratios of the best baseline peak, e.g. 1x,0.9x,0.8x, or none "
                        "(objective peak without a budget); default: each instance's machine.budget")
    g.add_argument("--max-makespan", type=lambda t: float(exact_number(t)), default=None, metavar="T",
                   help="with --objective peak: the makespan may not exceed T")
    g.add_argument("--recompute", action="store_true", help="allow recomputation")
    g.add_argument("--offload", action="store_true", help="allow offloading (needs machine.bandwidth)")
    g.add_argument("--repeat", "-k", type=positive_int, default=1, metavar="K",
                   help="runs per cell, with seeds 0..K-1 (default 1)")
    g = p.add_argument_group("runs")
    g.add_argument("--time-limit", "-t", type=_seconds, default=None, metavar="S",
                   help="seconds per run; a method returns its best plan when time runs out")
    g.add_argument("--threads", type=positive_int, default=1,
                   help="threads of each run (CP-SAT workers, MILP threads; default 1)")
    g.add_argument("--jobs", "-j", type=positive_int, default=None,
                   help="runs at the same time with --executor local (default: cores // threads)")
    g.add_argument("--kill-after", type=_seconds, default=None, metavar="S",
                   help="kill a run still alive after S seconds (default: 2 x time limit + 30)")
    g.add_argument("--executor", choices=("local", "serial", "dask"), default="local",
                   help="local: worker processes (default); serial: in this process; dask: a Dask cluster")
    g.add_argument("--address", default=None, metavar="ADDR",
                   help="with --executor dask: the scheduler, e.g. tcp://10.0.0.1:8786")
    g.add_argument("--option", "-O", action="append", metavar="KEY=VALUE",
                   help="method option passed to every run (repeatable)")
    g.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE in each worker first (methods registered outside memopt)")
    g.add_argument("--plan-format", choices=("yaml", "json"), default="yaml", help="plan files (default yaml)")
    g.add_argument("--retry-errors", action="store_true", help="run again the runs whose row is an error")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--dry-run", action="store_true", help="list the runs to do, run nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    from memopt.bench import BenchSpec, available_cores, make_executor, pool_size, run_bench
    from memopt.bench.experiment import load_instances, plans_dir_for
    from memopt.bench.grid import build_grid
    from memopt.bench.table import ResultsTable
    from memopt.bench.worker import load_plugins

    load_plugins(args.imports)  # so that --methods and the defaults see the plugins' methods here too
    spec = BenchSpec(
        instances=args.instances, objective=args.objective, budgets=_budgets(args.budgets),
        methods=_list(args.methods) or None, fit_only=args.fit_only, recompute=args.recompute, offload=args.offload,
        max_makespan=args.max_makespan, time_limit=args.time_limit, repeat=args.repeat, threads=args.threads,
        kill_after=args.kill_after, options=parse_kv(args.option), imports=args.imports,
        plan_format=args.plan_format,
    )
    if args.dry_run:
        import os

        spec.instances = [os.path.normpath(x) for x in spec.instances]
        jobs, notes = build_grid(spec, load_instances(spec.instances), plans_dir_for(args.out))
        done = ResultsTable(args.out).done(retry_errors=args.retry_errors,
                                           hashes={j.instance_file: j.instance_hash for j in jobs})
        for note in notes:
            print(f"note: {note}")
        todo = [j for j in jobs if j.key not in done]
        for j in todo:
            print(f"{j.describe()}" + (f"  (error: {j.error})" if j.error else ""))
        print(f"{len(todo)} run(s) to do, {len(jobs) - len(todo)} already in {args.out}")
        return 0
    executor = make_executor(args.executor, threads=args.threads, jobs=args.jobs, address=args.address)
    if args.executor == "local":
        cores = available_cores()
        workers = pool_size(args.threads, args.jobs)
        if workers * args.threads > cores:
            print(f"memopt bench: warning: {workers} jobs x {args.threads} threads > {cores} cores; "
                  f"runs will compete for cores and their times will suffer", file=sys.stderr)
    try:
        s = run_bench(spec, args.out, executor=executor, retry_errors=args.retry_errors,
                      progress=not args.no_progress)
    except KeyboardInterrupt:
        # every finished run is already a row of the table (written as it ends): the same command resumes
        print(f"\nmemopt bench: interrupted; the finished runs are in {args.out}: run the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    counts = ", ".join(f"{n} {k}" for k, n in sorted(s.statuses.items())) or "nothing"
    print(f"{s.ran} run(s): {counts}; {s.skipped} already done; table {args.out}")
    if s.errors:
        for r in s.rows:
            if r["status"] == "error":
                print(f"  error: {r['instance']} {r['method']} {r['budget']}: {r['message']}", file=sys.stderr)
    return 1 if s.errors else 0
