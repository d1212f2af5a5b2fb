"""Importer for networkx node-link JSON (Checkmate, Moccasin, plain networkx).

The computation graphs published with Checkmate (Jain et al., MLSys 2020) and
Moccasin (Bartan et al., ICML 2023) are networkx ``DiGraph`` objects written
with ``nx.node_link_data``. Each node is an operation whose output tensor is
read by the targets of its out-links, so each node becomes a tensor-form task
(SPEC §1): one output datum of the node's size, read by its link targets.

Three variants are recognised (``variant=`` forces one):

``checkmate``
    Nodes ``{id, name, cost_cpu, cost_ram, backward}``; links
    ``{source, target}``. ``cost_cpu`` is the time, ``cost_ram`` the bytes of
    the output tensor; ``backward`` is kept in ``Task.meta``.
``layered``
    The random layered graphs of Gagrani et al. (2022) as published by
    Moccasin: nodes ``{name, duration, out_cost, param_cost}`` keyed by
    ``name``; links ``{"0": source, "1": target}``; the graph-level ``order``
    is a topological order.
``networkx``
    Plain ``nx.node_link_data`` output: nodes keyed by ``id`` with ``time``
    and ``size`` attributes (renamed with ``time_field=``/``size_field=``),
    links under ``links`` or ``edges``, ends under ``source``/``target``.

Choices (all documented in ``docs/formats.md``):

- task ids are the node ``name`` when every node has one and they are
  unique, else the node key (``id``);
- tasks are listed in the graph's ``order`` when present, else in the node
  list's order, so the "given" baseline order is that order;
- a ``param_cost`` p > 0 (memory of the operation's parameters) is, by
  default, added to the task's workspace: the weights occupy fast memory
  while the operation runs (``param_cost="workspace"``).
  ``param_cost="datum"`` instead adds a zero-time task ``<id>.params``
  producing a datum of size p read by the operation (weights loaded from
  slow storage just in time); ``param_cost="ignore"`` drops it, as Moccasin's
  own experiments do. Every graph published with Moccasin has p = 0;
- optional node fields ``workspace`` (int) and ``recompute`` (bool) are read
  when present; every other field is kept in ``Task.meta``;
- non-integral times are rounded to the nearest integer and non-integral
  sizes rounded up, after ``time_scale``/``size_scale``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memopt.core.errors import MemoptError, Problem
from memopt.core.instance import Datum, Instance, Task
from memopt.importers._common import check_options, choice, number, to_size, to_time

VARIANTS = {
    # variant: (time field, size field)
    "checkmate": ("cost_cpu", "cost_ram"),
    "layered": ("duration", "out_cost"),
    "networkx": ("time", "size"),
}
OPTIONS = ("variant", "time_field", "size_field", "key_field", "source_key", "target_key",
           "param_cost", "default_time", "default_size", "time_scale", "size_scale")


def _ident(value: Any) -> str | None:
    """A node key as our string id (3.0 -> "3"); None for unusable keys."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def detect_variant(nodes: list) -> str:
    """``checkmate`` / ``layered`` / ``networkx`` from the node fields."""
    keys: set[str] = set()
    for nd in nodes[:50]:
        if isinstance(nd, Mapping):
            keys.update(nd)
    if "cost_ram" in keys or "cost_cpu" in keys:
        return "checkmate"
    if "out_cost" in keys or "duration" in keys:
        return "layered"
    return "networkx"


def instance_from_nodelink(raw: Any, where: str = "<node-link>", **options: Any) -> Instance:
    """Build an :class:`Instance` from networkx node-link data (see the module doc).

    Options: ``variant`` (checkmate | layered | networkx, default: detected),
    ``time_field``, ``size_field``, ``key_field`` (node key: ``id``, else
    ``name``), ``source_key``/``target_key`` (link ends), ``param_cost``
    (workspace | datum | ignore), ``default_time``/``default_size`` (for nodes
    missing the field; default: missing is an error), ``time_scale``,
    ``size_scale`` (multipliers applied before rounding).

    Raises :class:`~memopt.core.errors.InstanceError` listing every problem (a node
    missing a cost field, a link to an unknown node, a cycle...). O(n + e).
    """
    check_options(where, options, OPTIONS, "node-link")
    if not isinstance(raw, Mapping):
        raise MemoptError(f"{where}: node-link data must be a mapping with 'nodes' and 'links'")
    nodes = raw.get("nodes")
    if not isinstance(nodes, list):
        raise MemoptError(f"{where}: 'nodes' must be a list of node mappings")
    links = raw.get("links") if raw.get("links") is not None else raw.get("edges")
    if links is None:
        links = []
    if not isinstance(links, list):
        raise MemoptError(f"{where}: 'links' must be a list of link mappings")
    if raw.get("directed") is False:
        raise MemoptError(f"{where}: the graph is undirected ('directed': false); a task graph must be directed")

    variant = options.get("variant") or detect_variant(nodes)
    choice(where, "variant", variant, VARIANTS)
    time_field = options.get("time_field") or VARIANTS[variant][0]
    size_field = options.get("size_field") or VARIANTS[variant][1]
    param_mode = choice(where, "param_cost", options.get("param_cost", "workspace"), ("workspace", "datum", "ignore"))
    time_scale = _positive(where, "time_scale", options.get("time_scale", 1))
    size_scale = _positive(where, "size_scale", options.get("size_scale", 1))
    default_time = options.get("default_time")
    default_size = options.get("default_size")

    problems: list[Problem] = []
    good_nodes = [nd for nd in nodes if isinstance(nd, Mapping)]
    for k, nd in enumerate(nodes):
        if not isinstance(nd, Mapping):
            problems.append(Problem(where, f"nodes[{k}]", f"must be a mapping, got {nd!r}"))
    key_field = options.get("key_field")
    if key_field is None:
        if good_nodes and all("id" in nd for nd in good_nodes):
            key_field = "id"
        elif good_nodes and all("name" in nd for nd in good_nodes):
            key_field = "name"  # the layered graphs are keyed by name
        else:
            key_field = "id"

    # node keys, in list order
    keys: list[str] = []
    key_index: dict[str, int] = {}
    for k, nd in enumerate(good_nodes):
        key = _ident(nd.get(key_field))
        if key is None:
            problems.append(Problem(where, f"nodes[{k}]",
                                    f"has no usable {key_field!r} (the node key), got {nd.get(key_field)!r}"))
            key = f"<nodes[{k}]>"
        if key in key_index:
            problems.append(Problem(where, f"node {key!r}", f"duplicate node {key_field!r}"))
        key_index[key] = len(keys)
        keys.append(key)

    # task ids: names when unique, else keys
    names = [_ident(nd.get("name")) for nd in good_nodes]
    use_names = key_field != "name" and all(x is not None for x in names) and len(set(names)) == len(names)
    ids = [str(x) for x in names] if use_names else list(keys)

    # links: source -> target means target reads source's output
    src_key, dst_key = options.get("source_key"), options.get("target_key")
    consumers: list[list[int]] = [[] for _ in keys]
    for k, ln in enumerate(links):
        if not isinstance(ln, Mapping):
            problems.append(Problem(where, f"links[{k}]", f"must be a mapping, got {ln!r}"))
            continue
        sk, tk = src_key, dst_key
        if sk is None or tk is None:
            if "source" in ln and "target" in ln:
                sk, tk = sk or "source", tk or "target"
            elif "0" in ln and "1" in ln:
                sk, tk = sk or "0", tk or "1"
            else:
                problems.append(Problem(where, f"links[{k}]",
                                        f"has no 'source'/'target' (or '0'/'1') ends: {dict(ln)!r}"))
                continue
        ends = []
        for end_key, what in ((sk, "source"), (tk, "target")):
            val = _ident(ln.get(end_key))
            if val is None or val not in key_index:
                problems.append(Problem(where, f"links[{k}]",
                                        f"{what} {ln.get(end_key)!r} is not a node (unknown node {key_field!r})"))
                ends.append(None)
            else:
                ends.append(key_index[val])
        u, v = ends
        if u is not None and v is not None and v not in consumers[u]:
            consumers[u].append(v)

    # the listed order: graph-level 'order' (the layered graphs), else node order
    graph = raw.get("graph")
    if isinstance(graph, list):  # very old networkx wrote [[key, value], ...]
        try:
            graph = dict(graph)
        except (TypeError, ValueError):
            graph = {}
    if not isinstance(graph, Mapping):
        graph = {}
    listed = list(range(len(keys)))
    order = graph.get("order", raw.get("order"))
    if order is not None:
        listed = _order(order, key_index, problems, where)

    tasks: list[Task] = []
    data: list[Datum] = []
    skip = {key_field, "name", time_field, size_field, "param_cost", "workspace", "recompute"}
    for i in listed:
        nd = good_nodes[i]
        tid = ids[i]
        item = f"node {tid!r}"
        t_raw = nd.get(time_field, default_time)
        s_raw = nd.get(size_field, default_size)
        if t_raw is None:
            problems.append(Problem(where, item, f"missing field {time_field!r} (the time of the operation)"))
        if s_raw is None:
            problems.append(Problem(where, item, f"missing field {size_field!r} (the size of its output)"))
        time = to_time(t_raw, time_scale, problems, where, item, time_field) if t_raw is not None else 0
        size = to_size(s_raw, size_scale, problems, where, item, size_field) if s_raw is not None else 0
        ws = 0
        if nd.get("workspace") is not None:
            ws = to_size(nd.get("workspace"), 1, problems, where, item, "workspace")
        rc = nd.get("recompute", True)
        if not isinstance(rc, bool):
            problems.append(Problem(where, item, f"recompute must be true or false, got {rc!r}"))
            rc = True
        meta = {k: v for k, v in nd.items() if k not in skip}
        p = 0
        if nd.get("param_cost") is not None:
            p = to_size(nd.get("param_cost"), 1, problems, where, item, "param_cost")
        if p > 0:
            meta["param_cost"] = p
            if param_mode == "workspace":
                ws += p
            elif param_mode == "datum":
                pid = f"{tid}.params"
                tasks.append(Task(pid, 0, 0, True, {"params_of": tid}))
                data.append(Datum(pid, pid, (tid,), p))
        tasks.append(Task(tid, time, ws, rc, meta or None))
        data.append(Datum(tid, tid, tuple(ids[c] for c in consumers[i]), size))

    name = graph.get("name")
    units = {"size": "B"} if variant == "checkmate" else None
    return Instance(tasks, data, name=str(name) if name is not None else None, units=units,
                    meta={"source_format": f"networkx node-link ({variant})"}, where=where,
                    _problems=problems)


def _positive(where: str, name: str, value: Any) -> float:
    v = number(value)
    if v is None or v <= 0:
        raise MemoptError(f"{where}: option {name} must be a positive number, got {value!r}")
    return v


def _order(order: Any, key_index: dict[str, int], problems: list[Problem], where: str) -> list[int]:
    """Node indices in the graph-level ``order``; must list every node once."""
    n = len(key_index)
    if not isinstance(order, list):
        problems.append(Problem(where, "graph.order", f"must be a list of node keys, got {type(order).__name__}"))
        return list(range(n))
    out: list[int] = []
    seen: set[int] = set()
    for x in order:
        key = _ident(x)
        i = key_index.get(key) if key is not None else None
        if i is None:
            problems.append(Problem(where, "graph.order", f"{x!r} is not a node (unknown node key)"))
            continue
        if i in seen:
            problems.append(Problem(where, "graph.order", f"node {x!r} is listed twice"))
            continue
        seen.add(i)
        out.append(i)
    missing = [k for k, i in key_index.items() if i not in seen]
    if missing:
        shown = ", ".join(map(repr, missing[:10])) + (" ..." if len(missing) > 10 else "")
        problems.append(Problem(where, "graph.order", f"must list every node once; missing {shown}"))
        out += sorted(key_index[k] for k in missing)
    return out


__all__ = ["instance_from_nodelink", "detect_variant", "VARIANTS"]
