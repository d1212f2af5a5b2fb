"""Min-cut bound, target searches and splits against exhaustive search on small random graphs."""

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import Plan, evaluate, solve
from memopt.core.evaluate import memory_profile, schedule_peak
from memopt.exact.cut_bound import CutNetwork, cut_bound
from memopt.exact.cut_split import join_orders, split_instance
from memopt.exact.downset_dp import beam_search, downset_search
from memopt.exact.exhaustive import exhaustive_peak, topological_orders
from memopt.exact.peak_bounds import lifetime_bound
from memopt.exact.release_relaxation import release_relaxation
from memopt.exact.target_search import target_search, tighten
from memopt.generators import random_layered, random_series_parallel
from memopt.heuristics.orders import BASELINES, best_baseline
from memopt.transforms.reduction import reduce_peak


def resident(inst, S):
    """L(S) straight from the definition: data produced in S that are results or read outside S."""
    return sum(inst.size[j] for j in range(inst.m)
               if inst.producer[j] in S and (not inst.consumers[j] or any(c not in S for c in inst.consumers[j])))


def is_topological(inst, order):
    pos = {v: k for k, v in enumerate(order)}
    return sorted(order) == list(range(inst.n)) and all(pos[u] < pos[v] for v in range(inst.n) for u in inst.preds[v])


@given(instances(max_tasks=8))
def test_cut_bound_lies_between_the_lifetime_bound_and_the_optimum(inst):
    opt, _ = exhaustive_peak(inst)
    full = cut_bound(inst)
    assert full.complete and len(full.values) == inst.n
    assert full.value <= opt
    # it contains the footprint bound: a task's inputs are resident in its whole interval
    assert all(full.values[v] >= inst.input_size[v] + inst.output_size[v] + inst.workspace[v] for v in range(inst.n))
    # per task: the least memory over the orders (the bound is exact for a single task)
    least = dict.fromkeys(range(inst.n))
    for k, order in enumerate(topological_orders(inst)):
        if k >= 200:
            break
        prof = memory_profile(inst, order)
        for v in range(inst.n):
            least[v] = prof[v] if least[v] is None else min(least[v], prof[v])
        assert max(prof) == evaluate(inst, Plan.from_order(inst, order)).peak
        for v in range(inst.n):
            assert full.values[v] <= prof[v]
    # the pruned computation (estimates from orders) finds the same maximum
    pruned = cut_bound(inst, [f(inst) for f in BASELINES.values()])
    assert pruned.value == full.value
    # the down-set reported is in the task's interval and holds exactly the bound
    if full.task is not None:
        D = set(full.down_set)
        v = full.task
        assert v not in D and all(u in D for u in inst.preds[v])
        assert all(u in D for w in D for u in inst.preds[w])
        assert resident(inst, D) + inst.output_size[v] + inst.workspace[v] == full.value


@settings(max_examples=60)
@given(instances(max_tasks=7), st.integers(-3, 2), st.booleans(), st.booleans())
def test_target_search_decides_every_target(inst, delta, reduce, critical):
    opt, _ = exhaustive_peak(inst)
    T = max(0, opt + delta)
    red = reduce_peak(inst) if reduce else None
    crit = None
    if critical:
        cb = cut_bound(inst)
        crit = sorted(cb.values, key=lambda v: -cb.values[v])[:3]
    r = target_search(inst, T, red, critical=crit)
    assert r.stopped is None
    if T >= opt:
        assert r.order is not None and is_topological(inst, r.order) and r.peak <= T
        assert schedule_peak(inst, r.order) == r.peak
    else:
        assert r.infeasible and T < r.bound <= opt


@settings(max_examples=40)
@given(instances(max_tasks=7))
def test_tighten_and_downset_search_from_the_cut_bound(inst):
    opt, _ = exhaustive_peak(inst)
    lb = cut_bound(inst).value
    order = best_baseline(inst)[0]
    t = tighten(inst, lb, order, reduce_peak(inst))
    assert t.bound <= opt <= t.peak == schedule_peak(inst, t.order) and is_topological(inst, t.order)
    cb = cut_bound(inst)
    crit = sorted(cb.values, key=lambda v: -cb.values[v])[:2]
    res = downset_search(inst, reduce_peak(inst), incumbent=order, lower_bound=lb, critical=crit)
    assert res.optimal and res.peak == opt == res.bound
    for w in (1, 4):
        b = beam_search(inst, None, width=w, floor=lb)
        assert is_topological(inst, b) and schedule_peak(inst, b) >= opt


@settings(max_examples=60)
@given(instances(max_tasks=8), st.randoms(use_true_random=False))
def test_split_parts_reproduce_the_memory_of_the_whole(inst, rnd):
    """Orders of the prefix and suffix of any down-set join into an order with the same memory per task."""
    # a random down-set: a prefix of a random topological order
    orders = list(topological_orders(inst))[:50]
    base = rnd.choice(orders)
    k = rnd.randint(0, inst.n)
    D = set(base[:k])
    pre, suf = split_instance(inst, D)
    assert pre.instance.n == len(D) and suf.instance.n == inst.n - len(D) + 1
    o1 = rnd.choice(list(topological_orders(pre.instance))[:20]) if pre.instance.n else []
    o2 = rnd.choice(list(topological_orders(suf.instance))[:20])
    assert suf.task_map[o2[0]] == -1  # the start runs first
    whole = join_orders(pre, o1, suf, o2)
    assert is_topological(inst, whole)
    prof = memory_profile(inst, whole)
    p1 = memory_profile(pre.instance, o1)
    p2 = memory_profile(suf.instance, o2)
    for x in range(pre.instance.n):
        assert p1[x] == prof[pre.task_map[x]]
    for x in range(suf.instance.n):
        if suf.task_map[x] >= 0:
            assert p2[x] == prof[suf.task_map[x]]
    # the start holds what D leaves resident, never more than the last step of D
    start = suf.task_map.index(-1)
    assert p2[start] == resident(inst, D)
    if D:
        assert p2[start] <= max(prof[v] for v in D)


def test_cut_network_handles_results_and_multi_reader_data():
    inst = random_layered(40, seed=4)
    net = CutNetwork(inst)
    cb = cut_bound(inst, network=net)
    assert cb.value == cut_bound(inst, [best_baseline(inst)[0]]).value
    assert cb.value >= lifetime_bound(inst)[0]


def test_auto_proves_series_parallel_tensor_graphs_by_the_split():
    # the release relaxation leaves a gap here; the cut bound and the split at its down-set close it
    inst = random_series_parallel(200, seed=2, form="tensor")
    rr = release_relaxation(inst)
    assert not rr.optimal
    res = solve(inst, "peak", "auto", time_limit=10)
    assert res.status == "optimal" and res.value == res.bound < rr.peak
    assert res.stats["plan_by"] == "split at the min-cut down-set"


@given(instances(max_tasks=8), st.randoms(use_true_random=False))
def test_joint_cut_bound_is_a_bound_and_exact_on_all_tasks(inst, rnd):
    from memopt.exact.cut_bound import joint_cut_bound

    opt, _ = exhaustive_peak(inst)
    net = CutNetwork(inst)
    single = cut_bound(inst, network=net)
    W = rnd.sample(range(inst.n), rnd.randint(1, inst.n))
    jb = joint_cut_bound(inst, W, network=net)
    assert jb.complete
    # never above the optimum; never below the best single task of W (it contains each cut(v))
    assert max(single.values[v] for v in W) <= jb.value <= opt
    # W = every task: the bottleneck path over all orders is the optimum itself
    assert joint_cut_bound(inst, list(range(inst.n)), network=net).value == opt
    # stopped early at an upper value, the answer is still a bound
    early = joint_cut_bound(inst, W, network=net, upper=max(1, jb.value // 2))
    assert early.value <= opt
