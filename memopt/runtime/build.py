"""From a module to a planned training step: trace, import, (profile,) solve, compile.

:func:`plan_step` is the runtime's entry point:

1. **trace** the joint training graph with the PyTorch importer
   (:func:`~memopt.importers.pytorch.trace_training`, on the meta device) and
   fuse in-place chains (:mod:`memopt.runtime.fusion`);
2. **import** it (:func:`~memopt.importers.nn.to_instance`, views contracted
   unless ``keep_views``), keep random tasks in their order
   (:func:`~memopt.runtime.program.chain_random`);
3. **cost**: the roofline model (``cost="roofline"``) or times measured by
   running the graph (``cost="profile"``, :mod:`memopt.runtime.profile`),
   which also measures the link's bandwidth when none is given;
4. **budget**: bytes, or ``"0.6x"``: a ratio of the *traced order's* peak
   (PyTorch's own schedule of the graph, every task once), rounded up;
5. **solve** the ``time`` objective under the budget (:func:`memopt.solve`,
   any method, recomputation and offloading allowed by default), make the
   plan runnable as priced (:func:`~memopt.runtime.normalize.free_before_recompute`),
   drop the transfers it does not need (:func:`~memopt.runtime.normalize.fewer_transfers`:
   never a larger makespan) and check it with the evaluator;
6. **compile** it into a :class:`~memopt.runtime.step.PlannedStep`.

Complexity: tracing O(nodes), then the solver's time (``time_limit``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from memopt.core.errors import MemoptError
from memopt.core.evaluate import evaluate, schedule_peak
from memopt.core.instance import Instance
from memopt.core.params import parse_exact
from memopt.core.plan import Plan
from memopt.importers.nn import make_cost, to_instance, traced_order
from memopt.importers.pytorch import trace_training
from memopt.pipeline import DEFAULT_TIME_LIMIT, solve
from memopt.runtime.fusion import fuse_inplace
from memopt.runtime.normalize import fewer_transfers, free_before_recompute
from memopt.runtime.program import StepGraph, chain_random
from memopt.runtime.reference import as_list
from memopt.runtime.step import PlannedStep

#: bytes per second of the link to slow memory when none is given and costs are not profiled (PCIe 4.0 x16)
DEFAULT_BANDWIDTH = 16e9
COSTS = ("roofline", "profile")


def parse_budget(budget: Any, traced_peak: int) -> int:
    """Bytes: an integer, or a ratio of the traced order's peak written ``"0.6x"`` (rounded up, exactly)."""
    what = f"budget {budget!r}"
    if isinstance(budget, bool) or budget is None:
        raise MemoptError(f"{what}: expected bytes (an integer) or a ratio like 0.6x")
    if isinstance(budget, str) and budget.strip().lower().endswith("x"):
        r = parse_exact(budget.strip()[:-1])
        if r is None or r <= 0:
            raise MemoptError(f"{what}: the ratio must be a number > 0, like 0.6x")
        return math.ceil(Fraction(r) * traced_peak)
    v = parse_exact(budget)
    if v is None or v != int(v) or v <= 0:
        raise MemoptError(f"{what}: expected bytes (an integer > 0) or a ratio like 0.6x")
    return int(v)


def device_of(module: Any) -> Any:
    """The one device holding the module's parameters and buffers (CPU when it has none)."""
    import torch

    devs = {x.device for x in list(module.parameters()) + list(module.buffers())}
    if len(devs) > 1:
        raise MemoptError(f"the module's parameters are on several devices ({', '.join(map(str, devs))})")
    dev = devs.pop() if devs else torch.device("cpu")
    if dev.type == "meta":
        raise MemoptError("the module's parameters are on the meta device: the runtime needs real weights")
    return dev


def import_step(module: Any, example_inputs: Any, targets: Any, loss: Callable[..., Any] | None, *,
                count_params: bool = False, keep_views: bool = False, bandwidth: float | None = None,
                name: str | None = None) -> StepGraph:
    """Trace, fuse, import (roofline times): the step's graph and its instance (``graph.inst``)."""
    g = trace_training(module, example_inputs, loss=loss, targets=targets, name=name)
    g, groups = fuse_inplace(g)
    inst = to_instance(g, cost=make_cost(), count_params=count_params, keep_views=keep_views,
                       bandwidth=None if bandwidth is None else bandwidth / 1e9, name=g.name, where=g.name)
    sg = StepGraph(g, groups, inst)
    return sg.retarget(chain_random(inst, sg.random_tasks))


@dataclass
class PreparedStep:
    """A module's traced, imported (and maybe profiled) training step, ready to be planned at any budget."""

    module: Any
    graph: StepGraph
    device: Any
    loss_fn: Callable[..., Any] | None
    details: dict[str, Any]

    @property
    def instance(self) -> Instance:
        return self.graph.inst

    @property
    def traced_peak(self) -> int:
        """Peak of the traced order (PyTorch's own schedule, every task once)."""
        return schedule_peak(self.instance, traced_order(self.instance))

    def plan(self, budget: Any = "1.0x", method: str = "auto", *, time_limit: float | None = DEFAULT_TIME_LIMIT,
             recompute: bool = True, offload: bool = True, threads: int = 2, seed: int = 0,
             **method_options: Any) -> PlannedStep:
        """Solve the ``time`` objective under ``budget`` (bytes or ``"0.6x"``) and compile the plan."""
        inst = self.instance
        traced_peak = self.traced_peak
        B = parse_budget(budget, traced_peak)
        offload = bool(offload and inst.machine.bandwidth)
        t1 = time.perf_counter()
        res = solve(inst, "time", method, budget=B, recompute=recompute, offload=offload, time_limit=time_limit,
                    threads=threads, seed=seed, **method_options)
        solve_seconds = time.perf_counter() - t1
        if res.plan is None:
            raise MemoptError(f"{inst.name}: no plan within the budget {B} B ({B / max(1, traced_peak):.3f}x of "
                              f"the traced order's peak {traced_peak} B): {res.status}"
                              + (f" — {res.message}" if res.message else ""))
        moved = sorted({e.target for _, e in res.plan.events() if e.kind in ("offload", "reload")
                        and e.target not in self.graph.tensor and inst.size[inst.datum_index[e.target]] > 0})
        if moved:
            raise MemoptError(f"{inst.name}: the plan moves {', '.join(moved)}, which the runtime keeps in place "
                              "(counted parameters): plan with offload=False")
        plan, kept = free_before_recompute(inst, res.plan)
        dropped = 0
        if offload:
            # a tenth of the solve's time at most (5 s): the run's time limit covers this step too
            cap = 5.0 if time_limit is None else min(5.0, max(0.2, 0.1 * time_limit))
            plan, dropped = fewer_transfers(inst, plan, B, recompute=recompute, max_seconds=cap)
        ev = evaluate(inst, plan, budget=B, allow_recompute=recompute, allow_offload=offload)
        if not ev.valid:  # pragma: no cover - the solver's plans are checked by the evaluator already
            raise RuntimeError(f"{inst.name}: the runnable plan is invalid: {ev.violation}")
        details = dict(self.details)
        details.update({"kept_on_recompute": kept, "transfers_dropped": dropped, "recompute": recompute,
                        "offload": offload, "solve_seconds": solve_seconds})
        return PlannedStep(self.module, self.graph, inst, plan, ev, B, traced_peak, self.device,
                           loss_fn=self.loss_fn, result=res, parameter_bytes=_counted_params(inst), details=details)

    def traced_step(self) -> PlannedStep:
        """The traced order run by the runtime (every task once, nothing planned): the runtime's own baseline."""
        inst = self.instance
        plan = Plan.from_order(inst, traced_order(inst))
        ev = evaluate(inst, plan, use_machine_budget=False)
        return PlannedStep(self.module, self.graph, inst, plan, ev, ev.peak, ev.peak, self.device,
                           loss_fn=self.loss_fn, parameter_bytes=_counted_params(inst), details=dict(self.details))


def prepare_step(
    module: Any,
    example_inputs: Any,
    targets: Any = (),
    loss: Callable[..., Any] | None = None,
    *,
    cost: str = "roofline",
    bandwidth: float | None = None,
    count_params: bool = False,
    keep_views: bool = False,
    profile_runs: int = 3,
    name: str | None = None,
) -> PreparedStep:
    """Trace, import and cost the training step of ``module`` (steps 1-3 of the module docstring)."""
    import torch

    if cost not in COSTS:
        raise MemoptError(f"unknown cost model {cost!r}; known: {', '.join(COSTS)}")
    t0 = time.perf_counter()
    device = device_of(module)
    batch = as_list(example_inputs) + as_list(targets)
    if cost == "profile" and any(isinstance(x, torch.Tensor) and x.device.type == "meta" for x in batch):
        raise MemoptError("cost='profile' runs the graph: give real example inputs and targets, not meta tensors")
    link = bandwidth if bandwidth is not None else (DEFAULT_BANDWIDTH if cost == "roofline" else None)
    sg = import_step(module, example_inputs, targets, loss, count_params=count_params, keep_views=keep_views,
                     bandwidth=link, name=name)
    details: dict[str, Any] = {"cost": cost, "batch_shapes": {
        n: (tuple(x.shape), x.dtype) for n, x in zip(sg.input_nodes, batch) if isinstance(x, torch.Tensor)}}
    if cost == "profile":
        from memopt.runtime.profile import measure_bandwidth, profile_times, with_times

        inst = sg.inst
        traced = Plan.from_order(inst, traced_order(inst))
        inst = with_times(inst, profile_times(sg, traced, module, batch, device, runs=profile_runs))
        if bandwidth is None:
            largest = max((d.size for d in inst.data), default=1 << 20)
            inst = inst.with_machine(bandwidth=measure_bandwidth(device, largest))
        sg.retarget(inst)
    details["prepare_seconds"] = time.perf_counter() - t0
    return PreparedStep(module, sg, device, loss, details)


def plan_step(
    module: Any,
    example_inputs: Any,
    targets: Any = (),
    loss: Callable[..., Any] | None = None,
    *,
    budget: Any = "1.0x",
    method: str = "auto",
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    cost: str = "roofline",
    recompute: bool = True,
    offload: bool = True,
    bandwidth: float | None = None,
    count_params: bool = False,
    keep_views: bool = False,
    profile_runs: int = 3,
    threads: int = 2,
    seed: int = 0,
    name: str | None = None,
    **method_options: Any,
) -> PlannedStep:
    """A training step of ``module`` planned to keep its fast memory within ``budget`` (see the module docstring).

    ``example_inputs``/``targets`` fix the shapes (real tensors; with
    ``cost="roofline"`` meta tensors do too). ``loss(output, *targets)``
    (default: Σ of the outputs). ``bandwidth``: bytes per second of the link
    to slow memory (default: measured with ``cost="profile"``, else
    :data:`DEFAULT_BANDWIDTH`). ``offload`` needs one; ``method_options`` go
    to the method (``memopt solve -m METHOD --help-options``).
    """
    prepared = prepare_step(module, example_inputs, targets, loss, cost=cost, bandwidth=bandwidth,
                            count_params=count_params, keep_views=keep_views, profile_runs=profile_runs, name=name)
    return prepared.plan(budget, method, time_limit=time_limit, recompute=recompute, offload=offload,
                         threads=threads, seed=seed, **method_options)


def _counted_params(inst: Instance) -> int:
    meta = inst.meta or {}
    return int(meta.get("parameter_bytes", 0)) if meta.get("parameters_counted") else 0


__all__ = ["COSTS", "DEFAULT_BANDWIDTH", "PreparedStep", "device_of", "import_step", "parse_budget", "plan_step",
           "prepare_step"]
