"""The profiling cost model: each task's time measured on the machine at hand.

``cost="profile"`` replaces the roofline estimate of the importer
(:class:`~memopt.importers.nn.CostModel`) by measurement: the traced graph
is run by the runtime itself (:class:`~memopt.runtime.executor.Executor`,
every task once, in a given plan's order — the traced order unless it is
too big for the device) ``warmup + runs`` times, each task's compute timed
with ``time.perf_counter_ns`` (its fx nodes, the bookkeeping the runtime
does for it, and on CUDA a synchronisation), and its time set to the
median, in integer nanoseconds. What the evaluator then predicts is the
time of *this* runtime on *this* machine.

The link to slow memory is measured the same way (:func:`measure_bandwidth`):
bytes per ns of an offload and a reload of a buffer of the size of the
largest datum (at most 64 MiB), medians — the ``machine.bandwidth`` of the
instance unless one is given.

Complexity: ``warmup + runs`` executions of the graph.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Any

from memopt.core.instance import Instance
from memopt.core.plan import Plan
from memopt.runtime.executor import Executor
from memopt.runtime.program import StepGraph
from memopt.runtime.reference import kept_buffers
from memopt.runtime.transfer import HostStore
from memopt.runtime.values import FastMemory


def profile_times(sg: StepGraph, plan: Plan, module: Any, batch: list[Any], device: Any, *, runs: int = 3,
                  warmup: int = 1) -> dict[str, int]:
    """Median ns of each task's compute over ``runs`` executions of ``plan`` (after ``warmup``)."""
    import torch

    dev = torch.device(device)
    ex = Executor(sg, plan, device)
    params = dict(module.named_parameters())
    params.update(dict(module.named_buffers()))
    scratch = {b: params[b].detach().clone() for np_ in sg.nodes.values() for b in np_.writes}
    samples: dict[str, list[int]] = {}
    with kept_buffers(module), torch.no_grad():
        for r in range(warmup + runs):
            memory = FastMemory(sg, params, device)
            host = HostStore(device)
            try:
                run = ex.run(memory, host, batch, timing=True, buffers=params, scratch=scratch,
                             sync=(lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else None)
            finally:
                memory.clear()
                host.close()
            if r >= warmup:
                for t, ns in run.task_ns.items():
                    samples.setdefault(t, []).append(ns)
    return {t: int(statistics.median(v)) for t, v in samples.items()}


def with_times(inst: Instance, times: dict[str, int]) -> Instance:
    """``inst`` with the task times of ``times`` (tasks not in it keep theirs)."""
    # dataclasses.replace keeps every other field, the block annotation (group) included
    tasks = [replace(t, time=max(0, int(times.get(t.id, t.time)))) for t in inst.tasks]
    meta = dict(inst.meta or {})
    meta["cost"] = "profile"
    return inst.replace(tasks=tasks, meta=meta)


def measure_bandwidth(device: Any, nbytes: int, runs: int = 3) -> float:
    """Bytes per ns moved to slow memory and back (the median of offloads and reloads of ``nbytes``)."""
    import torch

    nbytes = max(1 << 20, min(int(nbytes), 64 << 20))
    x = torch.empty(nbytes, dtype=torch.uint8, device=device)
    x.fill_(1)
    host = HostStore(device)
    cuda = torch.device(device).type == "cuda"

    def done() -> None:
        host.wait()
        if cuda:
            torch.cuda.synchronize(device)

    rates: list[float] = []
    try:
        for _ in range(runs + 1):
            done()
            t0 = time.perf_counter_ns()
            host.offload("x", x)
            done()
            t1 = time.perf_counter_ns()
            y = host.reload("x")
            done()
            t2 = time.perf_counter_ns()
            del y
            rates += [nbytes / max(1, t1 - t0), nbytes / max(1, t2 - t1)]
    finally:
        host.close()
    return float(statistics.median(rates[2:]))


__all__ = ["measure_bandwidth", "profile_times", "with_times"]
