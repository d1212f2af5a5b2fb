"""PyTorch importer: an ``nn.Module`` traced on the meta device becomes an instance.

Needs the ``torch`` extra (``pip install 'memopt[torch]'``). Nothing is
computed on real data and no weight is allocated: the module is copied with
every parameter and buffer on PyTorch's ``meta`` device, so a GPT-2-size
model traces in seconds on any machine.

- **Inference** (:func:`trace_inference`): :func:`torch.fx.symbolic_trace`
  (standard ``torch.nn`` layers are leaves: one task per layer call) in eval
  mode, then each node is run once more on meta tensors (:class:`~memopt.importers.fx_recorder.FxRecorder`).
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
from collections.abc import Callable
from typing import Any

from memopt.core.errors import MemoptError, SolverUnavailableError
from memopt.core.instance import Instance
from memopt.importers.fx_recorder import FxRecorder, flat
from memopt.importers.module_path import module_paths
from memopt.importers.nn import NNGraph, make_cost, to_instance

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
            g = FxRecorder(gm, [("input", None)] * len(inputs), name).record(list(inputs))
        g.traced = (gm, tuple(inputs))
    elif level == "aten":
        from memopt.importers.aten import trace_aten

        params = dict(m.named_parameters())
        buffers = dict(m.named_buffers())

        def forward(tracer, params, buffers, inputs):
            return flat(torch.func.functional_call(m, (params, buffers), tuple(inputs))), []

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
    outs = [o for o in flat(out) if hasattr(o, "sum")]
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
