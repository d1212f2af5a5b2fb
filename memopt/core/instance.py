"""The instance: a task graph plus a machine (SPEC §1).

An :class:`Instance` is immutable. It is built from :class:`Task` and
:class:`Datum` records and validated on construction: every rule broken is
collected and reported at once in an :class:`~memopt.core.errors.InstanceError`
(unknown ids, duplicate ids, cycles naming the tasks on them, negative or
non-integer numbers...).

Besides the records, an instance carries integer-indexed arrays that the
algorithms use (``inputs[v]``, ``outputs[v]``, ``size[d]``, ``preds[v]``...):
task ``v`` is ``tasks[v]``, datum ``d`` is ``data[d]``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from memopt.core.errors import InstanceError, Problem


@dataclass(frozen=True, slots=True)
class Task:
    """A task ``v``: time c(v), workspace w(v), and whether it may run twice.

    ``group``: an optional hierarchical path naming the part of the network
    the task belongs to (``h.3.attn``: block 3 of the sequence ``h``), kept
    through reading and writing; :mod:`memopt.graph.structure` reads it to
    find repeated blocks (docs/hierarchical.md).
    """

    id: str
    time: int = 0
    workspace: int = 0
    recompute: bool = True
    meta: Mapping[str, Any] | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Datum:
    """A datum ``d``: size s(d), produced by one task, read by ``consumers``.

    A datum without consumers is a *result*: it must exist at the end.
    """

    id: str
    producer: str
    consumers: tuple[str, ...] = ()
    size: int = 0


@dataclass(frozen=True, slots=True)
class Machine:
    """Fast-memory ``budget`` M, transfer ``bandwidth`` β, ``slow_capacity``.

    ``None`` means "not given" (no budget; no offloading possible; unbounded
    slow memory). ``bandwidth`` may be ``math.inf`` (transfers take no time).
    """

    budget: int | None = None
    bandwidth: float | None = None
    slow_capacity: int | None = None


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class Instance:
    """A validated task graph with its machine.

    Parameters
    ----------
    tasks, data:
        The records. Task ids are unique among tasks, datum ids among data.
    machine:
        The machine; defaults to "nothing given".
    name, units, meta:
        Free information kept through reading and writing.
    where:
        Name used in error messages (the file the instance came from).
    """

    __slots__ = (
        "name", "units", "meta", "machine", "tasks", "data", "where",
        "task_index", "datum_index", "time", "workspace", "can_recompute",
        "size", "producer", "consumers", "inputs", "outputs", "preds", "succs",
        "__dict__",
    )

    def __init__(
        self,
        tasks: Sequence[Task],
        data: Sequence[Datum],
        machine: Machine | None = None,
        *,
        name: str | None = None,
        units: Mapping[str, str] | None = None,
        meta: Mapping[str, Any] | None = None,
        where: str = "<instance>",
        _problems: list[Problem] | None = None,
    ):
        problems: list[Problem] = list(_problems or [])
        self.where = where
        self.name = name if name is not None else _stem(where)
        self.units = dict(units) if units else None
        self.meta = dict(meta) if meta else None
        self.machine = machine or Machine()
        self.tasks: tuple[Task, ...] = tuple(tasks)
        self.data: tuple[Datum, ...] = tuple(data)

        self.task_index: dict[str, int] = {}
        for i, t in enumerate(self.tasks):
            if t.id in self.task_index:
                problems.append(Problem(where, f"task {t.id!r}", "duplicate task id"))
            else:
                self.task_index[t.id] = i
            for fld in ("time", "workspace"):
                val = getattr(t, fld)
                if not _is_int(val):
                    problems.append(Problem(where, f"task {t.id!r}", f"{fld} must be an integer, got {val!r}"))
                elif val < 0:
                    problems.append(Problem(where, f"task {t.id!r}", f"{fld} must be >= 0, got {val}"))
        self.datum_index: dict[str, int] = {}
        for j, d in enumerate(self.data):
            if d.id in self.datum_index:
                problems.append(Problem(where, f"datum {d.id!r}", "duplicate datum id"))
            else:
                self.datum_index[d.id] = j
            if not _is_int(d.size):
                problems.append(Problem(where, f"datum {d.id!r}", f"size must be an integer, got {d.size!r}"))
            elif d.size < 0:
                problems.append(Problem(where, f"datum {d.id!r}", f"size must be >= 0, got {d.size}"))
        problems += _check_machine(self.machine, where)

        n, m = len(self.tasks), len(self.data)
        ti = self.task_index
        self.time = tuple(t.time for t in self.tasks)
        self.workspace = tuple(t.workspace for t in self.tasks)
        self.can_recompute = tuple(bool(t.recompute) for t in self.tasks)
        self.size = tuple(d.size for d in self.data)
        producer: list[int] = []
        consumers: list[tuple[int, ...]] = []
        inputs: list[list[int]] = [[] for _ in range(n)]
        outputs: list[list[int]] = [[] for _ in range(n)]
        for j, d in enumerate(self.data):
            p = ti.get(d.producer)
            if p is None:
                problems.append(Problem(where, f"datum {d.id!r}",
                                        f"producer {d.producer!r} is not a known task (unknown id)"))
                p = -1
            else:
                outputs[p].append(j)
            producer.append(p)
            cs: list[int] = []
            seen: set[int] = set()
            for c in d.consumers:
                ci = ti.get(c)
                if ci is None:
                    problems.append(Problem(where, f"datum {d.id!r}",
                                            f"consumer {c!r} is not a known task (unknown id)"))
                    continue
                if ci in seen:
                    continue  # a task that reads a datum twice reads it once
                seen.add(ci)
                cs.append(ci)
                inputs[ci].append(j)
            consumers.append(tuple(cs))
        self.producer = tuple(producer)
        self.consumers = tuple(consumers)
        self.inputs = tuple(tuple(x) for x in inputs)
        self.outputs = tuple(tuple(x) for x in outputs)
        preds: list[set[int]] = [set() for _ in range(n)]
        succs: list[set[int]] = [set() for _ in range(n)]
        for j in range(m):
            p = producer[j]
            if p < 0:
                continue
            for c in consumers[j]:
                succs[p].add(c)
                preds[c].add(p)
        self.preds = tuple(tuple(sorted(s)) for s in preds)
        self.succs = tuple(tuple(sorted(s)) for s in succs)

        if not problems:
            order = self._stable_topological_order()
            if len(order) < n:
                cyc = self._find_cycle(set(range(n)) - set(order))
                path = " -> ".join(self.tasks[v].id for v in cyc + [cyc[0]])
                problems.append(Problem(where, "graph", f"cycle: {path}"))
            else:
                self.__dict__["topological_order"] = tuple(order)
        if problems:
            raise InstanceError(problems)

    # ------------------------------------------------------------------ sizes
    @property
    def n(self) -> int:
        """Number of tasks."""
        return len(self.tasks)

    @property
    def m(self) -> int:
        """Number of data."""
        return len(self.data)

    @cached_property
    def num_edges(self) -> int:
        """Number of arcs u->v of the task graph."""
        return sum(len(s) for s in self.succs)

    @cached_property
    def total_time(self) -> int:
        """Σ_v c(v): the makespan of any plan that runs each task once."""
        return sum(self.time)

    @cached_property
    def results(self) -> tuple[int, ...]:
        """Data without consumers: they must exist at the end."""
        return tuple(j for j in range(self.m) if not self.consumers[j])

    @cached_property
    def input_size(self) -> tuple[int, ...]:
        """Σ sizes of each task's inputs."""
        s = self.size
        return tuple(sum(s[j] for j in ins) for ins in self.inputs)

    @cached_property
    def output_size(self) -> tuple[int, ...]:
        """Σ sizes of each task's outputs."""
        s = self.size
        return tuple(sum(s[j] for j in outs) for outs in self.outputs)

    # --------------------------------------------------------------- helpers
    def task(self, task_id: str) -> Task:
        return self.tasks[self.task_index[task_id]]

    def datum(self, datum_id: str) -> Datum:
        return self.data[self.datum_index[datum_id]]

    def replace(self, **changes: Any) -> Instance:
        """A copy with some of ``tasks, data, machine, name, units, meta`` changed."""
        kw = dict(tasks=self.tasks, data=self.data, machine=self.machine, name=self.name,
                  units=self.units, meta=self.meta, where=self.where)
        kw.update(changes)
        tasks, data = kw.pop("tasks"), kw.pop("data")
        return Instance(tasks, data, **kw)

    def with_machine(self, **changes: Any) -> Instance:
        """A copy whose machine has some of ``budget, bandwidth, slow_capacity`` changed."""
        return self.replace(machine=replace(self.machine, **changes))

    def to_networkx(self):
        """The task graph as a ``networkx.DiGraph`` (nodes: task ids)."""
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        for t in self.tasks:
            g.add_node(t.id, time=t.time, workspace=t.workspace, recompute=t.recompute)
        for u, ss in enumerate(self.succs):
            for v in ss:
                g.add_edge(self.tasks[u].id, self.tasks[v].id)
        return g

    def __repr__(self) -> str:
        return f"Instance(name={self.name!r}, tasks={self.n}, data={self.m}, edges={self.num_edges})"

    def _canonical(self) -> tuple:
        data = {d.id: (d.producer, frozenset(d.consumers), d.size) for d in self.data}
        return (self.tasks, data, self.machine)

    def __eq__(self, other: object) -> bool:
        """Same tasks (in order), same data (in any order), same machine."""
        if not isinstance(other, Instance):
            return NotImplemented
        return self._canonical() == other._canonical()

    def __hash__(self) -> int:  # instances are immutable
        return hash((self.n, self.m, self.name))

    # -------------------------------------------------------------- ordering
    @cached_property
    def topological_order(self) -> tuple[int, ...]:
        """A topological order that keeps the listed order where it can.

        Kahn's algorithm taking the ready task listed first: if the tasks are
        listed in a topological order, this is that order.
        """
        return tuple(self._stable_topological_order())

    # derived data that algorithms cache on the instance (reachability masks take up to n²/8 bytes):
    # recomputed after unpickling rather than shipped to workers
    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()`` computed once per instance and kept under ``key`` (not pickled)."""
        cache = self.__dict__.setdefault("_memo", {})
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def __getstate__(self) -> Any:
        state = object.__getstate__(self)  # (__dict__, slots) for a class with both
        if isinstance(state, tuple) and state[0]:
            state = ({k: v for k, v in state[0].items() if k != "_memo"}, *state[1:])
        return state

    def _stable_topological_order(self) -> list[int]:
        n = len(self.tasks)
        indeg = [len(p) for p in self.preds]
        heap = [v for v in range(n) if indeg[v] == 0]
        heapq.heapify(heap)
        order: list[int] = []
        succs = self.succs
        while heap:
            v = heapq.heappop(heap)
            order.append(v)
            for w in succs[v]:
                indeg[w] -= 1
                if indeg[w] == 0:
                    heapq.heappush(heap, w)
        return order

    def _find_cycle(self, nodes: set[int]) -> list[int]:
        """A cycle among ``nodes`` (all on or behind a cycle), found by walking preds."""
        # every node left by Kahn's algorithm has a predecessor also left
        v = min(nodes)
        seen: dict[int, int] = {}
        path: list[int] = []
        while v not in seen:
            seen[v] = len(path)
            path.append(v)
            v = next(p for p in self.preds[v] if p in nodes)
        cyc = path[seen[v]:]
        cyc.reverse()  # walked backwards along arcs
        return cyc


def _check_machine(mach: Machine, where: str) -> list[Problem]:
    out: list[Problem] = []
    if mach.budget is not None:
        if not _is_int(mach.budget):
            out.append(Problem(where, "machine.budget", f"must be an integer, got {mach.budget!r}"))
        elif mach.budget < 0:
            out.append(Problem(where, "machine.budget", f"must be >= 0, got {mach.budget}"))
    if mach.bandwidth is not None:
        b = mach.bandwidth
        if isinstance(b, bool) or not isinstance(b, (int, float)) or math.isnan(b):
            out.append(Problem(where, "machine.bandwidth", f"must be a number, got {b!r}"))
        elif b <= 0:
            out.append(Problem(where, "machine.bandwidth", f"must be > 0, got {b}"))
    if mach.slow_capacity is not None:
        if not _is_int(mach.slow_capacity):
            out.append(Problem(where, "machine.slow_capacity", f"must be an integer, got {mach.slow_capacity!r}"))
        elif mach.slow_capacity < 0:
            out.append(Problem(where, "machine.slow_capacity", f"must be >= 0, got {mach.slow_capacity}"))
    return out


def _stem(where: str) -> str:
    import os

    base = os.path.basename(where)
    for ext in (".yaml", ".yml", ".json", ".gz"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    return base or "instance"


def datum_form(inst: Instance, j: int) -> str:
    """How datum ``j`` is written: ``tensor``, ``edge`` or ``general`` (SPEC §4)."""
    d = inst.data[j]
    if d.id == d.producer:
        return "tensor"
    if len(d.consumers) == 1 and d.id == f"{d.producer}->{d.consumers[0]}":
        return "edge"
    return "general"


def from_tensors(
    tasks: Iterable[tuple[str, int, int, Sequence[str]]],
    *,
    name: str | None = None,
    machine: Machine | None = None,
) -> Instance:
    """Build a tensor-form instance from ``(id, time, size, inputs)`` tuples.

    A convenience for code and tests: each task has one output named after it.
    """
    tlist: list[Task] = []
    cons: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for tid, time, size, ins in tasks:
        tlist.append(Task(str(tid), time))
        sizes[str(tid)] = size
        cons.setdefault(str(tid), [])
        for i in ins:
            cons.setdefault(str(i), []).append(str(tid))
    problems = [Problem("<instance>", f"task {c!r}", f"input {i!r} is not a known task (unknown id)")
                for i, cs in cons.items() if i not in sizes for c in cs]
    data = [Datum(t.id, t.id, tuple(cons[t.id]), sizes[t.id]) for t in tlist]
    return Instance(tlist, data, machine, name=name, _problems=problems)


__all__ = ["Task", "Datum", "Machine", "Instance", "datum_form", "from_tensors"]
