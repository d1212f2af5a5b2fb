"""Speed of the neural-network importers.

    flock /tmp/memopt-bench.lock python benchmarks/nn_import.py [--repeat 3]

Prints and writes ``results/nn_import.csv`` and ``results/nn_import.md``:

1. every architecture of ``models/`` (PyTorch importer, meta device), its
   inference and its joint training graph at batch 8: the nodes of the traced
   torch.fx graph, the tasks and data of the instance, and the seconds to
   trace (``trace_inference``/``trace_training``: tracing plus the meta run
   that sizes and counts every node) and to build the instance
   (``to_instance``) — best of ``--repeat`` runs. GPT-2 small's joint graph is
   the "about 2,000 nodes under 15 s" target;
2. every ONNX model the onnx package ships (``light_*.onnx``), inference and
   training graph at batch 8: ``load_onnx`` seconds, best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

FIELDS = ["source", "model", "graph", "batch", "fx_nodes", "tasks", "data", "tasks_views_contracted",
          "trace_seconds", "build_seconds", "total_seconds"]


def best_of(repeat: int, fn):
    best = None
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best, out


def torch_rows(repeat: int, batch: int) -> list[dict]:
    import torch

    from memopt.commands.build import load_zoo
    from memopt.importers.nn import to_instance
    from memopt.importers.pytorch import trace_inference, trace_training

    zoo = load_zoo(os.path.join(ROOT, "models")).ZOO
    rows = []
    for name, spec in zoo.items():
        with torch.device("meta"):
            module = spec.build()
        for graph in ("infer", "train"):
            if graph == "infer":
                def trace():
                    return trace_inference(module, spec.inputs(batch), name=name)
            else:
                def trace():
                    return trace_training(module, spec.inputs(batch), loss=spec.loss, targets=spec.targets(batch),
                                          name=name)
            t_trace, g = best_of(repeat, trace)
            t_build, inst = best_of(repeat, lambda: to_instance(g))
            row = {"source": "pytorch", "model": name, "graph": graph, "batch": batch,
                   "fx_nodes": len(g.traced[0].graph.nodes), "tasks": inst.n, "data": inst.m,
                   "tasks_views_contracted": to_instance(g, keep_views=False).n,
                   "trace_seconds": round(t_trace, 3), "build_seconds": round(t_build, 3),
                   "total_seconds": round(t_trace + t_build, 3)}
            rows.append(row)
            show(row)
    return rows


def onnx_rows(repeat: int, batch: int) -> list[dict]:
    import onnx

    from memopt.importers.onnx import load_onnx

    light = sorted(glob.glob(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                                          "*.onnx")))
    rows = []
    for path in light:
        for graph in ("infer", "train"):
            t, inst = best_of(repeat, lambda: load_onnx(path, train=(graph == "train"), batch=batch))
            row = {"source": "onnx", "model": os.path.basename(path)[:-5], "graph": graph, "batch": batch,
                   "fx_nodes": "", "tasks": inst.n, "data": inst.m, "tasks_views_contracted": "",
                   "trace_seconds": "", "build_seconds": "",
                   "total_seconds": round(t, 3)}
            rows.append(row)
            show(row)
    return rows


def show(r: dict) -> None:
    print(f"{r['source']:<8} {r['model']:<24} {r['graph']:<6} {r['batch']:>5} {str(r['fx_nodes']):>8} "
          f"{r['tasks']:>6} {r['data']:>6} {str(r['tasks_views_contracted']):>10} "
          f"{str(r['trace_seconds']):>8} {str(r['build_seconds']):>8} "
          f"{r['total_seconds']:>8}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args(argv)
    print(f"{'source':<8} {'model':<24} {'graph':<6} {'batch':>5} {'fx nodes':>8} {'tasks':>6} {'data':>6} "
          f"{'contracted':>10} {'trace s':>8} {'build s':>8} {'total s':>8}")
    rows = torch_rows(args.repeat, args.batch) + onnx_rows(args.repeat, args.batch)
    os.makedirs(os.path.join(ROOT, "results"), exist_ok=True)
    with open(os.path.join(ROOT, "results", "nn_import.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    lines = ["# Importer speed", "",
             f"`python benchmarks/nn_import.py --repeat {args.repeat} --batch {args.batch}`: best of "
             f"{args.repeat} runs, seconds. PyTorch: *trace* = tracing on the meta device plus the meta run that "
             "sizes and counts every node; *build* = the instance (views kept as tasks); *contracted*: its "
             "tasks with the views contracted (as `memopt build` ships them). ONNX: the whole `load_onnx`.", "",
             "| source | model | graph | fx nodes | tasks | data | contracted | trace s | build s | total s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['source']} | {r['model']} | {r['graph']} | {r['fx_nodes']} | {r['tasks']} | {r['data']} | "
                     f"{r['tasks_views_contracted']} | {r['trace_seconds']} | {r['build_seconds']} | "
                     f"{r['total_seconds']} |")
    with open(os.path.join(ROOT, "results", "nn_import.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
