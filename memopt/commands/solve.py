"""``memopt solve``: solve an instance with a method and write the plan file.

Exit status (also in ``memopt solve --help`` and the README):

====  ==========================================================
0     a plan within the budget (status ``optimal`` or ``feasible``)
1     no plan found in the time (status ``unknown``)
2     a usage or input error (one line, before any solving)
3     proven infeasible: no plan fits (the result file holds the status and the proof; no plan)
4     an internal error: a bug in memopt
130   interrupted (Ctrl-C, SIGTERM): the best plan found so far is written
====  ==========================================================
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from memopt.commands._common import (
    NO_LIMIT,
    add_import_args,
    add_problem_args,
    bytes_or_none,
    check_output,
    load,
    natural,
    parse_kv,
    positive_int,
    seconds_or_none,
)
from memopt.core.errors import MemoptError
from memopt.core.interrupt import DEFAULT_MEMORY_FRACTION, shielded
from memopt.core.status import EXIT_INFEASIBLE, EXIT_INTERRUPTED, EXIT_PLAN, EXIT_UNKNOWN, Status
from memopt.pipeline import DEFAULT_TIME_LIMIT, PROGRESS_SECONDS

EPILOG = f"""exit status: 0 a plan within the budget (optimal or feasible); 1 no plan found in the time (unknown);
2 usage or input error; 3 proven infeasible (the result file holds the proof, no plan); 4 internal error (a bug);
130 interrupted (the best plan so far is written; a second Ctrl-C exits at once).

Every solve has a time limit (default {DEFAULT_TIME_LIMIT:g} s) and a memory limit (default
{100 * DEFAULT_MEMORY_FRACTION:g} % of the machine's memory); at either, the best plan found so far is returned.
On a terminal a progress line is printed every {PROGRESS_SECONDS:g} s (--quiet silences it)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "solve", help="solve an instance and write the plan",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Solve INSTANCE with --method, print a one-line summary (instance, method, objective, "
                    "status, value, bound, gap, seconds) and write the plan file (docs/spec.md §4). "
                    "The value is always the evaluator's. `memopt solve --list-methods` lists the methods.")
    p.add_argument("instance", nargs="?", help="instance file")
    p.add_argument("-o", "--out", metavar="PLAN", help="write the plan/result here (.yaml, .yml or .json)")
    p.add_argument("--method", "-m", default="auto", help="method name, or auto (default)")
    p.add_argument("--time-limit", "-t", type=seconds_or_none, default=DEFAULT_TIME_LIMIT, metavar="S",
                   help=f"wall-clock seconds of the command, reading the instance included (default "
                        f"{DEFAULT_TIME_LIMIT:g}; 0 or none: no limit); the best plan found is returned when time "
                        "runs out")
    p.add_argument("--memory-limit", type=bytes_or_none, default=None, metavar="SIZE",
                   help=f"memory the solve may hold, e.g. 8GiB (default {100 * DEFAULT_MEMORY_FRACTION:g} %% of the "
                        "machine's memory; none: no limit); at the limit the search stops with its best plan")
    add_problem_args(p)
    g = p.add_argument_group("solver")
    g.add_argument("--no-warm-start", action="store_true", help="do not seed solvers with a heuristic plan")
    g.add_argument("--warm-start", metavar="PLAN", default=None, help="seed solvers with this plan file")
    g.add_argument("--threads", type=positive_int, default=2,
                   help="solver threads / CP-SAT workers; with offloading and 2 or more, the planner also searches "
                        "in a second process (default 2)")
    g.add_argument("--seed", type=natural, default=0, help="random seed of the solvers (default 0)")
    g.add_argument("--backend", default=None, help="solver of the method: cpsat, highs or cbc (see --help-options)")
    g.add_argument("--option", "-O", action="append", metavar="KEY=VALUE",
                   help="method option (repeatable), e.g. -O reduce=false; unknown keys are an error")
    g.add_argument("--help-options", action="store_true", help="list the options of --method and exit")
    o = p.add_argument_group("output")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress lines, only the summary")
    o.add_argument("--log", action="store_true", help="memopt's own log on stderr (each improvement, each phase)")
    o.add_argument("--solver-log", action="store_true", help="the solvers' internal logs (CP-SAT, HiGHS, CBC)")
    p.add_argument("--list-methods", action="store_true", help="list the methods and what they solve")
    p.add_argument("-v", "--verbose", action="store_true", help="with --list-methods: also every method's options")
    add_import_args(p)
    p.set_defaults(func=run)


def list_methods(verbose: bool = False) -> None:
    from memopt.catalog import CATALOG

    ms = CATALOG.entries()
    w = max(len(n) for n in ms)
    for name in sorted(ms, key=lambda n: (ms[n].family, n)):
        m = ms[name]
        feats = ["pure"] if m.pure else []
        if m.recompute:
            feats.append("recompute")
        if m.offload:
            feats.append("offload")
        print(f"{name:<{w}}  {m.family:<9}  {'/'.join(sorted(m.objectives)):<9}  "
              f"{'exact' if m.exact else '     '}  {','.join(feats):<24}  {m.description}")
        if verbose:
            for row in m.params.describe():
                print(f"{'':<{w}}    -O {row}")


def help_options(method: str) -> None:
    from memopt.catalog import CATALOG

    m = CATALOG[method]
    rows = m.params.describe()
    print(f"options of {method} (-O key=value):" if rows else f"{method} takes no options")
    for row in rows:
        print(f"  {row}")


def configure_logging(quiet: bool, log: bool) -> None:
    """Progress lines on a terminal (unless quiet); memopt's own log with --log; both on stderr."""
    root = logging.getLogger("memopt")
    for h in list(root.handlers):
        if getattr(h, "_memopt_cli", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("memopt: %(message)s"))
    handler._memopt_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.propagate = False
    progress = logging.getLogger("memopt.progress")
    if log:
        root.setLevel(logging.INFO)
        progress.setLevel(logging.INFO)
    elif not quiet and sys.stderr.isatty():
        root.setLevel(logging.WARNING)
        progress.setLevel(logging.INFO)
    else:
        root.setLevel(logging.WARNING)
        progress.setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    from memopt.core.result import load_plan
    from memopt.pipeline import make_request, solve_request

    if args.list_methods:
        list_methods(args.verbose)
        return 0
    if args.help_options:
        help_options(args.method)
        return 0
    if not args.instance:
        raise MemoptError("solve: give an INSTANCE file (or --list-methods)")
    began = time.perf_counter()  # the time limit is the command's: reading the instance counts
    check_output(args.out, "plan")
    extra = parse_kv(args.option)
    if args.backend:
        extra["backend"] = args.backend
    inst = load(args.instance, args)
    req = make_request(inst, args.objective, budget=args.budget, max_makespan=args.max_makespan,
                       recompute=args.recompute, offload=args.offload)
    warm: object = not args.no_warm_start
    if args.warm_start:
        warm = load_plan(args.warm_start)
    configure_logging(args.quiet, args.log)

    def write_now(inc) -> None:
        """The second Ctrl-C (or the memory watchdog's last resort): write what there is, at once."""
        from memopt.core.method import MethodOutput
        from memopt.pipeline import result_of

        if args.out and inc.plan is not None:
            result_of(req, inc, MethodOutput(), args.method, "interrupted").save(args.out)
            print(f"memopt: best plan so far written to {args.out}", file=sys.stderr)

    memory = "default" if args.memory_limit is None else (None if args.memory_limit == NO_LIMIT else args.memory_limit)
    with shielded():  # from the end of the search to the written answer, a second Ctrl-C is ignored
        res = solve_request(req, args.method, time_limit=args.time_limit, memory_limit=memory, started=began,
                            warm_start=warm, threads=args.threads, seed=args.seed, solver_log=args.solver_log,
                            on_second_interrupt=write_now, hard_exit=True, **extra)
        print(res.summary())
        if args.out:
            if res.plan is not None or res.status == Status.INFEASIBLE:
                res.save(args.out)
                what = "plan" if res.plan is not None else "result (no plan: infeasible)"
                print(f"{what} written to {args.out}", file=sys.stderr)
            else:
                print(f"no plan to write to {args.out}", file=sys.stderr)
    return exit_status(res)


def exit_status(res) -> int:
    """The exit status that tells the outcome (module docstring)."""
    if res.status == Status.INTERRUPTED or res.statistics.stop_reason == "interrupted":
        return EXIT_INTERRUPTED
    if res.status == Status.INFEASIBLE:
        return EXIT_INFEASIBLE
    if res.plan is not None:
        return EXIT_PLAN
    return EXIT_UNKNOWN
