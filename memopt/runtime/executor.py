"""Run a plan on the traced graph: stage by stage, event by event, as SPEC §2 orders them.

:class:`Executor` compiles a :class:`~memopt.core.plan.Plan` into stages of
four lists and runs them on a :class:`~memopt.runtime.values.FastMemory`
and a :class:`~memopt.runtime.transfer.HostStore`:

1. the stage's offloads start (each datum is in fast memory now);
2. the frees listed before its first compute drop their data;
3. its reloads take their fast memory (allocated now, filled beside);
4. its computes and remaining frees run in list order — a compute runs the
   task's fx nodes (:class:`~memopt.runtime.program.StepGraph`): a second
   run of a node that writes buffers in place (batch norm's running
   statistics) restores them afterwards, so buffers end as one plain step
   leaves them;
5. the stage's transfers complete.

At the start of each stage and at each compute it records the fast memory
it holds by its own accounting (:attr:`FastMemory.resident`, plus the
stage's reloads and the task's transient outputs): the same points, and the
same quantity, as the evaluator's memory trace. Data that no tensor stands
for (the ``parameters`` datum of ``count_params``, the random-order links,
the ``output`` sink) count their instance size.

Complexity: O(events) plus the ops run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memopt.core.instance import Instance
from memopt.core.plan import COMPUTE, FREE, OFFLOAD, RELOAD, Plan
from memopt.runtime.program import NodePlan, StepGraph
from memopt.runtime.transfer import HostStore
from memopt.runtime.values import FastMemory


@dataclass
class Stage:
    offloads: list[str] = field(default_factory=list)
    lead_frees: list[str] = field(default_factory=list)
    reloads: list[str] = field(default_factory=list)
    body: list[tuple[bool, str]] = field(default_factory=list)   # (is compute, task or datum)


@dataclass
class Run:
    """What one execution of the plan measured."""

    peak: int = 0                                   # own accounting, bytes
    trace: list[tuple[int, str, int]] = field(default_factory=list)   # (stage, task or "" at its start, bytes)
    task_ns: dict[str, int] = field(default_factory=dict)   # with timing: ns of each task's (last) compute
    outputs: list[Any] | None = None                 # the graph's outputs, taken when the sink task ran
    probed: list[tuple[int, str, int]] = field(default_factory=list)  # the same points, by the probe
    seconds: float = 0.0


def compile_plan(inst: Instance, plan: Plan) -> list[Stage]:
    """The plan's stages as the executor runs them (order of SPEC §2)."""
    out = []
    for stage in plan.stages:
        st = Stage()
        started = False
        for e in stage:
            if e.kind == COMPUTE:
                started = True
                st.body.append((True, e.target))
            elif e.kind == FREE and started:
                st.body.append((False, e.target))
            elif e.kind == FREE:
                st.lead_frees.append(e.target)
            elif e.kind == OFFLOAD:
                st.offloads.append(e.target)
            elif e.kind == RELOAD:
                st.reloads.append(e.target)
        out.append(st)
    return out


class Executor:
    """Runs one plan of ``sg.inst`` (see the module docstring)."""

    def __init__(self, sg: StepGraph, plan: Plan, device: Any):
        self.sg = sg
        self.inst = sg.inst
        self.plan = plan
        self.device = device
        self.stages = compile_plan(self.inst, plan)
        inst = self.inst
        self.virtual = {d.id: d.size for d in inst.data if d.id not in sg.tensor}
        self.size = {d.id: d.size for d in inst.data}
        self.input_index = {name: k for k, name in enumerate(sg.input_nodes)}
        self.nodes: dict[str, list[NodePlan]] = {
            t: [sg.nodes[x] for x in xs if x in sg.nodes] for t, xs in sg.task_nodes.items()}
        # the data of each task that no tensor stands for, with their sizes
        self.virtual_out: dict[str, list[tuple[str, int]]] = {
            t.id: [(inst.data[j].id, inst.size[j]) for j in inst.outputs[v] if inst.data[j].id in self.virtual]
            for v, t in enumerate(inst.tasks)}

    def run(self, memory: FastMemory, host: HostStore, batch: list[Any], *, timing: bool = False,
            buffers: dict[str, Any] | None = None, scratch: dict[str, Any] | None = None,
            sync: Callable[[], Any] | None = None, probe: Any = None) -> Run:
        """Run the plan: ``batch`` are the graph's inputs then targets; returns what was measured.

        ``scratch`` (one tensor per written buffer, made before the step)
        lets a recomputation restore the buffers it writes. ``timing``
        records each task's compute time (``sync`` waits for the device
        before the clock stops). ``probe`` (an independent measure with
        ``current``, ``window`` and ``open_window()``) is read at the same
        points: the live bytes at each stage start, the most held during
        each compute.
        """
        sg = self.sg
        res = Run()
        runs: dict[str, int] = {}
        virtual_live: dict[str, int] = {}
        reloading = 0
        guard = _restorer(buffers or {}, scratch or {})
        clock = time.perf_counter_ns
        t_start = time.perf_counter()

        def held() -> int:
            return memory.resident + memory.virtual + reloading

        for k0, st in enumerate(self.stages):
            k = k0 + 1
            for d in st.offloads:
                if d in memory.fast:
                    host.offload(d, memory.fast[d])
                elif d not in self.virtual and d not in sg.alias_data:
                    raise RuntimeError(f"stage {k}: offload {d!r}: not in fast memory")
            for d in st.lead_frees:
                self._free(memory, virtual_live, d)
            # (comprehensions and helpers: no local name of the frame keeps a tensor alive)
            reloaded = [(d, host.reload(d)) for d in st.reloads if d not in self.virtual and d not in sg.alias_data]
            reloading += sum(self.size[d] for d, _ in reloaded)
            mem = held()
            res.trace.append((k, "", mem))
            if probe is not None:
                res.probed.append((k, "", probe.current + memory.virtual))
            res.peak = max(res.peak, mem)
            for is_compute, target in st.body:
                if not is_compute:
                    self._free(memory, virtual_live, target)
                    continue
                if probe is not None:
                    probe.open_window()
                t0 = clock() if timing else 0
                n = runs.get(target, 0)
                transient = self._compute(memory, target, batch, guard if n else None)
                runs[target] = n + 1
                if target == sg.sink:
                    res.outputs = [memory.value(t) for t in sg.outputs]
                for did, size in self.virtual_out[target]:
                    if did not in virtual_live:
                        virtual_live[did] = size
                        memory.virtual += size
                mem = held() + transient
                if timing:
                    if sync is not None:
                        sync()
                    res.task_ns[target] = clock() - t0
                res.trace.append((k, target, mem))
                if probe is not None:
                    res.probed.append((k, target, probe.window + memory.virtual))
                res.peak = max(res.peak, mem)
            host.wait()
            reloading -= _land(memory, reloaded, self.size)
        res.seconds = time.perf_counter() - t_start
        return res

    def _compute(self, memory: FastMemory, task: str, batch: list[Any], guard: Callable | None) -> int:
        if self.sg.input_task.get(task):
            x = batch[self.input_index[task]].to(device=self.device, copy=True)
            if task in self.sg.datum_ids:
                memory.put(task, x)
                return 0
            return x.untyped_storage().nbytes()
        transient = 0
        for np_ in self.nodes[task]:
            transient += memory.run(np_, guard if (guard is not None and np_.writes) else None)
        return transient

    def _free(self, memory: FastMemory, virtual_live: dict[str, int], d: str) -> None:
        if d in self.virtual:
            memory.virtual -= virtual_live.pop(d, 0)
        else:
            memory.drop(d)


def _land(memory: FastMemory, reloaded: list[tuple[str, Any]], size: dict[str, int]) -> int:
    """The stage's reloads become resident (emptying ``reloaded``); returns their bytes."""
    n = 0
    while reloaded:
        d, x = reloaded.pop()
        memory.put(d, x)
        n += size[d]
    return n


def _restorer(buffers: dict[str, Any], scratch: dict[str, Any]) -> Callable[[NodePlan], Any]:
    """A context for a node run again: the buffers it writes come back as they were."""

    @contextlib.contextmanager
    def guard(np_: NodePlan):
        for b in np_.writes:
            scratch[b].copy_(buffers[b])
        try:
            yield
        finally:
            for b in np_.writes:
                buffers[b].copy_(scratch[b])

    return guard


__all__ = ["Executor", "Run", "Stage", "compile_plan"]
