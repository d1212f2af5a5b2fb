"""Random moves of an order of first computations: the planner's neighbourhood beyond its fixed orders.

**Definition.** In a topological order, a task v may go anywhere after its
last predecessor and before its first successor (the tasks that produce
its inputs and read its outputs): the order stays topological. A *move*
takes one task that costs time or touches bytes (moving a view or a free
task changes no plan), drawn with probability proportional to the square
root of the bytes it reads and makes (at least 1), and puts it at its
earliest place, at its latest, or at a uniformly random place in between
(each a third of the time: a whole optimizer step as early as its
gradient allows, a forward task as late as its reader allows, are the
moves that change a plan most). A perturbation is 1-3 moves that change
the order (a draw that leaves its task in place is drawn again).

**Why.** The planner's plan depends much on its order: on ResNet-18
training with Adam at 0.4x the peak (offloading), one configuration's plan
is 107 % over Σ c on the reverse postorder and 149 % on the depth-first
order. The portfolio tries a handful of fixed orders; moves of the best
plan's order, each kept when the rerun is no worse (plateaus included),
go further. 120 perturbations from the best of two configurations on the
baseline orders (ResNet-18, U-Net, ViT with Adam at 0.4x, both
techniques): tasks drawn uniformly 107.35 % -> 98.71 %, 8.56 % -> 8.33 %,
42.52 % -> 42.40 % over Σ c; by the bytes they touch 91.58 %, 8.56 %,
42.43 %; by the square root of those bytes 85.82 %, 8.03 %, 42.09 %.

O(n) per move (the positions of the order), O(log n) to draw the task.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from itertools import accumulate

from memopt.core.instance import Instance

DRAWS = 10
"""A perturbation draws at most this many tasks per move it wants (see :meth:`OrderMoves.perturb`)."""


class OrderMoves:
    """The moves of :mod:`this module <memopt.heuristics.planner.order_moves>` on the instance ``inst``."""

    def __init__(self, inst: Instance) -> None:
        self.preds: list[list[int]] = [sorted({inst.producer[d] for d in inst.inputs[v]}) for v in range(inst.n)]
        self.succs: list[list[int]] = [[] for _ in range(inst.n)]
        for v, ps in enumerate(self.preds):
            for u in ps:
                self.succs[u].append(v)
        touched = [sum(inst.size[d] for d in inst.inputs[v]) + sum(inst.size[d] for d in inst.outputs[v])
                   for v in range(inst.n)]
        self.movable = [v for v in range(inst.n) if inst.time[v] > 0 or touched[v] > 0]
        self._cum = list(accumulate(max(1.0, math.sqrt(touched[v])) for v in self.movable))

    def move(self, order: list[int], rng: random.Random) -> bool:
        """One move of a random movable task, in place; False when the task drawn stayed where it was (no
        other place, or the place drawn is its own)."""
        if not self.movable:
            return False
        v = rng.choices(self.movable, cum_weights=self._cum)[0]
        pos = {u: i for i, u in enumerate(order)}
        i = pos[v]
        lo = max((pos[u] for u in self.preds[v]), default=-1) + 1
        hi = min((pos[w] for w in self.succs[v]), default=len(order)) - 1
        if hi <= lo:
            return False
        x = rng.random()
        j = lo if x < 1 / 3 else hi if x < 2 / 3 else rng.randint(lo, hi)
        if j == i:
            return False
        # (once v is out, the places lo..hi of the others shift by at most one: v lands between the same tasks)
        order.pop(i)
        order.insert(j, v)
        return True

    def perturb(self, order: Sequence[int], rng: random.Random, most: int = 3) -> list[int]:
        """A copy of ``order`` after 1 to ``most`` moves that change it (draws that leave their task in place
        are drawn again, :data:`DRAWS` times the moves at most: they were 40-60 % of the draws on the training
        graphs, each a planner run for nothing); still a topological order of the instance."""
        out = list(order)
        want = rng.randint(1, most)
        done = 0
        for _ in range(DRAWS * want):
            done += self.move(out, rng)
            if done == want:
                break
        return out


__all__ = ["DRAWS", "OrderMoves"]
