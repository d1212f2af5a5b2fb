"""The chain decomposition of a training graph: groups of a forward part and a backward part.

A *chain decomposition* of an instance assigns every task to a group
``g ∈ 0..k−1`` and a side, forward ``F_g`` or backward ``B_g``, such that
every arc goes forward in the *rotor order*

    F_0 < F_1 < … < F_{k−1} < B_{k−1} < … < B_0

(Beaumont et al., "Optimal checkpointing for heterogeneous chains", 2021:
stage g's forward, then later its backward). The forward groups are the
segments of :func:`memopt.graph.structure.detect_structure`; a backward task
joins the group of the forward data it reads (the latest such group), never
later than its backward predecessors (:func:`assign_backward`).

**Data.** With p the producer of datum d:

- *pinned tasks*: tasks that may not run twice, and forward tasks with an
  output that is a result or is read outside groups g, g+1 (a long skip).
  They run once, in the first forward pass; their outputs stay in fast
  memory until the end of the backward of their *release group* r (the
  least group of the readers that may run again — readers that run once
  do so in the first pass; never for a result);
- ``X[g]``: the outputs of non-pinned tasks of ``F_g`` read by group g+1
  (the checkpoint between g and g+1); ``XB[g] ⊆ X[g]``: those also read
  by ``B_g``;
- *crossing backward data*: outputs of ``B_g`` read by an earlier group's
  backward (the gradient δ) or results: they stay from ``B_g`` until the end
  of the backward of their release group (never for a result);
- everything else is internal to one group.

**Base memory** (what the chain DP adds to every operation, see
:mod:`.dp`): in the backward phase with groups > t finished,
``base[t] = Σ pinned forward data released at or before t (or never) +
Σ crossing backward data made after t and released at or before t (or
never)``; in the first forward pass, at group s, ``first_base[s] = Σ pinned
forward data made before s``. O(n + Σ consumers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from memopt.core.instance import Instance
from memopt.graph.structure import Structure

F_SIDE, B_SIDE = 0, 1


def assign_backward(inst: Instance, order: Sequence[int], turn: int, fgroup: dict[int, int], k: int) -> dict[int, int]:
    """Groups of the backward tasks (positions ≥ ``turn`` in ``order``): ``{task: group}``.

    In order, with U the least group of v's backward predecessors (k − 1
    without any): the largest g ≤ U at which every forward datum v reads is
    *local* — made by group g, or made by g − 1 and read by ``F_g`` anyway
    (a checkpoint already) — else min(U, the latest group v reads). So the
    backward of a layer joins its layer even when it reads only the layer's
    input, and a gradient crosses groups only where the forward data do. A
    task that reads neither is placed afterwards, as late as its backward
    successors allow (their largest group, 0 without any). Backward groups
    never increase along an arc: the rotor order holds. O(n + e) plus the
    candidate groups tried per task.
    """
    # forward data read by F_g of group g - 1 (checkpoints through the forward pass)
    fwd_read: set[tuple[int, int]] = set()  # (datum, group of a forward reader)
    for v, g in fgroup.items():
        for d in inst.inputs[v]:
            fwd_read.add((d, g))
    g_of: dict[int, int] = {}
    free: list[int] = []
    for v in order[turn:]:
        bp = [g_of[u] for u in inst.preds[v] if u in g_of]
        # data of tasks that run once (parameters, inputs) stay resident anyway: any group may read them
        fdata = [(d, fgroup[inst.producer[d]]) for d in inst.inputs[v]
                 if inst.producer[d] in fgroup and inst.can_recompute[inst.producer[d]]]
        if not bp and not fdata:
            if any(inst.producer[d] in fgroup for d in inst.inputs[v]):
                g_of[v] = k - 1  # reads only data that run once: as early as the backward allows
            else:
                free.append(v)
            continue
        U = min(bp) if bp else k - 1
        if not fdata:
            g_of[v] = U
            continue
        lo = min(h for _, h in fdata)
        pick = None
        for g in range(U, max(lo, 0) - 1, -1):
            if all(h == g or (h == g - 1 and (d, g) in fwd_read) for d, h in fdata):
                pick = g
                break
        g_of[v] = pick if pick is not None else min(U, max(h for _, h in fdata))
    for v in reversed(free):
        g_of[v] = max((g_of[w] for w in inst.succs[v] if w in g_of), default=0)
    return g_of


@dataclass
class Chain:
    """A chain decomposition and its data classes (module docstring); groups ``0..k-1``."""

    inst: Instance
    k: int
    group: list[int]
    side: list[int]
    F: list[list[int]]            # non-pinned forward tasks of each group, in the base order
    B: list[list[int]]            # backward tasks of each group (pinned or not), in the base order
    pinned_f: list[list[int]]     # pinned forward tasks of each group, in the base order
    pinned: list[bool]            # per task
    X: list[list[int]]            # checkpoint data between g and g+1
    XB: list[list[int]]           # X[g] read by B_g
    release: dict[int, int]       # pinned forward data and crossing backward data -> release group (-1: never)
    base: list[int] = field(default_factory=list)        # base[t], t = -1..k-1 stored at t + 1
    first_base: list[int] = field(default_factory=list)  # first_base[s], s = 0..k
    order: tuple[int, ...] = ()

    # ------------------------------------------------------------- sets
    def xset(self, g: int) -> frozenset[int]:
        """``X[g]`` as a set (empty for g < 0)."""
        return self._sets("x")[g] if g >= 0 else frozenset()

    def xbset(self, g: int) -> frozenset[int]:
        return self._sets("xb")[g] if g >= 0 else frozenset()

    def crossing_made(self, g: int) -> list[int]:
        """The crossing data ``B_g`` makes (gradients of earlier groups, results)."""
        return self._sets("cross")[g]

    def _sets(self, what: str):
        cache = self.__dict__.setdefault("_cache", {})
        if not cache:
            cache["x"] = [frozenset(x) for x in self.X]
            cache["xb"] = [frozenset(x) for x in self.XB]
            cross: list[list[int]] = [[] for _ in range(self.k)]
            for d in self.release:
                p = self.inst.producer[d]
                if self.side[p] == B_SIDE:
                    cross[self.group[p]].append(d)
            cache["cross"] = cross
        return cache[what]

    # ------------------------------------------------------------- sizes
    def x(self, g: int) -> int:
        """Size of ``X[g]`` (0 for g < 0)."""
        return 0 if g < 0 else sum(self.inst.size[d] for d in self.X[g])

    def xb(self, g: int) -> int:
        return sum(self.inst.size[d] for d in self.XB[g])

    def base_at(self, t: int) -> int:
        """Memory of pinned and crossing data with groups > t finished (t = −1: all)."""
        return self.base[t + 1]

    def tasks(self, g: int) -> list[int]:
        """Every task of group g (forward then backward, pinned included)."""
        return self.pinned_f[g] + self.F[g] + self.B[g]

    def describe(self) -> str:
        sizes = [len(self.F[g]) + len(self.B[g]) + len(self.pinned_f[g]) for g in range(self.k)]
        npin = sum(self.pinned)
        return (f"{self.k} groups of {min(sizes)}-{max(sizes)} tasks, {npin} pinned task{'s' if npin != 1 else ''}, "
                f"largest checkpoint {max((self.x(g) for g in range(self.k)), default=0)}")


def build_chain(inst: Instance, structure: Structure) -> Chain:
    """The chain decomposition of ``inst`` on the forward segments of ``structure``."""
    order = structure.order
    turn = structure.turn
    segs = structure.segments()
    k = max(1, len(segs))
    fgroup: dict[int, int] = {}
    for g, seg in enumerate(segs):
        for v in seg:
            fgroup[v] = g
    bgroup = assign_backward(inst, order, turn, fgroup, k)
    n = inst.n
    group = [0] * n
    side = [F_SIDE] * n
    for v, g in fgroup.items():
        group[v] = g
    for v, g in bgroup.items():
        group[v], side[v] = g, B_SIDE
    # pinned forward tasks: not recomputable, or an output that is a result or read outside groups g, g+1
    pinned = [False] * n
    for v in range(n):
        if side[v] != F_SIDE:
            continue
        if not inst.can_recompute[v]:
            pinned[v] = True
            continue
        g = group[v]
        for d in inst.outputs[v]:
            cons = inst.consumers[d]
            if not cons or any(group[c] not in (g, g + 1) for c in cons):
                pinned[v] = True
                break
    pos = {v: i for i, v in enumerate(order)}
    F: list[list[int]] = [[] for _ in range(k)]
    B: list[list[int]] = [[] for _ in range(k)]
    PF: list[list[int]] = [[] for _ in range(k)]
    for v in sorted(range(n), key=pos.__getitem__):
        if side[v] == B_SIDE:
            B[group[v]].append(v)
        elif pinned[v]:
            PF[group[v]].append(v)
        else:
            F[group[v]].append(v)
    X: list[list[int]] = [[] for _ in range(k)]
    XB: list[list[int]] = [[] for _ in range(k)]
    release: dict[int, int] = {}
    for d in range(inst.m):
        p = inst.producer[d]
        g = group[p]
        cons = inst.consumers[d]
        if side[p] == F_SIDE:
            if pinned[p]:
                # kept until the last run of a reader: the backward of the least group of the readers that
                # may run again (readers that run once do so in the first pass); a result: to the end
                again = [group[c] for c in cons if not (side[c] == F_SIDE and pinned[c])]
                release[d] = -1 if not cons else (min(again) if again else k - 1)
            elif any(group[c] == g + 1 for c in cons):
                X[g].append(d)
                if any(group[c] == g and side[c] == B_SIDE for c in cons):
                    XB[g].append(d)
        else:
            if not cons:
                release[d] = -1
            elif any(group[c] != g for c in cons):
                release[d] = min(group[c] for c in cons)
    ch = Chain(inst, k, group, side, F, B, PF, pinned, X, XB, release, order=tuple(order))
    _bases(ch)
    return ch


def _bases(ch: Chain) -> None:
    """``base[t]`` and ``first_base[s]`` (module docstring), by difference arrays. O(m + k)."""
    inst, k = ch.inst, ch.k
    # base[t] (stored at t + 1, t = -1..k-1): datum d counts for t in [r, hi] (r = -1: never released)
    diff = [0] * (k + 2)
    first = [0] * (k + 2)
    for d, r in ch.release.items():
        s = inst.size[d]
        p = inst.producer[d]
        g = ch.group[p]
        if ch.side[p] == F_SIDE:
            hi = k - 1  # made in the first pass: present in the whole backward phase until released
            first[g + 1] += s  # made in group g's first pass: counts from first_base[g + 1] on
        else:
            hi = g - 1  # made by B_g: present once groups >= g are finished
        lo = r
        if hi < lo:
            continue
        diff[lo + 1] += s
        diff[hi + 2] -= s
    run = 0
    ch.base = []
    for i in range(k + 1):
        run += diff[i]
        ch.base.append(run)
    run = 0
    ch.first_base = []
    for s in range(k + 1):
        run += first[s]
        ch.first_base.append(run)


def check_chain(ch: Chain) -> list[str]:
    """Rules of a chain decomposition broken by ``ch`` (empty: none): every arc goes forward in the rotor order."""
    inst, k = ch.inst, ch.k

    def rank(v: int) -> int:
        return ch.group[v] if ch.side[v] == F_SIDE else 2 * k - 1 - ch.group[v]

    bad = []
    for u in range(inst.n):
        for w in inst.succs[u]:
            if rank(u) > rank(w):
                bad.append(f"arc {inst.tasks[u].id} -> {inst.tasks[w].id} goes backward in the rotor order")
    return bad


__all__ = ["B_SIDE", "Chain", "F_SIDE", "assign_backward", "build_chain", "check_chain"]
