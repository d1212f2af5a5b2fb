"""The plans run in PyTorch: predicted against measured memory and time, on every shipped architecture.

    flock /tmp/memopt-bench.lock python benchmarks/runtime.py [--only NAME ...] [--sizes small,real]
        [--budgets 1.0,0.8,0.6,0.4] [--method auto] [--time-limit 60] [--runs 5] [--batch NAME=N ...]
        [--threads N] [--fresh] [--out DIR]

For each architecture of ``models/`` (``ZOO``; its other entries,
``gpt2-medium``, ``llama-1b``, ``llama-70b``, are bigger sizes of the same
architectures) at two sizes — ``small`` (``models/tiny.py``, batch 2) and
``real`` (the shipped module, batch 8 unless ``--batch NAME=N`` says
otherwise: what this CPU runs in reasonable time) — the training step is traced and its task times *profiled* on this
machine (``cost="profile"``, the link's bandwidth measured too). For each
budget (a ratio of the traced order's peak; a budget below the proven lower
bound is replaced by that bound, rounded up), ``memopt.solve`` (``--method``,
recomputation and offloading allowed) plans the step, the runtime runs it
(:mod:`memopt.runtime`), and the row records:

- ``predicted_peak`` (the evaluator's), ``measured_peak`` (live storages
  allocated by the step, an independent measure), ``accounted_peak`` (the
  runtime's own accounting), ``agree`` (all three equal, and equal at every
  stage start and compute), ``within_budget``;
- ``gradients_equal``: loss, every gradient and every buffer equal to the
  plain PyTorch step's (``torch.equal``);
- ``predicted_overhead`` (makespan / Σ task times − 1, profiled times),
  ``measured_overhead`` (the planned step's wall time over the traced order's
  run by the same runtime, − 1: the quantity predicted) and
  ``overhead_vs_eager`` (over the plain PyTorch step, − 1), medians of
  ``--runs`` timed runs; ``plain_ms``, ``traced_ms``, ``planned_ms``;
  ``measured_overhead_cpu``: the same ratio of the process's CPU time (a
  shared machine inflates wall times, not CPU times);
- ``planning_seconds``, ``method``, ``status``, ``recomputes``, ``offloads``.

Each (architecture, size) runs in a fresh process; rows already in
``results/runtime.csv`` are kept unless ``--fresh`` (which re-runs the
architectures and sizes selected by ``--only`` and ``--sizes``, all by
default, and keeps the other rows). Writes
``results/runtime.csv`` and ``results/runtime.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "models", "tiny.py")
ARCHS = ["resnet18", "resnet50", "vgg16", "unet", "mobilenetv2", "gpt2", "vit", "llama"]
COLUMNS = ["arch", "size", "batch", "tasks", "budget_ratio", "budget", "lower_bound", "traced_peak", "predicted_peak",
           "measured_peak", "accounted_peak", "agree", "within_budget", "gradients_equal", "predicted_overhead",
           "measured_overhead", "measured_overhead_best", "measured_overhead_cpu", "overhead_vs_eager", "runs",
           "plain_ms", "traced_ms", "planned_ms",
           "predicted_ms",
           "planning_seconds", "method", "status", "recomputes", "offloads", "transfers_dropped", "note"]


def worker(arch: str, size: str, batch: int, budgets: list[float], method: str, time_limit: float, runs: int,
           threads: int, offload: bool = True) -> None:
    """One (architecture, size): print one JSON row per budget."""
    import torch

    from memopt.commands._targets import load_target
    from memopt.core.errors import MemoptError
    from memopt.exact.peak_bounds import budget_lower_bound
    from memopt.runtime.build import prepare_step
    from memopt.runtime.report import step_report

    torch.set_num_threads(threads)
    t = load_target(f"{TINY}:{arch}" if size == "small" else f"models.{arch}", batch)
    t0 = time.perf_counter()
    prep = prepare_step(t.module, t.inputs, t.targets, t.loss, cost="profile")
    inst = prep.instance
    traced_peak = prep.traced_peak
    lb = budget_lower_bound(inst, recompute=True, offload=offload)[0]
    traced = prep.traced_step()
    print(f"# {arch} {size} b{batch}: {inst.n} tasks, traced peak {traced_peak}, lower bound {lb}, prepared in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    seen: set[int] = set()
    for r in budgets:
        budget = math.ceil(r * traced_peak)
        note = ""
        if budget < lb:
            budget, note = lb, f"{r}x is below the lower bound: run at the bound"
        if budget in seen:
            continue
        seen.add(budget)
        row = {"arch": arch, "size": size, "batch": batch, "tasks": inst.n, "budget": budget, "lower_bound": lb,
               "budget_ratio": round(budget / traced_peak, 4), "traced_peak": traced_peak, "note": note}
        try:
            step = prep.plan(budget, method, time_limit=time_limit, offload=offload)
        except MemoptError as e:
            row.update({"status": "no plan", "note": (note + "; " if note else "") + str(e)[:160]})
            print(json.dumps(row), flush=True)
            continue
        rep = step_report(step, t.inputs, t.targets, traced=traced, runs=runs)
        row.update({
            "predicted_peak": rep["predicted_peak"], "measured_peak": rep["measured_peak"],
            "accounted_peak": rep["accounted_peak"], "agree": rep["peaks_agree"],
            "within_budget": rep["within_budget"],
            "gradients_equal": rep["gradients_equal"] and rep["loss_equal"] and rep["buffers_equal"],
            "predicted_overhead": rep["predicted_overhead"], "measured_overhead": rep["measured_overhead_traced"],
            "measured_overhead_cpu": rep["measured_overhead_traced_cpu"],
            "measured_overhead_best": rep["measured_overhead_traced_best"], "runs": rep["runs"],
            "overhead_vs_eager": rep["measured_overhead"], "plain_ms": round(1000 * rep["plain_seconds"], 3),
            "traced_ms": round(1000 * rep["traced_seconds"], 3), "planned_ms": round(1000 * rep["planned_seconds"], 3),
            "predicted_ms": round(rep["predicted_makespan"] / 1e6, 3), "planning_seconds": rep["planning_seconds"],
            "method": rep["method"], "status": rep["status"], "recomputes": rep["recomputes"],
            "offloads": rep["offloads"], "transfers_dropped": step.details.get("transfers_dropped")})
        print(json.dumps(row), flush=True)
        del step


def read_rows(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in COLUMNS})


def _num(x) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _pct(x) -> str:
    v = _num(x)
    return "" if v is None else f"{100 * v:+.1f} %"


def _mib(x) -> str:
    v = _num(x)
    return "" if v is None else f"{v / 2 ** 20:,.2f}"


def _yes(x) -> str:
    return {"True": "yes", "False": "**no**", True: "yes", False: "**no**"}.get(x, "")


def write_md(path: str, rows: list[dict], command: str) -> None:
    lines = [
        "# Plans run in PyTorch: predicted against measured" + (" (recomputation only)" if "--no-offload" in command
                                                                 else ""),
        "",
        (f"`{command}` (`benchmarks/runtime.py`). Each row: the training step of one architecture planned by "
         "`memopt.solve` (objective `time`, recomputation and, unless said, offloading to host memory) under a "
         "budget (a ratio of "
         "the traced order's peak; below the proven lower bound the bound itself), run by `memopt.runtime` on this "
         "machine's CPU. Costs profiled on this machine (`cost=\"profile\"`). Peaks in MiB of live storages "
         "allocated by the step (parameters excluded, as in the instance)."),
        "",
        ("*agree*: the evaluator's predicted peak = the measured peak (live storages) = the runtime's own "
         "accounting, at every stage start and compute. *grads*: loss, gradients and buffers equal to the plain "
         "PyTorch step (`torch.equal`). *overhead*: predicted = makespan / Σ task times − 1; measured = planned "
         "step / the traced order run by the same runtime − 1 (wall time; *(cpu)*: the process's CPU time, which "
         "other jobs on the machine do not inflate; *best*: the least wall times of the runs, the estimate `timeit` "
         "recommends on a shared machine); *vs eager* = planned step / the plain PyTorch step − 1 (medians of "
         "*runs* timed runs, more for short steps)."),
        "",
        ("| arch | size | batch | tasks | budget | predicted | measured | ≤ budget | agree | grads | overhead "
         "predicted | measured | best | (cpu) | vs eager | runs | step ms (plain / traced / planned) | planning s "
         "| method | note |"),
        "|---|---|---:|---:|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for r in rows:
        ms = "" if not r.get("plain_ms") else \
            f"{float(r['plain_ms']):,.1f} / {float(r['traced_ms']):,.1f} / {float(r['planned_ms']):,.1f}"
        lines.append(
            f"| {r['arch']} | {r['size']} | {r['batch']} | {r['tasks']} | {float(r['budget_ratio']):.2f}x "
            f"({_mib(r['budget'])}) | {_mib(r.get('predicted_peak'))} | {_mib(r.get('measured_peak'))} | "
            f"{_yes(r.get('within_budget'))} | {_yes(r.get('agree'))} | {_yes(r.get('gradients_equal'))} | "
            f"{_pct(r.get('predicted_overhead'))} | {_pct(r.get('measured_overhead'))} | "
            f"{_pct(r.get('measured_overhead_best'))} | {_pct(r.get('measured_overhead_cpu'))} | "
            f"{_pct(r.get('overhead_vs_eager'))} | {r.get('runs', '')} | {ms} | "
            f"{r.get('planning_seconds', '')} | {r.get('method', '')} {r.get('status', '')} | {r.get('note', '')} |")
    done = [r for r in rows if r.get("measured_peak")]
    if done:
        agree = sum(r["agree"] in ("True", True) for r in done)
        within = sum(r["within_budget"] in ("True", True) for r in done)
        grads = sum(r["gradients_equal"] in ("True", True) for r in done)
        lines += ["", (f"{len(done)} rows run: measured = predicted (storage measure) in {agree}, measured ≤ "
                       f"budget in {within}, loss and gradients equal in {grads}.")]
        for key, what in (("measured_overhead", "medians"), ("measured_overhead_best", "best runs")):
            counts = []
            for size in ("small", "real"):
                close = [r for r in done if r["size"] == size and _num(r.get(key)) is not None]
                near = sum(abs(float(r[key]) - float(r["predicted_overhead"]))
                           <= 0.1 * (1 + float(r["predicted_overhead"])) for r in close)
                counts.append(f"{near} of {len(close)} {size}")
            lines.append(f"Measured overhead ({what}) within 10 % of the step's predicted time "
                         f"(|measured − predicted| ≤ 0.1 × (1 + predicted)): {', '.join(counts)}.")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help="architectures (default: all)")
    ap.add_argument("--sizes", default="small,real")
    ap.add_argument("--budgets", default="1.0,0.8,0.6,0.4")
    ap.add_argument("--method", default="auto")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: the other core is the transfer channel's)")
    ap.add_argument("--batch", action="append", default=[], metavar="NAME=N",
                    help="batch of the real size (default 8), e.g. --batch unet=1 --batch gpt2=1")
    ap.add_argument("--no-offload", action="store_true",
                    help="recomputation only (writes runtime-recompute.csv/.md): the model's time without the "
                         "host copies a CPU-only machine cannot run beside its computes")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "results"))
    ap.add_argument("--worker", nargs=2, metavar=("ARCH", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--worker-batch", type=int, default=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    budgets = [float(x) for x in a.budgets.split(",")]
    if a.worker:
        worker(a.worker[0], a.worker[1], a.worker_batch, budgets, a.method, a.time_limit, a.runs, a.threads,
               offload=not a.no_offload)
        return 0
    real_batch = {k: int(v) for k, v in (b.split("=", 1) for b in a.batch)}
    os.makedirs(a.out, exist_ok=True)
    stem = "runtime-recompute" if a.no_offload else "runtime"
    csv_path, md_path = os.path.join(a.out, f"{stem}.csv"), os.path.join(a.out, f"{stem}.md")
    sizes = a.sizes.split(",")
    # --fresh re-runs the architectures and sizes asked for; the other rows stay
    selected = {(x, s) for x in (a.only or ARCHS) for s in sizes}
    rows = [r for r in read_rows(csv_path) if not (a.fresh and (r["arch"], r["size"]) in selected)]
    done = {(r["arch"], r["size"]) for r in rows}
    for arch in a.only or ARCHS:
        for size in sizes:
            if (arch, size) in done:
                continue
            batch = 2 if size == "small" else real_batch.get(arch, 8)
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", arch, size, "--worker-batch", str(batch),
                   "--budgets", a.budgets, "--method", a.method, "--time-limit", str(a.time_limit),
                   "--runs", str(a.runs), "--threads", str(a.threads)] + (["--no-offload"] if a.no_offload else [])
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT)
            got = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
            sys.stderr.write(proc.stderr[-2000:] if proc.returncode else "".join(
                line + "\n" for line in proc.stderr.splitlines() if line.startswith("#")))
            if proc.returncode and not got:
                got = [{"arch": arch, "size": size, "batch": batch, "status": "failed",
                        "note": (proc.stderr.strip().splitlines() or ["?"])[-1][:160]}]
            for r in got:
                print(f"{arch:<12} {size:<5} b{batch:<3} {r.get('budget_ratio', '')!s:>7}x  predicted "
                      f"{r.get('predicted_peak', '')!s:>12} measured {r.get('measured_peak', '')!s:>12}  "
                      f"grads {r.get('gradients_equal', '')!s:<5} overhead {r.get('predicted_overhead', '')!s:>9} / "
                      f"{r.get('measured_overhead', '')!s:>9}  {r.get('status', '')}", flush=True)
            rows += got
            order = {(x, s): k for k, (x, s) in enumerate((x, s) for x in ARCHS for s in ("small", "real"))}
            rows.sort(key=lambda r: (order.get((r["arch"], r["size"]), 99), float(r.get("budget_ratio") or 0) * -1))
            write_rows(csv_path, rows)
            write_md(md_path, rows, "python benchmarks/runtime.py " + " ".join(sys.argv[1:]))
            print(f"# {arch} {size}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    write_md(md_path, rows, "python benchmarks/runtime.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
