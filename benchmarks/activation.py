"""Activation memory against overhead on GPT-2 small and medium: memopt's curve in the terms of the literature.

    python benchmarks/activation.py [--models gpt2,gpt2-medium] [--time-limit 30] [--bandwidth 25]
        [--techniques recompute,recompute+offload] [--quick] [--out DIR]

Issue 16 asks for memopt's trade-off on GPT-2 small and medium in the terms
the papers use: Rockmate (ICML 2023) and HiRemate (ICML 2025), recomputation
only, report *activation memory* reduction against overhead; Beaumont et al.
(NeurIPS 2021) do the same with offloading as well.

Instances: the ATen training step with its parameters and Adam's states,
batch 8, as ``benchmarks/hierarchical.py`` builds them (``memopt build --mode
train --optimizer adam``, cached in ``$MEMOPT_HIER_CACHE``). Each (model,
techniques) pair is one :func:`memopt.bench.curve.trade_off_curve` run —
budgets ``1.0x, 0.9x, …, 0.5x, auto`` (down to the proven lower bound on the
peak), ``--time-limit`` seconds per point, ``auto`` — in a fresh process
(its wall time and peak resident memory measured). Offloading uses a host link
of ``--bandwidth`` GB/s (bytes per ns; default 25, what a PCIe 4.0 x16 link
delivers of its 32 GB/s), set on the instance.

*Persistent state* P = the bytes of the parameters, buffers and optimizer
states the importer records (``inst.meta``); a step holds them throughout
unless it offloads them. *Activation memory* of a plan = its peak − P;
*reduction* = the activation memory of the best schedule (its peak, the
``1.0x`` budget, − P: nothing dropped or moved, no overhead) / the point's;
*overhead* = makespan / Σ task times − 1 with
memopt's roofline cost model (not the papers' GPUs: compare shapes, not
seconds). With offloading the state itself may leave the device, so a point's
activation memory can be below zero; the table then says so.

Writes ``results/activation.csv`` (one row per point) and
``results/activation.md``; prints the standard table. ``--quick``: GPT-2
small, recomputation, three budgets, 5 s each, into ``results/tmp``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from memopt.bench.harness import format_table, md_table, out_dir, write_text
from memopt.bench.isolate import Call, call_isolated, script_target

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TECHNIQUES = {"recompute": (True, False), "recompute+offload": (True, True)}
BUDGETS = ("1.0x", "0.9x", "0.8x", "0.7x", "0.6x", "0.5x", "auto")
FIELDS = ["model", "tasks", "techniques", "label", "budget", "status", "peak", "activation", "reduction",
          "overhead", "overhead_bound", "seconds"]
GIB = 2 ** 30


def instance_path(model: str) -> str:
    """The cached ATen training step of ``model`` with Adam (built by benchmarks/hierarchical.py's rule)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from hierarchical import traced_instances

    return traced_instances([(model, 8, False)])[0]


def curve_rows(path: str, techniques: str, budgets: list[str], time_limit: float, bandwidth: float) -> dict:
    """In the child: the curve of one (model, techniques) pair, as rows (activation memory from inst.meta)."""
    from memopt import load_instance
    from memopt.bench.curve import trade_off_curve
    from memopt.heuristics.orders import best_baseline

    inst = load_instance(path)
    recompute, offload = TECHNIQUES[techniques]
    if offload:
        inst = inst.with_machine(bandwidth=int(bandwidth) if float(bandwidth).is_integer() else bandwidth)
    state = sum(int(inst.meta.get(k, 0)) for k in ("parameter_bytes", "buffer_bytes", "optimizer_state_bytes"))
    curve = trade_off_curve(inst, budgets, recompute=recompute, offload=offload, time_limit=time_limit)
    # the base: the best schedule's peak, nothing dropped or moved (the 1.0x budget). Not the largest plan of
    # the curve: with offloading a point below may fit 1.0x at no overhead and become 1.0x's plan too
    top = best_baseline(inst)[1]
    rows = []
    for p in curve.points:
        act = None if p.peak is None else p.peak - state
        base = top - state
        rows.append({"label": p.label, "budget": p.budget, "status": p.status, "peak": p.peak, "activation": act,
                     "reduction": None if act is None or not act or act < 0 or base is None else base / act,
                     "overhead": p.overhead, "overhead_bound": p.overhead_bound, "seconds": round(p.seconds, 2)})
    return {"tasks": inst.n, "state": state, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="gpt2,gpt2-medium")
    ap.add_argument("--techniques", default="recompute,recompute+offload")
    ap.add_argument("--time-limit", type=float, default=30.0, help="seconds per point (default 30)")
    ap.add_argument("--bandwidth", type=float, default=25.0, help="host link, GB/s (default 25: PCIe 4.0 x16)")
    ap.add_argument("--quick", action="store_true", help="GPT-2 small, recomputation, 3 budgets, 5 s each")
    ap.add_argument("--out", default=None, help="folder of the CSV and Markdown files (default results)")
    args = ap.parse_args(argv)
    args.fresh, args.lock = True, None
    models = ["gpt2"] if args.quick else args.models.split(",")
    techniques = ["recompute"] if args.quick else args.techniques.split(",")
    budgets = ["1.0x", "0.7x", "auto"] if args.quick else list(BUDGETS)
    limit = 5.0 if args.quick else args.time_limit
    out = out_dir(args)
    rows: list[dict[str, Any]] = []
    notes = []
    for model in models:
        path = instance_path(model)
        for tech in techniques:
            call = Call(script_target(__file__, curve_rows), {"path": path, "techniques": tech, "budgets": budgets,
                                                               "time_limit": limit, "bandwidth": args.bandwidth})
            res = call_isolated(call, kill_after=limit * (len(budgets) + 4) + 120)
            if res.error is not None:
                print(f"{model} {tech}: {res.error}", file=sys.stderr)
                continue
            v = res.value
            notes.append(f"{model} ({v['tasks']:,} tasks), {tech}: persistent state {v['state'] / GIB:.2f} GiB; "
                         f"the curve took {res.wall:.0f} s, peak memory "
                         f"{(res.max_rss or 0) / 2**20:.0f} MB")
            for r in v["rows"]:
                rows.append({"model": model, "tasks": v["tasks"], "techniques": tech, **r})
    write_text(os.path.join(out, "activation.csv"), _csv(rows))
    write_text(os.path.join(out, "activation.md"), _markdown(rows, notes, limit, args.bandwidth))
    print(format_table([{"instance": f"{r['model']} {r['label']}", "method": r["techniques"], "status": r["status"],
                         "value": r["peak"], "bound": r["overhead_bound"], "seconds": r["seconds"]} for r in rows]))
    for n in notes:
        print(n)
    return 0


def _csv(rows: list[dict[str, Any]]) -> str:
    lines = [",".join(FIELDS)]
    for r in rows:
        lines.append(",".join("" if r.get(k) is None else str(r[k]) for k in FIELDS))
    return "\n".join(lines) + "\n"


def _markdown(rows: list[dict[str, Any]], notes: list[str], limit: float, bandwidth: float) -> str:
    def pct(x: Any) -> str:
        return "" if x is None else f"{100 * x:.1f} %"

    table = md_table(["model", "techniques", "budget", "status", "peak GiB", "activation GiB", "reduction",
                      "overhead", "overhead bound", "seconds"],
                     [[r["model"], r["techniques"], r["label"], r["status"],
                       "" if r["peak"] is None else f"{r['peak'] / GIB:.2f}",
                       "" if r["activation"] is None else f"{r['activation'] / GIB:.2f}",
                       "" if r["reduction"] is None else f"{r['reduction']:.2f}×",
                       pct(r["overhead"]), pct(r["overhead_bound"]), r["seconds"]] for r in rows], align="llllrrrrrr")
    return "\n".join([
        "# Activation memory against overhead (GPT-2, ATen training step with Adam, batch 8)", "",
        (f"`python benchmarks/activation.py` ({limit:g} s per point, `auto`; offloading over a {bandwidth:g} GB/s "
        "link). Activation memory = peak − persistent state (parameters, buffers, Adam's states); reduction = "
        "the best schedule's activation memory (the 1.0x budget: nothing dropped or moved) / the point's; "
        "overhead with memopt's roofline cost model; the overhead bound "
        "is proven (`memopt curve`). The published figures to set beside these, each on its own cost model: "
        "Rockmate 2–5× less activation memory for 10–20 % overhead; HiRemate 50–70 % less for 10–15 %; "
        "Beaumont et al. with offloading 4–6× less for < 20 %."), "",
        *[f"- {n}" for n in notes], "", table])


if __name__ == "__main__":
    sys.exit(main())
