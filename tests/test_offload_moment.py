"""The priced moment with offloading (memopt.exact.offload_moment) against the brute-force optimum of every plan."""

from fractions import Fraction

from brute_budget import brute_time, check_makespan_bound
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import Datum, Instance, Machine, Task, solve
from memopt.core.bounds import task_footprint_bound
from memopt.exact.offload_moment import offload_moment_bound, price_moment
from memopt.exact.transfer_prefix import transfer_prefix_bound
from memopt.graph.csr import graph_arrays


def _check(inst: Instance, M: int, rc: bool, binding: bool = False) -> None:
    check_makespan_bound(offload_moment_bound, inst, M, rc, binding=binding)


@st.composite
def long_lived(draw) -> Instance:
    """A chain of 3-4 tasks, each making a datum read by later tasks or kept as a result (activations kept for a
    backward pass): the shape where the moment binds (random instances rarely give it)."""
    n = draw(st.integers(3, 4))
    ids = [f"t{i}" for i in range(n)]
    tasks = [Task(t, draw(st.integers(1, 3)), 0, draw(st.booleans())) for t in ids]
    data = []
    for i, t in enumerate(ids):
        later = ids[i + 1:]
        readers = tuple(x for x in later if draw(st.booleans()))
        data.append(Datum(t, t, readers, draw(st.integers(1, 4))))
        if i + 1 < n and ids[i + 1] not in readers:
            data.append(Datum(f"tok{i}", t, (ids[i + 1],), 0))
    return Instance(tasks, data, Machine(bandwidth=draw(st.sampled_from([0.25, 0.5, 1]))))


@settings(max_examples=80, deadline=None,
          # the bound binds on a fifth to a half of these draws: assume() filters the rest
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(long_lived(), st.integers(0, 3), st.booleans())
def test_the_bound_holds_where_it_binds(inst, extra, rc):
    """No plan (brute force over every SPEC plan, offloading allowed) has a makespan below the bound."""
    _check(inst, task_footprint_bound(inst)[0] + extra, rc, binding=True)


@settings(max_examples=100, deadline=None)
@given(instances(max_tasks=4, max_size=6, max_time=2), st.integers(0, 3), st.booleans(),
       st.sampled_from([0.25, 1, 2]))
def test_the_bound_holds_on_random_instances(inst, extra, rc, bw):
    inst = inst.with_machine(bandwidth=bw)
    assume(inst.m <= 5)
    _check(inst, task_footprint_bound(inst)[0] + extra, rc)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(long_lived(), st.integers(0, 2), st.booleans())
def test_it_is_at_least_the_transfer_prefix_at_its_task(inst, extra, rc):
    """Nothing dropped (y = 0) and the last two terms are the transfer prefix bound's X/β + C(v): the moment
    of the prefix bound's task is at least that bound."""
    M = task_footprint_bound(inst)[0] + extra
    tp = transfer_prefix_bound(inst, M, recompute=rc)
    assume(tp.task is not None)
    m = price_moment(inst, graph_arrays(inst), tp.task, M, recompute=rc, beta=Fraction(inst.machine.bandwidth))
    assert m is not None and m.value >= tp.value


def _activation() -> Instance:
    # a (1) makes A (4), read by c at the end; b (1, workspace 1) makes Bd (1) for c; c (1). At b's first
    # computation A and b's footprint (2) cannot both be in fast memory under M = 5: a byte of A is in slow
    # memory (offloaded before b, reloaded after it) or A is made again (a runs twice)
    tasks = [Task("a", 1), Task("b", 1, 1), Task("c", 1)]
    data = [Datum("A", "a", ("c",), 4), Datum("tok", "a", ("b",), 0), Datum("Bd", "b", ("c",), 1),
            Datum("C", "c", (), 0)]
    return Instance(tasks, data, Machine(bandwidth=1))


def test_an_activation_through_the_channel():
    inst = _activation()
    # bandwidth 1: a byte of A out before b and back after it (1 + 1 + 1) costs no more than Σ c = 3
    assert offload_moment_bound(inst, 5, recompute=True).value == 3
    # bandwidth 1/4, no recomputation: the byte takes 4 before b, b runs (1), then 4 back: 9, where the transfer
    # prefix bound (4 before, then b and c) proves 6; the optimum moves all of A (16 each way)
    slow = inst.with_machine(bandwidth=0.25)
    b = offload_moment_bound(slow, 5, recompute=False)
    assert (b.value, inst.tasks[b.task].id, b.excess, b.offloaded) == (9, "b", 1, 1)
    assert transfer_prefix_bound(slow, 5, recompute=False).value == 6
    assert brute_time(slow, 5, recompute=False, offload=True)[0] == 35
    # with recomputation the byte may be dropped instead (a runs again): 3.75 at best, Σ c = 3 after rounding
    # (the optimum, 4, runs a twice)
    assert offload_moment_bound(slow, 5, recompute=True).value == 3
    assert brute_time(slow, 5, recompute=True, offload=True)[0] == 4


def test_solve_proves_it():
    slow = _activation().with_machine(bandwidth=0.25)
    seen = []
    r = solve(slow, "time", "planner", budget=5, recompute=False, offload=True, time_limit=10, on_start=seen.append)
    assert r.bound == 9 and r.value == 35
    assert seen[0].bound_source.startswith("offload moment bound: at task 'b'")


def _rerun_needs_input(x: int = 2, *, y: int = 3, v_work: int = 3, times: tuple[int, int, int, int] = (1, 1, 1, 1),
                       bandwidth: float = 0.25) -> Instance:
    # s (cannot rerun) makes X, read by a only; a makes Y, read by c at the end; v (after a, workspace ``v_work``)
    # makes V for c. At v's first computation Y is in fast memory, in slow memory, or a runs again — which needs X
    # back: dropping Y frees y − x bytes while X is held
    tasks = [Task("s", times[0], 0, False), Task("a", times[1]), Task("v", times[2], v_work), Task("c", times[3])]
    data = [Datum("X", "s", ("a",), x), Datum("Y", "a", ("c",), y),
            Datum("tok", "a", ("v",), 0), Datum("V", "v", ("c",), 1), Datum("C", "c", (), 0)]
    return Instance(tasks, data, Machine(bandwidth=bandwidth))


def test_a_recomputation_needs_its_input_back():
    """The knapsack prices dropping Y at c(a) = 1 (mixed with offloading, the moment is 43/9, Σ c = 4 after
    rounding down); a rerun of a needs X (2 bytes, made by s, which cannot rerun) back, so dropping Y frees 1 byte
    of the 2 that must leave: the priced moment proves 8 (1/4 byte per time unit), the optimum is 28."""
    inst = _rerun_needs_input()
    M = 5
    assert offload_moment_bound(inst, M, recompute=True, priced=0).value == 4
    b = offload_moment_bound(inst, M, recompute=True)
    assert (b.value, b.priced, inst.tasks[b.task].id) == (8, True, "v")
    assert "priced by minimum cuts" in b.reason(inst)
    assert brute_time(inst, M, recompute=True, offload=True)[0] == 28
    seen = []
    r = solve(inst, "time", "planner", budget=M, recompute=True, offload=True, time_limit=10, on_start=seen.append)
    assert r.bound == 8 and r.value == 28
    assert "priced by minimum cuts" in seen[0].bound_source


@st.composite
def reruns(draw) -> Instance:
    """:func:`_rerun_needs_input` with random sizes, times, workspace and bandwidth."""
    return _rerun_needs_input(draw(st.integers(1, 4)), y=draw(st.integers(1, 4)), v_work=draw(st.integers(0, 3)),
                              times=tuple(draw(st.integers(1, 3)) for _ in range(4)),
                              bandwidth=draw(st.sampled_from([0.25, 0.5, 1])))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(reruns(), st.integers(0, 1))
def test_the_priced_moment_holds_where_it_binds(inst, extra):
    """Where pricing the recomputations by minimum cuts raises the moment, no plan is below it (brute force)."""
    M = task_footprint_bound(inst)[0] + extra
    assume(offload_moment_bound(inst, M, recompute=True).value
           > offload_moment_bound(inst, M, recompute=True, priced=0).value)
    _check(inst, M, True)



def _head_start() -> Instance:
    # s (cannot rerun) makes P for t2 and Q for t1 (the states of two optimizer steps); t0 → t1 → t2, each
    # leaving a result. Under M = 2, a byte of P and Q leaves before t0 first runs (the transfer prefix); at
    # t1's first computation P and t0's result cannot both stay beside t1's footprint, and P comes back after
    tasks = [Task("s", 1, 0, False), Task("t0", 3, 0, False), Task("t1", 1, 0, False), Task("t2", 1, 0, False)]
    data = [Datum("P", "s", ("t2",), 1), Datum("Q", "s", ("t1",), 1), Datum("go", "s", ("t0",), 0),
            Datum("A", "t0", (), 1), Datum("tok0", "t0", ("t1",), 0), Datum("B", "t1", (), 1),
            Datum("tok1", "t1", ("t2",), 0), Datum("C", "t2", (), 1)]
    return Instance(tasks, data, Machine(bandwidth=0.5))


def test_a_head_start_before_a_moment():
    """The head start (1 byte out before t0: 2) + t0 and t1 (4) + P's reload after t1's stage (2) = 8, where
    the transfer prefix (2 + t0, t1, t2) and the moment alone (t1 + 3 bytes each way... 1 + 6) prove 7; the
    optimum is 14."""
    inst = _head_start()
    for rc in (False, True):
        assert transfer_prefix_bound(inst, 2, recompute=rc).value == 7
        assert offload_moment_bound(inst, 2, recompute=rc, heads=()).value == 7
        b = offload_moment_bound(inst, 2, recompute=rc)
        assert (b.value, inst.tasks[b.task].id, inst.tasks[b.head].id, b.head_offloaded) == (8, "t1", "t0", 1)
        assert "task 't0' first runs only once 1 bytes" in b.reason(inst)
        assert brute_time(inst, 2, recompute=rc, offload=True)[0] == 14
    seen = []
    r = solve(inst, "time", "planner", budget=2, offload=True, time_limit=1, on_start=seen.append)
    assert r.bound == 8 and r.value >= 14
    assert "offload moment bound" in seen[0].bound_source


@st.composite
def head_starts(draw) -> Instance:
    """:func:`_head_start` with random times, sizes, recomputability and bandwidth, 3-4 chain tasks, the first
    one's datum sometimes an activation read by the last (where a moment binds)."""
    n = draw(st.integers(3, 4))
    ids = [f"t{i}" for i in range(n)]
    tasks = [Task("s", draw(st.integers(1, 2)), 0, False)]
    tasks += [Task(t, draw(st.integers(1, 3)), 0, draw(st.booleans())) for t in ids]
    data = [Datum("P", "s", (ids[-1],), draw(st.integers(1, 4))), Datum("Q", "s", (ids[-2],), draw(st.integers(1, 4))),
            Datum("go", "s", (ids[0],), 0)]
    for i, t in enumerate(ids):
        readers = tuple(ids[i + 1:i + 2])
        if i == 0 and draw(st.booleans()):
            data.append(Datum(t, t, (*readers, ids[-1]), draw(st.integers(1, 3))))
        else:
            data.append(Datum(t, t, readers, draw(st.integers(0, 2))))
    return Instance(tasks, data, Machine(bandwidth=draw(st.sampled_from([0.25, 0.5, 1]))))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(head_starts(), st.integers(0, 1), st.booleans())
def test_a_head_start_holds_where_it_binds(inst, extra, rc):
    """Where an earlier task's transfer prefix raises a moment (one draw in twenty), no plan is below it."""
    M = task_footprint_bound(inst)[0] + extra
    assume(offload_moment_bound(inst, M, recompute=rc).value
           > offload_moment_bound(inst, M, recompute=rc, heads=()).value)
    _check(inst, M, rc)
