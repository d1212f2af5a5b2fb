"""The (peak, impact) algebra of sequences with a fixed memory effect.

A *block* is a sequence of tasks run back to back whose memory effect does
not depend on what else has run (see :mod:`memopt.graph.release`). It is
summarised by two numbers relative to the memory resident when it starts:

- ``peak``: the largest memory above that level during the block,
- ``impact``: the change of resident memory once it is done.

Composition (Fradet, Girault & Honorat, LCTES 2023; Liu 1987's hills and
valleys): running A then B is the block
``(max(A.peak, A.impact + B.peak), A.impact + B.impact)``.

**Order of independent blocks.** For two blocks A, B,
``peak(AB) <= peak(BA)`` when ``key(A) <= key(B)`` with
``key = (0, peak)`` if ``impact <= 0`` and ``(1, impact - peak)`` otherwise:
blocks that free memory first, by increasing peak; then blocks that grow
memory, by decreasing ``peak - impact``. (Proof: if i(A) <= 0 < i(B),
max(pA, iA + pB) <= max(pB, iB + pA) term by term; if both <= 0 and
pA <= pB, max(pA, iA + pB) <= pB; if both > 0 and pA - iA >= pB - iB,
iA + pB <= pA + iB and pA <= iB + pA.) The key is a total preorder, so
sorting a set of independent blocks by it is optimal (adjacent exchanges).

**Chains.** In a chain (blocks that must run in this order) a block Y right
after X with ``key(Y) < key(X)`` can be glued to X: some optimal schedule
runs them back to back (whatever Z ran between them can move before X if
key(Z) <= key(X), else after Y, by the exchange above). Gluing until the
keys are non-decreasing gives the *normal form* of the chain
(:func:`push_normalized`); several normal chains are merged optimally by a
stable sort on the key (:func:`merge_chains`). This is Liu's (1987)
combination of hill-valley segments, in the form of Abdel-Wahab & Kameda
(1978) for series-parallel precedence.

Task sequences are kept as ropes (nested pairs) so gluing is O(1);
:func:`flatten` lists them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any


class Block:
    """A sequence with a fixed memory effect: ``peak``, ``impact`` and its items (a rope)."""

    __slots__ = ("peak", "impact", "seq")

    def __init__(self, peak: int, impact: int, seq: Any):
        self.peak = peak
        self.impact = impact
        self.seq = seq

    def key(self) -> tuple[int, int]:
        return (0, self.peak) if self.impact <= 0 else (1, self.impact - self.peak)

    def __repr__(self) -> str:
        return f"Block(peak={self.peak}, impact={self.impact}, items={list(flatten(self.seq))})"


def block_key(b: Block) -> tuple[int, int]:
    """The exchange key: blocks with impact <= 0 by increasing peak, then by decreasing peak - impact."""
    return (0, b.peak) if b.impact <= 0 else (1, b.impact - b.peak)


def compose(a: Block, b: Block) -> Block:
    """``a`` then ``b`` as one block."""
    return Block(max(a.peak, a.impact + b.peak), a.impact + b.impact, (a.seq, b.seq))


def push_normalized(chain: list[Block], b: Block) -> None:
    """Append ``b`` to the normal chain ``chain``, gluing it to blocks with a larger key. Amortised O(1)."""
    kb = block_key(b)
    while chain and kb < block_key(chain[-1]):
        b = compose(chain.pop(), b)
        kb = block_key(b)
    chain.append(b)


def normalize(blocks: Iterable[Block]) -> list[Block]:
    """The normal form of a chain of blocks (non-decreasing keys). O(len)."""
    out: list[Block] = []
    for b in blocks:
        push_normalized(out, b)
    return out


def merge_chains(chains: list[list[Block]]) -> list[Block]:
    """Optimal interleaving of independent normal chains: a stable merge on the key. O(N log k)."""
    chains = [c for c in chains if c]
    if not chains:
        return []
    if len(chains) == 1:
        return chains[0]
    if len(chains) == 2:
        a, b = chains
        out: list[Block] = []
        i = j = 0
        ka = [block_key(x) for x in a]
        kb = [block_key(x) for x in b]
        while i < len(a) and j < len(b):
            if kb[j] < ka[i]:
                out.append(b[j])
                j += 1
            else:
                out.append(a[i])
                i += 1
        out.extend(a[i:])
        out.extend(b[j:])
        return out
    return list(heapq.merge(*chains, key=block_key))


def chain_peak(chain: Iterable[Block], start: int = 0) -> int:
    """Peak of running the blocks in order from resident memory ``start``."""
    level = start
    peak = start
    for b in chain:
        peak = max(peak, level + b.peak)
        level += b.impact
    return peak


def flatten(seq: Any) -> Iterator[Any]:
    """The items of a rope (an item, or a pair of ropes), left to right. Iterative."""
    stack = [seq]
    while stack:
        s = stack.pop()
        if isinstance(s, tuple):
            stack.append(s[1])
            stack.append(s[0])
        elif s is not None:
            yield s


__all__ = ["Block", "block_key", "compose", "push_normalized", "normalize", "merge_chains", "chain_peak",
           "flatten"]
