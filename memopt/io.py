"""Reading and writing instances, plans and results (SPEC §4).

Files are YAML (``.yaml``/``.yml``) or JSON (``.json``) with the same
structure. :func:`load_instance` also recognises the formats of the
importers (networkx node-link JSON, WfCommons WfFormat, ONNX...) and
converts them on the fly.

YAML is read with the C loader of PyYAML when it is present (about ten times
faster than the pure-Python one).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable, Mapping

import yaml

from .errors import InstanceError, MemoptError, PlanFormatError, Problem
from .instance import Datum, Instance, Machine, Task, datum_form

try:  # the C loader/dumper are ~10x faster; fall back when libyaml is absent
    _Loader = yaml.CSafeLoader
    _Dumper = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader
    _Dumper = yaml.SafeDumper


# ---------------------------------------------------------------- raw files
def read_raw(path: str | os.PathLike) -> Any:
    """Parse a YAML or JSON file into Python objects, with a clear error."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MemoptError(f"{path}: no such file")
    if os.path.isdir(path):
        raise MemoptError(f"{path}: is a directory, not a file")
    ext = os.path.splitext(path)[1].lower()
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise MemoptError(f"{path}: cannot read ({e.strerror})") from None
    if ext == ".json":
        try:
            return json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise MemoptError(f"{path}: not valid JSON ({e})") from None
    if ext in (".yaml", ".yml"):
        try:
            return yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as e:
            raise MemoptError(f"{path}: not valid YAML ({_short_yaml_error(e)})") from None
    raise MemoptError(f"{path}: unknown file type {ext!r} (expected .yaml, .yml or .json)")


def _short_yaml_error(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    prob = getattr(e, "problem", None) or str(e)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {prob}"
    return str(prob)


def write_raw(obj: Any, path: str | os.PathLike) -> None:
    """Write Python objects as YAML or JSON, chosen by the file's extension."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    if ext == ".json":
        with open(path, "w") as f:
            json.dump(_jsonable(obj), f, indent=1)
            f.write("\n")
    elif ext in (".yaml", ".yml"):
        with open(path, "w") as f:
            f.write(dump_yaml(obj))
    else:
        raise MemoptError(f"{path}: unknown file type {ext!r} (expected .yaml, .yml or .json)")


class _Flow(list):
    """A list written in YAML flow style (one stage per line)."""


class _FlowDict(dict):
    """A mapping written in YAML flow style (one task per line)."""


class _YamlDumper(_Dumper):  # type: ignore[misc, valid-type]
    pass


def _repr_flow_list(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


def _repr_flow_dict(dumper: yaml.SafeDumper, data: _FlowDict) -> yaml.Node:
    node = yaml.MappingNode("tag:yaml.org,2002:map", [], flow_style=True)
    for k, v in data.items():
        node.value.append((dumper.represent_data(k), dumper.represent_data(v)))
    return node


def _repr_float(dumper: yaml.SafeDumper, data: float) -> yaml.Node:
    if data != data or data in (math.inf, -math.inf):
        return dumper.represent_float(data)
    if data == int(data) and abs(data) < 1e15:
        return dumper.represent_int(int(data))
    return dumper.represent_scalar("tag:yaml.org,2002:float", repr(data))


_YamlDumper.add_representer(_Flow, _repr_flow_list)
_YamlDumper.add_representer(_FlowDict, _repr_flow_dict)
_YamlDumper.add_representer(float, _repr_float)


def dump_yaml(obj: Any) -> str:
    """YAML text for ``obj``: keys in insertion order, stages and tasks one per line."""
    return yaml.dump(obj, Dumper=_YamlDumper, sort_keys=False, width=10**9, allow_unicode=True)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and obj in (math.inf, -math.inf):
        return "inf" if obj > 0 else "-inf"
    return obj


# ---------------------------------------------------------------- instances
_TOP_KEYS = {"name", "units", "machine", "tasks", "edges", "data", "meta"}
_TASK_KEYS = {"id", "time", "size", "inputs", "workspace", "recompute", "meta"}
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
        if type(value) is str:  # the common case, kept fast for large files
            return value
        if isinstance(value, bool) or value is None or not isinstance(value, (str, int, float)):
            self.add(item, f"{what} must be a string or a number, got {value!r}")
            return None
        if isinstance(value, float) and value == int(value):
            value = int(value)
        return str(value)

    def integer(self, value: Any, item: str, what: str, default: int | None = None) -> int | None:
        if type(value) is int and value >= 0:  # fast path
            return value
        if value is None:
            if default is None:
                self.add(item, f"{what} is missing")
            return default
        v = _number(value)
        if v is None:
            self.add(item, f"{what} must be an integer, got {value!r}")
            return default
        if v != int(v):
            self.add(item, f"{what} must be an integer, got {value!r}")
            return default
        v = int(v)
        if v < 0:
            self.add(item, f"{what} must be >= 0, got {v}")
            return default
        return v

    def keys(self, obj: Mapping, allowed: set[str], item: str) -> None:
        extra = [k for k in obj if k not in allowed]
        if extra:
            self.add(item, f"unknown field(s) {', '.join(map(repr, extra))} (known: {', '.join(sorted(allowed))})")


def _number(value: Any) -> float | int | None:
    """A number from an int, a float, or a numeric string (YAML reads 1e9 as a string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            return None
        if math.isnan(f):
            return None
        if f == int(f) if math.isfinite(f) else False:
            try:
                return int(value)
            except ValueError:
                return int(f)
        return f
    return None


def instance_from_dict(raw: Any, where: str = "<instance>") -> Instance:
    """Build an :class:`Instance` from the structure of SPEC §4.

    Tensor, buffer and general forms may be mixed. All problems found are
    reported together in one :class:`InstanceError`.
    """
    col = _Collector(where)
    if not isinstance(raw, Mapping):
        raise InstanceError([Problem(where, "file", f"must be a mapping with a 'tasks' list, got {type(raw).__name__}")])
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
        tasks.append(Task(tid, time, ws, rc, dict(meta) if meta else None))
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
    if units is not None and not isinstance(units, Mapping):
        col.add("units", "must be a mapping like {size: KiB, time: us}")
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
    bw = raw.get("bandwidth")
    if bw is not None:
        num = _number(bw)
        if isinstance(bw, str) and bw.strip().lower() in ("inf", ".inf", "infinity", "unbounded"):
            num = math.inf
        if num is None:
            col.add("machine.bandwidth", f"must be a number, got {bw!r}")
            bw = None
        elif num <= 0:
            col.add("machine.bandwidth", f"must be > 0, got {bw!r}")
            bw = None
        else:
            bw = num
    sc = raw.get("slow_capacity")
    if sc is not None:
        sc = col.integer(sc, "machine.slow_capacity", "slow_capacity", default=0)
    return Machine(budget, bw, sc)


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
        rt: dict[str, Any] = _FlowDict(id=t.id, time=t.time)
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
        tasks.append(rt)
    out["tasks"] = tasks
    edges = [_FlowDict({"from": d.producer, "to": d.consumers[0], "size": d.size})
             for j, d in enumerate(inst.data) if forms[j] == "edge"]
    if edges:
        out["edges"] = edges
    general = [_FlowDict(id=d.id, producer=d.producer, consumers=list(d.consumers), size=d.size)
               for j, d in enumerate(inst.data) if forms[j] == "general"]
    if general:
        out["data"] = general
    return out


# Importers recognised by content (a JSON/YAML structure) or by extension.
ContentImporter = Callable[[Any, str], Instance]
_CONTENT_IMPORTERS: list[tuple[Callable[[Any], bool], str]] = [
    (lambda raw: isinstance(raw, Mapping) and "nodes" in raw and ("links" in raw or "edges" in raw) and "tasks" not in raw,
     "memopt.importers.nodelink:instance_from_nodelink"),
    (lambda raw: isinstance(raw, Mapping) and "workflow" in raw and "tasks" not in raw,
     "memopt.importers.wfcommons:instance_from_wfformat"),
]
_EXTENSION_IMPORTERS: dict[str, str] = {
    ".onnx": "memopt.importers.onnx:load_onnx",
}


def _resolve(spec: str) -> Callable:
    import importlib

    mod, fn = spec.split(":")
    return getattr(importlib.import_module(mod), fn)


def load_instance(path: str | os.PathLike, **options: Any) -> Instance:
    """Read an instance file: our YAML/JSON, or any format an importer knows.

    ``options`` are passed to the importer (e.g. ``batch=`` for ONNX).
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext in _EXTENSION_IMPORTERS:
        if not os.path.exists(path):
            raise MemoptError(f"{path}: no such file")
        return _resolve(_EXTENSION_IMPORTERS[ext])(path, **options)
    raw = read_raw(path)
    for pred, spec in _CONTENT_IMPORTERS:
        if pred(raw):
            return _resolve(spec)(raw, path, **options)
    if options:
        raise MemoptError(f"{path}: options {sorted(options)} only apply to imported formats")
    return instance_from_dict(raw, where=path)


def save_instance(inst: Instance, path: str | os.PathLike) -> None:
    """Write an instance as YAML or JSON (by extension)."""
    write_raw(instance_to_dict(inst), path)


__all__ = [
    "read_raw", "write_raw", "dump_yaml", "instance_from_dict", "instance_to_dict",
    "load_instance", "save_instance",
]
