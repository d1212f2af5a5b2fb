"""``memopt run``: plan a PyTorch training step within a budget, run it, and measure it.

``memopt run TARGET --budget B`` traces the joint training graph of TARGET
(``models.NAME``: a shipped architecture; ``path/to/file.py:factory``:
``factory(batch)`` returns ``(module, example_inputs, targets, loss_fn)``),
solves it under the budget (bytes, a size like ``64MiB``, or ``0.6x`` of the
traced order's peak) with recomputation and offloading, runs the planned
step (:mod:`memopt.runtime`) and prints the predicted and measured peak, the
predicted and measured step time, and the gradient check against the plain
PyTorch step. ``--report`` writes all figures as JSON (or YAML),
``--save-plan`` the plan. See docs/runtime.md.

Exit status: 0 when the planned step ran, stayed within the budget, agreed
with the evaluator and gave the plain step's loss and gradients; 1 when it
ran but one of these checks failed; 2 for a user mistake (one line).
"""

from __future__ import annotations

import argparse
import json
import os

from memopt.commands._common import (
    bytes_or_none,
    check_output,
    natural,
    parse_kv,
    positive_int,
    seconds_or_none,
)
from memopt.core.errors import MemoptError
from memopt.pipeline import DEFAULT_TIME_LIMIT

EXIT_CHECK_FAILED = 1


def budget_arg(text: str) -> str | int:
    """``0.6x`` (a ratio of the traced order's peak, kept as text) or a size in bytes (``64MiB``, ``1000000``)."""
    t = text.strip()
    if t.lower().endswith("x"):
        return t
    n = bytes_or_none(t)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a size like 64MiB or a ratio like 0.6x, got {text!r}")
    return n


def bandwidth_arg(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not (v > 0) or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected bytes per second > 0, like 16e9, got {text!r}")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run a PyTorch training step planned within a budget, and measure it (needs torch)",
        description="Trace the training step of TARGET (models.NAME, or path/to/file.py:factory where factory(batch) "
                    "returns (module, example_inputs, targets, loss_fn)), plan it within --budget (recomputation, "
                    "offloading), run the planned step and print the predicted and measured peak and step time "
                    "and the gradient check against the plain PyTorch step. See docs/runtime.md.")
    p.add_argument("target", help="models.NAME (e.g. models.gpt2) or path/to/file.py:factory")
    p.add_argument("--budget", "-b", required=True, type=budget_arg, metavar="B",
                   help="fast-memory budget: bytes (1000000, 64MiB) or a ratio of the traced order's peak (0.6x)")
    p.add_argument("--batch", type=positive_int, default=None, metavar="N",
                   help="batch size (models.NAME: default its smallest shipped batch; a factory: factory(N))")
    p.add_argument("--method", "-m", default="auto", help="method of memopt solve (default auto)")
    p.add_argument("--time-limit", "-t", type=seconds_or_none, default=DEFAULT_TIME_LIMIT, metavar="S",
                   help=f"seconds for planning (default {DEFAULT_TIME_LIMIT:g}; 0/none: no limit)")
    p.add_argument("--cost", choices=("roofline", "profile"), default="roofline",
                   help="task times: the roofline estimate, or each op timed on this machine (default roofline)")
    p.add_argument("--report", metavar="R.json", help="write every figure here (.json, .yaml or .yml)")
    p.add_argument("--save-plan", metavar="P.yaml", help="write the plan here (.yaml, .yml or .json)")
    g = p.add_argument_group("plan")
    g.add_argument("--no-recompute", action="store_true", help="forbid recomputation")
    g.add_argument("--no-offload", action="store_true", help="forbid offloading to host memory")
    g.add_argument("--bandwidth", type=bandwidth_arg, default=None, metavar="BYTES_PER_S",
                   help="link to host memory (default: measured with --cost profile, else 16e9)")
    g.add_argument("--keep-views", action="store_true", help="keep view operations as tasks (default: contracted)")
    g.add_argument("--option", "-O", action="append", metavar="KEY=VALUE", help="method option (repeatable)")
    g.add_argument("--threads", type=positive_int, default=2, help="solver threads (default 2)")
    g.add_argument("--seed", type=natural, default=0, help="seed of the data, the weights and the solvers (default 0)")
    m = p.add_argument_group("measure")
    m.add_argument("--runs", type=positive_int, default=5, help="timed runs of each step; medians (default 5)")
    m.add_argument("--device", default=None, help="run on this device (default: where the module is; e.g. cuda)")
    m.add_argument("--torch-threads", type=positive_int, default=None, metavar="N",
                   help="PyTorch's intra-op threads (default: PyTorch's; 1 gives steadier times on a shared machine)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError:
        raise MemoptError("memopt run needs torch: pip install 'memopt[torch]' (torch==2.13.0)") from None
    from memopt.commands._targets import load_target
    from memopt.core.result import save_plan
    from memopt.runtime.build import prepare_step
    from memopt.runtime.report import step_report

    check_output(args.report, "report")
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    check_output(args.save_plan, "plan")
    extra = parse_kv(args.option)
    target = load_target(args.target, args.batch, seed=args.seed)
    module, inputs, targets = target.module, target.inputs, target.targets
    if args.device is not None:
        try:
            dev = torch.device(args.device)
        except RuntimeError as e:
            raise MemoptError(f"--device {args.device!r}: {e}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise MemoptError("--device cuda: CUDA is not available on this machine")
        module = module.to(dev)
        inputs = tuple(x.to(dev) if isinstance(x, torch.Tensor) else x for x in inputs)
        targets = tuple(x.to(dev) if isinstance(x, torch.Tensor) else x for x in targets)
    print(f"{target.name}: tracing the training step"
          + (f" (batch {target.batch})" if target.batch else "") + f", {args.cost} costs", flush=True)
    prepared = prepare_step(module, inputs, targets, target.loss, cost=args.cost, bandwidth=args.bandwidth,
                            keep_views=args.keep_views)
    inst = prepared.instance
    print(f"  {inst.n} tasks, {inst.m} data; traced order's peak {_mib(prepared.traced_peak)}", flush=True)
    step = prepared.plan(args.budget, args.method, time_limit=args.time_limit, recompute=not args.no_recompute,
                         offload=not args.no_offload, threads=args.threads, seed=args.seed, **extra)
    res = step.result
    print(f"  plan: {res.method}, {res.status} in {step.details['solve_seconds']:.2f} s; "
          f"{step.evaluation.recomputes} recomputations, {step.evaluation.offloads} offloads", flush=True)
    if args.save_plan:
        save_plan(step.plan, args.save_plan)
    rep = step_report(step, inputs, targets, traced=prepared.traced_step(), runs=args.runs, seed=args.seed)
    rep.update({"target": target.name, "batch": target.batch})
    print(_summary(rep))
    if args.report:
        _write_report(rep, args.report)
        print(f"report written to {args.report}")
    ok = rep["within_budget"] and rep["peaks_agree"] and rep["gradients_equal"] and rep["loss_equal"]
    return 0 if ok else EXIT_CHECK_FAILED


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2 ** 20:,.3f} MiB ({n:,} B)"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f} %"


def _summary(r: dict) -> str:
    lines = [
        f"budget            {_mib(r['budget'])}  ({r['budget_ratio']}x of the traced order's peak)",
        f"peak  predicted   {_mib(r['predicted_peak'])}",
        f"      measured    {_mib(r['measured_peak'])}  (live storages; own accounting {r['accounted_peak']:,} B; "
        + ("agrees with the evaluator at every point)" if r["peaks_agree"] else
           f"DIFFERS: {r['first_difference']})"),
    ]
    if r.get("cuda_peak") is not None:
        lines.append(f"      cuda        {_mib(r['cuda_peak'])}  (max_memory_allocated: allocator blocks, "
                     "kernel workspaces)")
    lines.append(f"      within budget: {'yes' if r['within_budget'] else 'NO'}")
    what = "task times measured here" if r["cost"] == "profile" else "roofline model of an accelerator"
    lines.append(f"time  predicted   step {r['predicted_makespan'] / 1e6:,.3f} ms (Σ task times "
                 f"{r['total_time'] / 1e6:,.3f} ms), overhead {_pct(r['predicted_overhead'])}  [{what}]")
    if "measured_overhead_traced" in r:
        lines.append(f"      measured    step {1000 * r['planned_seconds']:,.3f} ms, overhead "
                     f"{_pct(r['measured_overhead_traced'])} vs the traced order run by the runtime "
                     f"({1000 * r['traced_seconds']:,.3f} ms); best runs: "
                     f"{_pct(r['measured_overhead_traced_best'])}")
        lines.append(f"                  overhead {_pct(r['measured_overhead'])} vs the plain PyTorch step "
                     f"({1000 * r['plain_seconds']:,.3f} ms); medians of {r['runs']} runs")
    else:
        lines.append(f"      measured    step {1000 * r['planned_seconds']:,.3f} ms, overhead "
                     f"{_pct(r['measured_overhead'])} vs the plain PyTorch step ({1000 * r['plain_seconds']:,.3f} "
                     f"ms); medians of {r['runs']} runs")
    eq = r["gradients_equal"] and r["loss_equal"]
    lines.append(f"check loss and gradients {'equal (bit for bit)' if eq else 'DIFFER'} to the plain step"
                 + ("" if eq else f": max |diff| {r['max_grad_diff']:.3g} in {', '.join(r['different'][:3])}")
                 + ("" if r["buffers_equal"] else "; buffers differ"))
    return "\n".join(lines)


def _write_report(rep: dict, path: str) -> None:
    from memopt.core.files import write_raw

    if os.path.splitext(path)[1].lower() == ".json":
        with open(path, "w") as f:
            json.dump(rep, f, indent=1, default=str)
            f.write("\n")
    else:
        write_raw(rep, path)


__all__ = ["EXIT_CHECK_FAILED", "register", "run"]
