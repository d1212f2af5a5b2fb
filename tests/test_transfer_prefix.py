"""The transfer prefix bound (memopt.exact.transfer_prefix) against the brute-force optimum of every plan."""

from brute_budget import brute_time, check_makespan_bound
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import Datum, Instance, Machine, Task, solve
from memopt.core.bounds import task_footprint_bound
from memopt.exact.transfer_prefix import transfer_prefix_bound


@st.composite
def source_heavy(draw) -> Instance:
    """Sources of time 0 that cannot rerun (a training step's parameters and states), each read by one later
    task or a result, then tasks with a cost (4 tasks in all): the shape where the bound binds (random
    instances rarely give it)."""
    k = draw(st.integers(1, 2))
    ids = [f"s{i}" for i in range(k)] + [f"t{j}" for j in range(draw(st.integers(1, 4 - k)))]
    tasks, data = [], []
    readers: dict[str, list[str]] = {x: [] for x in ids}
    for j, t in enumerate(ids):
        if t.startswith("t"):
            for x in ids[:j]:
                if draw(st.booleans()):
                    readers[x].append(t)
    for t in ids:
        src = t.startswith("s")
        tasks.append(Task(t, 0 if src else draw(st.integers(1, 3)), 0, not src and draw(st.booleans())))
        if src and readers[t] and draw(st.booleans()):
            readers[t] = []  # a result (a buffer, an updated state), or read by one task only
        elif src and len(readers[t]) > 1:
            readers[t] = readers[t][-1:]
        data.append(Datum(t, t, tuple(readers[t]), draw(st.integers(1, 4) if src else st.integers(0, 3))))
    if k == 2:  # the second source waits for the first, the first task with a cost for the last source (as
        data.append(Datum("tok", "s0", ("s1",), 0))  # the importers chain them, by tokens of size 0)
    data.append(Datum("go", f"s{k - 1}", (ids[k],), 0))
    return Instance(tasks, data, Machine(bandwidth=draw(st.sampled_from([1, 2]))))


def _check(inst: Instance, M: int, rc: bool, binding: bool = False) -> None:
    check_makespan_bound(transfer_prefix_bound, inst, M, rc, binding=binding)


@settings(max_examples=150, deadline=None,
          # the bound binds on a fifth to a half of these draws: assume() filters the rest
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(source_heavy(), st.integers(0, 4), st.booleans())
def test_the_bound_holds_where_it_binds(inst, extra, rc):
    """No plan (brute force over every SPEC plan, offloading allowed) has a makespan below the bound."""
    _check(inst, task_footprint_bound(inst)[0] + extra, rc, binding=True)


@settings(max_examples=120, deadline=None)
@given(instances(max_tasks=4, no_recompute=True, max_size=6, max_time=2), st.integers(0, 3), st.booleans(),
       st.sampled_from([1, 2, 3]))
def test_the_bound_holds_on_random_instances(inst, extra, rc, bw):
    inst = inst.with_machine(bandwidth=bw)
    assume(inst.m <= 5)
    _check(inst, task_footprint_bound(inst)[0] + extra, rc)


def _two_sources() -> Instance:
    # two sources made at time 0 that cannot be made again: s0 (4) read by t1, s1 (2) a result (a buffer kept
    # to the end); t0 and t1 cost 1 each, t0 waits for the sources (tokens of size 0)
    tasks = [Task("s0", 0, 0, False), Task("s1", 0, 0, False), Task("t0", 1), Task("t1", 1)]
    data = [Datum("s0", "s0", ("t1",), 4), Datum("s1", "s1", (), 2), Datum("tok", "s0", ("s1",), 0),
            Datum("tok1", "s1", ("t0",), 0), Datum("t0", "t0", ("t1",), 2), Datum("t1", "t1", (), 0)]
    return Instance(tasks, data, Machine(bandwidth=1))


def test_sources_beyond_the_budget_leave_before_the_first_cost():
    # budget 6: before t0 runs, 4 + 2 + t0's output 2 - 6 = 2 must be in slow memory: 2 time units at
    # bandwidth 1 with nothing to compute beside them, then t0 and t1 (1 + 1); the optimum does exactly that
    inst = _two_sources()
    b = transfer_prefix_bound(inst, 6, recompute=True)
    assert (b.value, inst.tasks[b.task].id, b.offloaded, b.after) == (4, "t0", 2, 2)
    assert brute_time(inst, 6, recompute=True, offload=True)[0] == 4
    assert transfer_prefix_bound(inst.with_machine(bandwidth=2), 6, recompute=True).value == 3
    assert brute_time(inst.with_machine(bandwidth=2), 6, recompute=True, offload=True)[0] == 3
    assert transfer_prefix_bound(inst, 8, recompute=True).value == 2  # everything fits: Σ c


def test_solve_proves_it():
    r = solve(_two_sources(), "time", "planner", budget=6, recompute=True,
              offload=True, time_limit=10)
    assert r.bound == 4 and r.value == 4 and r.status.value == "optimal"
