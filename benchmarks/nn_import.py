"""Speed of the neural-network importers.

    python benchmarks/nn_import.py [--repeat 3] [--batch 8] [--fresh] [--quick] [--out DIR]

Prints the standard table and writes ``results/nn_import.csv`` and ``results/nn_import.md``:

1. every architecture of ``models/`` (PyTorch importer, meta device), its
   inference and its joint training graph at batch 8: the nodes of the traced
   torch.fx graph, the tasks and data of the instance, and the seconds to
   trace (``trace_inference``/``trace_training``: tracing plus the meta run
   that sizes and counts every node) and to build the instance
   (``to_instance``) — best of ``--repeat`` runs. GPT-2 small's joint graph is
   the "about 2,000 nodes under 15 s" target;
2. every ONNX model the onnx package ships (``light_*.onnx``), inference and
   training graph at batch 8: ``load_onnx`` seconds, best of ``--repeat``.

Each row is measured in a fresh process (:mod:`memopt.bench.harness`), with its
wall time and peak memory (``wall_seconds``, ``max_rss_mb``: importing torch
included). Rows already in the CSV are kept unless ``--fresh``. ``--quick``:
ResNet-18 and the first ONNX model, one run each, into ``results/tmp``.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time

from memopt.bench.harness import (
    Case,
    ResultsCSV,
    Schema,
    add_common_args,
    format_table,
    md_table,
    out_dir,
    run_cases,
    write_text,
)
from memopt.bench.isolate import Call, script_target

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = Schema.of("source model graph batch:int fx_nodes:int tasks:int data:int tasks_views_contracted:int "
                   "trace_seconds:float build_seconds:float total_seconds:float")
KEY = ("source", "model", "graph", "batch")
NAMES = {"instance": lambda r: f"{r['source']} {r['model']} {r['graph']} b{r['batch']}",
         "method": lambda r: "import", "value": "tasks", "bound": lambda r: None, "seconds": "total_seconds"}


def best_of(repeat: int, fn):
    best = None
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best, out


def torch_row(name: str, graph: str, batch: int, repeat: int) -> dict:
    """Trace and build one architecture of ``models/`` (in the child)."""
    import torch

    from memopt.commands.build import load_zoo
    from memopt.importers.nn import to_instance
    from memopt.importers.pytorch import trace_inference, trace_training

    spec = load_zoo(os.path.join(ROOT, "models")).ZOO[name]
    with torch.device("meta"):
        module = spec.build()
    if graph == "infer":
        def trace():
            return trace_inference(module, spec.inputs(batch), name=name)
    else:
        def trace():
            return trace_training(module, spec.inputs(batch), loss=spec.loss, targets=spec.targets(batch), name=name)
    t_trace, g = best_of(repeat, trace)
    t_build, inst = best_of(repeat, lambda: to_instance(g))
    return {"fx_nodes": len(g.traced[0].graph.nodes), "tasks": inst.n, "data": inst.m,
            "tasks_views_contracted": to_instance(g, keep_views=False).n, "trace_seconds": round(t_trace, 3),
            "build_seconds": round(t_build, 3), "total_seconds": round(t_trace + t_build, 3)}


def onnx_row(path: str, graph: str, batch: int, repeat: int) -> dict:
    """Load one ONNX model (in the child)."""
    from memopt.importers.onnx import load_onnx

    t, inst = best_of(repeat, lambda: load_onnx(path, train=(graph == "train"), batch=batch))
    return {"tasks": inst.n, "data": inst.m, "total_seconds": round(t, 3)}


def cases(args: argparse.Namespace) -> list[Case]:
    from memopt.commands.build import load_zoo

    out = []
    zoo = list(load_zoo(os.path.join(ROOT, "models")).ZOO)
    for name in zoo[:1] if args.quick else zoo:
        for graph in ("infer", "train"):
            out.append(Case({"source": "pytorch", "model": name, "graph": graph, "batch": args.batch},
                            Call(script_target(__file__, torch_row),
                                 {"name": name, "graph": graph, "batch": args.batch, "repeat": args.repeat}),
                            time_limit=600))
    try:
        import onnx
    except ImportError:
        print("onnx is not installed: no ONNX rows", file=sys.stderr)
        return out
    light = sorted(glob.glob(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                                          "*.onnx")))
    for path in light[:1] if args.quick else light:
        for graph in ("infer", "train"):
            out.append(Case({"source": "onnx", "model": os.path.basename(path)[:-5], "graph": graph,
                             "batch": args.batch},
                            Call(script_target(__file__, onnx_row),
                                 {"path": path, "graph": graph, "batch": args.batch, "repeat": args.repeat}),
                            time_limit=600))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=None, help="runs per row, the best counts (default 3; --quick: 1)")
    ap.add_argument("--batch", type=int, default=8)
    add_common_args(ap)
    args = ap.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)
    out = out_dir(args)
    table = ResultsCSV(os.path.join(out, "nn_import.csv"), SCHEMA, KEY)
    rows = run_cases(cases(args), table, fresh=args.fresh, lock=args.lock, names=NAMES)
    print()
    print(format_table(rows, NAMES))
    cols = ["source", "model", "graph", "fx_nodes", "tasks", "data", "tasks_views_contracted", "trace_seconds",
            "build_seconds", "total_seconds", "max_rss_mb"]
    lines = ["# Importer speed", "",
             (f"`python benchmarks/nn_import.py --repeat {args.repeat} --batch {args.batch}`: best of "
              f"{args.repeat} runs, seconds. PyTorch: *trace* = tracing on the meta device plus the meta run that "
              "sizes and counts every node; *build* = the instance (views kept as tasks); *contracted*: its "
              "tasks with the views contracted (as `memopt build` ships them). ONNX: the whole `load_onnx`. "
              "*MB*: peak memory of the process that imported the model (torch included)."), "",
             md_table(["source", "model", "graph", "fx nodes", "tasks", "data", "contracted", "trace s", "build s",
                       "total s", "MB"], [[r.get(c) for c in cols] for r in rows], "lll" + "r" * 8,
                      cell=Schema.cell)]
    write_text(os.path.join(out, "nn_import.md"), "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
