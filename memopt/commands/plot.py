"""``memopt plot``: a plan's memory over its stages against the budget, as an image file.

Only a plan that can be replayed is drawn: an empty plan, a result file
without a plan (``infeasible``, ``unknown``) or a plan that breaks a rule of
the evaluator (an input not in memory, a task never run...) is an input
error (one line, exit 2) rather than a figure of nothing. A plan that only
exceeds a limit (the budget, the slow capacity, the makespan limit) is drawn,
with the broken limit in its title and a note on stderr: the figure shows
where it exceeds.
"""

from __future__ import annotations

import argparse
import os
import sys

from memopt.commands._common import add_import_args, budget_text, load, positive_int
from memopt.core.errors import MemoptError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot", help="draw a plan: memory over the stages against the budget",
        description="Replay PLAN on INSTANCE with the evaluator and draw the fast memory in use over the "
                    "stages against the budget; below, one lane per datum that is offloaded or recomputed "
                    "(when it is in fast memory, its copy in slow memory, offloads, reloads, recomputations). "
                    "Writes PNG, SVG or PDF (by the extension of -o; repeat -o for several).")
    p.add_argument("instance", help="instance file")
    p.add_argument("plan", help="plan file (what memopt solve or memopt bench wrote)")
    p.add_argument("-o", "--out", action="append", metavar="FIGURE",
                   help="image file(s): .png, .svg or .pdf (default: the plan's name with .png)")
    p.add_argument("--budget", default=None, type=budget_text,
                   help="budget line: a size or a ratio like 0.8x (default: the plan file's budget, "
                        "else the instance's)")
    p.add_argument("--x", choices=("stage", "time"), default="stage",
                   help="x axis: stage index (default) or time (each stage as long as it lasts)")
    p.add_argument("--title", default=None, help="title (default: the instance's name)")
    p.add_argument("--max-lanes", type=positive_int, default=30, help="at most this many data lanes (default 30)")
    add_import_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from memopt.core.files import read_raw
    from memopt.core.result import Result, load_plan
    from memopt.pipeline import parse_budget
    from memopt.plots import check_figure_paths, plot_plan

    outs = check_figure_paths(args.out or [os.path.splitext(args.plan)[0] + ".png"])
    inst = load(args.instance, args)
    raw = read_raw(args.plan)
    budget = None
    title = args.title
    if isinstance(raw, dict) and "stages" not in raw and "status" in raw:
        raise MemoptError(f"{args.plan}: a result without a plan (status {raw['status']}): nothing to draw")
    if isinstance(raw, dict) and "stages" in raw:
        res = Result.from_dict(raw, args.plan)
        plan = res.plan
        budget = res.budget
        if title is None and res.method:
            title = f"{_short(args.instance, inst.name)} — {res.method}"
    else:
        plan = load_plan(args.plan)
    if args.budget is not None:
        budget = parse_budget(args.budget, inst)
    if title is None:
        title = _short(args.instance, inst.name)
    check_drawable(inst, plan, budget, args.instance, args.plan)
    written = plot_plan(inst, plan, outs, budget=budget, x=args.x, title=title, max_lanes=args.max_lanes)
    for w in written:
        print(w)
    if budget is None and inst.machine.budget is None:
        print("memopt plot: note: no budget (give --budget to draw one)", file=sys.stderr)
    return 0


def check_drawable(inst, plan, budget: int | None, instance_file: str, plan_file: str) -> None:
    """Raise an input error unless ``plan`` replays on ``inst`` (limits aside); note a broken limit on stderr."""
    from memopt.core.evaluate import SOFT_RULES, evaluate

    if not plan.stages:
        raise MemoptError(f"{plan_file}: the plan has no stages: nothing to draw")
    ev = evaluate(inst, plan, budget=budget, trace=False)
    broken = [v for v in ev.violations if v.rule not in SOFT_RULES]
    if broken:
        raise MemoptError(f"{plan_file}: not a valid plan of {instance_file}: {broken[0]} "
                          f"(memopt evaluate {instance_file} {plan_file} replays it)")
    if ev.violation is not None:
        print(f"memopt plot: note: the plan breaks a limit, drawn anyway: {ev.violation}", file=sys.stderr)


def _short(path: str, name: str) -> str:
    """The instance's name, or its file's stem when the name is long (e.g. imported graphs)."""
    return name if len(name) <= 24 else os.path.splitext(os.path.basename(path))[0]
