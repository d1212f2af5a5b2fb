"""Record an fx ``GraphModule`` as an :class:`~memopt.importers.nn.NNGraph`: run each node on meta tensors.

The recording half of :mod:`memopt.importers.pytorch`: for each node of a
traced graph, the tensors it reads and writes with their bytes, the storages
they alias, its FLOPs (PyTorch's flop counter), whether it draws random
numbers or writes a graph tensor in place, and the peak of the temporaries
it allocates beyond its outputs (its workspace). Needs PyTorch (imported by
the calls, never at import time).
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from memopt.core.errors import MemoptError
from memopt.importers.nn import NNGraph, Op, Tensor


def flat(x: Any) -> list[Any]:
    """The leaves of nested lists, tuples and dicts, in order."""
    if isinstance(x, (list, tuple)):
        out: list[Any] = []
        for y in x:
            out.extend(flat(y))
        return out
    if isinstance(x, dict):
        return flat(list(x.values()))
    return [x]


def _op_name(node) -> str:
    t = node.target
    if node.op == "call_module":
        return type(node.graph.owning_module.get_submodule(t)).__name__
    if node.op == "call_method":
        return str(t)
    s = str(t) if hasattr(t, "_schema") else getattr(t, "__name__", str(t))
    return s[:-len(".default")] if s.endswith(".default") else s


class FxRecorder:
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
        import torch
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
                for t in flat(out):
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
                    for x in flat(ids.get(a)):
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
                outputs = [x for x in flat(ids_of_arg(node.args[0], ids)) if isinstance(x, str)]
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
            leaves = flat(val)
            tensors: list[Tensor] = []
            k = 0
            for x in leaves:
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


__all__ = ["FxRecorder", "flat", "ids_of_arg"]
