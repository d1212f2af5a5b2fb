"""Instances as files: the structure of SPEC §4 to an :class:`Instance` and back.

Every rule a file breaks is collected and reported at once
(:class:`~memopt.core.errors.InstanceError`): unknown or missing fields,
numbers that are not exact non-negative integers, unknown ids, cycles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from memopt.core.errors import InstanceError, Problem
from memopt.core.files import ExactFloat, FlowDict, file_id, file_integer, file_number
from memopt.core.instance import Datum, Instance, Machine, Task, datum_form

# ---------------------------------------------------------------- instances
_TOP_KEYS = {"name", "units", "machine", "tasks", "edges", "data", "meta"}
_TASK_KEYS = {"id", "time", "size", "inputs", "workspace", "recompute", "meta", "group"}
_EDGE_KEYS = {"from", "to", "size"}
_DATA_KEYS = {"id", "producer", "consumers", "size"}
_MACHINE_KEYS = {"budget", "bandwidth", "slow_capacity"}


class _Collector:
    """Collects problems while reading one file."""

    def __init__(self, where: str):
        self.where = where
        self.problems: list[Problem] = []

    def add(self, item: str, rule: str) -> None:
        self.problems.append(Problem(self.where, item, rule))

    def ident(self, value: Any, item: str, what: str) -> str | None:
        out = file_id(value)
        if out is None:
            finite = "" if not isinstance(value, float) else "finite "
            self.add(item, f"{what} must be a string or a {finite}number, got {value!r}")
        return out

    def integer(self, value: Any, item: str, what: str, default: int | None = None) -> int | None:
        """An exact integer >= 0 (:func:`~memopt.core.files.file_integer`); the problem recorded otherwise."""
        if type(value) is int and value >= 0:  # fast path
            return value
        if value is None:
            if default is None:
                self.add(item, f"{what} is missing")
            return default
        v = file_integer(value, what)
        if isinstance(v, str):
            self.add(item, v)
            return default
        return v

    def keys(self, obj: Mapping, allowed: set[str], item: str) -> None:
        extra = [k for k in obj if k not in allowed]
        if extra:
            self.add(item, f"unknown field(s) {', '.join(map(repr, extra))} (known: {', '.join(sorted(allowed))})")


def instance_from_dict(raw: Any, where: str = "<instance>") -> Instance:
    """Build an :class:`Instance` from the structure of SPEC §4.

    Tensor, buffer and general forms may be mixed. All problems found are
    reported together in one :class:`InstanceError`.
    """
    col = _Collector(where)
    if not isinstance(raw, Mapping):
        raise InstanceError([Problem(where, "file", "must be a mapping with a 'tasks' list, "
                                                    f"got {_kind(raw)}")])
    col.keys(raw, _TOP_KEYS, "top level")
    if "tasks" not in raw:
        col.add("top level", "no 'tasks' list")

    machine = _machine_from_dict(raw.get("machine"), col)

    tasks: list[Task] = []
    tensor_sizes: dict[str, int] = {}
    task_inputs: list[tuple[str, list[str]]] = []
    raw_tasks = raw.get("tasks") or []
    if not isinstance(raw_tasks, list):
        col.add("tasks", "must be a list")
        raw_tasks = []
    for k, rt in enumerate(raw_tasks):
        if not isinstance(rt, dict) and not isinstance(rt, Mapping):
            col.add(f"tasks[{k}]", f"must be a mapping, got {rt!r}")
            continue
        tid = col.ident(rt.get("id"), f"tasks[{k}]", "id")
        if tid is None:
            continue
        item = f"task {tid!r}"
        col.keys(rt, _TASK_KEYS, item)
        time = col.integer(rt.get("time"), item, "time", default=0)
        ws = col.integer(rt.get("workspace"), item, "workspace", default=0)
        rc = rt.get("recompute", True)
        if not isinstance(rc, bool):
            col.add(item, f"recompute must be true or false, got {rc!r}")
            rc = True
        meta = rt.get("meta")
        if meta is not None and not isinstance(meta, Mapping):
            col.add(item, "meta must be a mapping")
            meta = None
        group = rt.get("group")
        if group is not None:  # a hierarchical path such as h.3.attn (docs/model.md)
            group = col.ident(group, item, "group")
        tasks.append(Task(tid, time, ws, rc, dict(meta) if meta else None, group or None))
        if "size" in rt:
            size = col.integer(rt.get("size"), item, "size", default=0)
            if tid in tensor_sizes:
                pass  # duplicate task id, reported by Instance
            tensor_sizes[tid] = size
        ins = rt.get("inputs")
        if ins is not None:
            if not isinstance(ins, list):
                col.add(item, f"inputs must be a list, got {ins!r}")
            else:
                names = [col.ident(x, item, "input id") for x in ins]
                task_inputs.append((tid, [x for x in names if x is not None]))

    data: list[Datum] = []
    consumers: dict[str, list[str]] = {tid: [] for tid in tensor_sizes}
    general: list[tuple[str, str, list[str], int]] = []
    raw_edges = raw.get("edges") or []
    if not isinstance(raw_edges, list):
        col.add("edges", "must be a list")
        raw_edges = []
    edge_data: list[Datum] = []
    for k, re in enumerate(raw_edges):
        if not isinstance(re, Mapping):
            col.add(f"edges[{k}]", f"must be a mapping, got {re!r}")
            continue
        u = col.ident(re.get("from"), f"edges[{k}]", "from")
        v = col.ident(re.get("to"), f"edges[{k}]", "to")
        if u is None or v is None:
            continue
        item = f"edge {u}->{v}"
        col.keys(re, _EDGE_KEYS, item)
        size = col.integer(re.get("size"), item, "size", default=None)
        edge_data.append(Datum(f"{u}->{v}", u, (v,), size if size is not None else 0))
    raw_data = raw.get("data") or []
    if not isinstance(raw_data, list):
        col.add("data", "must be a list")
        raw_data = []
    for k, rd in enumerate(raw_data):
        if not isinstance(rd, Mapping):
            col.add(f"data[{k}]", f"must be a mapping, got {rd!r}")
            continue
        did = col.ident(rd.get("id"), f"data[{k}]", "id")
        if did is None:
            continue
        item = f"datum {did!r}"
        col.keys(rd, _DATA_KEYS, item)
        prod = col.ident(rd.get("producer"), item, "producer")
        cons = rd.get("consumers") or []
        if not isinstance(cons, list):
            col.add(item, f"consumers must be a list, got {cons!r}")
            cons = []
        cons_ids = [c for c in (col.ident(x, item, "consumer id") for x in cons) if c is not None]
        size = col.integer(rd.get("size"), item, "size", default=None)
        if prod is None:
            continue
        general.append((did, prod, cons_ids, size if size is not None else 0))
        consumers.setdefault(did, [])

    # inputs name data: tensor outputs (id = task id), general data, or edges
    known_tasks = {t.id for t in tasks}
    edge_ids = {d.id for d in edge_data}
    extra_edge_consumers: dict[str, list[str]] = {}
    for tid, names in task_inputs:
        for x in names:
            if x in consumers:
                consumers[x].append(tid)
            elif x in edge_ids:
                extra_edge_consumers.setdefault(x, []).append(tid)
            elif x in known_tasks:
                col.add(f"task {tid!r}", f"input {x!r} is a task without a size, so it has no tensor output")
            else:
                col.add(f"task {tid!r}", f"input {x!r} is not a known datum or task (unknown id)")

    for t in tasks:
        if t.id in tensor_sizes:
            data.append(Datum(t.id, t.id, tuple(consumers[t.id]), tensor_sizes[t.id]))
            del consumers[t.id]  # written once even if the task id is duplicated
            tensor_sizes.pop(t.id)
    for d in edge_data:
        extra = extra_edge_consumers.get(d.id)
        data.append(Datum(d.id, d.producer, d.consumers + tuple(extra or ()), d.size))
    for did, prod, cons_ids, size in general:
        data.append(Datum(did, prod, tuple(cons_ids) + tuple(consumers.get(did, ())), size))

    name = raw.get("name")
    units = raw.get("units")
    if units is not None and (not isinstance(units, Mapping) or any(
            k not in ("size", "time") or not isinstance(v, str) for k, v in units.items())):
        col.add("units", f"must be a mapping like {{size: KiB, time: us}}, got {units!r}")
        units = None
    meta = raw.get("meta")
    if meta is not None and not isinstance(meta, Mapping):
        col.add("meta", "must be a mapping")
        meta = None
    return Instance(
        tasks, data, machine,
        name=str(name) if name is not None else None,
        units=units, meta=meta, where=where, _problems=col.problems,
    )


def _machine_from_dict(raw: Any, col: _Collector) -> Machine:
    if raw is None:
        return Machine()
    if not isinstance(raw, Mapping):
        col.add("machine", f"must be a mapping, got {raw!r}")
        return Machine()
    col.keys(raw, _MACHINE_KEYS, "machine")
    budget = raw.get("budget")
    if budget is not None:
        budget = col.integer(budget, "machine.budget", "budget", default=0)
    bw = _bandwidth(raw.get("bandwidth"), col)
    sc = raw.get("slow_capacity")
    if sc is not None:
        sc = col.integer(sc, "machine.slow_capacity", "slow_capacity", default=0)
    return Machine(budget, bw, sc)


def _bandwidth(bw: Any, col: _Collector) -> int | float | None:
    """β > 0: an integer, a decimal a float holds exactly (read from its text), or inf (unbounded)."""
    if bw is None:
        return None
    if (isinstance(bw, float) and bw == math.inf and not isinstance(bw, ExactFloat)) or (
            isinstance(bw, (str, ExactFloat)) and str(getattr(bw, "text", bw)).strip().lower().lstrip("+")
            in ("inf", ".inf", "infinity", "unbounded")):
        return math.inf
    d = file_number(bw, "bandwidth", "a number > 0 (or inf)")
    if isinstance(d, str):
        col.add("machine.bandwidth", d)
        return None
    if d <= 0:
        col.add("machine.bandwidth", f"must be > 0, got {bw!r}")
        return None
    if d == d.to_integral_value():
        return int(d)
    f = float(d)
    if Decimal(repr(f)) != d:
        col.add("machine.bandwidth", f"bandwidth {d} has more digits than a float holds exactly; round it "
                                     f"(e.g. {f!r})")
        return None
    return f


def _kind(value: Any) -> str:
    """What a value of a file is, in words."""
    if value is None:
        return "nothing (null)"
    return {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), f"a {type(value).__name__}")


def instance_to_dict(inst: Instance) -> dict[str, Any]:
    """The file structure of SPEC §4, using the most compact form per datum."""
    out: dict[str, Any] = {}
    out["name"] = inst.name
    if inst.units:
        out["units"] = dict(inst.units)
    mach = {k: getattr(inst.machine, k) for k in ("budget", "bandwidth", "slow_capacity")
            if getattr(inst.machine, k) is not None}
    if mach:
        out["machine"] = mach
    if inst.meta:
        out["meta"] = dict(inst.meta)
    forms = [datum_form(inst, j) for j in range(inst.m)]
    tensor_of = {inst.data[j].producer: j for j in range(inst.m) if forms[j] == "tensor"}
    tasks = []
    for v, t in enumerate(inst.tasks):
        rt: dict[str, Any] = FlowDict(id=t.id, time=t.time)
        if t.id in tensor_of:
            rt["size"] = inst.size[tensor_of[t.id]]
        ins = [inst.data[j].id for j in inst.inputs[v] if forms[j] == "tensor"]
        if ins:
            rt["inputs"] = ins
        if t.workspace:
            rt["workspace"] = t.workspace
        if not t.recompute:
            rt["recompute"] = False
        if t.meta:
            rt["meta"] = dict(t.meta)
        if t.group:
            rt["group"] = t.group
        tasks.append(rt)
    out["tasks"] = tasks
    edges = [FlowDict({"from": d.producer, "to": d.consumers[0], "size": d.size})
             for j, d in enumerate(inst.data) if forms[j] == "edge"]
    if edges:
        out["edges"] = edges
    general = [FlowDict(id=d.id, producer=d.producer, consumers=list(d.consumers), size=d.size)
               for j, d in enumerate(inst.data) if forms[j] == "general"]
    if general:
        out["data"] = general
    return out


__all__ = ["instance_from_dict", "instance_to_dict"]
