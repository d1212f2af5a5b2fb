"""Reachability bitsets of a DAG, and the data each task finds still needed: one builder each.

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

:func:`task_descendants` and :func:`task_ancestors` are these masks for the
task graph of an instance, computed once per instance
(:meth:`memopt.core.instance.Instance.memo`, not pickled).

:func:`needed_at` is the one builder of "which data are still needed when
task v runs, whatever the order": datum d is, for every task v that is a
descendant of its producer and an ancestor-or-self of one of its readers
(every descendant of its producer, for a result). The lifetime and
retention bounds (:mod:`memopt.core.bounds`) and the down-set search's
lookahead (:mod:`memopt.exact.lookahead`) are sums over these sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memopt.core.instance import Instance


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


def iter_bits(mask: int) -> Iterator[int]:
    """The positions of the set bits of ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def task_descendants(inst: Instance) -> tuple[int, ...]:
    """Per task v, the bitmask of its strict descendants (computed once per instance)."""
    return inst.memo("descendant_masks",
                     lambda: tuple(descendant_masks(inst.succs, inst.topological_order)))


def task_ancestors(inst: Instance) -> tuple[int, ...]:
    """Per task v, the bitmask of its strict ancestors (computed once per instance)."""
    return inst.memo("ancestor_masks", lambda: tuple(ancestor_masks(inst.preds, inst.topological_order)))


def readers_mask(inst: Instance, d: int) -> int:
    """Tasks at or before some reader of datum ``d`` (every task for a result, which the end reads)."""
    cons = inst.consumers[d]
    if not cons:
        return (1 << inst.n) - 1
    anc = task_ancestors(inst)
    who = 0
    for c in cons:
        who |= anc[c] | (1 << c)
    return who


def needed_at(inst: Instance, d: int) -> int:
    """The tasks v at whose compute datum ``d`` is resident in every pure schedule.

    ``d`` was produced before v (v descends from its producer) and is read at
    v or later, or is a result. O(|C(d)| · n/64).
    """
    return task_descendants(inst)[inst.producer[d]] & readers_mask(inst, d)


__all__ = ["ancestor_masks", "descendant_masks", "iter_bits", "needed_at", "readers_mask", "task_ancestors",
           "task_descendants"]
