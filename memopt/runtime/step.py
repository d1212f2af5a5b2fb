"""A planned training step: the joint graph run in the plan's order, inside the budget.

:class:`PlannedStep` is what :func:`memopt.runtime.plan_step` returns:
``step(inputs, targets) -> loss`` runs one training step of the module by
executing the plan (:mod:`memopt.runtime.executor`) and sets every
trainable parameter's ``.grad`` as ``loss.backward()`` would (written when
``None``, added to otherwise). :meth:`PlannedStep.measure` runs it once more
under the independent storage measure (:mod:`memopt.runtime.measure`) and
returns both measures beside the evaluator's prediction.

Complexity: one execution of the plan per call.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memopt.core.errors import MemoptError
from memopt.core.evaluate import Evaluation
from memopt.core.instance import Instance
from memopt.core.plan import Plan
from memopt.runtime.executor import Executor, Run
from memopt.runtime.measure import cuda_peak, storage_tracker
from memopt.runtime.program import StepGraph
from memopt.runtime.reference import as_list
from memopt.runtime.transfer import HostStore
from memopt.runtime.values import FastMemory


@dataclass
class Measurement:
    """Fast memory of one planned step: predicted, and measured two ways (bytes)."""

    predicted_peak: int
    measured_peak: int            # independent: live storages allocated during the step (+ counted parameters)
    accounted_peak: int           # the runtime's own accounting
    trace_equal: bool             # both measures == evaluator at every stage start and every compute
    cuda_peak: int | None = None  # torch.cuda.max_memory_allocated over the step, minus what was allocated before
    seconds: float = 0.0
    allocations: int = 0
    first_difference: str | None = None

    @property
    def agree(self) -> bool:
        return self.predicted_peak == self.measured_peak == self.accounted_peak and self.trace_equal


@dataclass
class PlannedStep:
    """An executable planned training step (see the module docstring)."""

    module: Any
    graph: StepGraph
    instance: Instance
    plan: Plan
    evaluation: Evaluation
    budget: int
    traced_peak: int
    device: Any
    loss_fn: Callable[..., Any] | None = None
    result: Any = None            # memopt.Result of the solve
    parameter_bytes: int = 0      # counted in the instance (count_params), constant over the step
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.executor = Executor(self.graph, self.plan, self.device)
        self.last: Run | None = None
        self.scratch: dict[str, Any] = {}   # a copy of each buffer a node writes: restored after a recomputation
        self.host_spare: dict[str, Any] = {}  # slow memory kept from step to step (HostStore's spares)

    # ------------------------------------------------------------------- run
    def __call__(self, inputs: Any, targets: Any = ()) -> Any:
        """One training step; returns the loss (a 0-dim tensor) and sets the gradients."""
        return self._step(inputs, targets)[0]

    def _step(self, inputs: Any, targets: Any, tracker: Any = None) -> tuple[Any, Run]:
        import torch

        batch = as_list(inputs) + as_list(targets)
        self._check_batch(batch)
        sg = self.graph
        params = dict(self.module.named_parameters())
        params.update(dict(self.module.named_buffers()))
        scratch = self._scratch(params)
        memory = FastMemory(sg, params, self.device)
        host = HostStore(self.device, spare=self.host_spare)
        try:
            with torch.no_grad():
                if tracker is not None:
                    with tracker:
                        run = self.executor.run(memory, host, batch, buffers=params, scratch=scratch,
                                                probe=tracker)
                else:
                    run = self.executor.run(memory, host, batch, buffers=params, scratch=scratch)
                values = run.outputs if run.outputs is not None else [self._final(memory, host, t)
                                                                      for t in sg.outputs]
                for name in sg.effects:
                    memory.run(sg.nodes[name])
            loss = values[0]
            for name, g in zip(sg.grad_params, values[1:]):
                p = params[name]
                if p.grad is None:
                    p.grad = g
                else:
                    p.grad.add_(g)
            del values
        finally:
            memory.clear()
            host.close()
        self.last = run
        return loss, run

    def _final(self, memory: FastMemory, host: HostStore, t: str) -> Any:
        """A result's tensor: resident, or (left in slow memory by the plan) copied back now."""
        try:
            return memory.value(t)
        except RuntimeError:
            root = self.graph.root(t)
            memory.put(root, host.host_tensor(root).to(self.device))
            return memory.value(t)

    def _scratch(self, params: dict[str, Any]) -> dict[str, Any]:
        writes = {b for np_ in self.graph.nodes.values() for b in np_.writes}
        cache = self.scratch
        for b in writes:
            x = params[b]
            if b not in cache or cache[b].shape != x.shape or cache[b].device != x.device:
                cache[b] = x.detach().clone()
        return cache

    def _check_batch(self, batch: list[Any]) -> None:
        import torch

        sg = self.graph
        if len(batch) != sg.n_inputs + sg.n_targets:
            raise MemoptError(f"{sg.name}: the step takes {sg.n_inputs} input(s) and {sg.n_targets} target(s), "
                              f"got {len(batch)} tensors")
        for name, x in zip(sg.input_nodes, batch):
            want = self.details.get("batch_shapes", {}).get(name)
            if want is not None and (not isinstance(x, torch.Tensor) or (tuple(x.shape), x.dtype) != want):
                got = (tuple(x.shape), x.dtype) if isinstance(x, torch.Tensor) else type(x).__name__
                raise MemoptError(f"{sg.name}: input {name} is {got}; the plan was made for {want} "
                                  "(shapes are fixed when the step is traced)")

    # --------------------------------------------------------------- measure
    def measure(self, inputs: Any, targets: Any = ()) -> Measurement:
        """Run one step under the independent storage measure; compare with the evaluator."""
        import torch

        gc.collect()
        existing = list(self.module.parameters()) + list(self.module.buffers())
        existing += [p.grad for p in self.module.parameters() if p.grad is not None]
        existing += [x for x in as_list(inputs) + as_list(targets) if isinstance(x, torch.Tensor)]
        existing += list(self._scratch({**dict(self.module.named_parameters()),
                                        **dict(self.module.named_buffers())}).values())
        dev = torch.device(self.device)
        tracker = storage_tracker(existing, dev.type if dev.type == "cuda" else None)
        base = None
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            base = torch.cuda.memory_allocated(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        _, run = self._step(inputs, targets, tracker)
        peak_cuda = cuda_peak(dev)
        expected = [(p.stage, p.target if p.kind else "", p.memory) for p in self.evaluation.memory
                    if p.kind in ("compute", "")]
        first = None
        for what, trace in (("measured", run.probed), ("accounted", run.trace)):
            first = first or next((f"stage {a[0]} {a[1] or 'start'}: {what} {a[2]} B, evaluator {b[2]} B"
                                   for a, b in zip(trace, expected) if a != b), None)
            if first is None and len(trace) != len(expected):
                first = f"{len(trace)} {what} points, the evaluator has {len(expected)}"
        return Measurement(
            predicted_peak=self.evaluation.peak,
            measured_peak=tracker.peak + self.parameter_bytes,
            accounted_peak=run.peak,
            trace_equal=first is None,
            cuda_peak=None if peak_cuda is None or base is None else peak_cuda - base + self.parameter_bytes,
            seconds=run.seconds,
            allocations=tracker.allocations,
            first_difference=first,
        )


__all__ = ["Measurement", "PlannedStep"]
