"""The min-cut lower bound on the optimal peak: the least memory any order can hold when a task runs.

**Definition.** L(S) is the memory resident once the down-set S has run
(data produced in S that are results or have a reader outside S). When task
v runs in an order, the tasks before it form a down-set S with
preds(v) ⊆ S and v ∉ S (hence no descendant of v in S either), and the
memory at that compute is L(S) + out(v) + w(v). So every order peaks at least at

    cut(v) = min{ L(S) : S down-set, anc(v) ⊆ S, S ∩ ({v} ∪ desc(v)) = ∅ } + out(v) + w(v)

for every v, and the **cut bound** is max_v cut(v). It contains the lifetime
bound of :mod:`memopt.exact.peak_bounds` (every S of the interval holds the
data of anc(v) still needed by v, its descendants or the end), and on random
layered graphs it is 10–25 % higher.

**Computation.** L is a cut function: S is the source side of a network with
- an arc w → u of infinite capacity for each precedence u → w (w ∈ S forces u ∈ S);
- per datum d of size s > 0: an arc p(d) → sink of capacity s if d is a result;
  an arc p(d) → c of capacity s if d has one reader c; otherwise a node x_d,
  an arc p(d) → x_d of capacity s and arcs x_d → c of infinite capacity for
  each reader c (x_d on the source side would need every reader done; so
  s is paid exactly when p(d) ∈ S and some reader is not);
- for the task v examined: source → each predecessor of v and v → sink,
  infinite (the closure arcs extend these to anc(v) and desc(v)).

A minimum s–t cut is min L(S) over the interval (Picard & Queyranne's
closure formulation; L is submodular on the lattice of down-sets). One
max-flow per task (OR-Tools' push-relabel; O((n + m)²·√e) worst case).

**At scale: interval networks** (:func:`interval_cut`, the default). For
task v only its incomparable tasks F are free (anc(v) is in S, {v} ∪
desc(v) out): the data made in anc(v) and needed in {v} ∪ desc(v) or at
the end are a constant, the other data become arcs of a network on F (plus
a node per datum with several readers in F). Per task: two breadth-first
searches and vectorised passes over the inputs and outputs of the tasks
involved, O(n + e + m) at most, and a flow on |F| nodes — |F| is a few
hundred on layered training graphs of 20,000 tasks, where the
whole-graph network (:class:`CutNetwork`, kept for :func:`joint_cut_bound`
and :class:`~memopt.exact.cut_guard.CutGuard`) has 5·10⁶ arcs. Nothing is built once per instance
but the arrays of :mod:`memopt.graph.csr` (O(n + e + m) memory).

**Pruning.** Any order σ gives an upper estimate: cut(v) <= the memory at v
in σ; so does a minimising down-set S found for another task, for every
task w it is a down-set for (preds(w) ⊆ S, w ∉ S): cut(w) <= L(S) + out(w)
+ w(w). Tasks are examined by decreasing estimate (a lazy heap) and the
loop stops when no remaining estimate exceeds the best bound found, so only
the tasks near the peak of a good order cost a flow; a task comparable to
every other one costs none (its interval is one down-set).

References: J.-C. Picard, M. Queyranne, "Selected applications of minimum
cuts in networks", INFOR 20(4), 1982 (closures and cuts); the interval
argument is ours (docs/peak.md §8).
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np

from memopt.core.deadline import Deadline, as_deadline
from memopt.core.evaluate import memory_profile
from memopt.core.instance import Instance
from memopt.graph.csr import GraphArrays, graph_arrays, row_entries


@dataclass
class CutBound:
    """The bound, the task where it is reached, and how many flows it took.

    ``values`` maps each examined task to its cut(v) (memory at its compute,
    outputs and workspace included); ``complete`` is False when the deadline
    stopped the loop before every task whose estimate exceeds ``value`` was
    examined (the value is still a valid bound); ``down_set``: for ``task``,
    a down-set where the memory at its compute is least (the tasks before it).
    """

    value: int
    task: int | None
    flows: int
    complete: bool
    values: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    down_set: list[int] | None = None


class CutNetwork:
    """The network of L(S) over the tasks of ``inst``, built once; :meth:`min_memory` per interval.

    Nodes 0..n-1 are the tasks, then one node per datum with several readers,
    then the source and the sink. Every task has an arc from the source and
    an arc to the sink of capacity 0 that a query raises to infinity.
    """

    def __init__(self, inst: Instance):
        from ortools.graph.python import max_flow

        ga = graph_arrays(inst)
        n = inst.n
        self.n = n
        total = ga.total_size + 1
        self.inf = total
        nz = np.flatnonzero(ga.sized)
        cnt = (ga.rd_ptr[nz + 1] - ga.rd_ptr[nz])
        many = nz[cnt >= 2]
        xid = np.full(ga.m, -1, dtype=np.int64)
        xid[many] = n + np.arange(len(many), dtype=np.int64)
        self.source = n + len(many)
        self.sink = self.source + 1
        first = np.full(ga.m, -1, dtype=np.int64)
        first[nz[cnt >= 1]] = ga.rd_task[ga.rd_ptr[nz[cnt >= 1]]]
        head = np.where(cnt == 0, self.sink, np.where(cnt == 1, first[nz], xid[nz]))
        x_ent = row_entries(ga.rd_ptr, many)
        x_own = np.repeat(xid[many], cnt[cnt >= 2])
        tails = np.concatenate((ga.arc_dst, ga.prod[nz], x_own))  # w -> u for each precedence u -> w
        heads = np.concatenate((ga.arc_src, head, ga.rd_task[x_ent]))
        caps = np.concatenate((np.full(len(ga.arc_src), total, dtype=np.int64), ga.size[nz].astype(np.int64),
                               np.full(len(x_ent), total, dtype=np.int64)))
        self.first_source_arc = len(tails)
        self.first_sink_arc = len(tails) + n
        tasks = np.arange(n, dtype=np.int64)
        tails = np.concatenate((tails, np.full(n, self.source, dtype=np.int64), tasks))
        heads = np.concatenate((heads, tasks, np.full(n, self.sink, dtype=np.int64)))
        caps = np.concatenate((caps, np.zeros(2 * n, dtype=np.int64)))
        self.flow = max_flow.SimpleMaxFlow()
        self.flow.add_arcs_with_capacity(tails.astype(np.int32), heads.astype(np.int32), caps)
        self._ok = self.flow.OPTIMAL

    def min_memory(self, inside: list[int] | tuple[int, ...], outside: list[int] | tuple[int, ...]) -> int | None:
        """min L(S) over the down-sets S containing ``inside`` and disjoint from ``outside``.

        None if the flow fails (it should not: capacities are bounded by Σ sizes).
        """
        f = self.flow
        a0, b0, inf = self.first_source_arc, self.first_sink_arc, self.inf
        for u in inside:
            f.set_arc_capacity(a0 + u, inf)
        for u in outside:
            f.set_arc_capacity(b0 + u, inf)
        status = f.solve(self.source, self.sink)
        value = f.optimal_flow() if status == self._ok else None
        for u in inside:
            f.set_arc_capacity(a0 + u, 0)
        for u in outside:
            f.set_arc_capacity(b0 + u, 0)
        if value is not None and value >= inf:
            return None  # the interval is empty (cannot happen for a task's own interval)
        return value

    def source_side(self) -> list[int]:
        """The tasks on the source side of the last minimum cut (a minimising down-set)."""
        return [v for v in self.flow.get_source_side_min_cut() if v < self.n]


def interval_cut(ga: GraphArrays, v: int, *, flow_down_set: bool = False) -> tuple[int, np.ndarray | None]:
    """min L(S) over the down-sets S of v's interval, on a network of v's incomparable tasks only.

    With A = anc(v), D = {v} ∪ desc(v) and F the other tasks, S = A ∪ T for
    a down-set T of F. A datum made in A that is a result or read in D is
    paid by every S (a constant); one made in A and read in F (not in D) is
    paid unless T holds its readers in F (an arc from the source, through a
    node x_d when it has several such readers); one made in F is paid as in
    :class:`CutNetwork` (its readers in D act as the sink). Data made in D
    are never paid. So the flow runs on |F| + (data with several readers in
    F) nodes, not on the whole graph: two breadth-first searches, passes
    over the arcs and data (O(n + e + m + Σ|C(d)|), vectorised) and a small
    max-flow. Returns the value and, with ``flow_down_set``, a minimising
    down-set as a boolean mask over the tasks.
    """
    from ortools.graph.python import max_flow

    anc = ga.ancestors(v)
    late = ga.descendants(v)
    late[v] = True
    free = ~(anc | late)
    # data that are results or read in D (O(inputs of D)); those made in A are paid by every S
    later = ga.result.copy()
    later[ga.in_data[row_entries(ga.in_ptr, np.flatnonzero(late))]] = True
    paid = np.flatnonzero(later)
    paid = paid[anc[ga.prod[paid]]]
    const = int(ga.size[paid].sum())
    f_idx = np.flatnonzero(free)
    k = len(f_idx)
    if k == 0:
        return const, (anc if flow_down_set else None)
    local = np.full(ga.n, -1, dtype=np.int64)
    local[f_idx] = np.arange(k, dtype=np.int64)
    # the data read in F (with their free reader), and the data made in F: O(inputs and outputs of F)
    ent = row_entries(ga.in_ptr, f_idx)
    r_dat = ga.in_data[ent]
    r_task = np.repeat(np.arange(k, dtype=np.int64), ga.in_ptr[f_idx + 1] - ga.in_ptr[f_idx])
    keep = ga.sized[r_dat]
    r_dat, r_task = r_dat[keep], r_task[keep]
    made = ga.out_data[row_entries(ga.out_ptr, f_idx)]
    made = made[ga.sized[made]]
    a_read = r_dat[anc[ga.prod[r_dat]] & ~later[r_dat]]  # made in A, read in F, not paid by every S
    rel = np.unique(np.concatenate((a_read, made)))
    if not len(rel):
        return const, (anc if flow_down_set else None)
    # free readers per relevant datum (data made in A but read in D are constant, never relevant)
    r_pos = np.searchsorted(rel, r_dat)
    r_in = (r_pos < len(rel)) & (rel[np.minimum(r_pos, len(rel) - 1)] == r_dat)
    r_pos, r_task = r_pos[r_in], r_task[r_in]
    n_free = np.bincount(r_pos, minlength=len(rel))
    one = np.full(len(rel), -1, dtype=np.int64)
    one[r_pos] = r_task  # the reader, for data with one free reader
    from_src = anc[ga.prod[rel]]
    to_sink = ~from_src & later[rel]
    need_x = ~to_sink & (n_free >= 2)
    nx = int(need_x.sum())
    xid = np.full(len(rel), -1, dtype=np.int64)
    xid[need_x] = k + np.arange(nx, dtype=np.int64)
    source, sink = k + nx, k + nx + 1
    inf = ga.total_size + 1
    tails = np.where(from_src, source, local[ga.prod[rel]])
    heads = np.where(to_sink, sink, np.where(need_x, xid, one))
    caps = ga.size[rel].astype(np.int64)
    e_x = need_x[r_pos]
    # precedence inside F: w in T forces its predecessor u (arcs out of F tasks, O(out-degree of F))
    s_ent = row_entries(ga.succ_ptr, f_idx)
    s_src = np.repeat(f_idx, ga.succ_ptr[f_idx + 1] - ga.succ_ptr[f_idx])
    s_dst = ga.succ_idx[s_ent]
    inside = free[s_dst]
    # + an arc source -> sink of capacity 0: both nodes exist even without a data arc to the sink
    tails = np.concatenate((tails, xid[r_pos[e_x]], local[s_dst[inside]], [source]))
    heads = np.concatenate((heads, r_task[e_x], local[s_src[inside]], [sink]))
    caps = np.concatenate((caps, np.full(int(e_x.sum()) + int(inside.sum()), inf, dtype=np.int64), [0]))
    flow = max_flow.SimpleMaxFlow()
    flow.add_arcs_with_capacity(tails.astype(np.int32), heads.astype(np.int32), caps)
    if flow.solve(source, sink) != flow.OPTIMAL:  # pragma: no cover - capacities are bounded by Σ sizes
        raise RuntimeError("max-flow failed on a bounded network")
    value = const + int(flow.optimal_flow())
    down = None
    if flow_down_set:
        side = np.asarray(flow.get_source_side_min_cut(), dtype=np.int64)
        down = anc.copy()
        down[np.flatnonzero(free)[side[side < k]]] = True
    return value, down


def cut_bound(inst: Instance, orders: list[list[int]] | None = None, *, floor: int = 0,
              deadline: Deadline | float | None = None, max_flows: int | None = None, min_flows: int = 0,
              network: CutNetwork | None = None) -> CutBound:
    """max over v of cut(v) (module docstring), examining only the tasks that can beat ``floor``.

    ``orders``: valid task orders whose memory profiles bound each cut(v)
    from above (default: none, every task is examined); ``floor``: a bound
    already known (tasks whose estimate is at most ``floor`` are skipped);
    ``min_flows``: examine at least that many tasks anyway (by decreasing
    estimate: candidates for :func:`joint_cut_bound`);
    ``deadline`` / ``max_flows``: stop early (the value is still a bound);
    ``network``: a :class:`CutNetwork` of the whole graph to run the flows
    on (else each task gets the network of its interval, :func:`interval_cut`).

    A task comparable to every other one has an interval of one down-set:
    its cut is the memory at it in any order, no flow needed. Memory O(n +
    e + m); time per task examined O(n + e + m + Σ|C(d)|) plus a max-flow
    on its incomparable tasks.
    """
    t0 = time.perf_counter()
    n = inst.n
    if n == 0:
        return CutBound(0, None, 0, True)
    ga = graph_arrays(inst)
    if ga.dtype is object:  # sizes beyond int64: the max-flow cannot take them
        return CutBound(floor, None, 0, False, seconds=time.perf_counter() - t0)
    top = np.iinfo(np.int64).max  # no estimate: examine first
    est = np.full(n, top, dtype=np.int64)
    for order in orders or []:
        est = np.minimum(est, np.asarray(memory_profile(inst, order), dtype=np.int64))
    values: dict[int, int] = {}
    best, arg = floor, None
    univ = ga.universal()
    if univ.any():  # exact without a flow
        held = ga.held_in_order(inst.topological_order)
        for v in np.flatnonzero(univ).tolist():
            x = int(held[v]) + inst.output_size[v] + inst.workspace[v]
            values[v] = x
            est[v] = x
            if x > best:
                best, arg = x, v
    # examine by decreasing estimate; a minimising down-set S of one task also bounds the cut of every task
    # w it is a down-set for (preds(w) ⊆ S, w ∉ S): cut(w) <= L(S) + out(w) + w(w) (lazy heap of estimates)
    done = np.zeros(n, dtype=bool)
    done[list(values)] = True
    heap = [(-int(est[v]), v) for v in np.flatnonzero(~done).tolist()]
    heapq.heapify(heap)
    indeg = np.bincount(ga.arc_dst, minlength=ga.n)
    extra = ga.out_size + ga.workspace
    complete = True
    flows = 0
    dl = as_deadline(deadline)
    while heap:
        key, v = heapq.heappop(heap)
        e = int(est[v])
        if -key > e:
            heapq.heappush(heap, (-e, v))  # lowered since it was pushed
            continue
        if e <= best and flows >= min_flows:
            break
        if dl.expired() or (max_flows is not None and flows >= max_flows):
            complete = False
            break
        down_v = None
        if network is not None:
            m = network.min_memory(inst.preds[v], (v,))
        else:
            m, down_v = interval_cut(ga, v, flow_down_set=bool(orders))
        flows += 1
        done[v] = True
        if m is None:
            continue
        x = m + inst.output_size[v] + inst.workspace[v]
        values[v] = x
        if x > best:
            best, arg = x, v
        if down_v is not None and orders:  # (without orders every task is examined)
            inside = np.bincount(ga.arc_dst[down_v[ga.arc_src]], minlength=n)
            front = np.flatnonzero(~down_v & (inside == indeg) & ~done)
            est[front] = np.minimum(est[front], m + extra[front])
    down = None
    if arg is not None:
        if network is not None:
            if network.min_memory(inst.preds[arg], (arg,)) is not None:
                down = network.source_side()
        else:
            down = np.flatnonzero(interval_cut(ga, arg, flow_down_set=True)[1]).tolist()
    return CutBound(best, arg, flows, complete, values, time.perf_counter() - t0, down)


@dataclass
class JointBound:
    """:func:`joint_cut_bound`'s answer: a proven bound, whether the search over W finished, its effort."""

    value: int
    complete: bool
    flows: int
    states: int
    seconds: float


def joint_cut_bound(inst: Instance, W: list[int], *, network: CutNetwork | None = None,
                    upper: int | None = None, deadline: Deadline | float | None = None,
                    max_flows: int | None = None) -> JointBound:
    """The min-cut bound of a set of tasks W taken together (the order among them is searched).

    For any order σ, at the compute of v ∈ W the tasks done form a down-set
    S with S ∩ W = A (the tasks of W before v in σ), preds(v) ⊆ S, v ∉ S;
    so the memory there is at least

        cost(A, v) = min{ L(S) : S down-set, A ∪ preds(v) ⊆ S, S ∩ ((W ∖ A) ∪ {v}) = ∅ } + out(v) + w(v)

    (one max-flow), and every order peaks at least at the least, over the
    orders of W (linear extensions of the precedence among W), of the
    largest cost along it: a bottleneck shortest path over the down-sets of
    W, found by Dijkstra. For W = {v} it is cut(v); for W = all tasks, the
    optimum. Stopped early (``deadline``, ``max_flows``, or a state costing
    ``upper``), the least cost still waiting is the bound. Exponential in
    |W| in the worst case; in practice a few hundred flows for |W| <= 16 on
    layered graphs.
    """

    t0 = time.perf_counter()
    net = network or CutNetwork(inst)
    k = len(W)
    idx = {v: i for i, v in enumerate(W)}
    need = [0] * k  # the tasks of W that precede each (transitively)
    for i, v in enumerate(W):
        seen: set[int] = set()
        stack = list(inst.preds[v])
        while stack:
            u = stack.pop()
            if u in seen:
                continue
            seen.add(u)
            if u in idx:
                need[i] |= 1 << idx[u]
            stack.extend(inst.preds[u])
    p = [inst.output_size[v] + inst.workspace[v] for v in W]
    full = (1 << k) - 1
    memo: dict[tuple[int, int], float] = {}
    flows = 0

    def cost(A: int, i: int) -> float:
        nonlocal flows
        key = (A, i)
        c = memo.get(key)
        if c is None:
            inside = [W[j] for j in range(k) if A >> j & 1] + list(inst.preds[W[i]])
            outside = [W[j] for j in range(k) if not A >> j & 1]
            m = net.min_memory(inside, outside)
            flows += 1
            c = math.inf if m is None else m + p[i]
            memo[key] = c
        return c

    best: dict[int, float] = {0: 0}
    heap: list[tuple[float, int]] = [(0, 0)]
    value: float = 0
    complete = False
    while heap:
        g, A = heapq.heappop(heap)
        if best.get(A) != g:
            continue
        value = g
        if A == full:
            complete = True
            break
        if (upper is not None and g >= upper) or as_deadline(deadline).expired() \
                or (max_flows is not None and flows >= max_flows):
            break
        for i in range(k):
            if A >> i & 1 or need[i] & ~A:
                continue
            c = cost(A, i)
            g2 = g if g >= c else c
            A2 = A | (1 << i)
            if best.get(A2, math.inf) > g2:
                best[A2] = g2
                heapq.heappush(heap, (g2, A2))
    else:
        value = upper if upper is not None else value  # nothing below ``upper`` completes the orders of W
    return JointBound(int(value) if value != math.inf else (upper or 0), complete, flows, len(best),
                      time.perf_counter() - t0)


__all__ = ["CutBound", "CutNetwork", "JointBound", "cut_bound", "interval_cut", "joint_cut_bound"]
