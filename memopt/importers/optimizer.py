"""The optimizer step of a training graph: what each optimizer keeps per parameter, and its update.

A training step ends with the optimizer update of every parameter ``p``:
it reads ``p``, its gradient ``g`` and the optimizer's states of ``p`` and
writes the new parameter and the new states. The importers model it as one
task per parameter (``docs/importers-nn.md``, *Parameters, gradients and
optimizer state*):

- the parameter and each state are data produced by a *source* task (time
  0, ``recompute: false``) that runs before the graph inputs: they exist when
  the step starts;
- the update task reads the parameter, the gradient and the states and
  writes the new parameter and the new states, which are **results** (SPEC
  §1: needed at the end, in fast or slow memory). The gradient dies at its
  update; the old parameter and states die at it too, the new ones replace
  them.

The update is **out of place** — the data model of SPEC has no in-place
write — so while it runs it holds the old and the new parameter and states
of that one parameter: ``(1 + k)·|p|`` bytes more than an in-place (fused)
optimizer does, k the number of states (:data:`OPTIMIZERS`). It is exactly
what a functional optimizer holds: the update functions below allocate the
new tensors and nothing else.

**On the host** (``optimizer_on_host``, ZeRO-Offload's scheme, Ren et al.,
USENIX ATC 2021): the states live in host memory for the whole step and the
update runs there. The states are then not data of the instance (they take
no fast memory and no transfer); the update task still reads the parameter
and the gradient and writes the new parameter, and takes the time of moving
the gradient to the host and the new parameter back,
``(|g| + |p|) / bandwidth``. This is an approximation, off by default: the
two transfers are charged on the compute stream (SPEC has no host compute),
so they neither overlap the GPU's work, as ZeRO-Offload partly achieves, nor
compete with the plan's own transfers on the channel; the host's own Adam
time is not counted.

Complexity: O(1) per parameter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memopt.core.errors import MemoptError
from memopt.core.instance import Datum, Instance, Task
from memopt.importers.nn import unique_name
from memopt.importers.persistent import late_allocating, token_readers


@dataclass(frozen=True)
class Optimizer:
    """An optimizer as the importers see it: its states per parameter and its FLOPs per element."""

    name: str
    states: tuple[str, ...]
    flops_per_element: int
    description: str


#: the optimizers the importers know: ``optimizer=`` ``sgd``, ``sgd-momentum``, ``adam``
OPTIMIZERS: dict[str, Optimizer] = {o.name: o for o in [
    Optimizer("sgd", (), 2, "plain SGD: p - lr·g (no state)"),
    Optimizer("sgd-momentum", ("momentum_buffer",), 4, "SGD with momentum: one state per parameter"),
    Optimizer("adam", ("exp_avg", "exp_avg_sq"), 13, "Adam: two states per parameter (first and second moments)"),
]}


def get_optimizer(name: Any, where: str = "<network>") -> Optimizer | None:
    """The optimizer called ``name`` (``None``, ``""`` or ``"none"``: no optimizer step)."""
    if name is None or (isinstance(name, str) and name.lower() in ("", "none")):
        return None
    if isinstance(name, str) and name.lower() in OPTIMIZERS:
        return OPTIMIZERS[name.lower()]
    raise MemoptError(f"{where}: optimizer {name!r} unknown (known: none, {', '.join(OPTIMIZERS)})")


def host_update_ns(grad_bytes: int, param_bytes: int, bandwidth: float | None, where: str = "<network>") -> int:
    """Time of an update run on the host: the gradient goes down, the new parameter comes back.

    ``bandwidth`` in bytes per ns (``machine.bandwidth`` of a byte-sized instance).
    """
    if not bandwidth or bandwidth <= 0:
        raise MemoptError(f"{where}: optimizer_on_host needs the bandwidth of the link to the host "
                          f"(option bandwidth, bytes per second)")
    return math.ceil((grad_bytes + param_bytes) / bandwidth)


# ---------------------------------------------------------------- an instance's optimizer step
@dataclass(frozen=True)
class ParamGroup:
    """Parameters updated together: their bytes, the tasks that read them, their gradient's datum."""

    name: str
    size: int
    readers: tuple[str, ...]
    grad: str


def add_optimizer(inst: Instance, groups: Sequence[ParamGroup], optimizer: Optimizer, *, cost: Any,
                  on_host: bool = False, bandwidth: float | None = None, unit: int = 1) -> Instance:
    """``inst`` (a training graph whose parameters are not data) with the optimizer step of ``groups``.

    The rules of the module docstring, at the level of an instance (the ONNX
    importer's training graph, :func:`memopt.training.training_graph`): for
    each group, a source task ``param:<name>`` writes the parameter datum (read
    by the group's readers and its update) and a size-0 token ``<id>.ready``
    read by every graph input (tasks whose ``meta.op`` is ``input``; a task
    that allocates and follows none reads the last source's, which reads the
    others': :func:`~memopt.importers.persistent.token_readers`); one more
    source per optimizer state (none on the host); the update
    ``<optimizer>_<name>`` reads the parameter, the gradient datum ``grad``
    (until now a result) and the states, and writes the new parameter and
    states (results). Times: ``cost`` (a :class:`~memopt.importers.nn.CostModel`)
    on the bytes the update moves and its FLOPs (4-byte elements), or the host
    time (``bandwidth`` in bytes per ns). ``unit``: bytes per size unit.
    O(n + m + Σ readers).
    """
    taken = {t.id for t in inst.tasks} | {d.id for d in inst.data}
    starters = tuple(t.id for t in inst.tasks if (t.meta or {}).get("op") == "input") or (inst.tasks[0].id,)
    for g in groups:
        if g.grad not in inst.datum_index:
            raise MemoptError(f"{inst.where}: parameter group {g.name!r}: no gradient datum {g.grad!r}")
        for r in g.readers:
            if r not in inst.task_index:
                raise MemoptError(f"{inst.where}: parameter group {g.name!r}: no reader task {r!r}")

    def fresh(base: str) -> str:
        x = unique_name(base, taken)
        taken.add(x)
        return x

    sources: list[Task] = []
    new_data: list[Datum] = []
    updates: list[Task] = []
    extra: dict[str, list[str]] = {}  # datum -> new consumers
    for g in groups:
        upd = fresh(f"{optimizer.name.replace('-', '_')}_{g.name}")
        ids = [fresh(f"param:{g.name}")] + ([] if on_host else [fresh(f"param:{g.name}.{s}")
                                                                 for s in optimizer.states])
        for k, x in enumerate(ids):
            sources.append(Task(x, 0, 0, False, {"op": "parameter" if k == 0 else "optimizer_state"}))
            new_data.append(Datum(x, x, (tuple(g.readers) if k == 0 else ()) + (upd,), g.size))
        extra.setdefault(g.grad, []).append(upd)
        nbytes = g.size * unit
        if on_host:
            time = host_update_ns(nbytes, nbytes, bandwidth, inst.where)
        else:
            k = len(optimizer.states)
            time = cost.time_ns(optimizer.flops_per_element * (nbytes // 4), (3 + 2 * k) * nbytes)
        updates.append(Task(upd, time, 0, False, {"op": f"optimizer.{optimizer.name}"}))
        outs = [upd] + ([] if on_host else [fresh(f"{upd}.{i + 1}") for i in range(len(optimizer.states))])
        new_data.extend(Datum(x, upd, (), g.size) for x in outs)
    # each source's size-0 token: the sources run before every task that allocates (persistent.token_readers)
    succs = {t.id: [inst.tasks[w].id for w in inst.succs[v]] for v, t in enumerate(inst.tasks)}
    alloc = {t.id for v, t in enumerate(inst.tasks) if inst.output_size[v] or t.workspace}
    late = late_allocating([t.id for t in inst.tasks], succs, alloc, starters)
    src = [t.id for t in sources]
    for x, readers in zip(src, token_readers(src, starters, late)):
        new_data.append(Datum(fresh(f"{x}.ready"), x, readers, 0))
    data = [Datum(d.id, d.producer, d.consumers + tuple(extra.get(d.id, ())), d.size) for d in inst.data]
    meta = dict(inst.meta or {})
    total = sum(g.size * unit for g in groups)
    meta.update({"optimizer": optimizer.name, "optimizer_on_host": bool(on_host), "parameters_counted": True,
                 "optimizer_state_bytes": total * len(optimizer.states)})
    return inst.replace(tasks=sources + list(inst.tasks) + updates, data=new_data + data, meta=meta)


# ---------------------------------------------------------------- the updates (torch tensors)
# Each allocates exactly the new parameter and the new states (no temporary): what the instance counts.
# Hyper-parameters are PyTorch's defaults; step 1 for Adam's bias corrections.
LR = {"sgd": 1e-2, "sgd-momentum": 1e-2, "adam": 1e-3}
MOMENTUM = 0.9
BETAS = (0.9, 0.999)
EPS = 1e-8


def sgd_update(p, g, lr=LR["sgd"]):
    """``p - lr·g``, out of place."""
    return (p.add(g, alpha=-lr),)


def sgd_momentum_update(p, g, buf, lr=LR["sgd-momentum"], momentum=MOMENTUM):
    """``buf' = g + momentum·buf``, ``p' = p - lr·buf'``, out of place."""
    new_buf = g.add(buf, alpha=momentum)
    return p.add(new_buf, alpha=-lr), new_buf


def adam_update(p, g, m, v, lr=LR["adam"], betas=BETAS, eps=EPS, step=1):
    """Adam (Kingma & Ba, ICLR 2015), out of place: new parameter, first and second moments."""
    import torch

    b1, b2 = betas
    new_m = torch.lerp(m, g, 1 - b1)
    new_v = v.mul(b2)
    new_v.addcmul_(g, g, value=1 - b2)
    return _adam_param(p, new_m, new_v, lr, b1, b2, eps, step), new_m, new_v


def adam_host_update(p, g, m, v, lr=LR["adam"], betas=BETAS, eps=EPS, step=1):
    """Adam with its states where they live (the host): updated in place there; the new parameter out."""
    b1, b2 = betas
    m.lerp_(g, 1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    return (_adam_param(p, m, v, lr, b1, b2, eps, step),)


def sgd_momentum_host_update(p, g, buf, lr=LR["sgd-momentum"], momentum=MOMENTUM):
    """SGD with momentum, its buffer updated in place where it lives (the host); the new parameter out."""
    buf.mul_(momentum).add_(g)
    return (p.add(buf, alpha=-lr),)


def _adam_param(p, m, v, lr, b1, b2, eps, step):
    import torch

    new_p = v.sqrt()  # the only allocation: the new parameter, built in place
    new_p.div_(math.sqrt(1 - b2 ** step)).add_(eps)
    torch.div(m, new_p, out=new_p)
    return new_p.mul_(-lr / (1 - b1 ** step)).add_(p)


def fake_update(p, g, *states):
    """Outputs shaped as an update's on the device: a new parameter and new states (for tracing)."""
    return (p.new_empty(p.shape),) + tuple(s.new_empty(s.shape) for s in states)


def fake_host_update(p, g, *states):
    """Outputs shaped as an update's on the host: the new parameter only (for tracing)."""
    return (p.new_empty(p.shape),)


#: (optimizer, on the host) -> update function
UPDATES = {
    ("sgd", False): sgd_update, ("sgd", True): sgd_update,
    ("sgd-momentum", False): sgd_momentum_update, ("sgd-momentum", True): sgd_momentum_host_update,
    ("adam", False): adam_update, ("adam", True): adam_host_update,
}

__all__ = [
    "ParamGroup",
    "add_optimizer",
    "OPTIMIZERS",
    "UPDATES",
    "Optimizer",
    "adam_host_update",
    "adam_update",
    "fake_host_update",
    "fake_update",
    "get_optimizer",
    "host_update_ns",
    "sgd_momentum_host_update",
    "sgd_momentum_update",
    "sgd_update",
]
