"""The traced training graph seen from a plan: which fx nodes a task runs, what a datum is.

The PyTorch importer (:func:`memopt.importers.pytorch.trace_training`) keeps
the ``make_fx`` GraphModule of the joint step in ``NNGraph.traced``; its
records name every tensor ``node`` or ``node.k`` (the k-th tensor the fx node
returns, flattened). :class:`StepGraph` is the exact map between that graph
and the instance a plan is made for:

- **tasks** — an op's task runs its fx node; a task fused from an in-place
  chain (:mod:`memopt.runtime.fusion`) runs its members in traced order; a
  graph input's task loads the batch (a copy into fast memory); the tasks
  ``output`` and ``parameters`` added by :func:`~memopt.importers.nn.to_instance`
  run nothing.
- **data** — a datum that owns storage is the tensor of that id. An alias
  (a view, a reshape, ``detach``, an in-place op's result) owns nothing: its
  value is *derived* from its storage root by running its node again (a
  view costs no memory and no time), whether it is a datum of size 0 or was
  contracted away by the importer (``keep_views=False``). ``getitem`` nodes
  pick a tensor of a multi-output node; nodes without tensors (sizes,
  numbers) are derived too.
- **parameters and buffers** are the module's own tensors (never data
  unless ``count_params``); a node that writes a buffer in place (batch
  norm's running statistics, ``num_batches_tracked += 1``) is recorded, so a
  recomputation can leave the buffers as one run left them, and a buffer
  update that no output depends on (dropped by the importer's dead-code
  elimination) is still run once, at the end of the step (*effects*).
- **randomness** — tasks that draw random numbers (ATen's
  ``nondeterministic_seeded`` tag) are not recomputable (the importer says
  so) and :func:`chain_random` keeps them in their traced order (zero-size
  data from each to the next, as the generator's state flows), so each
  draws exactly what it drew in the plain PyTorch step.

Complexity: O(nodes + Σ arguments).
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass, field
from typing import Any

from memopt.core.errors import MemoptError
from memopt.core.instance import Datum, Instance
from memopt.importers.nn import NNGraph, Tensor, unique_name

#: ops that write buffers without saying so in their schema: op name -> (argument indices, index of ``training``)
HIDDEN_BUFFER_WRITES = {"aten::native_batch_norm": ((3, 4), 5)}


@dataclass
class NodePlan:
    """What the runtime needs of one fx node (call_function)."""

    name: str
    target: Any
    args: tuple
    kwargs: dict
    ids: Any                                          # tensor ids in the shape of the node's value
    inplace_arg: Any = None                           # the fx argument an in-place op writes (its result)
    writes: list[str] = field(default_factory=list)   # parameters/buffers written in place
    random: bool = False


class StepGraph:
    """The map between the traced joint graph (``graph.traced``) and ``inst`` (see the module docstring).

    ``groups``: the fused tasks' members (:func:`~memopt.runtime.fusion.fuse_inplace`).
    """

    def __init__(self, graph: NNGraph, groups: dict[str, list[str]], inst: Instance):
        import torch

        if graph.traced is None or graph.meta.get("graph") != "training":
            raise MemoptError(f"{graph.name}: the runtime needs the traced training graph (trace_training)")
        gm, args = graph.traced
        if len(args) != 4 or graph.meta.get("optimizer"):
            raise MemoptError(f"{graph.name}: the runtime runs the gradient step (loss and gradients); a traced "
                              "optimizer update is not supported")
        params, buffers, inputs, targets = args
        self.name = graph.name
        self.inst = inst
        self.param_names = list(params)
        self.buffer_names = list(buffers)
        self.n_inputs, self.n_targets = len(inputs), len(targets)
        leaves = ([("param", k) for k in params] + [("param", k) for k in buffers]
                  + [("input", i) for i in range(len(inputs))] + [("target", i) for i in range(len(targets))])
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != len(leaves):
            raise MemoptError(f"{graph.name}: the traced graph has {len(placeholders)} inputs for {len(leaves)} "
                              "parameters, buffers, inputs and targets (nested inputs are not supported)")
        self.placeholder: dict[str, tuple[str, Any]] = {n.name: kind for n, kind in zip(placeholders, leaves)}
        self.param_of_node = {n.name: kind[1] for n, kind in zip(placeholders, leaves) if kind[0] == "param"}
        self.input_nodes = [n.name for n, kind in zip(placeholders, leaves) if kind[0] in ("input", "target")]

        self.tensor: dict[str, Tensor] = {t.id: t for op in graph.ops for t in op.outputs}
        self.ids: dict[str, Any] = {}
        self.nodes: dict[str, NodePlan] = {}
        # alias node -> the layout of each view it returns within its root's storage (FastMemory.run_view):
        # shapes are fixed by the traced batch, so a view freed with its root is rebuilt by one as_strided
        self.view_layout: dict[str, list[tuple] | None] = {}
        seeded = torch.Tag.nondeterministic_seeded
        output_node = None
        for n in gm.graph.nodes:
            if n.op == "placeholder":
                kind = self.placeholder[n.name]
                self.ids[n.name] = f"param:{kind[1]}" if kind[0] == "param" else n.name
            elif n.op == "get_attr":
                raise MemoptError(f"{graph.name}: the traced graph holds a constant tensor ({n.target}) traced on the "
                                  "meta device; the runtime cannot run it")
            elif n.op == "output":
                output_node = n
            elif n.op == "call_function":
                if _is_pick(n):
                    sub = self.ids.get(n.args[0].name)
                    i = n.args[1]
                    self.ids[n.name] = sub[i] if isinstance(sub, tuple) and i < len(sub) else None
                else:
                    self.ids[n.name] = self._ids_of(n)
                self.nodes[n.name] = self._node_plan(n, seeded)
            else:
                raise MemoptError(f"{graph.name}: fx node kind {n.op!r} ({n.name}) is not supported by the runtime")
        if output_node is None:
            raise MemoptError(f"{graph.name}: the traced graph has no output")
        self.outputs = list(graph.outputs)

        # which parameter each gradient is: the trainable parameters the graph reads, in order
        used = {self.placeholder[n.name][1] for n in placeholders if n.users}
        trainable = [k for k, p in params.items() if p.requires_grad and k in used]
        if len(trainable) != len(self.outputs) - 1:
            raise MemoptError(f"{graph.name}: {len(self.outputs) - 1} gradients for {len(trainable)} trainable "
                              "parameters read by the graph; cannot tell which gradient is whose")
        self.grad_params = trainable

        # tasks -> fx nodes
        op_ids = {op.id for op in graph.ops}
        kinds = {op.id: op.kind for op in graph.ops}
        self.task_nodes: dict[str, list[str]] = {}
        for t in inst.tasks:
            if t.id in op_ids:
                self.task_nodes[t.id] = list(groups.get(t.id, [t.id]))
            else:
                self.task_nodes[t.id] = []  # 'output', 'parameters': nothing to run
        self.input_task = {t: kinds[t] == "input" for t in self.task_nodes if t in kinds}
        # the task 'output' reads every graph output: the step hands them over when it runs
        self.sink = next((t.id for t in inst.tasks if t.id not in op_ids and (t.meta or {}).get("op") == "output"),
                         None)
        in_task = {x for ns in self.task_nodes.values() for x in ns}
        self.random_tasks = [t.id for t in inst.tasks
                             if any(self.nodes[x].random for x in self.task_nodes[t.id] if x in self.nodes)]
        # buffer writes that no task runs: run once at the end (they read only parameters)
        self.effects: list[str] = []
        for name, np_ in self.nodes.items():
            if name in in_task or not np_.writes:
                continue
            if all(a in self.param_of_node for a in _arg_nodes(np_.args, np_.kwargs)):
                self.effects.append(name)
        self.datum_ids = set(inst.datum_index)
        self.alias_data = {d.id for d in inst.data if d.id in self.tensor and self.tensor[d.id].alias_of is not None}

    def _ids_of(self, n: Any) -> Any:
        """The tensor ids of node ``n``'s value: from its traced value (``make_fx`` keeps one in
        ``meta['val']``) or from its ``getitem`` users (one per tensor of a tuple, in order)."""
        import torch

        if "val" in n.meta:
            val = n.meta["val"]
            if not isinstance(val, (tuple, list)):
                return n.name if isinstance(val, torch.Tensor) else None
            ids, k = [], 0
            for x in val:
                ids.append((n.name if k == 0 else f"{n.name}.{k}") if isinstance(x, torch.Tensor) else None)
                k += isinstance(x, torch.Tensor)
            return tuple(ids)
        picks = sorted(n.args[1] for n in n.users if _is_pick(n))
        if picks:
            ids: list[str | None] = [None] * (picks[-1] + 1)
            for k, i in enumerate(picks):
                ids[i] = n.name if k == 0 else f"{n.name}.{k}"
            return tuple(ids)
        return n.name if n.name in self.tensor else None

    def kwargs_on(self, device: Any) -> dict[str, dict]:
        """Each node's keyword arguments, factory ops moved from the meta device (traced there) to ``device``."""
        cache = self.__dict__.setdefault("_kwargs_on", {})
        key = str(device)
        if key not in cache:
            out = {}
            for name, np_ in self.nodes.items():
                kw = dict(np_.kwargs)
                d = kw.get("device")
                if d is not None and getattr(d, "type", d) == "meta":
                    kw["device"] = device
                out[name] = kw
            cache[key] = out
        return cache[key]

    def retarget(self, inst: Instance) -> StepGraph:
        """This map for ``inst``, the same tasks with other times or extra data of no tensor (``chain_random``)."""
        if [t.id for t in inst.tasks] != [t.id for t in self.inst.tasks]:
            raise ValueError("retarget: the instance has other tasks")
        self.inst = inst
        self.datum_ids = set(inst.datum_index)
        return self

    def _node_plan(self, n, seeded) -> NodePlan:
        import torch

        target = n.target
        schema = getattr(target, "_schema", None)
        np_ = NodePlan(n.name, target, n.args, dict(n.kwargs), self.ids[n.name],
                       random=seeded in getattr(target, "tags", ()))
        if schema is None:
            return np_
        bound = list(n.args) + [n.kwargs.get(a.name) for a in schema.arguments[len(n.args):]]
        for a, v in zip(schema.arguments, bound):
            if a.alias_info is not None and a.alias_info.is_write and isinstance(v, torch.fx.Node):
                if v.name in self.param_of_node:
                    np_.writes.append(self.param_of_node[v.name])
                elif np_.inplace_arg is None:
                    np_.inplace_arg = v
        hidden = HIDDEN_BUFFER_WRITES.get(schema.name)
        if hidden is not None and len(bound) > hidden[1] and bound[hidden[1]]:
            for k in hidden[0]:
                v = bound[k]
                if isinstance(v, torch.fx.Node) and v.name in self.param_of_node:
                    np_.writes.append(self.param_of_node[v.name])
        return np_

    def root(self, t: str) -> str:
        """The tensor owning ``t``'s storage (``t`` itself unless ``t`` is an alias)."""
        rec = self.tensor.get(t)
        while rec is not None and rec.alias_of is not None:
            t = rec.alias_of
            rec = self.tensor.get(t)
        return t

    @staticmethod
    def node_of(t: str) -> tuple[str, int]:
        """The fx node that returns tensor ``t`` and its index among the node's tensors."""
        name, _, k = t.partition(".")
        return name, int(k) if k else 0


def _is_pick(n: Any) -> bool:
    """A ``getitem`` node: one element of the tuple an op returned."""
    return n.op == "call_function" and n.target is operator.getitem and hasattr(n.args[0], "name") \
        and isinstance(n.args[1], int)


def _arg_nodes(args: Any, kwargs: Any) -> list[str]:
    import torch

    found: list[str] = []
    torch.fx.node.map_arg((args, kwargs), lambda a: found.append(a.name) or a)
    return found


def chain_random(inst: Instance, tasks: list[str]) -> Instance:
    """``inst`` with a datum of size 0 from each task of ``tasks`` to the next: they keep their listed order.

    The random generator's state flows from one random op to the next; a plan
    that ran them in another order would draw other numbers. O(n + m).
    """
    if len(tasks) < 2:
        return inst
    taken = {t.id for t in inst.tasks} | {d.id for d in inst.data}
    data = list(inst.data)
    for a, b in itertools.pairwise(tasks):
        did = unique_name(f"rng:{a}", taken)
        taken.add(did)
        data.append(Datum(did, a, (b,), 0))
    return inst.replace(data=data)


__all__ = ["HIDDEN_BUFFER_WRITES", "NodePlan", "StepGraph", "chain_random"]
