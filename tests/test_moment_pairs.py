"""The program of a pair of moments: never above the brute-force least recomputation, infeasible only when no
plan exists, and stronger than one moment where a recomputation must happen twice."""

import time

import pytest
from brute_budget import brute_time, recompute_case
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import Datum, Instance, Machine, Task
from memopt.backends.linear import solve_linear
from memopt.core.deadline import Deadline
from memopt.exact.moment_pairs import moment_pair_program
from memopt.exact.recompute_bound import moment_program, recompute_bound
from memopt.graph.csr import graph_arrays


def _optimum(lm) -> int | None:
    """The program's optimum (``None``: infeasible); tiny programs, solved to optimality."""
    sol = solve_linear(lm, "cpsat", time_limit=20, threads=1)
    assert sol.status in ("optimal", "infeasible")
    return None if sol.status == "infeasible" else round(sol.objective)


def _twice() -> Instance:
    # X (may rerun, 1) makes x (2), read by A and by Z. V1 and V2 fill the budget 5 (an output of 3, a
    # workspace of 2): x cannot stay across V1, and A (between V1 and V2) needs it — X runs again; nor across
    # V2, and Z needs it — X runs a third time. Each moment alone sees one rerun; the pair both
    tasks = [Task("X", 1), Task("V1", 0, 2, False), Task("A", 0, 0, False), Task("V2", 0, 2, False),
             Task("Z", 0, 0, False)]
    data = [Datum("x0", "X", ("V1",), 0), Datum("x", "X", ("A", "Z"), 2), Datum("v", "V1", ("A",), 3),
            Datum("a", "A", ("V2",), 0), Datum("w", "V2", ("Z",), 3)]
    return Instance(tasks, data, Machine(budget=5), name="twice")


def test_a_pair_counts_two_recomputations_where_each_moment_sees_one():
    inst = _twice()
    best = brute_time(inst, 5, recompute=True, offload=False)
    assert best is not None
    forced = best[0] - inst.total_time
    idx = inst.task_index
    assert forced == 2
    singles = [_optimum(moment_program(inst, idx[v], 5)) for v in ("V1", "V2")]
    pair = _optimum(moment_pair_program(inst, idx["V1"], idx["V2"], 5))
    assert singles == [1, 1] and pair == 2
    rb = recompute_bound(inst, 5, deadline=time.perf_counter() + 5, pairs=Deadline(seconds=10))
    assert rb.extra == forced
    # a plan within 1 % of the one-moment bound: the pairs are not worth their time
    near = recompute_bound(inst, 5, deadline=time.perf_counter() + 5, pairs=Deadline(seconds=10),
                           best=inst.total_time + 1)
    assert near.extra == 1 and len(near.chain) < 2


def test_a_pair_needs_an_ancestor_first():
    inst = _twice()
    with pytest.raises(ValueError, match="not an ancestor"):
        moment_pair_program(inst, inst.task_index["V2"], inst.task_index["V1"], 5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(instances(min_tasks=4, max_tasks=6, max_size=6, no_recompute=True), st.integers(-10, 25))
def test_a_pair_never_exceeds_an_optimal_plan_and_is_infeasible_only_without_one(inst, frac):
    assume(inst.m <= 7)
    budget, best = recompute_case(inst, frac)
    ga = graph_arrays(inst)
    pairs = [(u, v) for v in range(inst.n) for u in range(inst.n) if ga.ancestors(v)[u]]
    assume(pairs)
    for u, v in pairs:
        lm = moment_pair_program(inst, u, v, budget)
        value = None if lm is None else _optimum(lm)
        if value is None:
            assert best is None  # no pair state fits: no plan either
        elif best is not None:
            assert inst.total_time + value <= best[0]
    rb = recompute_bound(inst, budget, deadline=time.perf_counter() + 5, pairs=Deadline(seconds=10))
    if rb.infeasible_at is not None:
        assert best is None
    elif best is not None:
        assert inst.total_time + rb.extra <= best[0]
