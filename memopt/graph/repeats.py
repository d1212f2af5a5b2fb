"""Repeated blocks of a task graph: what identifies a task up to renaming, hashes, isomorphisms, periods.

- :func:`task_label`: op, time, workspace, recompute, output sizes;
- :func:`wl_hash`: the Weisfeiler–Lehman hash of an induced subgraph
  (Shervashidze et al., JMLR 2011); :func:`segment_mapping` checks that the
  positional map of two task lists is an isomorphism with the same boundary;
- :func:`label_sequence` and :func:`find_period`: the repeated block of a
  sequence of tasks (the shift matching the most positions);
  :func:`repeat_runs`: the runs of a repeated period in a sequence of
  classes.

Used by :mod:`memopt.graph.structure`. O((n + e) · rounds) for the hashes,
O(L²) numpy comparisons for the period of L positions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from memopt.core.instance import Instance


def _h(x: object) -> str:
    return hashlib.blake2b(repr(x).encode(), digest_size=8).hexdigest()


def task_label(inst: Instance, v: int) -> tuple:
    """What identifies a task up to renaming: op, time, workspace, recompute, sizes of its outputs."""
    t = inst.tasks[v]
    op = (t.meta or {}).get("op") if t.meta else None
    return (op, t.time, t.workspace, t.recompute, tuple(sorted(inst.size[d] for d in inst.outputs[v])))


def wl_hash(inst: Instance, tasks: Sequence[int], rounds: int = 3) -> str:
    """Weisfeiler–Lehman hash of the subgraph induced by ``tasks`` (labels: :func:`task_label`, boundary inputs).

    Equal graphs (up to renaming) hash equally; equal hashes are checked by
    :func:`segment_mapping` before being trusted. O(rounds · (|tasks| + arcs)).
    """
    inside = set(tasks)
    label = {}
    for v in tasks:
        ext = tuple(sorted(inst.size[d] for d in inst.inputs[v] if inst.producer[d] not in inside))
        label[v] = _h((task_label(inst, v), ext))
    for _ in range(rounds):
        label = {v: _h((label[v], tuple(sorted(label[u] for u in inst.preds[v] if u in inside)),
                        tuple(sorted(label[w] for w in inst.succs[v] if w in inside)))) for v in tasks}
    return _h(tuple(sorted(label.values())))


def segment_mapping(inst: Instance, a: Sequence[int], b: Sequence[int]) -> dict[int, int] | None:
    """The map ``a[i] -> b[i]`` if it is an isomorphism of the two task sets with their boundaries, else ``None``.

    Checked: equal :func:`task_label`; each input of ``a[i]`` made inside
    ``a`` maps to the same input (by output position) of ``b[i]`` made
    inside ``b``; inputs from outside correspond one to one, with equal
    sizes, in the same order. O(|a| + arcs).
    """
    if len(a) != len(b):
        return None
    f = dict(zip(a, b))
    if len(set(b)) != len(b):
        return None
    inside_b = set(b)
    ext_a: dict[int, int] = {}
    ext_b: dict[int, int] = {}
    for u, w in f.items():
        if task_label(inst, u) != task_label(inst, w):
            return None
        ia, ib = inst.inputs[u], inst.inputs[w]
        if len(ia) != len(ib):
            return None
        for da, db in zip(ia, ib):
            pa, pb = inst.producer[da], inst.producer[db]
            if pa in f:
                if f[pa] != pb or inst.outputs[pa].index(da) != inst.outputs[pb].index(db):
                    return None
            elif pb in inside_b or ext_a.setdefault(da, db) != db or ext_b.setdefault(db, da) != da \
                    or inst.size[da] != inst.size[db]:
                return None
    return f


def repeat_runs(classes: Sequence[int], min_count: int = 2) -> list[tuple[int, int, int]]:
    """Runs of a repeated period in a sequence of classes: ``(start, period, count)``, longest cover first.

    Greedy left to right: at each start, the period (up to a quarter of
    what is left) repeated the most times; positions in no run are skipped.
    O(len² / 4) at worst.
    """
    out = []
    i, n = 0, len(classes)
    while i < n:
        best = (1, 1)  # (count, period)
        for period in range(1, max(1, (n - i) // 2) + 1):
            c = 1
            while i + (c + 1) * period <= n and classes[i + c * period: i + (c + 1) * period] == \
                    classes[i: i + period]:
                c += 1
            if c >= min_count and c * period > best[0] * best[1]:
                best = (c, period)
        count, period = best
        if count >= min_count:
            out.append((i, period, count))
            i += count * period
        else:
            i += 1
    return out


def label_sequence(inst: Instance, order: Sequence[int], length: int) -> list[int]:
    """One integer per forward position: the task's label and its producers' labels (for periodicity)."""
    lab = {}
    out = []
    for p in range(length):
        v = order[p]
        key = (task_label(inst, v), tuple(sorted(task_label(inst, u) for u in inst.preds[v])))
        out.append(lab.setdefault(key, len(lab)))
    return out


def find_period(labels: Sequence[int], *, min_count: int = 2, min_period: int = 2) -> tuple[int, int, int] | None:
    """The repeated block of a label sequence: ``(start, period, count)`` or ``None``.

    The period P is the smallest whose shift matches nearly as many
    positions (``labels[p] == labels[p + P]``) as the best shift does; the
    block run is then the longest stretch where every position matches
    its shift. O(L²) numpy comparisons of shifted arrays.
    """
    import numpy as np

    a = np.asarray(labels)
    L = len(a)
    if 2 * min_period > L:
        return None
    shifts = range(min_period, L // min_count + 1)
    matches = [int(np.count_nonzero(a[:-P] == a[P:])) for P in shifts]
    if not matches or max(matches) == 0:
        return None
    top = max(matches)
    P = next(P for P, mt in zip(shifts, matches) if mt >= 0.9 * top)
    eq = np.concatenate([a[:-P] == a[P:], [False]])
    best = (0, 0)  # (length, start) of the longest run of matching positions
    run_start, run = 0, 0
    for p, ok in enumerate(eq):
        if ok:
            if run == 0:
                run_start = p
            run += 1
            if run > best[0]:
                best = (run, run_start)
        else:
            run = 0
    length, start = best
    count = (length + P) // P  # positions [start, start + length + P) repeat with period P
    if count < min_count:
        return None
    return start, P, count


__all__ = ["find_period", "label_sequence", "repeat_runs", "segment_mapping", "task_label", "wl_hash"]
