"""``memopt convert``: read any known format, write memopt's YAML/JSON."""

from __future__ import annotations

import argparse
import math
import sys

from memopt.commands._common import add_import_args, check_output, load, positive_int
from memopt.core.params import parse_exact


def _rate(text: str) -> float:
    """A throughput of the cost model: a finite number > 0."""
    d = parse_exact(text)
    if d is None or d <= 0 or not math.isfinite(float(d)):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return float(d)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert", help="convert an instance (node-link JSON, WfCommons JSON...) to memopt YAML/JSON",
        description="Read IN in any format memopt knows (memopt YAML/JSON, networkx node-link JSON as published "
                    "with Checkmate and Moccasin, WfCommons WfFormat JSON, ONNX when installed) and write OUT as "
                    "memopt YAML or JSON (chosen by OUT's extension). Importer options are given with -I, e.g. "
                    "-I time_unit=s -I size_unit=KiB for WfCommons, -I param_cost=datum for node-link. "
                    "See docs/formats.md.")
    p.add_argument("input", metavar="IN", help="instance file in any known format")
    p.add_argument("output", metavar="OUT", help="output file (.yaml, .yml or .json)")
    p.add_argument("--name", default=None, help="set the instance name")
    nn = p.add_argument_group("neural networks (ONNX)")
    nn.add_argument("--train", action="store_true",
                    help="build the training graph (forward + loss + backward); same as -I train=true")
    nn.add_argument("--batch", type=positive_int, default=None, metavar="N",
                    help="batch size (activations scale with it); same as -I batch=N")
    nn.add_argument("--flops-per-second", type=_rate, default=None, metavar="F",
                    help="cost model: arithmetic throughput (default 1e13); see docs/importers-nn.md")
    nn.add_argument("--bytes-per-second", type=_rate, default=None, metavar="B",
                    help="cost model: memory throughput (default 5e11)")
    add_import_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from memopt.io import save_instance

    extra = {k: v for k, v in (("train", args.train or None), ("batch", args.batch),
                               ("flops_per_second", args.flops_per_second),
                               ("bytes_per_second", args.bytes_per_second)) if v is not None}
    check_output(args.output, "output")
    inst = load(args.input, args, **extra)
    if args.name:
        inst = inst.replace(name=args.name)
    save_instance(inst, args.output)
    print(f"{args.output}: {inst.name}: {inst.n} tasks, {inst.m} data, {inst.num_edges} edges", file=sys.stderr)
    return 0
