"""Fast memory as the runtime holds it: the tensors of the resident data, and its own byte count.

:class:`FastMemory` keeps exactly one reference to the tensor of each
resident datum that owns storage, and derives everything else on demand
(:mod:`memopt.runtime.program`): an alias (view) is re-run from its root
and cached *under its root* — dropped with it, so a freed datum's storage
really goes; parameters and buffers are the module's own tensors.

**Its own accounting** (``resident``): Σ over the resident data of the
bytes of their tensor's untyped storage — the quantity the instance's data
sizes stand for (the importer's sizes are storage bytes). At a compute it
adds the outputs the task allocates beyond its data (an output nobody
reads: the instance's workspace) while the task runs. An independent
measure (:mod:`memopt.runtime.measure`) checks it.

Complexity: O(1) per event, plus the cost of running the nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memopt.runtime.program import NodePlan, StepGraph


def storage_bytes(x: Any) -> int:
    """Bytes of the untyped storage behind tensor ``x``."""
    return x.untyped_storage().nbytes()


class FastMemory:
    """The resident data's tensors and views, and the bytes they hold (see the module docstring)."""

    def __init__(self, sg: StepGraph, params: dict[str, Any], device: Any):
        import torch

        self.sg = sg
        self.params = params
        self.device = device
        self.tensor_type = torch.Tensor
        self.fx_node = torch.fx.Node
        self.map_arg = torch.fx.node.map_arg
        self.fast: dict[str, Any] = {}        # datum owning storage -> its tensor
        self.bytes_of: dict[str, int] = {}
        self.views: dict[str, Any] = {}       # alias tensor id -> tensor, cached under its root
        self.views_of: dict[str, list[str]] = {}
        self.scalars: dict[str, Any] = {}     # values of nodes without tensors
        self.resident = 0
        self.virtual = 0                      # bytes of the resident data no tensor stands for (the executor's)
        self.kwargs = sg.kwargs_on(device)

    # ------------------------------------------------------------------ values
    def value(self, t: str) -> Any:
        """The tensor of id ``t`` (a resident datum, a parameter, or an alias derived from its root)."""
        x = self.fast.get(t)
        if x is not None:
            return x
        x = self.views.get(t)
        if x is not None:
            return x
        if t.startswith("param:"):
            return self.params[t[6:]]
        rec = self.sg.tensor.get(t)
        if rec is None or rec.alias_of is None:
            raise RuntimeError(f"{self.sg.name}: datum {t!r} is not in fast memory")
        name, _ = StepGraph.node_of(t)
        np_ = self.sg.nodes[name]
        if np_.inplace_arg is not None:  # an in-place op returns the tensor it wrote
            x = self.arg(np_.inplace_arg)
            self._cache_view(t, x)
            return x
        self.run_view(np_)
        return self.views[t]

    def arg(self, a: Any) -> Any:
        """The value of an fx argument (a node, or a structure of nodes and constants)."""
        return self.map_arg(a, self._node_value)

    def _node_value(self, n: Any) -> Any:
        ids = self.sg.ids.get(n.name)
        if isinstance(ids, str):
            return self.value(ids)
        if ids is None:
            if n.name not in self.scalars:
                np_ = self.sg.nodes[n.name]
                self.scalars[n.name] = np_.target(*self.arg(np_.args), **self.arg(self.kwargs[n.name]))
            return self.scalars[n.name]
        return _rebuild(ids, self.value)

    def run_view(self, np_: NodePlan) -> None:
        """Run an alias node again from its (resident) base; cache its tensors under their roots.

        A view is (storage, dtype, sizes, strides, offset): once an alias node has run, the layout of each
        of its views within its root's storage is kept (``StepGraph.view_layout``), and later the views
        are rebuilt by one ``as_strided`` on the root — the same tensor, without the chain of view ops and
        their arguments (a view freed with its root and rebuilt after a reload or a recomputation cost
        the runtime 10-25 µs, more than the transfer itself on small networks). A node whose outputs are
        not plain strided views of their root's storage (another dtype, conjugate or negative bit) runs
        its op every time.
        """
        layout = self.sg.view_layout.get(np_.name, _UNSEEN)
        if layout:  # (not _UNSEEN, an empty list)
            roots = [self._root_tensor(root) for _, root, _, _, _, _ in layout]
            # the layout holds for its root's layout only (a parameter made non-contiguous between steps)
            if all(r is not None and (r.shape, r.stride(), r.storage_offset()) == at
                   for (_, _, _, _, _, at), r in zip(layout, roots)):
                for (tid, _, size, stride, offset, _), r in zip(layout, roots):
                    self._cache_view(tid, r.as_strided(size, stride, offset))
                return
        val = np_.target(*self.arg(np_.args), **self.arg(self.kwargs[np_.name]))
        seen = []
        for tid, x in _leaves(np_.ids, val, self.tensor_type):
            rec = self.sg.tensor.get(tid)
            if rec is None or rec.alias_of is None:
                raise RuntimeError(f"{self.sg.name}: node {np_.name} allocates {tid!r}; it is no view")
            self._cache_view(tid, x)
            seen.append((tid, x))
        if layout is not None:  # first run, or a root with another layout: (re)record; None: not plain views
            self.sg.view_layout[np_.name] = self._layout(seen)

    def _root_tensor(self, root: str) -> Any:
        return self.params[root[6:]] if root.startswith("param:") else self.fast.get(root)

    def _layout(self, views: list[tuple[str, Any]]) -> list[tuple] | None:
        """Each view's (id, root, sizes, strides, offset, the root's (sizes, strides, offset)), or ``None``
        when one is not a plain strided view of its root's storage (``as_strided`` on the root would not
        give the same tensor)."""
        out = []
        for tid, x in views:
            root = self.sg.root(tid)
            r = self._root_tensor(root)
            if (r is None or x.dtype != r.dtype or x.device != r.device or x.layout != r.layout
                    or x.is_conj() or x.is_neg() or r.is_conj() or r.is_neg()
                    or x.untyped_storage().data_ptr() != r.untyped_storage().data_ptr()):
                return None
            out.append((tid, root, tuple(x.shape), tuple(x.stride()), x.storage_offset(),
                        (r.shape, r.stride(), r.storage_offset())))
        return out

    def _cache_view(self, tid: str, x: Any) -> None:
        root = self.sg.root(tid)
        if root.startswith("param:"):
            self.views[tid] = x
            return
        if root not in self.fast:
            raise RuntimeError(f"{self.sg.name}: view {tid!r} of {root!r}, which is not in fast memory")
        self.views[tid] = x
        self.views_of.setdefault(root, []).append(tid)

    # ---------------------------------------------------------------- compute
    def run(self, np_: NodePlan, guard: Callable[[NodePlan], Any] | None = None) -> int:
        """Run one node; keep its data; return the bytes of the outputs it allocated that no one reads.

        Those transient outputs are dropped on return (the caller measured
        nothing yet: :meth:`held` tells what is held during the call).
        """
        args = self.arg(np_.args)
        kwargs = self.arg(self.kwargs[np_.name])
        if guard is not None:
            with guard(np_):
                val = np_.target(*args, **kwargs)
        else:
            val = np_.target(*args, **kwargs)
        del args, kwargs
        transient = 0
        for tid, x in _leaves(np_.ids, val, self.tensor_type):
            rec = self.sg.tensor.get(tid)
            if rec is None:
                continue  # a tensor the importer did not record (never read)
            if rec.alias_of is not None:
                self._cache_view(tid, x)
            elif tid in self.sg.datum_ids:
                self.put(tid, x)
            else:
                transient += storage_bytes(x)
        return transient

    def put(self, d: str, x: Any) -> None:
        """``d`` becomes resident with tensor ``x`` (replacing a stale copy)."""
        if d in self.fast:
            self.drop(d)
        self.fast[d] = x
        n = storage_bytes(x)
        self.bytes_of[d] = n
        self.resident += n

    def drop(self, d: str) -> None:
        """Free datum ``d``: its tensor and every view cached under it (an alias datum: its view)."""
        x = self.fast.pop(d, None)
        if x is not None:
            self.resident -= self.bytes_of.pop(d)
            for v in self.views_of.pop(d, ()):
                self.views.pop(v, None)
            del x
        else:
            self.views.pop(d, None)

    def clear(self) -> None:
        self.fast.clear()
        self.bytes_of.clear()
        self.views.clear()
        self.views_of.clear()
        self.scalars.clear()
        self.resident = 0
        self.virtual = 0


_UNSEEN: list = []  # a view node that has not run yet (``StepGraph.view_layout``)


def _leaves(ids: Any, val: Any, tensor_type: type):
    """(tensor id, tensor) pairs of a node's value, following its id structure."""
    if isinstance(ids, str):
        if isinstance(val, tensor_type):
            yield ids, val
        return
    if isinstance(ids, tuple):
        vals = list(val.values()) if isinstance(val, dict) else val
        for i, v in zip(ids, vals):
            if i is not None:
                yield from _leaves(i, v, tensor_type)


def _rebuild(ids: Any, value: Callable[[str], Any]) -> Any:
    if isinstance(ids, str):
        return value(ids)
    if isinstance(ids, tuple):
        return tuple(_rebuild(i, value) for i in ids)
    return None


__all__ = ["FastMemory", "storage_bytes"]
