"""``memopt solve``: solve an instance with a method and write the plan file."""

from __future__ import annotations

import argparse
import sys

from ._common import add_import_args, add_problem_args, load, parse_kv


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "solve", help="solve an instance and write the plan",
        description="Solve INSTANCE with --method, print a one-line summary (instance, method, objective, "
                    "status, value, bound, gap, seconds) and write the plan file of SPEC §4. "
                    "The value is always the evaluator's. `memopt solve --list-methods` lists the methods.")
    p.add_argument("instance", nargs="?", help="instance file")
    p.add_argument("-o", "--out", metavar="PLAN", help="write the plan/result here (.yaml or .json)")
    p.add_argument("--method", "-m", default="auto", help="method name, or auto (default)")
    p.add_argument("--time-limit", "-t", type=float, default=None, metavar="S",
                   help="wall-clock seconds; the best plan found is returned when time runs out")
    add_problem_args(p)
    g = p.add_argument_group("solver")
    g.add_argument("--no-warm-start", action="store_true", help="do not seed solvers with a heuristic plan")
    g.add_argument("--warm-start", metavar="PLAN", default=None, help="seed solvers with this plan file")
    g.add_argument("--threads", type=int, default=2, help="solver threads / CP-SAT workers (default 2)")
    g.add_argument("--seed", type=int, default=0, help="random seed of the solvers (default 0)")
    g.add_argument("--backend", default=None, help="MILP backend for MILP methods: cbc or highs")
    g.add_argument("--option", "-O", action="append", metavar="KEY=VALUE",
                   help="method option (repeatable), e.g. -O reduce=false")
    g.add_argument("--log", action="store_true", help="print the solver's progress to stderr")
    p.add_argument("--list-methods", action="store_true", help="list the methods and what they solve")
    add_import_args(p)
    p.set_defaults(func=run)


def list_methods() -> None:
    from ..solve import methods

    ms = methods()
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


def run(args: argparse.Namespace) -> int:
    from ..errors import MemoptError
    from ..result import load_plan
    from ..solve import solve

    if args.list_methods:
        list_methods()
        return 0
    if not args.instance:
        raise MemoptError("solve: give an INSTANCE file (or --list-methods)")
    inst = load(args.instance, args)
    extra = parse_kv(args.option)
    if args.backend:
        extra["backend"] = args.backend
    warm: object = not args.no_warm_start
    if args.warm_start:
        warm = load_plan(args.warm_start)
    res = solve(
        inst, args.objective, args.method, time_limit=args.time_limit, warm_start=warm,
        budget=args.budget, max_makespan=args.max_makespan, recompute=args.recompute,
        offload=args.offload, threads=args.threads, seed=args.seed, log=args.log, **extra,
    )
    print(res.summary())
    if args.out:
        res.save(args.out)
        print(f"plan written to {args.out}", file=sys.stderr)
    return 0 if res.status in ("optimal", "feasible", "infeasible") else 1
