"""PyTorch importer: an ``nn.Module`` traced on the meta device becomes an instance.

Needs the ``torch`` extra (``pip install 'memopt[torch]'``). Nothing is
computed on real data and no weight is allocated: the module is copied with
every parameter and buffer on PyTorch's ``meta`` device, so a GPT-2-size
model traces in seconds on any machine.

- **Inference** (:func:`trace_inference`): :func:`torch.fx.symbolic_trace`
  (standard ``torch.nn`` layers are leaves: one task per layer call) in eval
  mode, then each node is run once more on meta tensors (:class:`_Recorder`).
  ``level="aten"`` traces down to ATen ops instead.
- **Training** (:func:`trace_training`): one step — forward, loss,
  ``torch.autograd.grad`` of the loss with respect to every trainable
  parameter, and with ``optimizer`` the update of every parameter
  (:mod:`memopt.importers.optimizer`) — gives the *joint* graph in ATen ops.

ATen-level graphs are recorded in one meta execution by
:func:`memopt.importers.aten.trace_aten` (the GraphModule, as ``make_fx``
would give it, is built on demand). Either way every tensor gets its size
(bytes of its storage), whether it aliases an earlier tensor (same storage:
a view, a reshape, ``detach``, an in-place result), the node's FLOPs
(PyTorch's flop counter formulas) and whether it draws random numbers
(ATen's ``nondeterministic_seeded`` tag: such a task may not be recomputed).
The result is an :class:`~memopt.importers.nn.NNGraph`, turned into an
instance by :func:`~memopt.importers.nn.to_instance` (aliases take no memory;
time from the roofline cost model; ``docs/importers-nn.md``).

The tasks are listed in the traced order, which is the order PyTorch runs
them in: ``inst.topological_order`` is PyTorch's own schedule.

Complexity: one meta execution of the traced graph, O(nodes). (Over 500
lines: the fx-level recorder and the public entry points share the meta
copies and helpers; the ATen tracer lives in :mod:`memopt.importers.aten`.)
"""

from __future__ import annotations

import copy
import operator
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from memopt.core.errors import MemoptError, SolverUnavailableError
from memopt.core.instance import Instance
from memopt.importers.module_path import module_paths
from memopt.importers.nn import NNGraph, Op, Tensor, make_cost, to_instance

TORCH_VERSION = "2.13.0"


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise SolverUnavailableError(
            f"the PyTorch importer needs torch: pip install 'memopt[torch]' (torch=={TORCH_VERSION})") from None
    return torch


# ------------------------------------------------------------------ meta copies
def meta_copy(module):
    """A deep copy of ``module`` whose parameters and buffers live on the meta device.

    The copy shares nothing with ``module`` (whose mode and weights are left
    untouched) and allocates no memory for weights: ``copy.deepcopy`` is given
    a memo that maps each parameter and buffer to an empty meta tensor.
    """
    torch = _torch()
    memo: dict[int, Any] = {}
    for p in module.parameters():
        if id(p) not in memo:
            memo[id(p)] = torch.nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in module.buffers():
        if id(b) not in memo:
            memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(module, memo)


def to_meta(x: Any) -> Any:
    """Tensors (in nested lists, tuples, dicts) replaced by meta tensors of the same shape and dtype."""
    torch = _torch()
    if isinstance(x, torch.Tensor):
        return torch.empty_like(x, device="meta").requires_grad_(False)
    if isinstance(x, (list, tuple)):
        return type(x)(to_meta(y) for y in x)
    if isinstance(x, dict):
        return {k: to_meta(v) for k, v in x.items()}
    return x


def _as_tuple(x: Any) -> tuple:
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


# ------------------------------------------------------------------- tracing
def trace_inference(module, example_inputs: Any, *, level: str = "fx", name: str | None = None) -> NNGraph:
    """The inference graph of ``module`` on ``example_inputs`` (traced in eval mode, on meta).

    ``level="fx"``: :func:`torch.fx.symbolic_trace`, one task per call of a
    ``torch.nn`` layer, function or tensor method. ``level="aten"``: one task
    per ATen op (:func:`memopt.importers.aten.trace_aten`).
    """
    torch = _torch()
    m = meta_copy(module).eval()
    inputs = _as_tuple(to_meta(example_inputs))
    name = name or type(module).__name__.lower()
    if level == "fx":
        try:
            gm = torch.fx.symbolic_trace(m)
        except Exception as e:  # noqa: BLE001 - symbolic tracing fails on data-dependent control flow, any way
            raise MemoptError(f"{name}: torch.fx cannot trace this module ({type(e).__name__}: {e}); "
                              f"try level='aten'") from None
        with torch.no_grad():
            g = _Recorder(gm, [("input", None)] * len(inputs), name).record(list(inputs))
        g.traced = (gm, tuple(inputs))
    elif level == "aten":
        from memopt.importers.aten import trace_aten

        params = dict(m.named_parameters())
        buffers = dict(m.named_buffers())

        def forward(tracer, params, buffers, inputs):
            return _flat(torch.func.functional_call(m, (params, buffers), tuple(inputs))), []

        call_args: tuple = (params, buffers, list(inputs))
        kinds = [[("param", k, "") for k in params], [("param", k, "") for k in buffers],
                 [("input", None, "")] * len(inputs)]
        with torch.no_grad(), module_paths(m):
            g, _ = trace_aten(forward, call_args, ["params", "buffers", "inputs"], kinds, name)
    else:
        raise MemoptError(f"{name}: unknown tracing level {level!r} (known: fx, aten)")
    g.meta.update({"source": "pytorch", "graph": "inference", "trace": level})
    return g


def default_loss(out: Any, *targets: Any):
    """Σ of the outputs: a stand-in loss when none is given (pass ``loss=`` for a real one)."""
    outs = [o for o in _flat(out) if hasattr(o, "sum")]
    total = outs[0].sum()
    for o in outs[1:]:
        total = total + o.sum()
    return total


def trace_training(
    module,
    example_inputs: Any,
    *,
    loss: Callable[..., Any] | None = None,
    targets: Any = (),
    name: str | None = None,
    optimizer: str | None = None,
    optimizer_on_host: bool = False,
    bandwidth: float | None = None,
) -> NNGraph:
    """The joint training graph: forward, ``loss(output, *targets)``, gradients of every parameter.

    Traced at the ATen level (:func:`memopt.importers.aten.trace_aten`) in
    train mode on the meta device; the task of the loss is marked
    ``recompute: false`` (SPEC §1). Without ``optimizer`` the graph's outputs
    are the loss and the parameter gradients, and parameters are external.

    With ``optimizer`` (``sgd``, ``sgd-momentum``, ``adam``:
    :mod:`memopt.importers.optimizer`) the step ends with the update of every
    parameter that has a gradient, and the persistent tensors are data:
    every parameter, buffer and optimizer state is a source (``kind="state"``)
    that exists when the step starts; the update of ``p`` reads ``p``, its
    gradient and its states and writes the new parameter and states, the
    graph's *results*; buffers and parameters without a gradient are outputs
    (kept to the end). ``optimizer_on_host``: the states live on the host (not
    data); the update takes ``(|g| + |p|) / bandwidth`` ns (``bandwidth`` in
    bytes per second; required then).
    """
    torch = _torch()
    from memopt.importers.aten import trace_aten
    from memopt.importers.nn import BUFFER, OPTIMIZER_STATE, PARAMETER
    from memopt.importers.optimizer import UPDATES, fake_host_update, fake_update, get_optimizer, host_update_ns

    m = meta_copy(module).train()
    name = name or type(module).__name__.lower()
    opt = get_optimizer(optimizer, name)
    params = dict(m.named_parameters())
    buffers = dict(m.named_buffers())
    trainable = [k for k, p in params.items() if p.requires_grad]
    if not trainable:
        raise MemoptError(f"{name}: no trainable parameter: there is no backward pass to trace")
    inputs = list(_as_tuple(to_meta(example_inputs)))
    tgts = list(_as_tuple(to_meta(targets))) if targets is not None else []
    loss_fn = loss or default_loss
    host = bool(optimizer_on_host) and opt is not None
    link = None if bandwidth is None else bandwidth / 1e9  # bytes per ns
    states = {k: [torch.empty_like(params[k]) for _ in opt.states] for k in trainable} if opt else {}

    def step(tracer, params, buffers, *rest):
        *st, inputs, tgts = rest
        out = torch.func.functional_call(m, (params, buffers), tuple(inputs))
        value = loss_fn(out, *tgts)
        grads = torch.autograd.grad(value, [params[k] for k in trainable], allow_unused=True)
        if opt is None:
            return [value] + [gr for gr in grads if gr is not None], []
        updated, new = set(), []
        with torch.no_grad():
            for k, gr in zip(trainable, grads):
                if gr is None:
                    continue
                p = params[k]
                nb = p.numel() * p.element_size()
                new.extend(tracer.leaf(UPDATES[opt.name, host], p, gr, *st[0][k],
                                       name=f"{opt.name.replace('-', '_')}_{k.replace('.', '_')}",
                                       op=f"optimizer.{opt.name}", flops=opt.flops_per_element * p.numel(),
                                       time_ns=host_update_ns(nb, nb, link, name) if host else None,
                                       fake=fake_host_update if host else fake_update))
                updated.add(k)
        kept = [p for k, p in params.items() if k not in updated] + list(buffers.values())
        return [value] + kept, new

    argnames = ["params", "buffers"] + (["states"] if opt else []) + ["inputs", "tgts"]
    args: tuple = (params, buffers) + ((states,) if opt else ()) + (inputs, tgts)
    pk = "state" if opt else "param"
    kinds = [[(pk, k, PARAMETER) for k in params], [(pk, k, BUFFER) for k in buffers]]
    if opt:
        kinds.append([("host" if host else "state", f"{k}.{s}", OPTIMIZER_STATE)
                      for k in states for s in opt.states])
    kinds += [[("input", None, "")] * len(inputs), [("input", None, "")] * len(tgts)]
    try:
        with module_paths(m):  # forward ops get their module path as the task's group
            g, _ = trace_aten(step, args, argnames, kinds, name)
    except (RuntimeError, TypeError) as e:  # e.g. a loss that does not fit the output or the targets
        raise MemoptError(f"{name}: tracing the training step failed ({type(e).__name__}: {e})") from None
    if g.outputs:
        loss_id = g.outputs[0]
        for op in g.ops:
            if any(t.id == loss_id for t in op.outputs):
                op.recompute = False
    g.meta.update({"source": "pytorch", "graph": "training", "trace": "aten",
                   "loss": g.outputs[0] if g.outputs else None})
    if opt:
        g.meta.update({"optimizer": opt.name, "optimizer_on_host": host})
    return g


# ----------------------------------------------------------------- recording
def _flat(x: Any) -> list[Any]:
    if isinstance(x, (list, tuple)):
        out: list[Any] = []
        for y in x:
            out.extend(_flat(y))
        return out
    if isinstance(x, dict):
        return _flat(list(x.values()))
    return [x]


def _op_name(node) -> str:
    t = node.target
    if node.op == "call_module":
        return type(node.graph.owning_module.get_submodule(t)).__name__
    if node.op == "call_method":
        return str(t)
    s = str(t) if hasattr(t, "_schema") else getattr(t, "__name__", str(t))
    return s[:-len(".default")] if s.endswith(".default") else s


class _Recorder:
    """Runs a traced ``GraphModule`` on meta tensors and records an :class:`NNGraph`.

    For each node: the tensors it reads (node arguments, and the parameters
    of a called module), the tensors it writes with their bytes, the storage
    they share with an earlier tensor (an alias), its FLOPs (PyTorch's flop
    counter), whether an ATen op it ran is random or wrote a tensor of the
    graph in place, and the peak of the temporaries it allocated beyond its
    outputs (its workspace).
    """

    def __init__(self, gm, kinds: Sequence[tuple[str, str | None]], name: str):
        self.gm = gm
        self.kinds = list(kinds)
        self.name = name

    def record(self, args: Sequence[Any]) -> NNGraph:
        torch = _torch()
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils.flop_counter import FlopCounterMode

        seeded = torch.Tag.nondeterministic_seeded
        owner: dict[int, str] = {}    # storage -> tensor (or parameter) that allocated it

        class NodeWatch(TorchDispatchMode):
            """While one node runs: did an ATen op draw random numbers, and the peak of new storage."""

            def reset(self) -> None:
                self.random = False
                self.mutated: set[str] = set()  # tensors of the graph written in place
                self.live: dict[int, list[int]] = {}
                self.cur = 0
                self.peak = 0

            def _dead(self, k: int) -> None:
                e = self.live.get(k)
                if e is not None:
                    e[1] -= 1
                    if e[1] == 0:
                        self.cur -= e[0]
                        del self.live[k]

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if seeded in getattr(func, "tags", ()):
                    self.random = True
                schema = getattr(func, "_schema", None)
                if schema is not None and any(a.alias_info is not None and a.alias_info.is_write
                                              for a in schema.arguments):
                    for a, v in zip(schema.arguments, list(args) + [(kwargs or {}).get(a.name) for a in
                                                                    schema.arguments[len(args):]]):
                        if a.alias_info is not None and a.alias_info.is_write and isinstance(v, torch.Tensor):
                            w = owner.get(v.untyped_storage()._cdata)
                            if w is not None and not w.startswith("param:"):
                                self.mutated.add(w)
                out = func(*args, **(kwargs or {}))
                for t in _flat(out):
                    if isinstance(t, torch.Tensor):
                        k = t.untyped_storage()._cdata
                        if k in owner:
                            continue  # a storage that existed before this node
                        e = self.live.get(k)
                        if e is None:
                            e = self.live[k] = [t.untyped_storage().nbytes(), 0]
                            self.cur += e[0]
                            self.peak = max(self.peak, self.cur)
                        e[1] += 1
                        weakref.finalize(t, self._dead, k)
                return out

        gm = self.gm
        env: dict[Any, Any] = {}      # node -> value
        ids: dict[Any, Any] = {}      # node -> tensor id(s), same structure as the value
        keep: list[Any] = []          # keep every tensor alive: storage addresses are not reused
        params: dict[str, int] = {}
        ops: list[Op] = []
        outputs: list[str] = []
        placeholder = 0
        flops_mode = FlopCounterMode(display=False)
        watch = NodeWatch()
        mutated: set[str] = set()

        def sid(t) -> int:
            return t.untyped_storage()._cdata

        def nbytes(t) -> int:
            return t.numel() * t.element_size()

        def arg_ids(node) -> list[str]:
            got: list[str] = []

            def visit(a):
                if isinstance(a, torch.fx.Node):
                    for x in _flat(ids.get(a)):
                        if isinstance(x, str):
                            got.append(x)
                return a

            torch.fx.node.map_arg((node.args, node.kwargs), visit)
            return got

        def load_arg(a):
            return torch.fx.node.map_arg(a, lambda n: env[n])

        for node in gm.graph.nodes:
            if node.op == "placeholder":
                if placeholder >= len(args):
                    raise MemoptError(f"{self.name}: the traced graph has more inputs than were given")
                val = args[placeholder]
                kind, pname = self.kinds[placeholder]
                placeholder += 1
                env[node] = val
                if not isinstance(val, torch.Tensor):
                    ids[node] = None
                    continue
                keep.append(val)
                if kind == "param":
                    pid = f"param:{pname}"
                    params[pid] = nbytes(val)
                    owner.setdefault(sid(val), pid)
                    ids[node] = pid
                else:
                    ids[node] = node.name
                    owner[sid(val)] = node.name
                    ops.append(Op(node.name, [], [Tensor(node.name, nbytes(val))], op="input", kind="input",
                                  recompute=False))
                continue
            if node.op == "get_attr":
                val = _fetch_attr(gm, node.target)
                env[node] = val
                if isinstance(val, torch.Tensor):
                    keep.append(val)
                    pid = f"param:{node.target}"
                    params[pid] = nbytes(val)
                    owner.setdefault(sid(val), pid)
                    ids[node] = pid
                else:
                    ids[node] = None
                continue
            if node.op == "output":
                val = load_arg(node.args[0])
                outputs = [x for x in _flat(ids_of_arg(node.args[0], ids)) if isinstance(x, str)]
                break
            # getitem on the tuple returned by a multi-output op: no task, just pick the element
            if node.op == "call_function" and node.target is operator.getitem and isinstance(
                    node.args[0], torch.fx.Node) and isinstance(env.get(node.args[0]), (tuple, list)):
                src, k = node.args[0], node.args[1]
                env[node] = env[src][k]
                sub = ids.get(src)
                ids[node] = sub[k] if isinstance(sub, (tuple, list)) else None
                continue
            a, kw = load_arg(node.args), load_arg(node.kwargs)
            # a called layer reads its parameters (registered first: they are no new storage)
            layer_params: list[str] = []
            if node.op == "call_module":
                sub_mod = gm.get_submodule(node.target)
                for pn, p in list(sub_mod.named_parameters()) + list(sub_mod.named_buffers()):
                    keep.append(p)
                    pid = owner.get(sid(p))  # a tied weight keeps its first name
                    if pid is None or not pid.startswith("param:"):
                        pid = f"param:{node.target}.{pn}"
                        params[pid] = nbytes(p)
                        owner[sid(p)] = pid
                    layer_params.append(pid)
            watch.reset()
            with flops_mode, watch:
                if node.op == "call_function":
                    val = node.target(*a, **kw)
                elif node.op == "call_method":
                    self_obj, *rest = a
                    val = getattr(self_obj, node.target)(*rest, **kw)
                elif node.op == "call_module":
                    val = gm.get_submodule(node.target)(*a, **kw)
                else:  # pragma: no cover - fx has no other node kinds
                    raise MemoptError(f"{self.name}: unknown fx node kind {node.op!r}")
            flops = int(flops_mode.get_total_flops())
            env[node] = val
            inputs = arg_ids(node) + layer_params
            # name the tensors written: the first after the node, the others node.k
            flat = _flat(val)
            tensors: list[Tensor] = []
            k = 0
            for x in flat:
                if not isinstance(x, torch.Tensor):
                    continue
                tid = node.name if k == 0 else f"{node.name}.{k}"
                k += 1
                keep.append(x)
                s = sid(x)
                alias = owner.get(s)
                if alias is None:
                    owner[s] = tid
                    tensors.append(Tensor(tid, nbytes(x), storage=x.untyped_storage().nbytes()))
                else:
                    tensors.append(Tensor(tid, nbytes(x), alias_of=alias))
            ids[node] = _id_structure(val, node.name, torch)
            if not tensors:
                continue  # a size, a shape, a Python number: no memory, no task
            # temporaries beyond the outputs (inside a layer call): workspace
            ws = max(0, watch.peak - sum(t.owned for t in tensors))
            ops.append(Op(node.name, _dedup(inputs), tensors, op=_op_name(node), flops=flops,
                          recompute=not (watch.random or watch.mutated), workspace=ws,
                          inplace=bool(watch.mutated)))
            mutated |= watch.mutated
        # a storage written in place holds a value its producer alone cannot give again
        for op in ops:
            if any(t.id in mutated for t in op.outputs):
                op.recompute = False
        return NNGraph(self.name, ops, outputs, params, {})


def _fetch_attr(gm, target: str):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def ids_of_arg(arg: Any, ids: Mapping[Any, Any]) -> Any:
    """The tensor ids of an fx argument structure (nodes replaced by their ids)."""
    import torch

    if isinstance(arg, torch.fx.Node):
        return ids.get(arg)
    if isinstance(arg, (list, tuple)):
        return [ids_of_arg(a, ids) for a in arg]
    if isinstance(arg, dict):
        return [ids_of_arg(a, ids) for a in arg.values()]
    return None


def _id_structure(val: Any, base: str, torch) -> Any:
    """Tensor ids in the shape of ``val``: ``base`` for the first tensor, ``base.k`` for the k-th."""
    counter = [0]

    def walk(x):
        if isinstance(x, torch.Tensor):
            k = counter[0]
            counter[0] += 1
            return base if k == 0 else f"{base}.{k}"
        if isinstance(x, (list, tuple)):
            return tuple(walk(y) for y in x)
        if isinstance(x, dict):
            return tuple(walk(y) for y in x.values())
        return None

    return walk(val)


def _dedup(xs: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


# ------------------------------------------------------------------ importing
def import_module(
    module,
    example_inputs: Any,
    *,
    train: bool = False,
    loss: Callable[..., Any] | None = None,
    targets: Any = (),
    level: str = "fx",
    count_params: bool = False,
    optimizer: str | None = None,
    optimizer_on_host: bool = False,
    flops_per_second: float | None = None,
    bytes_per_second: float | None = None,
    keep_views: bool = True,
    size_unit: str = "B",
    bandwidth: float | None = None,
    op_meta: bool = True,
    name: str | None = None,
) -> Instance:
    """The memopt instance of ``module`` run on ``example_inputs``.

    ``train=True`` traces the joint forward + backward graph of one step
    with ``loss(output, *targets)`` (:func:`trace_training`), with the update
    of every parameter by ``optimizer`` (``sgd``, ``sgd-momentum``, ``adam``;
    parameters, gradients and optimizer states are then data with their
    lifetimes; ``optimizer_on_host``: the states live on the host, as in
    ZeRO-Offload); otherwise the inference graph (:func:`trace_inference` at
    ``level``). The remaining options are those of
    :func:`memopt.importers.nn.to_instance`;
    ``flops_per_second``/``bytes_per_second`` set the cost model, ``bandwidth``
    (bytes per second of the link to slow memory) the machine's β.
    """
    if train:
        g = trace_training(module, example_inputs, loss=loss, targets=targets, name=name, optimizer=optimizer,
                           optimizer_on_host=optimizer_on_host, bandwidth=bandwidth)
    else:
        if optimizer is not None:
            raise MemoptError(f"{name or type(module).__name__.lower()}: optimizer={optimizer!r} needs train=True "
                              f"(an inference graph has no optimizer step)")
        g = trace_inference(module, example_inputs, level=level, name=name)
    cost = make_cost(flops_per_second, bytes_per_second)
    return to_instance(g, cost=cost, count_params=count_params, keep_views=keep_views, size_unit=size_unit,
                       bandwidth=None if bandwidth is None else bandwidth / 1e9, op_meta=op_meta,
                       name=name or g.name, where=name or g.name)


__all__ = ["meta_copy", "to_meta", "trace_inference", "trace_training", "default_loss", "import_module"]
