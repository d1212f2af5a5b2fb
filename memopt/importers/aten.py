"""ATen-level tracing in one pass: a function run on meta tensors becomes an NNGraph and a GraphModule.

:class:`AtenTracer` is a ``TorchDispatchMode``: it sits below autograd, so
it sees every ATen operation a function runs — the forward pass, and the
backward pass the autograd engine runs for ``torch.autograd.grad`` — as
``make_fx`` does. For each operation it records, at once,

- an :class:`~memopt.importers.nn.Op`: the tensors it reads, the tensors it
  writes with their bytes of storage, whether an output shares the storage of
  an earlier tensor (an alias: a view, ``detach``, an in-place result), its
  FLOPs (``torch.utils.flop_counter``'s formulas), whether it draws random
  numbers (ATen's ``nondeterministic_seeded`` tag) and whether it writes a
  tensor of the graph in place;
- an ``fx`` node calling the same operation on the nodes of its arguments,
  named as ``make_fx`` names them (``mm``, ``mm_1``, …; placeholders
  ``params_1``, ``inputs_1``…). The ``GraphModule`` replays the traced program
  (same signature as the traced function: ``gm(*args)``).

``make_fx`` does the same in two passes (tracing with fake tensors, then our
recorder ran the graph again) and builds a fake-tensor snapshot of every
value; one pass without the snapshots is 5-8 times faster on transformer
training graphs (``docs/importers-nn.md``).

:meth:`AtenTracer.leaf` calls a function as *one* operation (the optimizer
update of a parameter): its inner operations run but are not recorded; the
node calls the function itself.

Complexity: one meta execution, O(operations + Σ arguments).
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.fx.graph import _Namespace, _PyTreeCodeGen, _PyTreeInfo
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from memopt.core.errors import MemoptError
from memopt.importers.module_path import current_path
from memopt.importers.nn import NNGraph, Op, Tensor

_SEEDED = torch.Tag.nondeterministic_seeded
_LIFT_FRESH = torch.ops.aten.lift_fresh.default
_LIFT_FRESH_COPY = torch.ops.aten.lift_fresh_copy.default


def _sid(t) -> int:
    return t.untyped_storage()._cdata


def _nbytes(t) -> int:
    return t.numel() * t.element_size()


def _snake(name: str) -> str:
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and name[i - 1].islower():
            out.append("_")
        out.append(c.lower())
    return "".join(out)


class AtenTracer(TorchDispatchMode):
    """Records every ATen operation run under it (see the module docstring).

    Placeholders are declared first (:meth:`placeholder`), then the function
    runs under the mode, then :meth:`finish` names the outputs. Every storage
    seen is kept alive to the end, so storage identities are never reused.
    """

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        # the traced program, as records turned into fx nodes on demand (:meth:`graph_module`): fx's
        # node creation costs as much as the meta run; the names are fx's own (same namespace rules)
        self.records: list[_Record] = []
        self.names = _Namespace()
        # id(tensor) -> (weak reference, fx node, tensor id) of its current value. Weak: a tensor held
        # here would change what autograd does (it detaches a gradient it does not own alone); storages
        # are kept instead. A dead reference, or one to another object, is a miss
        self.value: dict[int, tuple[Any, Any, str]] = {}
        self.funcs: dict[Any, tuple[str, str, bool, tuple[tuple[int, str], ...]]] = {}
        self.keep: list[Any] = []         # every storage seen: storage addresses are never reused
        self.owner: dict[int, str] = {}   # storage -> tensor (or parameter) that allocated it
        self.params: dict[str, int] = {}
        self.ops: list[Op] = []
        self.mutated: set[str] = set()
        self.constants: dict[str, Any] = {}
        self.leaf_depth = 0
        self.meta = MetaCache()

    # ------------------------------------------------------------ inputs
    def placeholder(self, name: str, value: Any, kind: str, label: str | None = None, op: str = "") -> None:
        """Declare an argument leaf. ``kind``: ``input`` (a graph input: a task of time 0),
        ``param`` (an external tensor, not data: ``param:<label>``), ``host`` (an external tensor
        that lives in host memory: ``host:<label>``) or ``state`` (a persistent tensor counted as
        data: a source task ``param:<label>``, whose ``op`` is ``op``)."""
        node = self._add("placeholder", name, (), {}, _snake(name))
        if not isinstance(value, torch.Tensor):
            return
        self.keep.append(value.untyped_storage())
        if kind == "input":
            tid = node.name
            self.owner[_sid(value)] = tid
            self.ops.append(Op(tid, [], [Tensor(tid, _nbytes(value))], op="input", kind="input", recompute=False))
        elif kind in ("param", "host"):
            tid = f"{kind}:{label}"
            self.params[tid] = _nbytes(value)
            self.owner.setdefault(_sid(value), tid)
        elif kind == "state":
            tid = f"param:{label}"
            self.owner.setdefault(_sid(value), tid)
            self.ops.append(Op(tid, [], [Tensor(tid, _nbytes(value), storage=value.untyped_storage().nbytes())],
                               op=op, kind="state", recompute=False))
        else:  # pragma: no cover - callers pass one of the three
            raise MemoptError(f"{self.name}: unknown placeholder kind {kind!r}")
        self.value[id(value)] = (weakref.ref(value), node, tid)

    def _arg(self, t) -> tuple[Any, str]:
        e = self.value.get(id(t))
        if e is not None and e[0]() is t:
            return e[1], e[2]
        # a tensor made outside the traced program: a constant of the GraphModule
        attr = f"_tensor_constant{len(self.constants)}"
        self.constants[attr] = t
        pid = f"param:{attr}"
        self.params[pid] = _nbytes(t)
        self.owner.setdefault(_sid(t), pid)
        node = self._add("get_attr", attr, (), {}, _snake(attr))
        self.value[id(t)] = (weakref.ref(t), node, pid)
        return node, pid

    def _add(self, kind: str, target: Any, args: Any, kwargs: Any, candidate: str) -> _Record:
        r = _Record(len(self.records), kind, target, args, kwargs, candidate,
                    self.names.create_name(candidate, None))
        self.records.append(r)
        return r

    def _func(self, func) -> tuple[str, str, bool, tuple[tuple[int, str], ...], bool]:
        """(node name, op name, random, written arguments (position, name), pure) of an ATen operator,
        cached; *pure*: it writes no argument and returns no alias (its outputs are new storages)."""
        info = self.funcs.get(func)
        if info is None:
            s = str(func)
            schema = getattr(func, "_schema", None)
            written = tuple((i, a.name) for i, a in enumerate(schema.arguments if schema is not None else ())
                            if a.alias_info is not None and a.alias_info.is_write)
            pure = schema is not None and not written and all(r.alias_info is None for r in schema.returns)
            info = self.funcs[func] = (_snake(func._overloadpacket.__name__),
                                       s.removesuffix(".default"),
                                       _SEEDED in func.tags, written, pure)
        return info

    # ------------------------------------------------------------ recording
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.leaf_depth:
            return func(*args, **kwargs)
        if func is _LIFT_FRESH:  # as make_fx: a fresh constant is copied, never written in place
            func = _LIFT_FRESH_COPY
        base, op, random, writes, pure = self._func(func)
        written = self._written(writes, args, kwargs)
        out = self.meta.call(func, args, kwargs, self.owner) if pure else func(*args, **kwargs)
        f = flop_registry.get(func._overloadpacket)
        flops = int(f(*args, **kwargs, out_val=out)) if f is not None else 0
        self._record(func, base, args, kwargs, out, op=op, flops=flops, random=random, written=written)
        return out

    def _written(self, writes, args, kwargs) -> set[str]:
        """Tensors of the graph this call writes in place (its schema's ``Tensor(a!)`` arguments)."""
        out: set[str] = set()
        for i, aname in writes:
            v = args[i] if i < len(args) else kwargs.get(aname)
            for t in (v if isinstance(v, (list, tuple)) else [v]):
                if isinstance(t, torch.Tensor):
                    w = self.owner.get(_sid(t))
                    if w is not None and not w.startswith(("param:", "host:")):
                        out.add(w)
        return out

    def _record(self, target, base: str, args, kwargs, out, *, op: str, flops: int, random: bool,
                written: set[str], time_ns: int | None = None) -> None:
        inputs: list[str] = []
        seen: set[str] = set()

        def arg(t):
            n, x = self._arg(t)
            if x not in seen:
                seen.add(x)
                inputs.append(x)
            return n

        nargs, nkwargs = _map_tensors(tuple(args), arg), _map_tensors(dict(kwargs), arg)
        node = self._add("call_function", target, nargs, nkwargs, base)
        multi = isinstance(out, (list, tuple))
        tensors: list[Tensor] = []
        for i, x in enumerate(out if multi else [out]):
            if not isinstance(x, torch.Tensor):
                continue
            tid = node.name if not tensors else f"{node.name}.{len(tensors)}"
            s = _sid(x)
            alias = self.owner.get(s)
            if alias is None:
                self.owner[s] = tid
                self.keep.append(x.untyped_storage())
                tensors.append(Tensor(tid, _nbytes(x), storage=x.untyped_storage().nbytes()))
            else:
                tensors.append(Tensor(tid, _nbytes(x), alias_of=alias))
            self.value[id(x)] = (weakref.ref(x), self._add("call_function", operator.getitem, (node, i), {},
                                                           "getitem") if multi else node, tid)
        if not tensors:
            return  # a size, a shape, a Python number, an in-place call returning nothing: no task
        self.ops.append(Op(node.name, inputs, tensors, op=op, flops=flops, recompute=not (random or written),
                           inplace=bool(written), time_ns=time_ns, group=current_path()))
        self.mutated |= written

    def leaf(self, fn: Callable[..., Any], *args: Any, name: str, op: str, flops: int = 0,
             time_ns: int | None = None, fake: Callable[..., Any] | None = None) -> Any:
        """``fn(*args)`` recorded as one operation named ``name`` (its own operations are not recorded).

        ``fake``: a function giving outputs of the same shapes, dtypes and storage sharing as ``fn``'s,
        run instead of ``fn`` while tracing (the node still calls ``fn``) — on meta tensors, a chain of
        decomposed meta kernels costs milliseconds where ``empty_like`` costs microseconds.
        """
        self.leaf_depth += 1
        try:
            out = (fake or fn)(*args)
        finally:
            self.leaf_depth -= 1
        self._record(fn, name, args, {}, out, op=op, flops=flops, random=False, written=set(), time_ns=time_ns)
        return out

    # ------------------------------------------------------------ output
    def finish(self, argnames: Sequence[str], args: Sequence[Any], outputs: Sequence[Any],
               results: Sequence[Any]) -> tuple[NNGraph, Traced]:
        """The NNGraph and its :class:`Traced` program once the function returned its ``outputs`` and
        ``results`` (lists of tensors; the GraphModule returns their concatenation)."""
        flat = list(outputs) + list(results)
        self._add("output", "output", ([self._arg(x)[0] if isinstance(x, torch.Tensor) else x for x in flat],), {},
                  "output")
        ids = [self._arg(x)[1] for x in flat if isinstance(x, torch.Tensor)]
        cut = len(ids) - sum(isinstance(x, torch.Tensor) for x in results)
        for op in self.ops:  # a storage written in place holds a value its producer alone cannot give again
            if any(t.id in self.mutated for t in op.outputs):
                op.recompute = False
        g = NNGraph(self.name, self.ops, ids[:cut], self.params, {}, results=ids[cut:])
        _, in_spec = pytree.tree_flatten(tuple(args))
        _, out_spec = pytree.tree_flatten(flat)
        traced = Traced(self.records, dict(self.constants), _PyTreeInfo(list(argnames), in_spec, out_spec), tuple(args))
        g.traced = traced
        return g, traced


class MetaCache:
    """The outputs of pure ATen operators on meta tensors, by the layout of their arguments.

    A transformer repeats the same operators on the same shapes in every
    layer; on the meta device many of them run Python reference kernels
    (``torch._refs``: shape and stride propagation in Python, a
    tenth of a millisecond or more each). A *pure* operator (no argument
    written, no output aliasing an argument: its outputs are new storages) has
    outputs whose shapes, strides and dtypes depend only on its arguments'
    shapes, strides, dtypes and non-tensor values: the second call with the
    same key allocates them with ``empty_strided`` instead. A key is cached
    only when every output of its first call is a new storage of exactly
    ``empty_strided``'s size at offset 0 (else the kernel always runs).
    """

    def __init__(self):
        self.table: dict[Any, Any] = {}
        self.hits = 0

    def call(self, func, args, kwargs, owner: dict[int, str]):
        try:
            key = (func, _freeze(args), _freeze(kwargs))
            spec = self.table.get(key)
        except TypeError:  # an unhashable argument
            return func(*args, **kwargs)
        if spec is not None:
            if spec is not False:
                self.hits += 1
                return _build(spec)
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        self.table[key] = _spec(out, owner)
        return out


def _freeze(x: Any) -> Any:
    """A hashable key of an argument: tensors by layout, scalars with their type (1, 1.0, True differ)."""
    if isinstance(x, torch.Tensor):
        return ("T", tuple(x.shape), x.stride(), x.dtype, x.device, x.storage_offset())
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, *(_freeze(y) for y in x))
    if isinstance(x, dict):
        return ("D", *((k, _freeze(v)) for k, v in x.items()))
    hash(x)
    return (type(x), x)


def _spec(out: Any, owner: dict[int, str]) -> Any:
    """How to rebuild ``out`` with ``empty_strided`` (``False``: it cannot be)."""
    outs = out if isinstance(out, (list, tuple)) else [out]
    specs, seen = [], set()
    for t in outs:
        if t is None:
            specs.append(None)
            continue
        if not isinstance(t, torch.Tensor) or t.storage_offset() != 0 or _sid(t) in owner or _sid(t) in seen:
            return False
        seen.add(_sid(t))
        need = 0 if t.numel() == 0 else (1 + sum((n - 1) * st for n, st in zip(t.shape, t.stride()))) * t.element_size()
        if t.untyped_storage().nbytes() != need:
            return False
        specs.append((tuple(t.shape), t.stride(), t.dtype))
    return (type(out), specs) if isinstance(out, (list, tuple)) else ("one", specs)


def _build(spec: Any) -> Any:
    kind, specs = spec
    outs = [None if s is None else torch.empty_strided(s[0], s[1], dtype=s[2], device="meta") for s in specs]
    return outs[0] if kind == "one" else kind(outs)


class _Record:
    """One node of the traced program: fx's (op, target, args, kwargs) with records for nodes."""

    __slots__ = ("args", "candidate", "index", "kwargs", "name", "op", "target")

    def __init__(self, index, op, target, args, kwargs, candidate, name):
        self.index, self.op, self.target, self.args, self.kwargs = index, op, target, args, kwargs
        self.candidate, self.name = candidate, name


class Traced(Sequence):
    """``(gm, args)``: the traced program as a ``GraphModule`` and the arguments it was traced with.

    The ``GraphModule`` is built on first access (``traced[0]``, or ``gm, args = traced``); its nodes
    have the names of the tasks (``gm(*args)`` replays the traced program).
    """

    def __init__(self, records: list[_Record], constants: dict[str, Any], info: _PyTreeInfo, args: tuple):
        self._records, self._constants, self._info, self.args = records, constants, info, args
        self._gm = None

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tuple(self)[i]
        if i in (1, -1):
            return self.args
        if i not in (0, -2):
            raise IndexError(i)
        if self._gm is None:
            self._gm = self._build()
        return self._gm

    def _build(self):
        graph = torch.fx.Graph()
        nodes: list[Any] = []

        def node(x):
            return _map_records(x, lambda r: nodes[r.index])

        for r in self._records:
            if r.op == "placeholder":
                n = graph.placeholder(r.target)
            elif r.op == "get_attr":
                n = graph.get_attr(r.target)
            elif r.op == "output":
                n = graph.output(node(r.args[0]))
            else:
                n = graph.create_node(r.op, r.target, node(r.args), node(r.kwargs), name=r.candidate)
            if n.name != r.name:  # pragma: no cover - fx's namespace is deterministic
                raise MemoptError(f"traced program: node {r.name!r} rebuilt as {n.name!r}")
            nodes.append(n)
        graph._codegen = _PyTreeCodeGen(self._info)
        root = torch.nn.Module()
        for attr, t in self._constants.items():
            setattr(root, attr, t)
        return torch.fx.GraphModule(root, graph)


def _map_tensors(x: Any, f: Callable[[Any], Any]) -> Any:
    """``x`` (nested lists, tuples, dicts) with every tensor ``t`` replaced by ``f(t)``."""
    if isinstance(x, torch.Tensor):
        return f(x)
    if isinstance(x, (list, tuple)):
        ys = [_map_tensors(y, f) for y in x]
        if all(a is b for a, b in zip(ys, x)):
            return x
        return ys if isinstance(x, list) else tuple(ys)
    if isinstance(x, dict):
        return {k: _map_tensors(v, f) for k, v in x.items()}
    return x


def _map_records(x: Any, f: Callable[[Any], Any]) -> Any:
    if isinstance(x, _Record):
        return f(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_map_records(y, f) for y in x) if type(x) in (list, tuple) else x
    if isinstance(x, dict):
        return {k: _map_records(v, f) for k, v in x.items()}
    return x


def trace_aten(fn: Callable[..., Any], args: Sequence[Any], argnames: Sequence[str],
               kinds: Sequence[Sequence[tuple[str, str | None, str]]], name: str):
    """Run ``fn(tracer, *args)`` under an :class:`AtenTracer`; return ``(NNGraph, Traced)``.

    ``kinds[i]`` gives, for each leaf of ``args[i]`` (``pytree`` order), its
    ``(kind, label, op)`` (see :meth:`AtenTracer.placeholder`). ``fn`` returns
    two lists of tensors: the graph outputs and the results (NNGraph.results).
    """
    tracer = AtenTracer(name)
    for argname, value, leaf_kinds in zip(argnames, args, kinds):
        leaves = pytree.tree_leaves(value)
        if len(leaves) != len(leaf_kinds):  # pragma: no cover - the callers build kinds from the same args
            raise MemoptError(f"{name}: {argname}: {len(leaves)} leaves, {len(leaf_kinds)} kinds")
        for k, (leaf, (kind, label, op)) in enumerate(zip(leaves, leaf_kinds)):
            tracer.placeholder(f"{argname}_{k + 1}", leaf, kind, label, op)
    with tracer:
        outputs, results = fn(tracer, *args)
    return tracer.finish(argnames, args, outputs, results)


__all__ = ["AtenTracer", "MetaCache", "Traced", "trace_aten"]
