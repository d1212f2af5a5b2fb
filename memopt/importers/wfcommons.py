"""Importer for WfCommons WfFormat JSON (real scientific workflows).

WfCommons (https://wfcommons.org) publishes execution traces of scientific
workflows (Montage, 1000Genome, BLAST, Epigenomics, nf-core pipelines...) in
the WfFormat JSON schema. Two layouts exist:

- schema 1.5 and later: ``workflow.specification.tasks`` (``id``, ``name``,
  ``parents``, ``children``, ``inputFiles``, ``outputFiles``: lists of file
  ids), ``workflow.specification.files`` (``id``, ``sizeInBytes``) and
  ``workflow.execution.tasks`` (``id``, ``runtimeInSeconds``);
- schema 1.4 and earlier: ``workflow.tasks`` (``workflow.jobs`` before 1.3),
  each with ``files``: ``{link: input|output, name, sizeInBytes}`` (``size``
  before 1.4), ``runtimeInSeconds`` (``runtime`` before 1.4) and
  ``parents``/``children`` naming other tasks by ``name`` (or ``id``).

Each file becomes a datum of the file's size, produced by the task that
lists it as an output and read by every task that lists it as an input
(general form, SPEC §4: datum id = file id). Choices, documented in
``docs/formats.md``:

- times: ``runtimeInSeconds`` × the ``time_unit`` (``s``, ``ms`` default,
  ``us``, ``ns``), rounded to the nearest integer; a task without a runtime
  takes 0 (as WfCommons' own migration tool does). With no
  ``execution`` section at all (a pure specification), every time is 0;
- sizes: bytes divided by the ``size_unit`` (``B`` default, ``KB``,
  ``KiB``, ``MB``, ``MiB``, ``GB``, ``GiB``) and rounded up. The ``size`` of
  schemas before 1.4 is read as bytes, as WfCommons' migration tool does
  (it renames it ``sizeInBytes`` without scaling);
- workflow inputs (files read but written by no task): with
  ``inputs="task"`` (default) each gets a zero-time task ``stage_in:<file>``
  that produces it, listed just before the first task reading the file,
  with ``recompute: false`` (staging a file in happens once;
  keeping it costs memory, dropping it and staging it again is not free);
  ``inputs="drop"`` leaves them out (they are read from storage outside fast
  memory);
- a file written by two tasks is an error naming both, unless
  ``duplicate_outputs="first"``: the first writer in the listed order
  produces it and the later declarations are ignored;
- a file listed both as input and output of the same task is read as its
  output only (an in-place update);
- a parent/child pair that shares no file still imposes its order: a
  size-0 datum ``parent->child`` (buffer form) is added. ``parents`` and
  ``children`` are merged (a dependency declared on either side counts);
- the task's ``name`` (1.5+: the program/category; before: the unique task
  name) and ``category`` are kept in ``Task.meta``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memopt.core.errors import MemoptError, Problem
from memopt.core.instance import Datum, Instance, Task
from memopt.importers._common import SIZE_UNITS, TIME_UNITS, check_options, choice, to_size, to_time

OPTIONS = ("time_unit", "size_unit", "inputs", "duplicate_outputs")


class _Task:
    __slots__ = ("id", "name", "ref_names", "parents", "children", "inputs", "outputs", "runtime", "meta", "item")

    def __init__(self, tid: str, item: str):
        self.id = tid
        self.item = item
        self.name: str | None = None
        self.ref_names: list[str] = []
        self.parents: list[str] = []
        self.children: list[str] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.runtime: Any = 0
        self.meta: dict[str, Any] = {}


def instance_from_wfformat(raw: Any, where: str = "<wfformat>", **options: Any) -> Instance:
    """Build an :class:`Instance` from a WfFormat workflow (see the module doc).

    Options: ``time_unit`` (s | ms | us | ns, default ms), ``size_unit``
    (B | KB | KiB | MB | MiB | GB | GiB, default B), ``inputs`` (task | drop,
    default task), ``duplicate_outputs`` (error | first, default error).

    Raises :class:`~memopt.core.errors.InstanceError` listing every problem
    (unknown file or task references, a file written twice, a cycle...).
    O(tasks + files + references).
    """
    check_options(where, options, OPTIONS, "WfCommons")
    time_unit = choice(where, "time_unit", options.get("time_unit", "ms"), TIME_UNITS)
    size_unit = choice(where, "size_unit", options.get("size_unit", "B"), SIZE_UNITS)
    inputs_mode = choice(where, "inputs", options.get("inputs", "task"), ("task", "drop"))
    dup_mode = choice(where, "duplicate_outputs", options.get("duplicate_outputs", "error"), ("error", "first"))
    tscale, sdiv = TIME_UNITS[time_unit], SIZE_UNITS[size_unit]

    if not isinstance(raw, Mapping) or not isinstance(raw.get("workflow"), Mapping):
        raise MemoptError(f"{where}: a WfFormat file is a mapping with a 'workflow' mapping")
    wf = raw["workflow"]
    problems: list[Problem] = []
    file_size: dict[str, Any] = {}  # file id -> raw size in bytes
    if isinstance(wf.get("specification"), Mapping):
        version_layout = "1.5+"
        tasks = _read_spec(wf, where, problems, file_size)
    elif isinstance(wf.get("tasks"), list) or isinstance(wf.get("jobs"), list):
        version_layout = "1.4-"
        tasks = _read_legacy(wf, where, problems, file_size)
    else:
        raise MemoptError(f"{where}: 'workflow' has neither 'specification' (schema 1.5+) "
                          "nor a 'tasks' list (1.4 and before)")

    by_id: dict[str, _Task] = {}
    for t in tasks:
        if t.id in by_id:
            problems.append(Problem(where, t.item, f"duplicate task id {t.id!r}"))
        else:
            by_id[t.id] = t
    # references by id, then by (legacy) name
    ref: dict[str, str] = {}
    for t in tasks:
        for r in t.ref_names:
            ref.setdefault(r, t.id)
    for t in tasks:
        ref[t.id] = t.id

    # producers of each file
    producer: dict[str, str] = {}
    for t in tasks:
        for f in t.outputs:
            if f in producer and producer[f] != t.id:
                if dup_mode == "error":
                    problems.append(Problem(where, f"file {f!r}",
                                            f"written by two tasks, {producer[f]!r} and {t.id!r} (a datum has one "
                                            "producer; -I duplicate_outputs=first keeps the first)"))
                continue
            producer.setdefault(f, t.id)

    consumers: dict[str, list[str]] = {}
    stage_in: list[str] = []
    for t in tasks:
        outs = set(t.outputs)
        for f in t.inputs:
            if f in outs:
                continue  # read and written by t: an in-place update, modelled as its output
            if f not in producer:
                if inputs_mode == "drop":
                    continue
                if f not in consumers:
                    stage_in.append(f)
            cons = consumers.setdefault(f, [])
            if t.id not in cons:
                cons.append(t.id)

    # every file referenced must have a size
    for f in list(producer) + stage_in:
        if f not in file_size:
            who = producer.get(f) or consumers[f][0]
            problems.append(Problem(where, f"file {f!r}",
                                    f"used by task {who!r} but has no size (not in the files list)"))

    # dependencies: parents and children merged; arcs without a shared file get a size-0 datum
    arcs: list[tuple[str, str]] = []
    seen_arcs: set[tuple[str, str]] = set()
    for t in tasks:
        for p in t.parents:
            pid = ref.get(p)
            if pid is None:
                problems.append(Problem(where, t.item, f"parent {p!r} is not a task (unknown task)"))
            elif (pid, t.id) not in seen_arcs:
                seen_arcs.add((pid, t.id))
                arcs.append((pid, t.id))
        for c in t.children:
            cid = ref.get(c)
            if cid is None:
                problems.append(Problem(where, t.item, f"child {c!r} is not a task (unknown task)"))
            elif (t.id, cid) not in seen_arcs:
                seen_arcs.add((t.id, cid))
                arcs.append((t.id, cid))
    carried = {(producer[f], c) for f, cs in consumers.items() if f in producer for c in cs}

    # each stage-in task is listed just before the first task reading its file,
    # so the listed ("given") order stages files in just in time
    first_reader: dict[str, list[str]] = {}
    for f in stage_in:
        first_reader.setdefault(consumers[f][0], []).append(f)
    out_tasks: list[Task] = []
    for t in tasks:
        for f in first_reader.get(t.id, ()):
            out_tasks.append(Task(f"stage_in:{f}", 0, 0, False, {"stage_in": f}))
        time = to_time(t.runtime, tscale, problems, where, t.item, "runtime") if t.runtime is not None else 0
        out_tasks.append(Task(t.id, time, 0, True, t.meta or None))

    data: list[Datum] = []
    for f in stage_in:
        size = to_size(file_size.get(f, 0), 1, problems, where, f"file {f!r}", "size", divisor=sdiv)
        data.append(Datum(f, f"stage_in:{f}", tuple(consumers.get(f, ())), size))
    for f, p in producer.items():
        size = to_size(file_size.get(f, 0), 1, problems, where, f"file {f!r}", "size", divisor=sdiv)
        data.append(Datum(f, p, tuple(consumers.get(f, ())), size))
    for u, v in arcs:
        if (u, v) not in carried:
            data.append(Datum(f"{u}->{v}", u, (v,), 0))

    name = raw.get("name")
    meta = {"source_format": f"WfCommons WfFormat {raw.get('schemaVersion', '?')} ({version_layout} layout)"}
    if version_layout == "1.5+" and not isinstance(wf.get("execution"), Mapping):
        meta["note"] = "no execution section: every time is 0"
    return Instance(out_tasks, data, name=str(name) if name is not None else None,
                    units={"size": size_unit, "time": time_unit}, meta=meta, where=where,
                    _problems=problems)


def _str_list(value: Any, problems: list[Problem], where: str, item: str, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(Problem(where, item, f"{what} must be a list, got {value!r}"))
        return []
    out = []
    for x in value:
        if isinstance(x, bool) or not isinstance(x, (str, int)):
            problems.append(Problem(where, item, f"{what} must list ids (strings), got {x!r}"))
        else:
            out.append(str(x))
    return out


def _read_spec(wf: Mapping, where: str, problems: list[Problem], file_size: dict[str, Any]) -> list[_Task]:
    """Schema 1.5+: specification (structure, files) + execution (runtimes)."""
    spec = wf["specification"]
    raw_files = spec.get("files") or []
    if not isinstance(raw_files, list):
        problems.append(Problem(where, "workflow.specification.files", "must be a list"))
        raw_files = []
    for k, rf in enumerate(raw_files):
        if not isinstance(rf, Mapping) or rf.get("id") is None:
            problems.append(Problem(where, f"workflow.specification.files[{k}]",
                                    f"must be a mapping with an 'id', got {rf!r}"))
            continue
        fid = str(rf["id"])
        if "sizeInBytes" not in rf:
            problems.append(Problem(where, f"file {fid!r}", "missing 'sizeInBytes'"))
            continue
        file_size[fid] = rf["sizeInBytes"]
    runtimes: dict[str, Any] | None = None
    ex = wf.get("execution")
    if isinstance(ex, Mapping):
        runtimes = {}
        ex_tasks = ex.get("tasks") or []
        if not isinstance(ex_tasks, list):
            problems.append(Problem(where, "workflow.execution.tasks", f"must be a list, got {ex_tasks!r}"))
            ex_tasks = []
        for k, et in enumerate(ex_tasks):
            if isinstance(et, Mapping) and et.get("id") is not None:
                runtimes[str(et["id"])] = et.get("runtimeInSeconds")
            else:
                problems.append(Problem(where, f"workflow.execution.tasks[{k}]",
                                        f"must be a mapping with an 'id', got {et!r}"))
    raw_tasks = spec.get("tasks")
    if not isinstance(raw_tasks, list):
        problems.append(Problem(where, "workflow.specification.tasks", "must be a list"))
        raw_tasks = []
    out: list[_Task] = []
    for k, rt in enumerate(raw_tasks):
        if not isinstance(rt, Mapping) or rt.get("id") is None:
            problems.append(Problem(where, f"workflow.specification.tasks[{k}]",
                                    f"must be a mapping with an 'id', got {rt!r}"))
            continue
        t = _Task(str(rt["id"]), f"task {str(rt['id'])!r}")
        t.parents = _str_list(rt.get("parents"), problems, where, t.item, "parents")
        t.children = _str_list(rt.get("children"), problems, where, t.item, "children")
        t.inputs = _str_list(rt.get("inputFiles"), problems, where, t.item, "inputFiles")
        t.outputs = _str_list(rt.get("outputFiles"), problems, where, t.item, "outputFiles")
        if rt.get("name") is not None:
            t.meta["name"] = rt["name"]
        if runtimes is not None:
            t.runtime = runtimes.get(t.id, 0)
        out.append(t)
    return out


def _read_legacy(wf: Mapping, where: str, problems: list[Problem], file_size: dict[str, Any]) -> list[_Task]:
    """Schema 1.4 and before: files inside each task, references by task name."""
    raw_tasks = wf.get("tasks") if isinstance(wf.get("tasks"), list) else wf.get("jobs")
    names = [rt.get("name") for rt in raw_tasks if isinstance(rt, Mapping)]
    unique_names = all(isinstance(x, str) for x in names) and len(set(names)) == len(names)
    out: list[_Task] = []
    for k, rt in enumerate(raw_tasks):
        if not isinstance(rt, Mapping) or (rt.get("name") is None and rt.get("id") is None):
            problems.append(Problem(where, f"workflow.tasks[{k}]", f"must be a mapping with a 'name', got {rt!r}"))
            continue
        tid = str(rt["name"]) if unique_names or rt.get("id") is None else str(rt["id"])
        t = _Task(tid, f"task {tid!r}")
        t.ref_names = [str(x) for x in (rt.get("name"), rt.get("id")) if x is not None]
        t.parents = _str_list(rt.get("parents"), problems, where, t.item, "parents")
        t.children = _str_list(rt.get("children"), problems, where, t.item, "children")
        t.runtime = rt.get("runtimeInSeconds", rt.get("runtime", 0))
        for key in ("category", "type"):
            if rt.get(key) is not None:
                t.meta[key] = rt[key]
        files = rt.get("files") or []
        if not isinstance(files, list):
            problems.append(Problem(where, t.item, f"files must be a list, got {files!r}"))
            files = []
        for j, rf in enumerate(files):
            if not isinstance(rf, Mapping) or rf.get("name") is None:
                problems.append(Problem(where, t.item, f"files[{j}] must be a mapping with a 'name', got {rf!r}"))
                continue
            # the file id of WfCommons' migration tool: path + name
            fid = str(rf.get("path", "")) + str(rf["name"])
            link = str(rf.get("link", "")).lower()
            if link not in ("input", "output"):
                problems.append(Problem(where, t.item,
                                        f"file {fid!r}: link must be 'input' or 'output', got {rf.get('link')!r}"))
                continue
            size = rf.get("sizeInBytes", rf.get("size"))
            if size is None:
                problems.append(Problem(where, f"file {fid!r}", f"missing 'sizeInBytes' (in task {tid!r})"))
            elif fid not in file_size:
                file_size[fid] = size
            (t.inputs if link == "input" else t.outputs).append(fid)
        out.append(t)
    return out


__all__ = ["instance_from_wfformat"]
