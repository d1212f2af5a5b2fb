"""``memopt evaluate``: check a plan against an instance (SPEC §2)."""

from __future__ import annotations

import argparse

from memopt.commands._common import add_import_args, load


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="check a plan file: validity, peak, makespan",
        description="Replay PLAN on INSTANCE, print validity, peak, makespan and overhead. Exits 1 on an "
                    "invalid plan, naming the first broken rule and its stage.")
    p.add_argument("instance", help="instance file")
    p.add_argument("plan", help="plan file (only its 'stages' are read)")
    p.add_argument("--budget", default=None, help="override the machine's budget (a size, or a ratio like 0.8x)")
    p.add_argument("--max-makespan", type=float, default=None, metavar="T", help="also require makespan <= T")
    p.add_argument("--pure", action="store_true",
                   help="require a pure schedule (each task once, no transfers), as the peak objective does")
    p.add_argument("--memory", action="store_true", help="print the memory in use at every event")
    add_import_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from memopt.core.evaluate import evaluate
    from memopt.core.result import load_plan
    from memopt.pipeline import parse_budget

    inst = load(args.instance, args)
    plan = load_plan(args.plan)
    budget = parse_budget(args.budget, inst) if args.budget is not None else None
    ev = evaluate(inst, plan, budget=budget, max_makespan=args.max_makespan,
                  allow_recompute=not args.pure, allow_offload=not args.pure)
    if args.memory:
        for mp in ev.memory:
            what = f"{mp.kind} {mp.target}" if mp.kind else "start"
            print(f"stage {mp.stage:>6}  event {mp.event:>3}  {what:<40}  {mp.memory}")
    print(f"valid       {'yes' if ev.valid else 'no'}")
    if ev.violation is not None:
        print(f"broken rule {ev.violation}")
        for v in ev.violations[1:]:
            print(f"also        {v}")
    print(f"stages      {len(plan)}")
    print(f"peak        {ev.peak}" + (f"  (budget {ev.budget})" if ev.budget is not None else ""))
    print(f"makespan    {ev.makespan}")
    print(f"overhead    {100 * ev.overhead:.2f}%  (Σ time {ev.total_time})")
    print(f"computes    {ev.computes}  (recomputes {ev.recomputes})")
    if ev.offloads or ev.reloads:
        print(f"transfers   {ev.offloads} offloads, {ev.reloads} reloads, {ev.transferred} moved, "
              f"slow peak {ev.slow_peak}")
    return 0 if ev.valid else 1
