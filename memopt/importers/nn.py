"""Neural-network graphs to instances: the part shared by the ONNX and PyTorch importers.

An importer (:mod:`memopt.importers.onnx`, :mod:`memopt.importers.pytorch`)
describes a traced network as an :class:`NNGraph`: a list of :class:`Op` in
the framework's execution order, each reading tensors and writing
:class:`Tensor` records, plus the external tensors (parameters, buffers,
constants) and the graph outputs. :func:`to_instance` turns it into a
memopt :class:`~memopt.core.instance.Instance` with the rules below; they are the
data model documented in ``docs/importers-nn.md``.

**Tasks.** One task per op, listed in execution order, so the instance's
listed order *is* the framework's own order; one task of time 0 per graph
input (``recompute: false``: data loading cannot be redone). Ops whose result
reaches no graph output are dropped (dead-code elimination).

**Sizes** are bytes of tensor storage (or ``size_unit``, each size rounded
up). An output that no kept op reads and that is no graph output is counted
as *workspace* of its op: held while the op runs, freed right after.

**Aliases** (views, reshapes, in-place results: an output sharing the
storage of an earlier tensor, its *root*) take no new memory: the alias is a
datum of size 0, and every task that reads an alias also reads its root, so
the root's storage stays alive as long as any alias of it is used.

**Graph outputs** without a reader are results (SPEC §1). When a graph output
is also read inside the graph, or is an alias, or parameters are counted, a
task ``output`` of time 0 (as in torch.fx) reads every graph output (and
roots): everything it reads stays alive to the end; its own output, of size
0, is the only result.

**Parameters** (weights, buffers, constants) are excluded by default. With
``count_params=True`` they are one datum ``parameters`` (their total bytes),
produced by a task of time 0 that every graph input reads (so it comes
first), read by every op that uses a parameter and by ``output`` (so it stays
to the end): a fixed offset on every schedule's peak. External tensors whose
id starts with ``host:`` live in host memory: they are never counted.

**Persistent tensors** (``kind="state"`` ops: the parameters, buffers and
optimizer states of a training step with an optimizer,
:mod:`memopt.importers.optimizer`) are data of their own, each produced by a
source task (time 0, ``recompute: false``) that writes a size-0 token read by
every graph input (an op that allocates without following one reads the last
source's, which reads the others'): the sources run first — the tensors
exist when the step starts — without having to be in memory together. **Results**
(``NNGraph.results``: the updated parameters and states) are data without a
reader, kept to the end in fast or slow memory (SPEC §1); a result that is
read inside the graph or is an alias is kept by ``output`` instead.

**Time** is the roofline of :class:`~memopt.importers.costs.CostModel`: ``ceil(max(flops / F,
bytes / B))`` in nanoseconds; views take 0 (an in-place op writes its
alias: it takes time, and is never contracted).

Complexity: O(ops + Σ inputs) after the importer's tracing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from memopt.core.errors import MemoptError
from memopt.core.instance import Datum, Instance, Machine, Task
from memopt.importers.costs import DEFAULT_BYTES_PER_SECOND, DEFAULT_FLOPS_PER_SECOND, CostModel, make_cost
from memopt.importers.persistent import token_readers, unordered_allocating

SIZE_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}

#: ``Op.op`` of the persistent tensors (``kind="state"``) of a training step
PARAMETER, BUFFER, OPTIMIZER_STATE = "parameter", "buffer", "optimizer_state"
#: prefix of the external tensors that live in host memory (ZeRO-Offload's optimizer states)
HOST = "host:"


@dataclass
class Tensor:
    """A tensor written by an op.

    ``nbytes`` is its logical size (elements × bytes per element), what an op
    reading it moves; ``storage`` the bytes it owns (default ``nbytes``).
    ``alias_of`` names an earlier tensor whose storage it shares (a view, a
    reshape, an in-place result): then it owns nothing.
    """

    id: str
    nbytes: int
    alias_of: str | None = None
    storage: int | None = None

    @property
    def owned(self) -> int:
        """Bytes of storage this tensor allocates (0 for an alias)."""
        if self.alias_of is not None:
            return 0
        return self.nbytes if self.storage is None else self.storage


@dataclass
class Op:
    """One op of the traced graph, or a graph input (``kind="input"``).

    ``inputs`` are tensor ids: outputs of earlier ops, graph inputs, or
    external tensors (keys of :attr:`NNGraph.params`). ``flops`` are the
    floating-point operations counted by the importer; ``moved`` the bytes it
    moves (``None``: Σ input bytes + Σ bytes it allocates); ``workspace`` the
    bytes of temporaries it holds while it runs beyond its outputs.
    ``inplace``: its alias outputs are written in place (``relu_``, ``add_``),
    not mere views: it takes time and is never contracted. ``time_ns``: a
    fixed time overriding the cost model (an optimizer update run on the host).

    ``kind="state"``: a *persistent* tensor that exists when the step starts
    (a parameter, a buffer, an optimizer state counted as data): a source task
    of time 0, ``recompute: false``, that runs before every graph input.
    """

    id: str
    inputs: list[str]
    outputs: list[Tensor]
    op: str = ""
    kind: str = "op"
    flops: int = 0
    moved: int | None = None
    recompute: bool = True
    workspace: int = 0
    inplace: bool = False
    time_ns: int | None = None
    group: str | None = None  # the module path the op ran in (memopt.importers.module_path): the task's group


@dataclass
class NNGraph:
    """A traced network: ops in execution order, external tensors, graph outputs."""

    name: str
    ops: list[Op]
    outputs: list[str]
    params: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    #: what the importer traced (e.g. the torch.fx ``GraphModule`` and its arguments), for inspection
    traced: Any = field(default=None, repr=False, compare=False)
    #: graph outputs that are *results* (SPEC §1: kept to the end, in fast or slow memory), never
    #: read by the ``output`` task: the updated parameters and optimizer states of a training step
    results: list[str] = field(default_factory=list)


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_1``, ``base_2``... whichever is not in ``taken``."""
    if base not in taken:
        return base
    k = 1
    while f"{base}_{k}" in taken:
        k += 1
    return f"{base}_{k}"


def to_instance(
    graph: NNGraph,
    *,
    cost: CostModel | None = None,
    count_params: bool = False,
    keep_views: bool = True,
    size_unit: str = "B",
    bandwidth: float | None = None,
    op_meta: bool = True,
    sink: bool | None = None,
    name: str | None = None,
    where: str = "<network>",
) -> Instance:
    """The instance of a traced network (rules in the module docstring).

    Parameters
    ----------
    cost:
        The time model (default :class:`CostModel` ()).
    count_params:
        Count parameters as one datum alive from the start to the end.
    keep_views:
        Keep alias ops as tasks of time 0 (default). ``False`` contracts every
        alias op that reads at most one activation (its base) and writes no
        graph output: its readers read the root instead. Contracting changes no schedule's peak (an alias costs 0
        bytes, and its readers keep the root alive anyway) and shrinks the
        graph.
    size_unit:
        ``B``, ``KiB``, ``MiB`` or ``GiB``; sizes are rounded up.
    bandwidth:
        ``machine.bandwidth`` to set, in size units per ns (offloading needs it).
    op_meta:
        Record each task's op type in its ``meta``.
    sink:
        Add the task ``output`` (``None``: when needed, see above; ``False``:
        never — graph outputs read inside the graph are then freed after their
        last reader, as a training graph built on top wants).
    """
    cost = cost or CostModel()
    if size_unit not in SIZE_UNITS:
        raise MemoptError(f"{where}: size unit {size_unit!r} unknown (known: {', '.join(SIZE_UNITS)})")
    unit = SIZE_UNITS[size_unit]

    def sz(nbytes: int) -> int:
        return -(-int(nbytes) // unit)

    params = graph.params
    ops = list(graph.ops)
    tensor: dict[str, Tensor] = {}
    producer: dict[str, Op] = {}
    problems: list[str] = []
    for op in ops:
        for t in op.outputs:
            if t.id in tensor or t.id in params:
                problems.append(f"tensor {t.id!r} is written twice (by {producer[t.id].id!r} and {op.id!r})"
                                if t.id in producer else f"tensor {t.id!r} is both a parameter and an op output")
            tensor[t.id] = t
            producer[t.id] = op
    for op in ops:
        for x in op.inputs:
            if x not in tensor and x not in params:
                problems.append(f"op {op.id!r} reads tensor {x!r}, which nothing produces")
    for x in graph.outputs:
        if x not in tensor and x not in params:
            problems.append(f"graph output {x!r} is produced by no op")
    for x in graph.results:
        if x not in tensor:
            problems.append(f"result {x!r} is produced by no op")
    if problems:
        raise MemoptError(f"{where}: " + "; ".join(problems[:10]))

    # the storage root of each tensor: an op output, or an external tensor (a parameter)
    root: dict[str, str] = {}

    def root_of(x: str) -> str:
        r = root.get(x)
        if r is not None:
            return r
        chain = []
        y = x
        while y in tensor and tensor[y].alias_of is not None and y not in root:
            chain.append(y)
            y = tensor[y].alias_of  # type: ignore[assignment]
            if len(chain) > len(tensor):
                raise MemoptError(f"{where}: tensor {x!r}: alias cycle")
        r = root.get(y, y)
        for c in chain:
            root[c] = r
        root[x] = r
        return r

    for x in tensor:
        a = tensor[x].alias_of
        if a is not None and a not in tensor and a not in params:
            raise MemoptError(f"{where}: tensor {x!r} aliases {a!r}, which is no tensor of the graph")

    # what a reader of tensor x really reads: x itself and the root of its storage
    def reads_of(x: str) -> list[str]:
        r = root_of(x)
        out = [x] if x not in params else []
        if r != x:
            out.append(r)
        return out

    # an alias op: all its outputs are aliases, it reads at most one activation (its base;
    # none for a view of a parameter), and it writes no graph output
    outset = set(graph.outputs)

    def contractible(op: Op) -> bool:
        return (op.kind == "op" and not op.inplace and bool(op.outputs)
                and all(t.alias_of is not None for t in op.outputs)
                and len({x for x in op.inputs if x not in params}) <= 1
                and not any(t.id in outset for t in op.outputs))

    contracted: set[str] = set()
    if not keep_views:
        contracted = {op.id for op in ops if contractible(op)}

    def visible(x: str) -> list[str]:
        """Data a reader of x lists, after contraction (tensor ids or parameter ids)."""
        if x in params:
            return [x]
        rs = reads_of(x)
        if producer[x].id in contracted:
            rs = [r for r in rs if r != x]
            if not rs:  # alias of a parameter
                rs = [root_of(x)]
        return rs

    # dead-code elimination: keep the ops some graph output depends on
    needed_ops: set[str] = set()
    stack: list[str] = []
    for x in graph.outputs:
        stack.extend(reads_of(x) if x not in params else [])
    for x in graph.results:
        stack.extend(reads_of(x))
    seen_t: set[str] = set()
    while stack:
        x = stack.pop()
        if x in seen_t or x in params:
            continue
        seen_t.add(x)
        op = producer[x]
        if op.id in needed_ops:
            continue
        needed_ops.add(op.id)
        for y in op.inputs:
            if y not in params:
                stack.extend(reads_of(y))
        for t in op.outputs:  # an op that writes an alias also reads its root
            if t.alias_of is not None:
                stack.append(root_of(t.id))
    kept = [op for op in ops if op.id in needed_ops and op.id not in contracted]
    kept_ids = {op.id for op in kept}

    # which data each kept task reads (tensor ids; parameter ids kept aside)
    reads: dict[str, list[str]] = {}
    uses_params: dict[str, bool] = {}
    for op in kept:
        rs: list[str] = []
        up = False
        items = list(op.inputs) + [root_of(t.id) for t in op.outputs if t.alias_of is not None]
        own = {t.id for t in op.outputs}
        for x in items:
            for y in visible(x):
                if y in params:
                    up = True
                elif y not in rs and y not in own:
                    rs.append(y)
        reads[op.id] = rs
        uses_params[op.id] = up

    out_tensors = [x for x in graph.outputs if x not in params]
    readers: dict[str, list[str]] = {}
    for op in kept:
        for y in reads[op.id]:
            readers.setdefault(y, []).append(op.id)
    # a result read inside the graph, or an alias, would not stay: the output task keeps it instead
    results = [x for x in dict.fromkeys(graph.results) if x not in readers and root_of(x) == x
               and x not in out_tensors]
    out_tensors += [x for x in graph.results if x not in results and x not in out_tensors]
    result_set = set(results)

    used_params = set()
    for op in kept:
        for x in op.inputs:
            for y in (visible(x) if x not in params else [x]):
                if y in params:
                    used_params.add(y)
        for t in op.outputs:
            if t.alias_of is not None and root_of(t.id) in params:
                used_params.add(root_of(t.id))
    param_bytes = sum(params[p] for p in used_params if not p.startswith(HOST))
    host_bytes = sum(params[p] for p in used_params if p.startswith(HOST))

    sink_needed = sink if sink is not None else (count_params or any(
        x in readers or root_of(x) != x or graph.outputs.count(x) > 1 for x in out_tensors))
    sink_reads: list[str] = []
    if sink_needed:
        for x in out_tensors:
            for y in visible(x):
                if y not in params and y not in sink_reads:
                    sink_reads.append(y)
                    readers.setdefault(y, [])

    taken = set(kept_ids) | set(tensor) | set(params)
    sink_id = unique_name("output", taken) if sink_needed else None
    if sink_id:
        taken.add(sink_id)
    param_id = unique_name("parameters", taken) if count_params else None

    tasks: list[Task] = []
    data: list[Datum] = []
    consumers: dict[str, list[str]] = {}
    if param_id:
        tasks.append(Task(param_id, 0, 0, False, {"op": "parameters"} if op_meta else None))
        consumers[param_id] = []
    datum_of: list[tuple[str, str, int]] = []  # (datum id, producer task, size)
    for op in kept:
        ws = op.workspace
        outs: list[Tensor] = []
        for t in op.outputs:
            if t.id in readers or t.id in out_tensors or t.id in result_set:
                outs.append(t)
            else:
                ws += t.owned  # written, never read: held only while the op runs
        if op.time_ns is not None:
            time = op.time_ns
        elif op.kind in ("input", "state") or (not op.inplace and all(t.alias_of is not None for t in op.outputs)):
            time = 0  # a view moves no data
        else:
            moved = op.moved
            if moved is None:
                moved = sum(_nbytes(x, tensor, params) for x in op.inputs) + sum(
                    t.nbytes if (op.inplace and t.alias_of is not None) else t.owned for t in op.outputs)
            time = cost.time_ns(op.flops, moved)
        meta = {"op": op.op} if op_meta and op.op else None
        tasks.append(Task(op.id, time, sz(ws), op.recompute, meta, op.group))
        for t in outs:
            datum_of.append((t.id, op.id, sz(t.owned)))
            consumers[t.id] = []
        for y in reads[op.id]:
            consumers[y].append(op.id)
        if param_id and (uses_params[op.id] or op.kind == "input"):
            consumers[param_id].append(op.id)
    # persistent tensors exist when the step starts: each source writes a size-0 token that every graph
    # input reads (the first op when there is none), so the sources run first without being held together;
    # an op that allocates and follows no graph input (GPT-2's position embedding, an op on parameters only)
    # must follow them too, else a schedule could run it before a persistent tensor exists (token_readers)
    states = [op for op in kept if op.kind == "state"]
    starters = [op.id for op in kept if op.kind == "input"] or [op.id for op in kept if op.kind != "state"][:1]
    if states and starters:
        late = unordered_allocating(kept, tasks, datum_of, consumers, starters)
        for op, readers in zip(states, token_readers([op.id for op in states], starters, late)):
            tok = unique_name(f"{op.id}.ready", taken)
            taken.add(tok)
            datum_of.append((tok, op.id, 0))
            consumers[tok] = list(readers)
    if sink_id:
        tasks.append(Task(sink_id, 0, 0, False, {"op": "output"} if op_meta else None))
        for y in sink_reads:
            consumers[y].append(sink_id)
        if param_id:
            consumers[param_id].append(sink_id)
    if param_id:
        data.append(Datum(param_id, param_id, tuple(consumers[param_id]), sz(param_bytes)))
    for did, prod, size in datum_of:
        data.append(Datum(did, prod, tuple(consumers[did]), size))
    if sink_id:
        data.append(Datum(sink_id, sink_id, (), 0))

    # graph outputs that are external tensors (a constant output) are not modelled
    meta = dict(graph.meta)
    state_bytes = sum(t.owned for op in states for t in op.outputs if op.op == OPTIMIZER_STATE)
    param_bytes += sum(t.owned for op in states for t in op.outputs) - state_bytes
    meta.update({
        "flops_per_second": cost.flops_per_second,
        "bytes_per_second": cost.bytes_per_second,
        "parameter_bytes": param_bytes,
        "parameters_counted": bool(count_params or states),
    })
    if state_bytes or host_bytes:
        meta["optimizer_state_bytes"] = state_bytes + host_bytes
    if not keep_views:
        meta["views"] = "contracted"
    units = {"size": size_unit, "time": "ns"}
    machine = Machine(bandwidth=bandwidth / unit if bandwidth else None)
    return Instance(tasks, data, machine, name=name or graph.name, units=units, meta=meta, where=where)


def keep_to_end(inst: Instance, keep: Sequence[str], sink: str = "output") -> Instance:
    """``inst`` plus a task of time 0 reading the data ``keep`` and every result.

    Everything it reads stays in memory to the end (it runs last); its own
    output, of size 0, is the only result. Used to keep the parameters of a
    training graph built by :func:`memopt.training.training_graph`. O(n + m).
    """
    taken = {t.id for t in inst.tasks} | {d.id for d in inst.data}
    sid = unique_name(sink, taken)
    reads = set(keep) | {inst.data[j].id for j in inst.results}
    for x in keep:
        if x not in inst.datum_index:
            raise MemoptError(f"{inst.where}: cannot keep {x!r}: no such datum")
    data = [Datum(d.id, d.producer, d.consumers + ((sid,) if d.id in reads else ()), d.size) for d in inst.data]
    data.append(Datum(sid, sid, (), 0))
    tasks = list(inst.tasks) + [Task(sid, 0, 0, False, {"op": "output"})]
    return inst.replace(tasks=tasks, data=data)


def _nbytes(x: str, tensor: Mapping[str, Tensor], params: Mapping[str, int]) -> int:
    if x in tensor:
        return tensor[x].nbytes
    return params.get(x, 0)


def traced_order(inst: Instance) -> list[int]:
    """The framework's own order: the listed order of an imported instance."""
    return list(inst.topological_order)


__all__ = [
    "Tensor", "Op", "NNGraph", "CostModel", "make_cost", "to_instance", "keep_to_end", "unique_name", "traced_order",
    "DEFAULT_FLOPS_PER_SECOND", "DEFAULT_BYTES_PER_SECOND", "SIZE_UNITS",
]

