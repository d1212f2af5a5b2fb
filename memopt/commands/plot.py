"""``memopt plot``: a plan's memory over its stages against the budget, as an image file."""

from __future__ import annotations

import argparse
import os
import sys

from memopt.commands._common import add_import_args, load


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
    p.add_argument("--budget", default=None,
                   help="budget line: a size or a ratio like 0.8x (default: the plan file's budget, "
                        "else the instance's)")
    p.add_argument("--x", choices=("stage", "time"), default="stage",
                   help="x axis: stage index (default) or time (each stage as long as it lasts)")
    p.add_argument("--title", default=None, help="title (default: the instance's name)")
    p.add_argument("--max-lanes", type=int, default=30, help="at most this many data lanes (default 30)")
    add_import_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from memopt.core.files import read_raw
    from memopt.plots import plot_plan
    from memopt.core.result import Result, load_plan
    from memopt.pipeline import parse_budget

    inst = load(args.instance, args)
    raw = read_raw(args.plan)
    budget = None
    title = args.title
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
    outs = args.out or [os.path.splitext(args.plan)[0] + ".png"]
    written = plot_plan(inst, plan, outs, budget=budget, x=args.x, title=title, max_lanes=args.max_lanes)
    for w in written:
        print(w)
    if budget is None and inst.machine.budget is None:
        print("memopt plot: note: no budget (give --budget to draw one)", file=sys.stderr)
    return 0


def _short(path: str, name: str) -> str:
    """The instance's name, or its file's stem when the name is long (e.g. imported graphs)."""
    return name if len(name) <= 24 else os.path.splitext(os.path.basename(path))[0]
