"""Release relaxation: bounds for trees and series-parallel graphs whose tensors have several readers.

Liu's and the series-parallel algorithm need every datum's release task to
be fixed (:mod:`memopt.graph.release`). A tensor read by several
parallel branches (a fork in tensor form) is freed by whichever reader runs
last. The *release relaxation* (ours) picks one reader J(d) of each such
datum and pretends d is freed right after J(d):

- in every order σ, d is then resident during a sub-interval of its true
  lifetime, so the relaxed peak model_J(σ) <= peak(σ); hence the optimum of
  the relaxed instance, which has fixed effects and is solved exactly by
  Liu's or the series-parallel algorithm, is a **lower bound** on the
  optimal peak;
- the optimal order σ_J of the relaxed instance is a valid order of the true
  instance; its evaluated peak is an **upper bound**;
- if J(d) is the reader that actually runs last in σ_J for every d, then
  model_J(σ_J) = peak(σ_J), and σ_J is **optimal** (its peak equals a lower
  bound).

:func:`release_relaxation` iterates J ← the actual last readers of σ_J (a
fixed point proves optimality), keeping the best bound and order. Each round
is one O(n log n) solve on the same decomposition; a few restarts from other
choices (first reader, random readers) often find a better order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from memopt.core.deadline import Deadline, as_deadline
from memopt.core.evaluate import schedule_peak
from memopt.core.instance import Instance
from memopt.graph.blocks import Block, chain_peak, flatten
from memopt.graph.release import AMBIGUOUS, release_tasks, task_reachability


@dataclass
class RelaxationResult:
    """Best lower bound, best order (and its evaluated peak), whether it is proven optimal."""

    lower: int
    order: list[int]
    peak: int
    optimal: bool
    rounds: int
    ambiguous: int
    structure: str


def fixed_structure(inst: Instance) -> tuple[str, Callable[[list[int], list[int]], list[Block]]] | None:
    """The exact chain solver for the graph's shape: a forest (Liu) or series-parallel; else None."""
    from memopt.exact.liu import forest_chain, tree_kind
    from memopt.exact.series_parallel import sp_chain, sp_expression

    kind = tree_kind(inst)
    if kind is not None:
        return f"{kind}-forest", lambda p, i: forest_chain(inst, p, i)
    expr = sp_expression(inst)
    if expr is not None:
        return "series-parallel", lambda p, i: sp_chain(expr, p, i)
    return None


def release_relaxation(inst: Instance, *, rounds: int = 8, restarts: int = 4, deadline: Deadline | float | None = None,
                       release: list[int] | None = None, seed: int = 0) -> RelaxationResult | None:
    """Lower bound and order by the release relaxation; None if the graph is neither a forest nor SP.

    Starts from J(d) = the reader last in a topological order, then (time
    permitting, up to ``restarts`` times) from the first reader and from
    random readers; each start iterates J ← the actual last readers for up to
    ``rounds`` solves or until a fixed point (which proves optimality).
    Also exact (and ``optimal``) when no datum is ambiguous. Deterministic
    for a given ``seed``.
    """
    import random

    found = fixed_structure(inst)
    if found is None:
        return None
    name, solve = found
    reach = task_reachability(inst)
    release = release if release is not None else release_tasks(inst, reach)
    size = inst.size
    amb = [j for j, r in enumerate(release) if r == AMBIGUOUS and size[j] > 0]
    p = [inst.output_size[v] + inst.workspace[v] for v in range(inst.n)]
    base = list(inst.output_size)
    for j, r in enumerate(release):
        if r >= 0:
            base[r] -= size[j]
    pos = reach.pos
    rng = random.Random(seed)
    starts = [lambda: {j: max(inst.consumers[j], key=pos.__getitem__) for j in amb},
              lambda: {j: min(inst.consumers[j], key=pos.__getitem__) for j in amb}]
    starts += [lambda: {j: rng.choice(inst.consumers[j]) for j in amb}] * max(0, restarts - 1)
    best: RelaxationResult | None = None
    solves = 0
    seen: set[tuple[int, ...]] = set()
    for start in starts[: 1 + max(0, restarts)] if amb else starts[:1]:
        choice = start()
        for _ in range(max(1, rounds)):
            key = tuple(choice[j] for j in amb)
            if key in seen:
                break
            seen.add(key)
            i = list(base)
            for j, r in choice.items():
                i[r] -= size[j]
            chain = solve(p, i)
            solves += 1
            lower = chain_peak(chain)
            order: list[int] = []
            for b in chain:
                order.extend(flatten(b.seq))
            peak = schedule_peak(inst, order)
            if best is None:
                best = RelaxationResult(lower, order, peak, False, 1, len(amb), name)
            else:
                best.lower = max(best.lower, lower)
                if peak < best.peak:
                    best.order, best.peak = order, peak
            best.rounds = solves
            if best.peak <= best.lower:
                best.optimal = True
                return best
            if as_deadline(deadline).expired():
                return best
            at = [0] * inst.n
            for t, v in enumerate(order):
                at[v] = t
            new = {j: max(inst.consumers[j], key=at.__getitem__) for j in amb}
            if new == choice:
                break
            choice = new
    return best


__all__ = ["release_relaxation", "RelaxationResult", "fixed_structure"]
