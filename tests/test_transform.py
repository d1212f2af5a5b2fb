"""Peak-preserving reductions: the optimum of the reduced graph is the optimum of the instance."""

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import from_tensors
from memopt.core.evaluate import schedule_peak
from memopt.exact.exhaustive import exhaustive_peak
from memopt.generators import chain, in_tree, random_series_parallel
from memopt.graph.blocks import Block, block_key, chain_peak, compose, merge_chains, normalize
from memopt.graph.reach import Reachability
from memopt.graph.release import AMBIGUOUS, RESULT, release_tasks, task_reachability
from memopt.graph.series_parallel import SINK, SOURCE, expr_nodes, is_series_parallel, tt_reduce
from memopt.transforms.reduction import reduce_peak


def reduced_orders(red):
    """Every topological order of the reduced graph."""
    n = red.n
    indeg = [len(p) for p in red.preds]
    order, used = [], [False] * n

    def rec():
        if len(order) == n:
            yield list(order)
            return
        for v in range(n):
            if not used[v] and indeg[v] == 0:
                used[v] = True
                order.append(v)
                for w in red.succs[v]:
                    indeg[w] -= 1
                yield from rec()
                for w in red.succs[v]:
                    indeg[w] += 1
                order.pop()
                used[v] = False

    yield from rec()


def is_topological(inst, order):
    pos = {v: k for k, v in enumerate(order)}
    return sorted(order) == list(range(inst.n)) and all(pos[u] < pos[v] for v in range(inst.n) for u in inst.preds[v])


@settings(max_examples=120)
@given(instances(max_tasks=8), st.sampled_from([("chains",), ("series-parallel",), ("chains", "series-parallel")]))
def test_every_reduction_preserves_the_optimum(inst, rules):
    opt, _ = exhaustive_peak(inst)
    red = reduce_peak(inst, rules)
    assert sorted(v for c in red.clusters for v in c) == list(range(inst.n))
    best = None
    for o in reduced_orders(red):
        tasks = red.expand_order(o)
        assert is_topological(inst, tasks)  # every order of the reduced graph is an order of the instance
        p = schedule_peak(inst, tasks)
        best = p if best is None else min(best, p)
    assert best == opt
    assert red.steps[-1].clusters_after == red.n <= inst.n


def test_buffer_series_parallel_graphs_reduce_to_one_cluster():
    for seed in range(5):
        inst = random_series_parallel(300, seed=seed, form="buffer")
        red = reduce_peak(inst)
        assert red.n == 1
        assert schedule_peak(inst, red.expand_order([0])) == exhaustive_or_sp(inst)


def exhaustive_or_sp(inst):
    from memopt.exact.series_parallel import series_parallel_schedule

    return schedule_peak(inst, series_parallel_schedule(inst))


def test_trees_and_chains_reduce_to_one_cluster():
    assert reduce_peak(chain(50, seed=1)).n == 1
    assert reduce_peak(in_tree(200, seed=3, max_children=3)).n == 1


def test_chain_rules_on_a_hand_example():
    # rule 1: b (outputs 0) frees a and peaks at a's level: glued right after a;
    # rule 2: c only grows memory and peaks below d: glued right before d
    inst = from_tensors([("a", 1, 5, []), ("b", 1, 0, ["a"]), ("c", 1, 3, []), ("d", 1, 1, ["b", "c"])])
    red = reduce_peak(inst, ("chains",))
    fired = [s for s in red.steps if s.rule == "chains"]
    assert fired and fired[0].applied == 2 and fired[0].clusters_after == 2
    assert red.n == 1  # the two clusters form a path: one order left
    assert [inst.tasks[v].id for v in red.expand_order([0])] == ["a", "b", "c", "d"]
    assert schedule_peak(inst, red.expand_order([0])) == exhaustive_peak(inst)[0] == 5


def test_shared_tensor_blocks_the_series_parallel_rule():
    # a's output is read by both branches and by nothing after them: not reducible as one region
    inst = from_tensors([("a", 1, 5, []), ("b", 1, 9, ["a"]), ("c", 1, 1, ["a"]), ("d", 1, 1, ["b", "c"])])
    red = reduce_peak(inst, ("series-parallel",))
    assert red.n > 1
    # when the join also reads a, a stays resident through the region: reducible
    inst2 = from_tensors([("a", 1, 5, []), ("b", 1, 9, ["a"]), ("c", 1, 1, ["a"]), ("d", 1, 1, ["a", "b", "c"])])
    assert reduce_peak(inst2, ("series-parallel",)).n == 1


# ------------------------------------------------------------------ blocks
blocks = st.builds(lambda p, i: Block(max(p, i, 0), i, None), st.integers(0, 12), st.integers(-10, 10))


@given(blocks, blocks)
def test_exchange_key_orders_two_blocks(a, b):
    ab, ba = chain_peak([a, b]), chain_peak([b, a])
    if block_key(a) <= block_key(b):
        assert ab <= ba
    else:
        assert ba <= ab


@given(st.lists(blocks, min_size=1, max_size=6))
def test_sorting_independent_blocks_is_optimal(bs):
    best = min(chain_peak(list(p)) for p in itertools.permutations(bs))
    assert chain_peak(sorted(bs, key=block_key)) == best


@given(st.lists(blocks, max_size=4), st.lists(blocks, max_size=4))
def test_merging_normal_chains_is_the_optimal_interleaving(c1, c2):
    def interleavings(a, b):
        if not a or not b:
            yield a + b
            return
        for rest in interleavings(a[1:], b):
            yield [a[0]] + rest
        for rest in interleavings(a, b[1:]):
            yield [b[0]] + rest

    best = min(chain_peak(x) for x in interleavings(c1, c2))
    merged = merge_chains([normalize(c1), normalize(c2)])
    assert chain_peak(merged) == best


@given(st.lists(blocks, min_size=1, max_size=6))
def test_normal_form_keeps_the_sequence_and_sorts_keys(bs):
    norm = normalize(bs)
    assert chain_peak(norm) == chain_peak(bs)
    assert sum(b.impact for b in norm) == sum(b.impact for b in bs)
    keys = [block_key(b) for b in norm]
    assert keys == sorted(keys)
    glued = bs[0]
    for b in bs[1:]:
        glued = compose(glued, b)
    assert (glued.peak, glued.impact) == (chain_peak(bs), sum(b.impact for b in bs))


# ------------------------------------------------------------ structure
def test_series_parallel_recognition():
    inst = random_series_parallel(500, seed=4)
    arcs = tt_reduce(range(inst.n), inst.succs.__getitem__)
    assert is_series_parallel(arcs)
    assert sorted(expr_nodes(arcs[(SOURCE, SINK)])) == list(range(inst.n))
    n_graph = {0: [2], 1: [2, 3], 2: [], 3: []}  # the forbidden "N"
    assert not is_series_parallel(tt_reduce(n_graph, n_graph.__getitem__))


@given(instances(max_tasks=8))
def test_release_tasks_and_reachability(inst):
    reach = task_reachability(inst)
    slow = Reachability(inst.succs, reach.pos, bitsets=False, work=10**6)
    for a in range(inst.n):
        for b in range(inst.n):
            assert reach.reaches(a, b) == slow.reaches(a, b)
    for j, r in enumerate(release_tasks(inst, reach)):
        cons = inst.consumers[j]
        if r == RESULT:
            assert not cons
        elif r == AMBIGUOUS:
            assert len(cons) >= 2
        else:
            assert r in cons and all(c == r or reach.reaches(c, r) for c in cons)
