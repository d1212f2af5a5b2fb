"""Reachability bitsets of a DAG: the descendants and ancestors of every node as Python ints.

For nodes ``0..n-1`` with successor lists ``succs`` (or predecessor lists
``preds``) and a topological ``order`` of them:

- bit ``w`` of ``descendant_masks(succs, order)[v]`` is set iff there is a
  path ``v -> ... -> w`` of length >= 1 (the *strict* descendants: ``v``
  itself is never included);
- bit ``u`` of ``ancestor_masks(preds, order)[v]`` is set iff there is a
  path ``u -> ... -> v`` of length >= 1 (the strict ancestors).

A caller that wants ``v`` included ORs in ``1 << v``. The masks do not
depend on which topological order is given.

Both are built in one pass (descendants in reverse topological order,
ancestors in topological order): every arc ORs one mask of up to n bits,
so O(n + e·n/64) word operations, and up to n²/8 bytes of memory (a
chain). Callers bound n (typically a few thousand nodes) where that matters.

:attr:`memopt.instance.Instance.descendant_masks` and
:attr:`~memopt.instance.Instance.ancestor_masks` are these masks for the
task graph of an instance, computed once per instance.
"""

from __future__ import annotations

from typing import Iterable, Sequence


def descendant_masks(succs: Sequence[Iterable[int]], order: Sequence[int]) -> list[int]:
    """Bitmask of the strict descendants of every node (``order``: a topological order of all nodes)."""
    desc = [0] * len(succs)
    for v in reversed(order):
        m = 0
        for w in succs[v]:
            m |= desc[w] | (1 << w)
        desc[v] = m
    return desc


def ancestor_masks(preds: Sequence[Iterable[int]], order: Sequence[int]) -> list[int]:
    """Bitmask of the strict ancestors of every node (``order``: a topological order of all nodes)."""
    anc = [0] * len(preds)
    for v in order:
        m = 0
        for u in preds[v]:
            m |= anc[u] | (1 << u)
        anc[v] = m
    return anc


__all__ = ["descendant_masks", "ancestor_masks"]
