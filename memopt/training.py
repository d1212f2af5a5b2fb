"""The training graph of a forward graph: forward pass, loss, backward pass.

:func:`training_graph` applies reverse-mode differentiation to a task graph
the way autodiff frameworks do, at the granularity of tasks: each forward
operation that needs a gradient gets one backward task, which reads the
gradient of its outputs and its saved inputs, and writes the gradient with
respect to each of its inputs (and of its parameters). The result is the
kind of graph Checkmate (Jain et al., MLSys 2020) and its successors
schedule: every forward activation read by a backward task must be kept,
offloaded or recomputed until that backward task runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from memopt.core.errors import MemoptError
from memopt.core.instance import Datum, Instance, Task


def training_graph(
    forward: Instance,
    *,
    params: Mapping[str, int] | None = None,
    grad_time_factor: float = 2.0,
    name: str | None = None,
) -> Instance:
    """Forward graph + loss + backward graph, in the data model of SPEC §1.

    Definitions (f is a forward task, d a forward datum, ``P(f)`` its
    parameter size ``params.get(f, 0)``):

    - **trainable**: with ``params=None`` every forward task (parameter sizes
      unknown, no parameter-gradient data); otherwise the tasks with
      ``P(f) > 0``.
    - **requires grad**: f is trainable, or one of its inputs is produced by a
      task that requires grad.
    - **loss**: a new task ``loss`` (time 0, ``recompute: false``) reading
      every forward *sink output*: each forward result (datum without
      consumer), and for a forward task with no output at all (a sink of the
      buffer form) a new size-0 datum ``<f>->loss``.
    - **needs grad**: datum d needs a gradient when its producer requires
      grad (every datum reaches the loss: the loss reads every result).
    - **backward task** ``<f>.bwd`` exists for each f that requires grad. It
      reads
        * the gradient contributions of each output d of f: ``grad:<d>@<c>``
          from each consumer c of d (every such c requires grad, so has a
          backward task), and ``grad:<d>@loss`` when the loss reads d;
        * f's saved inputs: every input datum of f (the forward activations);
      and writes
        * ``grad:<x>@<f>``, of the size of x, for each input x of f that
          needs a gradient, read by the backward task of x's producer;
        * ``grad:<f>.params`` of size P(f) when P(f) > 0: a result (no
          consumer), the parameter gradient.
    - **loss outputs**: ``grad:<d>@loss`` (size of d) for each datum d it
      reads that needs a gradient.
    - **times**: a backward task takes ``round(grad_time_factor × c(f))``
      (halves up); the loss 0. **Workspace**: a backward task has f's
      workspace. **Recompute**: backward tasks may be recomputed (a
      deterministic function of their inputs); the loss may not.

    Forward tasks and data are kept unchanged (ids, sizes, times, flags)
    except that backward tasks and the loss are added to the consumers of
    the data they read. Tasks are listed: the forward tasks as listed, the
    loss, then the backward tasks in reverse topological order of the forward
    graph (a topological order when the forward listing is one).
    O(n + Σ inputs).

    >>> from memopt import from_tensors
    >>> fwd = from_tensors([("a", 1, 4, []), ("b", 2, 3, ["a"])])
    >>> [t.id for t in training_graph(fwd).tasks]
    ['a', 'b', 'loss', 'b.bwd', 'a.bwd']
    """
    if not (isinstance(grad_time_factor, (int, float)) and not isinstance(grad_time_factor, bool)
            and math.isfinite(grad_time_factor) and grad_time_factor >= 0):
        raise MemoptError(f"grad_time_factor must be a number >= 0, got {grad_time_factor!r}")
    inst = forward
    n, m = inst.n, inst.m
    ids = [t.id for t in inst.tasks]
    P = [0] * n
    if params is not None:
        for k, p in params.items():
            if k not in inst.task_index:
                raise MemoptError(f"{inst.where}: params names {k!r}, which is not a task of the forward graph")
            if isinstance(p, bool) or not isinstance(p, int) or p < 0:
                raise MemoptError(f"{inst.where}: params[{k!r}] must be an integer >= 0, got {p!r}")
            P[inst.task_index[k]] = p
    trainable = [True] * n if params is None else [p > 0 for p in P]

    order = list(inst.topological_order)
    # requires grad: forward closure from the trainable tasks
    req = [False] * n
    for v in order:
        req[v] = trainable[v] or any(req[inst.producer[j]] for j in inst.inputs[v])

    # what the loss reads: every result, plus a new datum for each output-less task
    loss_reads = list(inst.results)
    sink_links = [v for v in range(n) if not inst.outputs[v]]

    # every datum reaches the loss (the loss reads every result and every
    # output-less task links to it), so "needs grad" is "producer requires grad"
    need = [req[inst.producer[j]] for j in range(m)]
    has_bwd = req

    taken = set(ids) | {d.id for d in inst.data}

    def fresh(x: str) -> str:
        if x in taken:
            raise MemoptError(f"{inst.where}: cannot build the training graph: the id {x!r} it needs is already used")
        taken.add(x)
        return x

    loss_id = "loss"
    k = 1
    while loss_id in taken:
        loss_id = f"loss.{k}"
        k += 1
    taken.add(loss_id)
    bwd = {v: fresh(f"{ids[v]}.bwd") for v in range(n) if has_bwd[v]}

    # extra consumers of forward data
    extra: list[list[str]] = [[] for _ in range(m)]
    for j in loss_reads:
        extra[j].append(loss_id)
    for v in bwd:
        for j in inst.inputs[v]:
            extra[j].append(bwd[v])

    data: list[Datum] = [Datum(d.id, d.producer, d.consumers + tuple(extra[j]), d.size)
                         for j, d in enumerate(inst.data)]
    link_id: dict[int, str] = {}
    for v in sink_links:
        link_id[v] = fresh(f"{ids[v]}->{loss_id}")
        data.append(Datum(link_id[v], ids[v], (loss_id,), 0))

    # gradient data: (datum read, reader) -> id
    grads: list[Datum] = []
    for j in loss_reads:
        if need[j]:
            p = inst.producer[j]
            grads.append(Datum(fresh(f"grad:{inst.data[j].id}@{loss_id}"), loss_id, (bwd[p],), inst.size[j]))
    for v in sink_links:
        if req[v]:
            grads.append(Datum(fresh(f"grad:{link_id[v]}@{loss_id}"), loss_id, (bwd[v],), 0))
    for v in reversed(order):
        if v not in bwd:
            continue
        for j in inst.inputs[v]:
            if need[j]:
                p = inst.producer[j]
                grads.append(Datum(fresh(f"grad:{inst.data[j].id}@{ids[v]}"), bwd[v], (bwd[p],), inst.size[j]))
        if P[v] > 0:
            grads.append(Datum(fresh(f"grad:{ids[v]}.params"), bwd[v], (), P[v]))

    tasks = list(inst.tasks)
    tasks.append(Task(loss_id, 0, 0, False, {"loss": True}))
    for v in reversed(order):
        if v in bwd:
            t = inst.tasks[v]
            time = int(math.floor(grad_time_factor * t.time + 0.5))
            tasks.append(Task(bwd[v], time, t.workspace, True, {"backward_of": t.id}, t.group))  # same block
    meta = dict(inst.meta or {})
    meta["training"] = {"forward": inst.name, "grad_time_factor": grad_time_factor,
                        "params": "none given (every task trainable)" if params is None else "given"}
    return Instance(tasks, data + grads, inst.machine, name=name if name is not None else f"{inst.name}-train",
                    units=inst.units, meta=meta, where=inst.where)


__all__ = ["training_graph"]
