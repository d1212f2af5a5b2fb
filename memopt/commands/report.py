"""``memopt report``: Markdown tables and figures from a results CSV."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="tables and figures from a memopt bench CSV",
        description="Read a results CSV of memopt bench and write report.md (a summary per method and a "
                    "table per instance and budget) and figures: overhead against budget per method "
                    "(objective time), value against the best proven bound (objective peak), and the "
                    "performance profiles (Dolan & More) of solve time. It never overwrites a report.md it did "
                    "not write (e.g. a committed one) unless --force is given.")
    p.add_argument("csv", help="results table written by memopt bench")
    p.add_argument("-o", "--out-dir", default=None, metavar="DIR",
                   help="where to write report.md and the figures (default: the CSV's name without .csv)")
    p.add_argument("--format", default="png,svg", help="figure formats, comma-separated: png, svg, pdf "
                                                       "(default png,svg)")
    p.add_argument("--profiles", default="plan,optimal",
                   help="performance profiles of solve time to draw, comma-separated: plan (solving = finding a "
                        "plan), optimal (solving = proving the optimum); default both")
    p.add_argument("--title", default=None, help="report title (default: the CSV's name)")
    p.add_argument("--print", action="store_true", help="also print the Markdown")
    p.add_argument("--force", action="store_true",
                   help="overwrite the folder's report.md and figures even if memopt report did not write them")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from memopt.bench.report import make_report
    from memopt.core.errors import MemoptError

    formats = [f.strip().lower().lstrip(".") for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        raise MemoptError(f"--format: expected png, svg or pdf, got {args.format!r}")
    profiles = [x.strip() for x in args.profiles.split(",") if x.strip()]
    if any(x not in ("plan", "optimal") for x in profiles):
        raise MemoptError(f"--profiles: expected plan and/or optimal, got {args.profiles!r}")
    rep = make_report(args.csv, args.out_dir, formats=formats, profiles=profiles, title=args.title,
                      mark=True, overwrite=args.force)
    if args.print:
        print(rep.markdown)
    print(rep.path)
    for f in rep.figures:
        print(f)
    return 0
