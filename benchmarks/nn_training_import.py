"""Import of large training steps: parameters, gradients and optimizer state, at transformer scale.

    python benchmarks/nn_training_import.py [--only NAME] [--quick]

Each row traces one training step on the meta device with the PyTorch importer
(``trace_training`` + ``to_instance``) in a fresh process run under
``/usr/bin/time -v``, and writes ``results/nn_training_import.csv`` and
``results/nn_training_import.md``: tasks, data and edges of the instance; the
seconds to trace and to build the instance (wall and CPU of this process —
on a shared machine CPU seconds are the steadier figure); the wall time of
the whole process (importing torch included) and its peak RSS; the traced
order's peak and the parameter and optimizer-state bytes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: name -> (zoo model, builder keyword arguments, batch, optimizer, views kept)
CASES = {
    "gpt2-b8": ("gpt2", {}, 8, None, True),
    "gpt2-b8-adam": ("gpt2", {}, 8, "adam", True),
    "gpt2-b8-adam-contracted": ("gpt2", {}, 8, "adam", False),
    "gpt2-medium-b8": ("gpt2-medium", {}, 8, None, True),
    "gpt2-medium-b8-adam": ("gpt2-medium", {}, 8, "adam", True),
    "gpt2-medium-b8-adam-contracted": ("gpt2-medium", {}, 8, "adam", False),
    "llama-1b-b1": ("llama-1b", {}, 1, None, True),
    "llama-1b-b1-adam": ("llama-1b", {}, 1, "adam", True),
    "llama-1b-32l-b1-adam": ("llama-1b", {"n_layer": 32}, 1, "adam", True),
    "llama-70b-b1-adam": ("llama-70b", {}, 1, "adam", True),
    "llama-70b-b1-adam-contracted": ("llama-70b", {}, 1, "adam", False),
}
QUICK = ["gpt2-b8-adam"]
FIELDS = ["case", "model", "layers", "batch", "optimizer", "views", "tasks", "data", "edges",
          "trace_seconds", "instance_seconds", "import_seconds", "import_cpu_seconds", "process_seconds",
          "max_rss_mb", "traced_peak_gib", "parameter_gib", "optimizer_state_gib"]


def child(case: str) -> dict:
    """Trace and import one case (in the child process); the row without the process figures."""
    sys.path.insert(0, ROOT)
    import torch

    from memopt.commands.build import load_zoo
    from memopt.core.evaluate import schedule_peak
    from memopt.importers.nn import to_instance
    from memopt.importers.pytorch import trace_training

    model, kw, batch, optimizer, views = CASES[case]
    zoo = load_zoo(os.path.join(ROOT, "models"))
    spec = zoo.ZOO[model]
    builders = {"llama-1b": zoo.llama_1b, "llama-70b": zoo.llama_70b}
    with torch.device("meta"):
        module = builders[model](**kw) if kw else spec.build()
    w0, c0 = time.perf_counter(), time.process_time()
    g = trace_training(module, spec.inputs(batch), loss=spec.loss, targets=spec.targets(batch), optimizer=optimizer)
    w1 = time.perf_counter()
    inst = to_instance(g, keep_views=views)
    w2, c2 = time.perf_counter(), time.process_time()
    peak = schedule_peak(inst, inst.topological_order)
    layers = len(getattr(module, "blocks", []))
    gib = 2 ** 30
    return {"case": case, "model": model, "layers": layers, "batch": batch, "optimizer": optimizer or "none",
            "views": "kept" if views else "contracted", "tasks": inst.n, "data": inst.m, "edges": inst.num_edges,
            "trace_seconds": round(w1 - w0, 2), "instance_seconds": round(w2 - w1, 2),
            "import_seconds": round(w2 - w0, 2), "import_cpu_seconds": round(c2 - c0, 2),
            "traced_peak_gib": round(peak / gib, 2), "parameter_gib": round(inst.meta["parameter_bytes"] / gib, 2),
            "optimizer_state_gib": round(inst.meta.get("optimizer_state_bytes", 0) / gib, 2)}


def run(case: str) -> dict:
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", sys.executable, os.path.abspath(__file__), "--child", case],
                       capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{case}: failed\n{p.stderr[-2000:]}")
    row = json.loads(p.stdout.strip().splitlines()[-1])
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    row["process_seconds"] = round(wall, 2)
    row["max_rss_mb"] = round(int(rss.group(1)) / 1024) if rss else None
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=sorted(CASES), help="run only this case (repeatable)")
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}, into results/tmp")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    names = QUICK if args.quick else (args.only or list(CASES))
    out = os.path.join(ROOT, "results", "tmp" if args.quick else "")
    os.makedirs(out, exist_ok=True)
    rows = []
    for name in names:
        row = run(name)
        rows.append(row)
        print("  ".join(f"{k}={row[k]}" for k in FIELDS), flush=True)
    with open(os.path.join(out, "nn_training_import.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(out, "nn_training_import.md"), "w") as f:
        f.write("# Importing large training steps (PyTorch importer, meta device)\n\n"
                "`python benchmarks/nn_training_import.py`; one fresh process per row under `/usr/bin/time -v`. "
                "Import = `trace_training` + `to_instance` (wall, and CPU of the process); process = the "
                "whole child (importing torch included); RSS = its peak resident memory.\n\n")
        f.write("| case | layers | tasks | data | edges | import s (CPU s) | process s | RSS MiB | traced peak GiB "
                "| params GiB | opt. state GiB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
        for r in rows:
            f.write(f"| {r['case']} | {r['layers']} | {r['tasks']:,} | {r['data']:,} | {r['edges']:,} | "
                    f"{r['import_seconds']} ({r['import_cpu_seconds']}) | {r['process_seconds']} | {r['max_rss_mb']} | "
                    f"{r['traced_peak_gib']:,} | {r['parameter_gib']:,} | {r['optimizer_state_gib']:,} |\n")


if __name__ == "__main__":
    main()
