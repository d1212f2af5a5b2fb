"""GCD scaling and chain fusion (memopt.transforms.scaling / .fusion): exact where claimed, sound always."""

import math

from brute_budget import brute_time
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import Datum, Instance, Machine, Task, from_tensors
from memopt.core.bounds import peak_lower_bound
from memopt.core.request import Request
from memopt.heuristics.orders import best_baseline
from memopt.heuristics.planner import plan_under_budget
from memopt.transforms.fusion import fuse, fuse_request
from memopt.transforms.scaling import gcd_scale, scale

FLAGS = [(True, False), (False, True), (True, True), (False, False)]


def scaled_copy(inst, ks, kt):
    """Multiply every size/workspace by ks and every time by kt (bandwidth × ks/kt keeps transfer times ×kt)."""
    tasks = [Task(t.id, t.time * kt, t.workspace * ks, t.recompute) for t in inst.tasks]
    data = [Datum(d.id, d.producer, d.consumers, d.size * ks) for d in inst.data]
    return Instance(tasks, data, inst.machine, name=inst.name)


@settings(max_examples=60)
@given(instances(max_tasks=6, no_recompute=True), st.integers(1, 4), st.integers(1, 4),
       st.sampled_from([1, 2, 0.5, math.inf]), st.integers(0, 100), st.sampled_from(FLAGS))
def test_gcd_scaling_maps_every_plan_exactly(inst, ks, kt, bw, frac, flags):
    inst = scaled_copy(inst, ks, kt)
    inst = inst.with_machine(bandwidth=bw if math.isinf(bw) else bw * ks / kt)
    rc, off = flags
    lb, _ = peak_lower_bound(inst, offload=off)
    _, peak, _ = best_baseline(inst)
    B = lb + (peak - lb) * frac // 100
    req = Request(inst, "time", B, None, rc, off)
    sc = scale(req)
    sreq, gs, gt = sc.request, sc.size_factor, sc.time_factor
    assert gs % ks == 0 or gs == 1 or ks % gs == 0
    plan = plan_under_budget(req)
    assume(plan is not None)
    ev, sev = req.evaluate(plan), sreq.evaluate(plan)
    assert ev.valid and sev.valid  # the same plan, valid in both
    assert sc.expand(plan) is plan and scale(req.__class__(inst, "peak")).unscale(sev.peak) == ev.peak
    assert ev.peak == sev.peak * gs
    # exact in rationals; the evaluator reports a float, so compare to the last bit or so
    assert math.isclose(ev.makespan, sev.makespan * gt, rel_tol=1e-12)
    # and the other way: a plan of the scaled instance is a plan of the original
    splan = plan_under_budget(sreq)
    assert splan is not None and req.evaluate(splan).valid


def test_gcd_scale_factors_and_budget_floor():
    inst = from_tensors([("a", 6, 4, []), ("b", 9, 8, ["a"])], machine=Machine(budget=13, bandwidth=2))
    sc = gcd_scale(inst)
    assert (sc.size_factor, sc.time_factor) == (4, 3)
    assert [t.time for t in sc.instance.tasks] == [2, 3]
    assert sc.instance.size == (1, 2)
    assert sc.instance.machine.budget == 3          # floor(13 / 4): peak ≤ 13 ⟺ peak/4 ≤ 3
    assert sc.instance.machine.bandwidth == 1.5     # a transfer of 4 took 2 = 3 × (1 / 1.5)


def test_gcd_scale_drops_a_factor_that_would_be_inexact():
    inst = from_tensors([("a", 3, 3, [])], machine=Machine(bandwidth=1))
    sc = gcd_scale(inst)  # 1 × 3 / 3 = 1: exact
    assert (sc.size_factor, sc.time_factor) == (3, 3)
    inst = from_tensors([("a", 1, 3, [])], machine=Machine(bandwidth=1))
    sc = gcd_scale(inst)  # β × 1/3 is not a float: sizes stay
    assert (sc.size_factor, sc.time_factor) == (1, 1)


# ------------------------------------------------------------------ fusion
def src_chain():
    """Sources feeding single readers (rule 'source') and a chain (rule 'chain')."""
    return from_tensors([("x", 2, 3, []), ("a", 1, 2, ["x"]), ("p", 1, 1, []), ("b", 3, 1, ["a", "p"]),
                         ("c", 1, 1, ["b"]), ("d", 2, 1, ["c", "a"])])


def test_fusion_hand_example():
    inst = src_chain()
    fz = fuse(inst, "exact", recompute=True)
    assert fz.exact and [s.rule for s in fz.steps] == ["source", "source"]
    assert sorted(t.id for t in fz.instance.tasks) == ["a", "b", "c", "d"]
    assert fz.groups()["a"] == ["x", "a"] and fz.groups()["b"] == ["p", "b"]
    assert fz.instance.total_time == inst.total_time
    fc = fuse(inst, "chains", recompute=True)
    assert not fc.exact and fc.instance.n == 3  # b -> c is a chain link too
    assert fuse(inst, "exact", recompute=True, offload=True).fused == 0  # nothing is exact with offloading


def small_budget(inst, frac, off):
    lb, _ = peak_lower_bound(inst, offload=off)
    _, peak, _ = best_baseline(inst)
    return lb + (peak - lb) * frac // 100


@settings(max_examples=60)
@given(instances(max_tasks=5, no_recompute=True, max_size=5, form="tensor"), st.integers(0, 100),
       st.sampled_from([(True, False), (False, False)]))
def test_exact_fusion_preserves_the_optimum(inst, frac, flags):
    rc, off = flags
    B = small_budget(inst, frac, off)
    req = Request(inst, "time", B, None, rc, off)
    fz = fuse_request(req, "exact")
    freq = fz.request
    assert fz.exact and freq.instance is fz.instance and fz.original is req
    assume(fz.fused > 0 and inst.m <= 6)
    a = brute_time(inst, B, recompute=rc, offload=off)
    b = brute_time(fz.instance, B, recompute=rc, offload=off)
    assert (a is None) == (b is None)
    if a is not None:
        assert a[0] == b[0]
        back = fz.expand(b[1])
        ev = req.evaluate(back)
        assert ev.valid and ev.makespan == a[0]


@settings(max_examples=60)
@given(instances(max_tasks=6, no_recompute=True, max_size=5), st.integers(0, 100), st.sampled_from(FLAGS),
       st.sampled_from([1, 2, math.inf]))
def test_every_fused_plan_expands_to_a_valid_plan(inst, frac, flags, bw):
    inst = inst.with_machine(bandwidth=bw)
    rc, off = flags
    B = small_budget(inst, frac, off)
    req = Request(inst, "time", B, None, rc, off)
    fz = fuse_request(req, "chains")
    freq = fz.request
    plan = plan_under_budget(freq)
    assume(plan is not None)
    fev = freq.evaluate(plan)
    back = fz.expand(plan)
    ev = req.evaluate(back)
    assert ev.valid, ev.violation
    assert ev.makespan <= fev.makespan and ev.peak <= fev.peak
    if fz.fused and inst.m <= 5 and inst.n <= 4:
        a = brute_time(inst, B, recompute=rc, offload=off)
        assert a is not None and a[0] <= ev.makespan  # a fused optimum is an upper bound


# ------------------------------------------------------------ view contraction
def with_views(inst, picks):
    """``inst`` plus weightless views: for each (datum index, reader mask, nested) pick, a task of time 0 reading
    the datum, with an output of size 0 read by some of the datum's readers (which read the datum too); nested:
    a view of that view as well, read by a subset of those readers."""
    tasks = list(inst.tasks)
    data = {d.id: d for d in inst.data}
    added = 0
    for k, (j, mask, nested) in enumerate(picks):
        d = inst.data[j % inst.m]
        readers = [c for i, c in enumerate(d.consumers) if mask >> i & 1]
        if not readers:
            continue
        v = f"view{k}"
        tasks.append(Task(v, 0, 0, True))
        data[d.id] = Datum(d.id, d.producer, data[d.id].consumers + (v,) + ((f"{v}v",) if nested else ()), d.size)
        data[v] = Datum(v, v, tuple(readers) + ((f"{v}v",) if nested else ()), 0)
        if nested:  # a view of the view: it reads the view and the root, as an importer with views kept writes
            tasks.append(Task(f"{v}v", 0, 0, True))
            data[f"{v}v"] = Datum(f"{v}v", f"{v}v", tuple(readers[:1]), 0)
        added += 1 + bool(nested)
    return Instance(tasks, list(data.values()), inst.machine, name=inst.name), added


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])  # (the assume
@given(instances(max_tasks=4, no_recompute=True, max_size=5, form="tensor"),  # below keeps small instances)
       st.lists(st.tuples(st.integers(0, 9), st.integers(1, 15), st.booleans()), min_size=1, max_size=2),
       st.integers(0, 100), st.sampled_from(FLAGS), st.sampled_from([1, 2, math.inf]))
def test_view_contraction_preserves_the_optimum(inst, picks, frac, flags, bw):
    from memopt.transforms.views import contract_views, contractible_views

    big, added = with_views(inst, picks)
    assume(added > 0 and big.m <= 7)
    big = big.with_machine(bandwidth=bw)
    rc, off = flags
    B = small_budget(big, frac, off)
    req = Request(big, "time", B, None, rc, off)
    assert len(contractible_views(big)) >= added  # every view added goes (a task of time 0 and size 0 may too)
    tf = contract_views(req)
    assert tf.exact and tf.request.instance.n == big.n - len(contractible_views(big))
    a = brute_time(big, B, recompute=rc, offload=off)
    b = brute_time(tf.request.instance, B, recompute=rc, offload=off)
    assert (a is None) == (b is None)
    if a is not None:
        assert a[0] == b[0]
        ev = req.evaluate(tf.expand(b[1]))
        assert ev.valid, ev.violation
        assert ev.makespan == a[0] and ev.peak <= B
        # and back: the original's optimal plan without its views is a plan of the reduced request, as good
        full = req.evaluate(a[1])
        ev = tf.request.evaluate(tf.restrict(a[1]))
        assert ev.valid, ev.violation
        assert ev.makespan == a[0] and ev.peak <= full.peak


def test_view_contraction_keeps_a_view_whose_reader_misses_an_input():
    from memopt.transforms.views import contractible_views

    # v views a (time 0, size 0), but its reader c does not read a: c's order after a would be lost
    inst = from_tensors([("a", 1, 2, []), ("v", 0, 0, ["a"]), ("b", 1, 1, ["a"]), ("c", 1, 1, ["v", "b"])])
    assert contractible_views(inst) == []
    inst = from_tensors([("a", 1, 2, []), ("v", 0, 0, ["a"]), ("c", 1, 1, ["v", "a"])])
    assert [inst.tasks[v].id for v in contractible_views(inst)] == ["v"]
