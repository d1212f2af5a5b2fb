"""Chains of priced moments: never above the brute-force least recomputation, stronger than one moment."""

import time

from brute_budget import brute_time, recompute_case
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import Datum, Instance, Machine, Task
from memopt.exact.priced_moments import RecomputationNetwork, chained_moment, dyadic_price, priced_moment
from memopt.exact.recompute_bound import recompute_bound
from memopt.graph.csr import graph_arrays


def _two_moments() -> Instance:
    # A and B may rerun (1 each); C and D may not, and D reads C. Budget 1: at B's compute its output b
    # fills memory, so a (read by C) goes and A reruns after B; at C's compute a fills it, so b (read by D)
    # goes and B reruns after C. One moment sees one rerun; the chain B < C sees that B's rerun comes
    # after B, hence A's too
    tasks = [Task("A", 1), Task("B", 1), Task("C", 0, 0, False), Task("D", 0, 0, False)]
    data = [Datum("ab", "A", ("B",), 0), Datum("a", "A", ("C",), 1), Datum("b", "B", ("D",), 1),
            Datum("bc", "B", ("C",), 0), Datum("cd", "C", ("D",), 0)]
    return Instance(tasks, data, Machine(budget=1), name="two-moments")


def _rooms(inst: Instance, budget: int) -> list[int]:
    return [budget - inst.input_size[v] - inst.output_size[v] - inst.workspace[v] for v in range(inst.n)]


def test_a_chain_of_two_moments_sees_both_recomputations():
    inst = _two_moments()
    best = brute_time(inst, 1, recompute=True, offload=False)
    assert best is not None and best[0] == inst.total_time + 2
    net = RecomputationNetwork(graph_arrays(inst), inst)
    rooms = _rooms(inst, 1)
    b, c = inst.task_index["B"], inst.task_index["C"]
    assert priced_moment(net, b, rooms[b])[0] == 1
    assert priced_moment(net, c, rooms[c])[0] == 1
    assert chained_moment(net, [b, c], [rooms[b], rooms[c]])[0] == 2
    rb = recompute_bound(inst, 1, deadline=time.perf_counter() + 10)
    assert rb.extra == 2 and rb.chain == (b, c)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(instances(min_tasks=4, max_tasks=6, max_size=6, no_recompute=True), st.integers(0, 25),
       st.integers(-4, 4), st.integers(-4, 4))
def test_a_chain_never_exceeds_the_recomputation_of_an_optimal_plan(inst, frac, k1, k2):
    assume(inst.m <= 7)
    budget, best = recompute_case(inst, frac)
    assume(best is not None and best[0] > inst.total_time)  # recomputation is forced
    net = RecomputationNetwork(graph_arrays(inst), inst)
    rooms = _rooms(inst, budget)
    pairs = [(u, v) for u in range(inst.n) for v in range(inst.n) if u != v and net.ancestors(v)[u]]
    assume(pairs)
    for u, v in pairs:
        x = net.chain_lagrangian([u, v], [rooms[u], rooms[v]], [dyadic_price(k1), dyadic_price(k2 + 0.5)])
        assert inst.total_time + x <= best[0]
        single, t = priced_moment(net, v, rooms[v])
        chained, _ = chained_moment(net, [u, v], [rooms[u], rooms[v]], [None, t])
        assert single <= chained  # the search starts at the single moment's price
        assert inst.total_time + chained <= best[0]
    assert inst.total_time + recompute_bound(inst, budget, deadline=time.perf_counter() + 10).extra <= best[0]
