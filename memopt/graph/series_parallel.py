"""Series-parallel recognition and decomposition of a DAG.

A *two-terminal series-parallel* (TTSP) DAG is an arc s -> t, or the
series composition (the sink of one is the source of the next) or the
parallel composition (shared source and sink) of two TTSP DAGs. It is
recognised by the edge reductions of Valdes, Tarjan & Lawler (1982):

- *series*: a node x (not a terminal) with exactly one in-arc u -> x and
  one out-arc x -> y becomes the arc u -> y;
- *parallel*: several arcs u -> y become one.

The DAG is TTSP iff the reductions end with the single arc s -> t. To
accept graphs with several sources or sinks we add a virtual source
``SOURCE`` before every source and a virtual sink ``SINK`` after every sink.

Each arc carries an *expression* of the nodes it absorbed:

- ``None``: an original arc (no node inside);
- ``("s", e1, x, e2)``: the nodes of e1, then x, then those of e2;
- ``("p", [e1, e2, ...])``: the nodes of each branch, unordered.

Where the reductions stop, each remaining arc u -> y with a non-empty
expression is a *series-parallel region*: its nodes are reached only from
u and lead only to y, so every other node is before u, after y or
independent of all of them (they form a module of the order).
O(n + e) with hashing.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any

from memopt.graph.blocks import Block, merge_chains, push_normalized

SOURCE = "<source>"
SINK = "<sink>"

Expr = Any  # None | ("s", Expr, node, Expr) | ("p", list[Expr])


def tt_reduce(nodes: Iterable[Hashable], succs: Callable[[Hashable], Iterable[Hashable]],
              terminals: bool = True) -> dict[tuple[Hashable, Hashable], Expr]:
    """Apply series and parallel reductions to a fixpoint.

    ``succs(v)`` lists the successors of node v. With ``terminals`` the
    virtual ``SOURCE``/``SINK`` are added. Returns the remaining arcs
    ``{(u, y): expression}``; the DAG is TTSP iff that is the single arc
    ``(SOURCE, SINK)`` (with terminals).
    """
    nodes = list(nodes)
    out: dict[Hashable, set] = {v: set() for v in nodes}
    inn: dict[Hashable, set] = {v: set() for v in nodes}
    expr: dict[tuple, Expr] = {}
    for u in nodes:
        for v in succs(u):
            out[u].add(v)
            inn[v].add(u)
            expr[(u, v)] = None
    if terminals:
        out[SOURCE] = set()
        inn[SOURCE] = set()
        out[SINK] = set()
        inn[SINK] = set()
        for v in nodes:
            if not inn[v]:
                out[SOURCE].add(v)
                inn[v].add(SOURCE)
                expr[(SOURCE, v)] = None
        for v in nodes:
            if not out[v]:
                out[v].add(SINK)
                inn[SINK].add(v)
                expr[(v, SINK)] = None
    stack = [v for v in nodes if len(inn[v]) == 1 and len(out[v]) == 1]
    while stack:
        x = stack.pop()
        if x not in out or len(inn[x]) != 1 or len(out[x]) != 1:
            continue
        (u,) = inn[x]
        (y,) = out[x]
        if u == y:  # cannot happen in a DAG
            continue
        e = ("s", expr.pop((u, x)), x, expr.pop((x, y)))
        out[u].discard(x)
        inn[y].discard(x)
        del out[x], inn[x]
        if (u, y) in expr:
            expr[(u, y)] = _parallel(expr[(u, y)], e)
            # u lost an out-arc and y an in-arc: they may now be series nodes
            for z in (u, y):
                if z in out and len(inn[z]) == 1 and len(out[z]) == 1:
                    stack.append(z)
        else:
            expr[(u, y)] = e
            out[u].add(y)
            inn[y].add(u)
    return expr


def _parallel(a: Expr, b: Expr) -> Expr:
    if a is None:
        return b
    if b is None:
        return a
    la = a[1] if a[0] == "p" else [a]
    lb = b[1] if b[0] == "p" else [b]
    return ("p", la + lb)


def is_series_parallel(arcs: dict[tuple, Expr]) -> bool:
    return len(arcs) == 1 and (SOURCE, SINK) in arcs


def expr_nodes(e: Expr) -> Iterator[Hashable]:
    """The nodes of an expression (series order; branches one after the other)."""
    stack = [e]
    while stack:
        x = stack.pop()
        if x is None:
            continue
        if x[0] == "s":
            stack.append(x[3])
            stack.append(x[2:3])
            stack.append(x[1])
        elif x[0] == "p":
            stack.extend(reversed(x[1]))
        else:  # a 1-tuple wrapping a node
            yield x[0]


def expr_chain(e: Expr, block_of: Callable[[Hashable], Block]) -> list[Block]:
    """The normal block chain of an expression (Liu / Abdel-Wahab–Kameda).

    Series: normalise e1 + [x] + e2; parallel: merge the branches' chains.
    Iterative post-order, O(N log N) for N nodes in practice.
    """
    results: list[list[Block]] = []
    stack: list[tuple[Expr, bool]] = [(e, False)]
    while stack:
        x, done = stack.pop()
        if x is None:
            results.append([])
            continue
        if x[0] == "s":
            if not done:
                stack.append((x, True))
                stack.append((x[3], False))
                stack.append((x[1], False))
                continue
            c2 = results.pop()
            c1 = results.pop()
            push_normalized(c1, block_of(x[2]))
            for k, b in enumerate(c2):
                before = len(c1)
                push_normalized(c1, b)
                if len(c1) == before + 1:
                    # b was not glued, so the rest of the normal chain c2 follows as is
                    c1.extend(c2[k + 1:])
                    break
            results.append(c1)
        else:
            subs = x[1]
            if not done:
                stack.append((x, True))
                for s in reversed(subs):
                    stack.append((s, False))
                continue
            k = len(subs)
            chains = results[-k:]
            del results[-k:]
            results.append(merge_chains(chains))
    assert len(results) == 1
    return results[0]


def sp_decomposition(n: int, succs: Sequence[Sequence[int]]) -> Expr | None:
    """The expression of the whole DAG on nodes 0..n-1 (virtual terminals), or None if not TTSP."""
    arcs = tt_reduce(range(n), succs.__getitem__)
    if not is_series_parallel(arcs):
        return None
    return arcs[(SOURCE, SINK)]


def sp_obstruction(arcs: dict[tuple, Expr]) -> str:
    """A short description of where the reductions got stuck (for error messages)."""
    nodes = set()
    for u, v in arcs:
        nodes.add(u)
        nodes.add(v)
    nodes.discard(SOURCE)
    nodes.discard(SINK)
    return f"the series and parallel reductions stop with {len(arcs)} arcs between {len(nodes)} tasks"


__all__ = ["SOURCE", "SINK", "tt_reduce", "is_series_parallel", "expr_nodes", "expr_chain", "sp_decomposition",
           "sp_obstruction"]
