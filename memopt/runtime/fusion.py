"""In-place chains fused into one task, so that a datum is never mutated after it exists.

The data model (SPEC §1) has immutable data: offloading ``d`` copies it,
reloading it brings that copy back. An ATen graph may write a storage in
place after its producer ran: dropout is traced as ``empty_like`` →
``bernoulli_`` → ``div_`` (each in place on the same storage), and the
PyTorch importer records the writers' outputs as aliases of the storage's
first tensor. A plan that offloaded that storage between its producer and
its last writer would bring back a stale value.

:func:`fuse_inplace` merges every such *chain* — the op that allocates a
storage and every op that writes it in place (:attr:`Op.inplace`) — into one
op, placed where the chain's last writer was: the datum exists only once it
is final. The merged op keeps the first member's id; ``groups`` maps it to
its members' ids (fx node names) in traced order, which the runtime runs one
after the other for that task.

Fusing is refused (:class:`MemoptError`) when an op outside the chain reads
the storage between its producer and its last writer (it would need the
value before the write: a write-after-read that one task cannot express).

Complexity: O(ops + Σ inputs · α) (union-find over the ops).
"""

from __future__ import annotations

from memopt.core.errors import MemoptError
from memopt.importers.nn import NNGraph, Op


def fuse_inplace(graph: NNGraph) -> tuple[NNGraph, dict[str, list[str]]]:
    """``graph`` with each in-place chain merged into one op, and the merged ops' members.

    Returns the new graph (same ``outputs``, ``params``, ``meta``,
    ``traced``) and ``{merged op id: [member op ids in traced order]}``
    (empty when nothing was fused).
    """
    ops = graph.ops
    index = {op.id: k for k, op in enumerate(ops)}
    producer: dict[str, Op] = {}
    alias_of: dict[str, str | None] = {}
    for op in ops:
        for t in op.outputs:
            producer[t.id] = op
            alias_of[t.id] = t.alias_of

    def root(x: str) -> str:
        seen = 0
        while alias_of.get(x) is not None and seen <= len(alias_of):
            x = alias_of[x]  # type: ignore[assignment]
            seen += 1
        return x

    parent = {op.id: op.id for op in ops}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for op in ops:
        if not op.inplace:
            continue
        for t in op.outputs:
            if t.alias_of is None:
                continue
            r = root(t.id)
            if r in producer:
                a, b = find(op.id), find(producer[r].id)
                if a != b:
                    parent[max(a, b, key=index.__getitem__)] = min(a, b, key=index.__getitem__)

    members: dict[str, list[Op]] = {}
    for op in ops:
        members.setdefault(find(op.id), []).append(op)
    chains = {k: v for k, v in members.items() if len(v) > 1}
    if not chains:
        return graph, {}

    merged_at: dict[int, Op] = {}   # index of the chain's last member -> merged op
    dropped: set[str] = set()
    groups: dict[str, list[str]] = {}
    for chain in chains.values():
        first, last = index[chain[0].id], index[chain[-1].id]
        ids = {m.id for m in chain}
        outs = {t.id for m in chain for t in m.outputs}
        roots = {root(x) for x in outs}
        for op in ops[first + 1:last]:
            if op.id not in ids and any(x in outs or root(x) in roots for x in op.inputs):
                raise MemoptError(
                    f"{graph.name}: op {op.id!r} reads the storage of {chain[0].id!r} before the in-place op "
                    f"{chain[-1].id!r} writes it: this graph cannot be run by a plan (write after read)")
        inputs: list[str] = []
        for m in chain:
            for x in m.inputs:
                if x not in outs and x not in inputs:
                    inputs.append(x)
        merged = Op(chain[0].id, inputs, [t for m in chain for t in m.outputs],
                    op="+".join(m.op for m in chain), kind="op", flops=sum(m.flops for m in chain),
                    recompute=False, workspace=max(m.workspace for m in chain), inplace=True)
        merged_at[last] = merged
        dropped |= ids
        groups[merged.id] = [m.id for m in chain]
    new_ops: list[Op] = []
    for k, op in enumerate(ops):
        if k in merged_at:
            new_ops.append(merged_at[k])
        elif op.id not in dropped:
            new_ops.append(op)
    out = NNGraph(graph.name, new_ops, list(graph.outputs), dict(graph.params), dict(graph.meta))
    out.traced = graph.traced
    return out, groups


__all__ = ["fuse_inplace"]
