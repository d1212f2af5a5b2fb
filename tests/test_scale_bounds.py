"""The bounds that scale (no n² masks): against brute force, against the bitmask definitions, and in seconds.

- lifetime / retention bounds (:mod:`memopt.exact.peak_bounds`): the pruned search equals the maximum of
  the bitmask sums of :mod:`memopt.graph.masks` (the old implementation) and stays below the optimum;
- the interval networks of the cut bound (:func:`memopt.exact.cut_bound.interval_cut`): equal to the least
  L(S) over the down-sets of the task's interval, found by enumeration, and to the whole-graph network;
- the knapsack relaxation of the recomputation bound: never above the brute-force optimum;
- :mod:`memopt.graph.csr`: reachability and universal tasks against networkx.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from brute_budget import recompute_case
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt.core.deadline import Deadline
from memopt.core.evaluate import memory_profile
from memopt.exact.cut_bound import CutNetwork, cut_bound, interval_cut
from memopt.exact.exhaustive import exhaustive_peak, topological_orders
from memopt.exact.peak_bounds import held_bound, lifetime_bound, retention_bound
from memopt.exact.recompute_bound import knapsack_bound, recompute_bound
from memopt.generators import chain, random_layered, random_series_parallel
from memopt.graph.csr import graph_arrays
from memopt.graph.masks import iter_bits, needed_at
from memopt.training import training_graph


def mask_held(inst, data=None, skip_readers=False):
    """held(v) per task from the bitmask sets (the implementation before the pruned search)."""
    held = [0] * inst.n
    for j in (range(inst.m) if data is None else data):
        mask = needed_at(inst, j)
        if skip_readers:
            for c in inst.consumers[j]:
                mask &= ~(1 << c)
        for v in iter_bits(mask):
            held[v] += inst.size[j]
    return held


def down_sets(inst):
    """Every down-set of the task graph (tiny graphs), as frozensets."""
    out = []
    for bits in range(1 << inst.n):
        S = {u for u in range(inst.n) if bits >> u & 1}
        if all(u in S for w in S for u in inst.preds[w]):
            out.append(frozenset(S))
    return out


def resident(inst, S):
    return sum(inst.size[j] for j in range(inst.m)
               if inst.producer[j] in S and (not inst.consumers[j] or any(c not in S for c in inst.consumers[j])))


@settings(max_examples=150, deadline=None)
@given(instances(max_tasks=8, no_recompute=True))
def test_lifetime_and_retention_equal_the_bitmask_maximum_and_stay_below_the_optimum(inst):
    held = mask_held(inst)
    expect = max((held[v] + inst.output_size[v] + inst.workspace[v] for v in range(inst.n)), default=0)
    hb = held_bound(inst)
    assert hb.complete and hb.value == expect
    assert lifetime_bound(inst)[0] <= exhaustive_peak(inst)[0]
    fixed = [j for j in range(inst.m) if inst.size[j] and not inst.can_recompute[inst.producer[j]]]
    fh = mask_held(inst, fixed, skip_readers=True)
    expect_r = max((fh[v] + inst.input_size[v] + inst.output_size[v] + inst.workspace[v] for v in range(inst.n)),
                   default=0)
    hr = held_bound(inst, fixed_only=True)
    assert hr.complete and (not fixed or hr.value == expect_r)
    assert retention_bound(inst, recompute=True)[0] >= (expect_r if fixed else 0)


@pytest.mark.parametrize("make", [
    lambda s: training_graph(random_layered(60, seed=s)),
    lambda s: random_series_parallel(150, seed=s, form="general"),
    lambda s: training_graph(chain(40, seed=s)),
    lambda s: random_layered(120, seed=s, form="buffer"),
])
def test_pruned_search_matches_the_bitmask_maximum_on_larger_graphs(make):
    for seed in range(3):
        inst = make(seed)
        held = mask_held(inst)
        expect = max(held[v] + inst.output_size[v] + inst.workspace[v] for v in range(inst.n))
        hb = held_bound(inst)
        assert hb.complete and hb.value == expect
        # a work limit only ever returns a smaller, still exact, value of some task
        small = held_bound(inst, work=1)
        assert small.value <= expect
        if small.task is not None:
            assert small.value == held[small.task] + inst.output_size[small.task] + inst.workspace[small.task]


@settings(max_examples=150, deadline=None)
@given(instances(max_tasks=7))
def test_interval_network_is_the_least_memory_of_the_interval(inst):
    ga = graph_arrays(inst)
    net = CutNetwork(inst)
    sets = down_sets(inst)
    for v in range(inst.n):
        inside = [S for S in sets if v not in S and all(u in S for u in inst.preds[v])]
        best = min(resident(inst, S) for S in inside)
        value, down = interval_cut(ga, v, flow_down_set=True)
        assert value == best == net.min_memory(inst.preds[v], (v,))
        S = frozenset(np.flatnonzero(down).tolist())
        assert S in inside and resident(inst, S) == best


@settings(max_examples=60, deadline=None)
@given(instances(max_tasks=7))
def test_cut_bound_with_orders_finds_the_full_maximum(inst):
    full = cut_bound(inst)
    orders = [list(o) for _, o in zip(range(3), topological_orders(inst))]
    pruned = cut_bound(inst, orders)
    assert pruned.complete and pruned.value == full.value
    for v, x in pruned.values.items():
        assert x == full.values[v] and all(x <= memory_profile(inst, o)[v] for o in orders)


@settings(max_examples=200, deadline=None)
@given(instances(max_tasks=6, max_size=6), st.integers(-10, 60))
def test_knapsack_bound_never_above_the_optimum(inst, frac):
    assume(inst.m <= 7)
    budget, best = recompute_case(inst, frac)
    ga = graph_arrays(inst)
    for v in range(inst.n):
        b = knapsack_bound(ga, inst, v, budget)
        if b is None:
            assert best is None, f"task {v}: claimed infeasible at {budget}"
        elif best is not None:
            assert inst.total_time + b <= best[0]


def test_knapsack_bound_counts_a_forced_recomputation():
    from memopt import from_tensors

    # a (time 5, size 2) is read by b and d; b -> c -> d; at c's first compute with budget 4 a's output cannot
    # stay beside b's and c's: a runs again (the moment program's own example)
    inst = from_tensors([("a", 5, 2, []), ("b", 1, 2, ["a"]), ("c", 1, 1, ["b"]), ("d", 1, 1, ["a", "c"])])
    ga = graph_arrays(inst)
    c = inst.task_index["c"]
    assert knapsack_bound(ga, inst, c, 4) == 5
    rb = recompute_bound(inst, 4, threads=1)
    assert rb.extra == 5


@settings(max_examples=100, deadline=None)
@given(instances(max_tasks=8))
def test_reachability_and_universal_tasks_against_networkx(inst):
    ga = graph_arrays(inst)
    g = nx.DiGraph()
    g.add_nodes_from(range(inst.n))
    g.add_edges_from((u, w) for u in range(inst.n) for w in inst.succs[u])
    for v in range(inst.n):
        assert set(np.flatnonzero(ga.descendants(v)).tolist()) == nx.descendants(g, v)
        assert set(np.flatnonzero(ga.ancestors(v)).tolist()) == nx.ancestors(g, v)
        universal = len(nx.descendants(g, v)) + len(nx.ancestors(g, v)) == inst.n - 1
        assert bool(ga.universal()[v]) == universal


def test_the_bounds_build_nothing_of_size_n_squared():
    """No bitmask closure (n²/8 bytes) is built by the lifetime, retention, cut or recomputation bounds."""
    inst = training_graph(random_layered(1000, seed=0))
    order = list(inst.topological_order)
    peak = max(memory_profile(inst, order))
    lt = lifetime_bound(inst, deadline=Deadline(60))[0]
    retention_bound(inst, recompute=True)
    cb = cut_bound(inst, [order], deadline=Deadline(30), max_flows=20)
    recompute_bound(inst, peak * 7 // 10, deadline=Deadline(10), max_tasks=1, threads=1)
    assert 0 < lt <= cb.value <= peak
    memo = inst.__dict__.get("_memo", {})
    assert "descendant_masks" not in memo and "ancestor_masks" not in memo


@pytest.mark.slow
def test_bounds_on_twenty_thousand_tasks():
    """The bounds at scale, within their limits, valid against the best schedule found, without n² memory."""
    from memopt.heuristics.orders import best_baseline

    inst = training_graph(random_layered(10_000, seed=0))
    order, peak, _ = best_baseline(inst)
    lt = lifetime_bound(inst)[0]
    cb = cut_bound(inst, [order], deadline=Deadline(60))
    rb = recompute_bound(inst, peak * 7 // 10, deadline=Deadline(30))
    assert 0 < lt <= peak and cb.value <= peak and rb.infeasible_at is None
    memo = inst.__dict__.get("_memo", {})
    assert "descendant_masks" not in memo and "ancestor_masks" not in memo


@pytest.mark.parametrize("scipy_from", [0, 10**9])
def test_reachability_is_networkx_s_with_and_without_scipy(monkeypatch, scipy_from):
    """Both searches of GraphArrays (scipy's from SCIPY_FROM tasks, Python's below) give networkx's sets."""
    import memopt.graph.csr as csr
    from memopt.graph.csr import GraphArrays

    monkeypatch.setattr(csr, "SCIPY_FROM", scipy_from)
    inst = training_graph(random_layered(40, seed=5))
    ga = GraphArrays(inst)
    g = nx.DiGraph([(u, w) for u in range(inst.n) for w in inst.succs[u]])
    g.add_nodes_from(range(inst.n))
    for v in range(inst.n):
        assert set(np.flatnonzero(ga.descendants(v)).tolist()) == nx.descendants(g, v)
        assert set(np.flatnonzero(ga.ancestors(v)).tolist()) == nx.ancestors(g, v)
