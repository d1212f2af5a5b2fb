"""The recomputation bound at one task's first computation: never above the brute-force optimum."""

from brute_budget import brute_time, recompute_case
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt.exact.recompute_bound import recompute_bound


@settings(max_examples=300, deadline=None)
@given(instances(max_tasks=6, max_size=6), st.integers(-10, 60))
def test_never_above_the_optimum_and_infeasible_only_when_no_plan(inst, frac):
    assume(inst.m <= 7)
    # budgets from a little below the footprint bound (no plan) up to the best order's peak (no recomputation)
    budget, best = recompute_case(inst, frac)
    rb = recompute_bound(inst, budget, max_tasks=inst.n, threads=1)
    if rb.infeasible_at is not None:
        assert best is None
        return
    if best is not None:
        assert inst.total_time + rb.extra <= best[0]


def test_a_chain_of_two_branches_forces_a_recomputation():
    # a feeds b and d; b -> c -> d; with budget 4 a's output (size 2) cannot wait beside b and c
    from memopt import from_tensors

    inst = from_tensors([("a", 5, 2, []), ("b", 1, 2, ["a"]), ("c", 1, 1, ["b"]), ("d", 1, 1, ["a", "c"])])
    best = brute_time(inst, 4, recompute=True, offload=False)
    rb = recompute_bound(inst, 4, threads=1)
    assert best is not None and rb.infeasible_at is None
    assert rb.extra == 5 == best[0] - inst.total_time  # recomputing a (time 5) is forced and enough
