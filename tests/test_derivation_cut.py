"""The derivation cut bound on the peak with recomputation: never above the brute-force least peak."""

from fractions import Fraction

from brute_budget import brute_time, recompute_case
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import Datum, Instance, Machine, Task
from memopt.exact.derivation_cut import derivation_cut_bound
from memopt.exact.peak_bounds import budget_lower_bound, held_bound, retention_bound
from memopt.exact.priced_moments import RecomputationNetwork, priced_moment_bound
from memopt.graph.csr import graph_arrays


@settings(max_examples=300, deadline=None)
@given(instances(max_tasks=6, max_size=6, no_recompute=True))
def test_no_plan_fits_below_the_bound(inst):
    assume(inst.m <= 7)
    b = derivation_cut_bound(inst, max_flows=10**6)
    assert b.complete
    assert b.value >= held_bound(inst, fixed_only=True).value
    assert retention_bound(inst, recompute=True)[0] >= b.value
    assume(b.value > 0)
    # brute force: the least peak of every plan with recomputation is at least the bound
    assert brute_time(inst, b.value - 1, recompute=True, offload=False) is None


def _update_step() -> Instance:
    # P: a parameter (cannot rerun); A reads it; U updates it (a result); B makes a large b that C reads
    tasks = [Task("P", 0, 0, False), Task("A", 1), Task("U", 1), Task("B", 1), Task("C", 1)]
    data = [Datum("p", "P", ("A", "U"), 4), Datum("a", "A", ("U", "B"), 1), Datum("p2", "U", (), 4),
            Datum("b", "B", ("C",), 10), Datum("c", "C", (), 1)]
    return Instance(tasks, data, Machine(), name="update-step")


def test_an_updated_parameter_is_held_in_one_form_or_the_other():
    # at C's first compute, p or its update p2 is in memory (p2 needs p): 4 + b + c = 15, which
    # the retention bound (p is not read at C or later) does not see
    inst = _update_step()
    b = derivation_cut_bound(inst)
    assert b.value == 15 and inst.tasks[b.task].id in ("B", "C")
    assert held_bound(inst, fixed_only=True).value < 15
    assert budget_lower_bound(inst, recompute=True, offload=False)[0] == 15
    assert brute_time(inst, 14, recompute=True, offload=False) is None
    assert brute_time(inst, 15, recompute=True, offload=False) is not None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(instances(min_tasks=4, max_tasks=6, max_size=6, no_recompute=True), st.integers(0, 25), st.integers(-6, 6))
def test_the_priced_moment_never_exceeds_the_recomputation_of_an_optimal_plan(inst, frac, k):
    assume(inst.m <= 7)
    budget, best = recompute_case(inst, frac)
    assume(best is not None and best[0] > inst.total_time)  # recomputation is forced: the bound has work to do
    net = RecomputationNetwork(graph_arrays(inst), inst)
    for v in range(inst.n):
        room = budget - inst.input_size[v] - inst.output_size[v] - inst.workspace[v]
        assert room >= 0  # a plan exists, so v fits
        assert inst.total_time + net.lagrangian(v, room, Fraction(2) ** k) <= best[0]
        assert inst.total_time + priced_moment_bound(net, v, room) <= best[0]



def test_a_price_too_large_for_int64_capacities_gives_no_value_rather_than_a_wrong_one():
    inst = _update_step()
    big = inst.replace(data=[d.__class__(d.id, d.producer, d.consumers, d.size * 10**12) for d in inst.data])
    net = RecomputationNetwork(graph_arrays(big), big)
    c = big.task_index["C"]
    assert net.lagrangian(c, 0, Fraction(2) ** 24) is None
    assert net.lagrangian(c, 0, Fraction(1, 2**20)) is not None
