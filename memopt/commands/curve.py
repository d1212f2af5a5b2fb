"""``memopt curve``: the whole memory/time trade-off of an instance in one run (:mod:`memopt.bench.curve`)."""

from __future__ import annotations

import argparse
import importlib.util
import sys

from memopt.commands._common import (
    NO_LIMIT,
    add_import_args,
    bytes_or_none,
    load,
    make_output_folder,
    natural,
    parse_kv,
    positive_int,
    seconds_or_none,
)
from memopt.core.errors import MemoptError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "curve", help="the memory/time trade-off: overhead and its bound at each budget",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Solve objective 'time' at each budget of --budgets, from the best schedule's peak (1.0x) down "
                    "to the proven lower bound on the peak (auto), and print a table of the overhead found, its "
                    "proven lower bound and the status at each budget. The curve is monotone by construction "
                    "(each budget keeps the best plan found at any budget that fits it). See docs/curve.md.",
        epilog="example: memopt curve layered.yaml --budgets 1.0x,0.9x,0.8x,auto --recompute -t 30 "
               "-o curve.csv --md curve.md --plot curve.png")
    p.add_argument("instance", help="instance file")
    p.add_argument("--budgets", "-b", default="1.0x,0.9x,0.8x,0.7x,0.6x,0.5x,auto", metavar="LIST",
                   help="comma-separated budgets: ratios of the best schedule's peak (0.9x), sizes (1000), and "
                        "auto: the grid continued down to the proven lower bound (default: %(default)s)")
    p.add_argument("--step", default=None, metavar="R",
                   help="with auto: the ratio step (default: the spacing of the ratios given, else 0.1)")
    p.add_argument("--recompute", action="store_true", help="allow recomputation")
    p.add_argument("--offload", action="store_true", help="allow offloading (needs machine.bandwidth)")
    p.add_argument("--method", "-m", default="auto", help="method of each point (default auto)")
    p.add_argument("--option", "-O", action="append", metavar="KEY=VALUE", help="an option of --method")
    p.add_argument("--time-limit", "-t", type=seconds_or_none, default=60.0, metavar="S",
                   help="seconds per point (default 60; 0 or none: no limit)")
    p.add_argument("--total", action="store_true",
                   help="-t is the time of the whole curve, shared by the points still to run")
    p.add_argument("--memory-limit", type=bytes_or_none, default=None, metavar="SIZE",
                   help="memory limit of each run (default: 75%% of the machine's memory; none: no limit)")
    p.add_argument("--threads", type=positive_int, default=2, help="solver threads (default 2)")
    p.add_argument("--seed", type=natural, default=0, help="random seed (default 0)")
    p.add_argument("-o", "--out", metavar="CSV", help="write the points as CSV")
    p.add_argument("--md", metavar="MD", help="write the points as a Markdown table")
    p.add_argument("--plot", metavar="IMAGE", help="write the figure (png/svg/pdf; needs matplotlib)")
    p.add_argument("--quiet", "-q", action="store_true", help="no line per point")
    add_import_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from memopt.bench.curve import trade_off_curve

    for path, ext in ((args.out, (".csv",)), (args.md, (".md",))):
        if path and not path.lower().endswith(ext):
            raise MemoptError(f"curve: {path!r}: expected a {ext[0]} file")
    if args.plot:
        from memopt.plots import check_figure_paths

        check_figure_paths(args.plot, "curve: --plot ")
        if importlib.util.find_spec("matplotlib") is None:  # say it now, not after the solves
            raise MemoptError("figures need matplotlib: pip install 'memopt[plot]'")
    for path in (args.out, args.md, args.plot):
        if path:
            make_output_folder(path)
    budgets = [b for b in args.budgets.split(",") if b.strip()]
    inst = load(args.instance, args)
    memory = "default" if args.memory_limit is None else (None if args.memory_limit == NO_LIMIT else args.memory_limit)

    def show(p) -> None:
        if not args.quiet:
            ov = "" if p.overhead is None else f" overhead {100 * p.overhead:.2f}%"
            print(f"  {p.label} (budget {p.budget}): {p.method or ''}{ov} in {p.seconds:.1f}s", file=sys.stderr)

    curve = trade_off_curve(inst, budgets, recompute=args.recompute, offload=args.offload, method=args.method,
                            time_limit=None if args.total else args.time_limit,
                            total_time=args.time_limit if args.total else None, step=args.step,
                            threads=args.threads, seed=args.seed, memory_limit=memory, on_point=show,
                            **parse_kv(args.option))
    print(curve.markdown(), end="")
    if args.out:
        curve.write_csv(args.out)
        print(f"points written to {args.out}", file=sys.stderr)
    if args.md:
        curve.write_md(args.md)
        print(f"table written to {args.md}", file=sys.stderr)
    if args.plot:
        from memopt.plots import plot_curve

        plot_curve(curve, args.plot)
        print(f"figure written to {args.plot}", file=sys.stderr)
    return 0
