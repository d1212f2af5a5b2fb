"""Compute sequences: the memory of a sequence of computes, and the plan it makes.

A *compute sequence* lists tasks in the order they run, a task as often as
it runs. With every datum freed right after its last read before the
next computation of its producer (or right after its computation when
nothing reads it: *liveness frees*), a sequence is a SPEC plan — one
compute per stage, its frees after it (:func:`plan_from_sequence`). Every
other placement of the frees holds each datum over a superset of those
intervals, so no point of the liveness plan uses more memory (a
recomputation of a task whose output is still held there counts that output
as new here, exactly what it gives back by being freed earlier).

:func:`simulate` measures a piece of a sequence (one operation of the chain
DP) on top of data already resident (*external*: never freed by the
piece, not counted): the memory of the data the piece makes at every
compute, which data it leaves, and its time — in the evaluator's terms
(outputs already resident are not new; workspace counts at the compute).
O(length + Σ inputs and outputs of the computes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from memopt.core.instance import Instance
from memopt.core.plan import COMPUTE, FREE, Event, Plan


@dataclass
class Piece:
    """What :func:`simulate` measures: ``peak`` above the external data, ``time``, the data left (``end``)."""

    peak: int
    time: int
    end: frozenset[int]
    frees: list[list[int]]  # frees[i]: data freed right after the i-th compute


class SequenceError(ValueError):
    """A compute whose input is not resident (a bug of whoever built the sequence)."""


def _liveness(inst: Instance, seq: Sequence[int], keep: set[int], fixed: set[int]) -> list[list[int]]:
    """frees[i]: the data (not ``fixed``) whose last read before their next computation is at i."""
    n = len(seq)
    frees: list[list[int]] = [[] for _ in range(n)]
    # backwards: state[d] = "read" (read later before being made again), "made" or absent (end)
    state: dict[int, str] = {}
    for i in range(n - 1, -1, -1):
        v = seq[i]
        # outputs of v: if nothing reads them before they are made again (or the end), free them now
        for d in inst.outputs[v]:
            if d in fixed:
                continue
            nxt = state.get(d)
            if (nxt is None and d not in keep) or nxt == "made":
                frees[i].append(d)
            state[d] = "made"
        for d in inst.inputs[v]:
            if d in fixed:
                continue
            nxt = state.get(d)
            if (nxt is None and d not in keep) or nxt == "made":
                if d not in frees[i]:
                    frees[i].append(d)
            state[d] = "read"
    return frees


def simulate(inst: Instance, seq: Sequence[int], external: Iterable[int] = (), keep: Iterable[int] = (),
             drop: Iterable[int] = (), check: bool = True) -> Piece:
    """Run ``seq`` on top of the ``external`` data (resident before it); keep ``keep`` at the end.

    External data are never freed, except those of ``drop``: freed at their
    last read in the piece (kept when it does not read them). ``peak`` is
    the largest memory at a compute of the data the piece made, less the
    ``drop`` data freed so far, at least 0; ``end`` the data made by the
    piece still resident at its end. Raises :class:`SequenceError` when an
    input is missing (``check``).
    """
    dr = set(drop)
    ext = set(external) | dr
    fixed = ext - dr
    read = {d for v in seq for d in inst.inputs[v]}
    kp = set(keep) | {d for d in dr if d not in read}
    frees = _liveness(inst, seq, kp, fixed)
    size = inst.size
    live: set[int] = set(dr)
    mem = peak = time = 0
    for i, v in enumerate(seq):
        if check:
            for d in inst.inputs[v]:
                if d not in live and d not in fixed:
                    raise SequenceError(f"compute {inst.tasks[v].id!r}: input {inst.data[d].id!r} is not resident")
        new = [d for d in inst.outputs[v] if d not in live and d not in fixed]
        add = sum(size[d] for d in new)
        at = mem + add + inst.workspace[v]
        if at > peak:
            peak = at
        live.update(new)
        mem += add
        time += inst.time[v]
        for d in frees[i]:
            if d in live:
                live.discard(d)
                mem -= size[d]
    return Piece(peak, time, frozenset(live - dr), frees)


def liveness_frees(inst: Instance, seq: Sequence[int]) -> list[list[int]]:
    """``frees[i]``: the data freed right after compute i in the liveness plan of ``seq`` (results kept)."""
    return _liveness(inst, seq, set(inst.results), set())


def plan_from_sequence(inst: Instance, seq: Sequence[int]) -> Plan:
    """The plan of a compute sequence with liveness frees; results are never freed (module docstring)."""
    frees = liveness_frees(inst, seq)
    tids = [t.id for t in inst.tasks]
    dids = [d.id for d in inst.data]
    return Plan([[Event(COMPUTE, tids[v])] + [Event(FREE, dids[d]) for d in frees[i]] for i, v in enumerate(seq)])


def sequence_of(inst: Instance, plan: Plan) -> list[int]:
    """The compute sequence of a plan (task indices, repeats kept)."""
    tix = inst.task_index
    return [tix[e.target] for _, e in plan.events() if e.kind == COMPUTE]


__all__ = ["Piece", "SequenceError", "liveness_frees", "plan_from_sequence", "sequence_of", "simulate"]
