"""``memopt info``: size, lower bound and baseline peaks of an instance."""

from __future__ import annotations

import argparse

from memopt.commands._common import add_import_args, load


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe an instance: sizes, lower bound, baseline peaks",
                       description="Print the number of tasks, data and edges, Σ time, the peak lower bound "
                                   "and the peak of each baseline order.")
    p.add_argument("instance", help="instance file (.yaml, .json, node-link JSON, WfCommons JSON...)")
    p.add_argument("--reduce", action="store_true",
                   help="apply the peak-preserving graph reductions and print the size before and after each rule")
    add_import_args(p)
    p.set_defaults(func=run)


def rows(inst) -> list[tuple[str, str]]:
    from memopt.core.bounds import peak_lower_bound
    from memopt.heuristics.orders import baseline_peaks

    lb, why = peak_lower_bound(inst)
    out = [
        ("instance", inst.name),
        ("tasks", str(inst.n)),
        ("data", str(inst.m)),
        ("edges", str(inst.num_edges)),
        ("results", str(len(inst.results))),
        ("total time", str(inst.total_time)),
        ("total size", str(sum(inst.size))),
        ("lower bound", f"{lb}  ({why})"),
    ]
    mach = inst.machine
    if mach.budget is not None:
        out.append(("budget", str(mach.budget)))
    if mach.bandwidth is not None:
        out.append(("bandwidth", f"{mach.bandwidth:g}"))
    if mach.slow_capacity is not None:
        out.append(("slow capacity", str(mach.slow_capacity)))
    for name, peak in baseline_peaks(inst).items():
        out.append((f"peak ({name} order)", str(peak)))
    return out


def reduce_rows(inst) -> list[tuple[str, str]]:
    """The reductions of the peak objective: clusters and arcs after each rule that fired."""
    from memopt.transforms.reduction import reduce_peak

    red = reduce_peak(inst)
    out = [("reduction", f"{inst.n} tasks, {inst.num_edges} arcs")]
    for s in red.steps:
        if s.rule == "analysis" or s.applied:
            out.append((f"  {s.rule}", (f"{s.clusters_before} -> {s.clusters_after} clusters, "
                                        f"{s.arcs_before} -> {s.arcs_after} arcs ({s.seconds:.3f}s)")))
    single = "  (a single order: optimal)" if red.n == 1 else ""
    out.append(("reduced", f"{red.n} clusters, {red.num_arcs} arcs{single}"))
    return out


def run(args: argparse.Namespace) -> int:
    inst = load(args.instance, args)
    r = rows(inst)
    if getattr(args, "reduce", False):
        r += reduce_rows(inst)
    w = max(len(k) for k, _ in r)
    for k, v in r:
        print(f"{k:<{w}}  {v}")
    return 0
