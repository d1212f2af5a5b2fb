"""``memopt generate``: write a generated instance (chain, trees, series-parallel, layered)."""

from __future__ import annotations

import argparse
import random
import sys

from memopt.commands._common import budget_text, check_output, natural, positive_int
from memopt.core.errors import MemoptError

KINDS = {
    "chain": "v0 -> v1 -> ... -> v{n-1}",
    "in-tree": "random in-tree (random recursive tree, arcs towards the root; Liu's trees)",
    "out-tree": "random out-tree (random recursive tree, arcs away from the root)",
    "series-parallel": "random two-terminal series-parallel DAG (random series/parallel compositions)",
    "layered": "random layered graph after Gagrani et al. 2022, Appendix A (NN-like, skip connections)",
}
# options that only some kinds take: dest -> kinds
_KIND_ONLY = {
    "max_children": ("in-tree", "out-tree"),
    "p_series": ("series-parallel",),
    "width": ("layered",),
    "nlv": ("layered",),
    "edge_density": ("layered",),
    "skip_density": ("layered",),
}


def _pair(text: str) -> tuple[int, int]:
    """``LO,HI``: two integers 0 <= LO <= HI (exact: ``1e3`` is 1000, ``1.5`` is refused)."""
    parts = text.replace(":", ",").split(",")
    try:
        lo, hi = (natural(x) for x in parts) if len(parts) == 2 else (None, None)
    except argparse.ArgumentTypeError:
        lo = hi = None
    if lo is None or hi is None or lo > hi:
        raise argparse.ArgumentTypeError(f"expected LO,HI, two integers with 0 <= LO <= HI, got {text!r}")
    return lo, hi


MAX_TASKS = 10_000_000  # a Python instance takes about 1 kB a task: more would not fit the machine


def task_count(text: str) -> int:
    n = positive_int(text)
    if n > MAX_TASKS:
        raise argparse.ArgumentTypeError(f"at most {MAX_TASKS:,} tasks, got {text!r}")
    return n


def register(sub: argparse._SubParsersAction) -> None:
    kinds = "\n".join(f"  {k:<16} {d}" for k, d in KINDS.items())
    p = sub.add_parser(
        "generate", help="generate an instance: chain, in-tree, out-tree, series-parallel, layered",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Generate a random task graph of KIND (reproducible from --seed) and write it to -o OUT "
                    "(.yaml or .json). With --train, write its training graph (forward + loss + backward) "
                    "instead. See docs/generators.md.\n\nkinds:\n" + kinds,
        epilog="example: memopt generate layered --n 100 --seed 1 --train --budget 0.9x -o layered.yaml")
    p.add_argument("kind", choices=list(KINDS), metavar="KIND", help="one of: " + ", ".join(KINDS))
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="output file (.yaml, .yml or .json)")
    p.add_argument("--n", type=task_count, default=20,
                   help=f"number of tasks of the (forward) graph (default 20, at most {MAX_TASKS:,})")
    p.add_argument("--seed", type=natural, default=0, help="random seed, an integer >= 0 (default 0)")
    p.add_argument("--name", default=None, help="instance name (default: from the kind and parameters)")
    c = p.add_argument_group("costs and data (every kind)")
    c.add_argument("--form", choices=("tensor", "buffer", "general"), default="tensor",
                   help="tensor: one output per task read by all successors; buffer: one datum per arc; "
                        "general: 1-3 outputs per task (default tensor)")
    c.add_argument("--sizes", type=_pair, default=None, metavar="LO,HI",
                   help="data sizes uniform in [LO, HI] (default 1,10; layered: 10·U{1..40}·U{1..20})")
    c.add_argument("--times", type=_pair, default=None, metavar="LO,HI",
                   help="task times uniform in [LO, HI] (default 1,10; layered: 1,1000 with source and sink 0)")
    c.add_argument("--workspace", type=_pair, default=None, metavar="LO,HI",
                   help="task workspaces uniform in [LO, HI] (default: none)")
    k = p.add_argument_group("kind options")
    k.add_argument("--max-children", type=positive_int, default=None, metavar="K",
                   help="in-tree/out-tree: at most K children per node (default: unbounded)")
    k.add_argument("--p-series", type=float, default=None, metavar="P",
                   help="series-parallel: probability of a series (vs parallel) composition (default 0.5)")
    k.add_argument("--width", type=float, default=None, metavar="W",
                   help="layered: width parameter in (0,1), L = ceil(sqrt(n(1/W-1))) layers "
                        "(default: uniform in [0.25, 0.5] from the seed)")
    k.add_argument("--nlv", type=float, default=None, help="layered: variability of the layer sizes (default 0.75)")
    k.add_argument("--edge-density", type=float, default=None, metavar="ED",
                   help="layered: density of the arcs between consecutive layers (default 0.2)")
    k.add_argument("--skip-density", type=float, default=None, metavar="SCD",
                   help="layered: share of skip connections (default 0.14)")
    t = p.add_argument_group("training graph")
    t.add_argument("--train", action="store_true",
                   help="write the training graph: forward + loss + backward (memopt.training.training_graph)")
    t.add_argument("--params", type=_pair, default=None, metavar="LO,HI",
                   help="with --train: parameter sizes uniform in [LO, HI] per forward task "
                        "(default: none given, every task trainable)")
    t.add_argument("--grad-time-factor", type=float, default=2.0, metavar="F",
                   help="with --train: a backward task takes F × its forward time (default 2)")
    mch = p.add_argument_group("machine")
    mch.add_argument("--budget", default=None, type=budget_text,
                     help="machine.budget: a size, or a ratio of the best baseline peak like 0.9x")
    mch.add_argument("--bandwidth", type=float, default=None, help="machine.bandwidth (size units per time unit)")
    mch.add_argument("--slow-capacity", type=natural, default=None, help="machine.slow_capacity")
    p.set_defaults(func=run)


def generate(args: argparse.Namespace):
    """The instance described by the parsed arguments (shared with tests)."""
    from memopt import generators as g
    from memopt.pipeline import parse_budget
    from memopt.training import training_graph

    for dest, kinds in _KIND_ONLY.items():
        if getattr(args, dest) is not None and args.kind not in kinds:
            raise MemoptError(f"generate: --{dest.replace('_', '-')} applies to {', '.join(kinds)}, not {args.kind}")
    if (args.params is not None or args.grad_time_factor != 2.0) and not args.train:
        raise MemoptError("generate: --params and --grad-time-factor need --train")
    kw = dict(seed=args.seed, form=args.form, workspace=args.workspace)
    if args.sizes is not None:
        kw["sizes"] = args.sizes
    if args.times is not None:
        kw["times"] = args.times
    for dest in _KIND_ONLY:
        if getattr(args, dest) is not None:
            kw[dest] = getattr(args, dest)
    inst = g.GENERATORS[args.kind](args.n, **kw)
    if args.train:
        params = None
        if args.params is not None:
            lo, hi = args.params
            rng = random.Random(f"memopt-params-{args.seed}")
            params = {t.id: rng.randint(lo, hi) for t in inst.tasks}
        inst = training_graph(inst, params=params, grad_time_factor=args.grad_time_factor)
        if args.params is not None:
            meta = dict(inst.meta or {})
            meta["training"] = dict(meta["training"], params=f"uniform in [{args.params[0]}, {args.params[1]}] "
                                                             f"(seed {args.seed})")
            inst = inst.replace(meta=meta)
    if args.name:
        inst = inst.replace(name=args.name)
    mach = {}
    if args.bandwidth is not None:
        mach["bandwidth"] = args.bandwidth
    if args.slow_capacity is not None:
        mach["slow_capacity"] = args.slow_capacity
    if mach:
        inst = inst.with_machine(**mach)
    if args.budget is not None:
        inst = inst.with_machine(budget=parse_budget(args.budget, inst))
    return inst


def run(args: argparse.Namespace) -> int:
    from memopt.io import save_instance

    check_output(args.out, "instance")
    inst = generate(args)
    save_instance(inst, args.out)
    print(f"{args.out}: {inst.name}: {inst.n} tasks, {inst.m} data, {inst.num_edges} edges", file=sys.stderr)
    return 0
