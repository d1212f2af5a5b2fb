"""The task graph as arrays, and what one task's reachability sets cost in time and memory: O(n + e).

:mod:`memopt.graph.masks` keeps the transitive closure as bitmasks, n²/8
bytes each way (312 MB at 50,000 tasks): fine up to a few thousand tasks.
At scale the bounds ask about a *few* tasks instead, each with one
breadth-first search (:func:`scipy.sparse.csgraph.breadth_first_order`,
in C): :meth:`GraphArrays.descendants` / :meth:`GraphArrays.ancestors` of
one task in O(n + e) time and O(n) memory.

:class:`GraphArrays` holds, once per instance (:meth:`Instance.memo
<memopt.core.instance.Instance.memo>`), numpy arrays of the instance:

- the arcs (``arc_src``, ``arc_dst``, each arc once) and the successor and
  predecessor matrices (CSR);
- per datum its producer ``prod``, its ``size`` (int64; Python integers in
  an object array when Σ sizes would not fit in 62 bits, so every sum is
  exact), whether it is a ``result``;
- the reader entries ``rd_datum[k]`` reads ``rd_task[k]`` (one per
  (datum, consumer) pair);
- per task ``out_size``, ``in_size``, ``workspace``; a topological
  ``order`` and the positions ``pos``.

Built in O(n + m + e) (Python loops over the instance's tuples once: about
2 s and 200 MB at 50,000 tasks and 2.7 million arcs).

Two order-based facts the bounds use (σ a topological order):

- :meth:`GraphArrays.held_in_order`: for each task v, Σ s(d) over the data
  d produced before v in σ and read at v or later (or results): the memory
  held when v runs in the pure schedule σ, outputs and workspace aside —
  an *upper* estimate of what every order must hold at v. One difference
  array, O(m + Σ|C(d)|).
- :meth:`GraphArrays.universal`: the tasks comparable to every other task
  (an ancestor or a descendant of each). For those, "before v in σ" is
  "an ancestor of v" and "at or after v" is "v or a descendant", so the
  order-based sums are exact. v = σ[i] is universal iff every task before
  it has a successor at a position ≤ i and every task after it a
  predecessor at a position ≥ i (induction from v outwards); O(n + e).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from memopt.core.instance import Instance

EXACT_INT64 = 1 << 62
#: from this many tasks, reachability runs in scipy's compiled search (below, a Python one: no scipy import)
SCIPY_FROM = 2000


class GraphArrays:
    """Numpy arrays of one instance (module docstring); build with :func:`graph_arrays`."""

    def __init__(self, inst: Instance):
        n, m = inst.n, inst.m
        self.n, self.m = n, m
        self._succs, self._preds = inst.succs, inst.preds
        self.order = np.asarray(inst.topological_order, dtype=np.int64)
        self.pos = np.empty(n, dtype=np.int64)
        self.pos[self.order] = np.arange(n, dtype=np.int64)
        counts = np.fromiter((len(s) for s in inst.succs), dtype=np.int64, count=n)
        self.arc_src = np.repeat(np.arange(n, dtype=np.int64), counts)
        self.arc_dst = np.fromiter((w for s in inst.succs for w in s), dtype=np.int64, count=int(counts.sum()))
        # the successors of u: succ_idx[succ_ptr[u]:succ_ptr[u+1]] (arc_src is sorted: arcs are listed per task)
        self.succ_ptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self.succ_idx = self.arc_dst
        self.prod = np.asarray(inst.producer, dtype=np.int64)
        big = sum(inst.size) >= EXACT_INT64 or sum(inst.workspace) >= EXACT_INT64
        self.dtype = object if big else np.int64
        self.size = np.array(inst.size, dtype=self.dtype)
        self.sized = self.size != 0  # data that take memory
        self.total_size = int(sum(inst.size))
        ncons = np.fromiter((len(c) for c in inst.consumers), dtype=np.int64, count=m)
        self.result = ncons == 0
        self.rd_datum = np.repeat(np.arange(m, dtype=np.int64), ncons)
        self.rd_task = np.fromiter((c for cs in inst.consumers for c in cs), dtype=np.int64, count=int(ncons.sum()))
        self.rd_ptr = np.concatenate(([0], np.cumsum(ncons))).astype(np.int64)
        # per task, the data it reads (in_data[in_ptr[v]:in_ptr[v+1]]) and the data it makes (out_*)
        self.in_ptr, self.in_data = _rows_of(self.rd_task, self.rd_datum, n)
        self.out_ptr, self.out_data = _rows_of(self.prod, np.arange(m, dtype=np.int64), n)
        # the live interval of each datum in the instance's order: made at ``born``, read last at ``last``
        self.born = self.pos[self.prod]
        self.last = np.full(m, -1, dtype=np.int64)
        np.maximum.at(self.last, self.rd_datum, self.pos[self.rd_task])
        self.last[self.result] = n
        self.out_size = np.array(inst.output_size, dtype=self.dtype)
        self.in_size = np.array(inst.input_size, dtype=self.dtype)
        self.workspace = np.array(inst.workspace, dtype=self.dtype)
        self._universal: np.ndarray | None = None

    # ------------------------------------------------------------ reachability
    # scipy's sparse matrices, built on first use: scipy costs ~0.2 s and 30 MB to import, which the bounds of
    # a small instance never need (float64 weights and int32 indices: the form its graph routines take as is)
    @cached_property
    def succ(self):
        from scipy.sparse import csr_matrix

        ones = np.ones(len(self.arc_src), dtype=np.float64)
        return csr_matrix((ones, (self.arc_src, self.arc_dst)), shape=(self.n, self.n))

    @cached_property
    def pred(self):
        from scipy.sparse import csr_matrix

        ones = np.ones(len(self.arc_src), dtype=np.float64)
        return csr_matrix((ones, (self.arc_dst, self.arc_src)), shape=(self.n, self.n))

    def descendants(self, v: int) -> np.ndarray:
        """Boolean mask of the strict descendants of ``v``. O(n + e) time, O(n) memory."""
        return self._reach(v, self._succs, "succ")

    def ancestors(self, v: int) -> np.ndarray:
        """Boolean mask of the strict ancestors of ``v``. O(n + e) time, O(n) memory."""
        return self._reach(v, self._preds, "pred")

    def _reach(self, v: int, adj: Sequence[Sequence[int]], matrix: str) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        if self.n < SCIPY_FROM:
            # a small graph: a Python search costs less than importing scipy (~0.4 s)
            stack = list(adj[v])
            while stack:
                u = stack.pop()
                if not mask[u]:
                    mask[u] = True
                    stack.extend(adj[u])
            return mask
        from scipy.sparse.csgraph import breadth_first_order

        mask[breadth_first_order(getattr(self, matrix), v, directed=True, return_predecessors=False)] = True
        mask[v] = False
        return mask

    def read_at_or_after(self, later: np.ndarray) -> np.ndarray:
        """Per datum: a result, or read by some task of the mask ``later``. O(m + Σ|C(d)|)."""
        has = self.result.copy()
        has[self.rd_datum[later[self.rd_task]]] = True
        return has

    def live_at(self, v: int) -> np.ndarray:
        """The data of nonzero size made before v in the instance's order and read at v or later (or results):
        a superset of what every order holds at v. O(m)."""
        p = self.pos[v]
        return np.flatnonzero((self.born < p) & (self.last >= p) & self.sized)

    def any_reader(self, data: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """For each datum of the index array ``data``: is one of its readers in the boolean ``mask``?
        O(Σ|C(d)|) over those data."""
        out = np.zeros(len(data), dtype=bool)
        cnt = self.rd_ptr[data + 1] - self.rd_ptr[data]
        entries = row_entries(self.rd_ptr, data)
        if len(entries):
            owner = np.repeat(np.arange(len(data)), cnt)
            out[owner[mask[self.rd_task[entries]]]] = True
        return out

    def universal(self) -> np.ndarray:
        """Boolean mask of the tasks comparable to every other task (module docstring). O(n + e)."""
        if self._universal is None:
            n, pos = self.n, self.pos
            first_succ = np.full(n, n, dtype=np.int64)  # least position of a successor, per task
            np.minimum.at(first_succ, self.arc_src, pos[self.arc_dst])
            last_pred = np.full(n, -1, dtype=np.int64)  # largest position of a predecessor, per task
            np.maximum.at(last_pred, self.arc_dst, pos[self.arc_src])
            fs, lp = first_succ[self.order], last_pred[self.order]
            before = np.concatenate(([-1], np.maximum.accumulate(fs)[:-1]))  # max over the tasks before i
            after = np.concatenate((np.minimum.accumulate(lp[::-1])[::-1][1:], [n]))  # min over those after i
            idx = np.arange(n)
            ok = (before <= idx) & (after >= idx)
            self._universal = np.zeros(n, dtype=bool)
            self._universal[self.order[ok]] = True
        return self._universal

    # ------------------------------------------------------------- order sums
    def held_in_order(self, order: Sequence[int] | np.ndarray, data: np.ndarray | None = None) -> np.ndarray:
        """Per task v (indexed by task): Σ s(d) over the data produced before v in ``order`` and read at v or
        later, or results (only the data of the boolean mask ``data``). O(m + Σ|C(d)|)."""
        n = self.n
        pos = np.empty(n, dtype=np.int64)
        pos[np.asarray(order, dtype=np.int64)] = np.arange(n, dtype=np.int64)
        last = np.full(self.m, -1, dtype=np.int64)
        np.maximum.at(last, self.rd_datum, pos[self.rd_task])
        last[self.result] = n - 1
        start = pos[self.prod] + 1
        keep = self.sized & (last >= start)
        if data is not None:
            keep &= data
        diff = np.zeros(n + 1, dtype=self.dtype)
        np.add.at(diff, start[keep], self.size[keep])
        np.subtract.at(diff, last[keep] + 1, self.size[keep])
        by_pos = np.cumsum(diff[:n])
        out = np.empty(n, dtype=self.dtype)
        out[np.asarray(order, dtype=np.int64)] = by_pos
        return out


def _rows_of(key: np.ndarray, val: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR rows grouping ``val`` by ``key`` in 0..n-1: (ptr, values), values of row k at ptr[k]:ptr[k+1]."""
    order = np.argsort(key, kind="stable")
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=n), out=ptr[1:])
    return ptr, val[order]


def row_entries(ptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The positions ptr[r]..ptr[r+1]-1 of every row r of ``rows``, concatenated. O(len(rows) + output)."""
    starts, stops = ptr[rows], ptr[rows + 1]
    cnt = stops - starts
    total = int(cnt.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offs = np.repeat(starts - np.concatenate(([0], np.cumsum(cnt)[:-1])), cnt)
    return offs + np.arange(total, dtype=np.int64)


def graph_arrays(inst: Instance) -> GraphArrays:
    """The :class:`GraphArrays` of ``inst``, built once per instance."""
    return inst.memo("graph_arrays", lambda: GraphArrays(inst))


__all__ = ["GraphArrays", "graph_arrays", "row_entries"]
