"""``memopt evaluate``: check a plan against an instance (SPEC §2).

A valid plan: its figures (peak, makespan, overhead, computes, transfers),
exit status 0. An invalid plan: the first broken rule with its stage and
event, then every other rule found broken, and no figures (a peak or an
overhead of a plan that cannot run means nothing), exit status 1. An input
error (a file that cannot be read, a bad option): one line, exit status 2.
"""

from __future__ import annotations

import argparse

from memopt.commands._common import add_import_args, budget_text, exact_number, load

EPILOG = """exit status: 0 the plan is valid; 1 the plan is invalid (the first broken rule, its stage and event,
then the other rules broken; no figures); 2 usage or input error (one line); 4 internal error (a bug)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="check a plan file: validity, peak, makespan",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Replay PLAN on INSTANCE with the evaluator. A valid plan: print its peak, makespan, "
                    "overhead,\ncomputes and transfers. An invalid plan: print the first broken rule with its "
                    "stage and event,\nthen the other rules broken, and no figures.")
    p.add_argument("instance", help="instance file")
    p.add_argument("plan", help="plan file (only its 'stages' are read)")
    p.add_argument("--budget", default=None, type=budget_text,
                   help="override the machine's budget (an integer size, or a ratio like 0.8x)")
    p.add_argument("--max-makespan", type=exact_number, default=None, metavar="T",
                   help="also require makespan <= T")
    p.add_argument("--pure", action="store_true",
                   help="require a pure schedule (each task once, no transfers), as the peak objective does")
    p.add_argument("--memory", action="store_true",
                   help="print the memory in use at every event (up to the first broken rule)")
    add_import_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from memopt.core.evaluate import evaluate
    from memopt.core.result import load_plan
    from memopt.pipeline import parse_budget, parse_time_value

    inst = load(args.instance, args)
    plan = load_plan(args.plan)
    budget = parse_budget(args.budget, inst) if args.budget is not None else None
    limit = parse_time_value(args.max_makespan, "max_makespan") if args.max_makespan is not None else None
    ev = evaluate(inst, plan, budget=budget, max_makespan=limit,
                  allow_recompute=not args.pure, allow_offload=not args.pure)
    if args.memory:
        for mp in ev.memory:
            what = f"{mp.kind} {mp.target}" if mp.kind else "start"
            print(f"stage {mp.stage:>6}  event {mp.event:>3}  {what:<40}  {mp.memory}")
    for line in report(ev, len(plan)):
        print(line)
    return 0 if ev.valid else 1


def report(ev, stages: int) -> list[str]:
    """The lines ``memopt evaluate`` prints: the figures of a valid plan, or the rules an invalid one breaks."""
    if not ev.valid:
        out = ["valid       no", f"broken rule {ev.violation}"]
        out += [f"also        {v}" for v in ev.violations[1:]]
        out.append(f"stages      {stages}")
        return out
    out = ["valid       yes", f"stages      {stages}",
           f"peak        {ev.peak}" + (f"  (budget {ev.budget})" if ev.budget is not None else ""),
           f"makespan    {ev.makespan}",
           f"overhead    {100 * ev.overhead:.2f}%  (Σ time {ev.total_time})",
           f"computes    {ev.computes}  (recomputes {ev.recomputes})"]
    if ev.offloads or ev.reloads:
        out.append(f"transfers   {ev.offloads} offloads, {ev.reloads} reloads, {ev.transferred} moved, "
                   f"slow peak {ev.slow_peak}")
    return out
