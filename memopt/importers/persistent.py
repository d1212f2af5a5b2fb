"""Persistent tensors exist when the step starts: the order between their sources and the other tasks.

A training step's parameters, buffers and optimizer states are data produced
by source tasks (time 0, not recomputable) that must run before every task
that allocates — else a schedule could hold, at some compute, less than the
step really holds. Each source writes a size-0 token read by every graph
input (:func:`token_readers`); an op that allocates and follows no graph
input (GPT-2's position embedding, found by :func:`unordered_allocating`)
reads the last source's token, which reads the others'. Used by the PyTorch
importer (:mod:`memopt.importers.nn`) and the instance-level optimizer step
(:mod:`memopt.importers.optimizer`).

Complexity: O(n + e).
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from typing import Any

from memopt.core.instance import Task


def unordered_allocating(kept: Sequence[Any], tasks: Sequence[Task], datum_of: Sequence[tuple[str, str, int]],
                         consumers: Mapping[str, Sequence[str]], starters: Sequence[str]) -> list[str]:
    """The ops of ``kept`` (the importer's ops) that are no persistent source, follow no starter and
    allocate (an output or workspace)."""
    succs: dict[str, list[str]] = {}
    alloc = {t.id for t in tasks if t.workspace}
    for did, prod, size in datum_of:
        succs.setdefault(prod, []).extend(consumers[did])
        if size:
            alloc.add(prod)
    return late_allocating([op.id for op in kept if op.kind != "state"], succs, alloc, starters)


def late_allocating(candidates: Sequence[str], succs: Mapping[str, Sequence[str]], allocates: Container[str],
                    starters: Sequence[str]) -> list[str]:
    """The ``candidates`` that allocate and that no starter precedes (they may run before every input)."""
    seen = reached(starters, succs)
    return [x for x in candidates if x not in seen and x in allocates]


def reached(starts: Sequence[str], succs: Mapping[str, Sequence[str]]) -> set[str]:
    """The tasks ``starts`` precede, themselves included (``succs``: task -> its successors). O(n + e)."""
    seen = set(starts)
    stack = list(starts)
    while stack:
        for w in succs.get(stack.pop(), ()):
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return seen


def token_readers(sources: Sequence[str], starters: Sequence[str], late: Sequence[str]) -> list[tuple[str, ...]]:
    """The readers of each persistent source's size-0 token, so that the sources run before every op.

    Every starter (graph input) reads every token. When ``late`` ops (they allocate and follow no starter)
    exist, the last source reads the others' tokens and the late ops read the last one's: one size-0 datum
    where they would read hundreds (a token read by an op recomputed late lives through the whole step);
    the order of the sources among themselves changes no peak.
    """
    out = []
    for k, _ in enumerate(sources):
        readers = tuple(starters)
        if late:
            readers += tuple(late) if k == len(sources) - 1 else (sources[-1],)
        out.append(readers)
    return out


__all__ = ["late_allocating", "reached", "token_readers", "unordered_allocating"]
