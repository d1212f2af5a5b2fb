"""Generators: reproducibility, shapes, forms, and the `memopt generate` command."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict

import pytest

from memopt import MemoptError, Plan, evaluate, load_instance
from memopt.cli import main
from memopt.core.instance_file import instance_to_dict
from memopt.generators import (
    FORMS,
    GENERATORS,
    chain,
    in_tree,
    out_tree,
    random_layered,
    random_series_parallel,
)


def arcs(inst) -> set[tuple[int, int]]:
    return {(u, v) for u in range(inst.n) for v in inst.succs[u]}


def fingerprint(inst) -> str:
    return hashlib.sha256(json.dumps(instance_to_dict(inst), sort_keys=True, default=list).encode()).hexdigest()[:16]


# ------------------------------------------------------------ reproducibility
@pytest.mark.parametrize("kind", list(GENERATORS))
def test_same_seed_same_instance_other_seed_other_instance(kind):
    gen = GENERATORS[kind]
    a, b = gen(40, seed=5), gen(40, seed=5)
    assert a == b and a.name == b.name and fingerprint(a) == fingerprint(b)
    if kind != "chain":  # a chain's structure is fixed; its costs still change
        assert arcs(gen(40, seed=6)) != arcs(a)
    assert fingerprint(gen(40, seed=6)) != fingerprint(a)


def test_golden_fingerprints_pin_the_streams():
    """The same numbers on every run and platform: pinned, so any change is deliberate."""
    got = {
        "chain": fingerprint(chain(6, seed=1)),
        "in-tree": fingerprint(in_tree(9, seed=2, max_children=2)),
        "out-tree": fingerprint(out_tree(9, seed=2, form="buffer")),
        "series-parallel": fingerprint(random_series_parallel(15, seed=3, form="general")),
        "layered": fingerprint(random_layered(30, seed=4, workspace=(0, 5))),
    }
    assert got == GOLDEN


GOLDEN = {
    "chain": "d0149528bac98c9c",
    "in-tree": "50e722daf30fc2d1",
    "out-tree": "48d9884899ab3b2d",
    "series-parallel": "c7b0f3f500f2795a",
    "layered": "3bba002641b10201",
}


def test_cost_options_do_not_change_the_structure():
    a = random_layered(60, seed=9)
    b = random_layered(60, seed=9, sizes=(1, 3), times=(5, 5), workspace=(1, 2), form="buffer")
    assert arcs(a) == arcs(b)
    assert arcs(random_series_parallel(50, seed=2)) == arcs(random_series_parallel(50, seed=2, form="general"))


# ---------------------------------------------------------------- all shapes
@pytest.mark.parametrize("kind", list(GENERATORS))
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("n", [1, 2, 3, 17])
def test_listed_topologically_costs_in_range_forms(kind, form, n):
    kw = {} if kind == "layered" else {"sizes": (2, 7), "times": (3, 4)}
    inst = GENERATORS[kind](n, seed=n, form=form, workspace=(1, 3), **kw)
    assert inst.n == n and [t.id for t in inst.tasks] == [f"v{i}" for i in range(n)]
    assert all(u < v for u, v in arcs(inst))  # listed in a topological order, hence acyclic
    assert all(1 <= t.workspace <= 3 for t in inst.tasks)
    if kind != "layered":
        assert all(3 <= t.time <= 4 for t in inst.tasks)
        assert all(2 <= s <= 7 for s in inst.size)
    assert inst.meta["generator"]["kind"] == kind and inst.meta["generator"]["form"] == form
    succs = {v: {inst.tasks[w].id for w in inst.succs[v]} for v in range(n)}
    if form == "tensor":
        assert all(d.id == d.producer and set(d.consumers) == succs[inst.task_index[d.producer]] for d in inst.data)
        assert inst.m == n
    elif form == "buffer":
        assert all(d.id == f"{d.producer}->{d.consumers[0]}" and len(d.consumers) == 1 for d in inst.data)
        assert inst.m == len(arcs(inst))
    else:
        for v in range(n):
            outs = inst.outputs[v]
            assert 1 <= len(outs) <= 3
            carried = [c for j in outs for c in inst.data[j].consumers]
            assert sorted(carried) == sorted(succs[v])  # successors split among the outputs
            if succs[v]:
                assert all(inst.data[j].consumers for j in outs)
    ev = evaluate(inst, Plan.from_order(inst, range(n)), allow_recompute=False, allow_offload=False)
    assert ev.valid


def test_chain_is_a_chain():
    inst = chain(25, seed=3)
    assert arcs(inst) == {(i, i + 1) for i in range(24)}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [None, 1, 2, 3])
def test_trees_are_trees(seed, k):
    n = 60
    it, ot = in_tree(n, seed=seed, max_children=k), out_tree(n, seed=seed, max_children=k)
    for inst in (it, ot):
        assert len(arcs(inst)) == n - 1
        # connected: n-1 arcs and one component make a tree
        parent = list(range(n))

        def find(x, parent=parent):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for u, v in arcs(inst):
            parent[find(u)] = find(v)
        assert len({find(x) for x in range(n)}) == 1
    # in-tree: every task but the root v{n-1} has exactly one successor
    assert [len(s) for s in it.succs] == [1] * (n - 1) + [0]
    assert max(len(p) for p in it.preds) <= (k or n)
    # out-tree: every task but the root v0 has exactly one predecessor
    assert [len(p) for p in ot.preds] == [0] + [1] * (n - 1)
    assert max(len(s) for s in ot.succs) <= (k or n)
    if k == 1:
        assert arcs(it) == arcs(chain(n))


# ------------------------------------------------------------ series-parallel
def is_two_terminal_series_parallel(n: int, arc_list) -> bool:
    """Valdes-Tarjan-Lawler recognition by series and parallel reductions (independent of the generator).

    Parallel reduction merges duplicate arcs; series reduction replaces
    u -> x -> v by u -> v for an inner node x with one arc in and one out.
    The DAG is two-terminal series-parallel iff this ends in one arc from the
    unique source to the unique sink.
    """
    if n == 1:
        return not arc_list
    out_m: dict[int, Counter] = defaultdict(Counter)
    in_m: dict[int, Counter] = defaultdict(Counter)
    for u, v in arc_list:
        out_m[u][v] += 1
        in_m[v][u] += 1
    sources = [x for x in range(n) if not in_m[x]]
    sinks = [x for x in range(n) if not out_m[x]]
    if len(sources) != 1 or len(sinks) != 1:
        return False
    s, t = sources[0], sinks[0]

    def parallel(u, v):
        if out_m[u][v] > 1:
            out_m[u][v] = 1
            in_m[v][u] = 1

    for u in list(out_m):
        for v in list(out_m[u]):
            parallel(u, v)
    stack = [x for x in range(n) if x not in (s, t)]
    alive = set(range(n))
    while stack:
        x = stack.pop()
        if x not in alive or x in (s, t):
            continue
        if sum(in_m[x].values()) == 1 and sum(out_m[x].values()) == 1:
            (u,), (v,) = in_m[x].keys(), out_m[x].keys()
            del out_m[u][x], in_m[v][x]
            out_m[x].clear()
            in_m[x].clear()
            alive.discard(x)
            out_m[u][v] += 1
            in_m[v][u] += 1
            parallel(u, v)
            stack.extend((u, v))
    return alive == {s, t} and dict(out_m[s]) == {t: 1}


def test_recognizer_rejects_non_series_parallel_graphs():
    # the Wheatstone bridge (the forbidden "N"): s->a, s->b, a->b, a->t, b->t
    assert not is_two_terminal_series_parallel(4, [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)])
    assert not is_two_terminal_series_parallel(3, [(0, 2), (1, 2)])  # two sources
    assert is_two_terminal_series_parallel(4, [(0, 1), (0, 2), (1, 3), (2, 3), (0, 3)])


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("n", [1, 2, 3, 10, 300])
def test_series_parallel_graphs_are_series_parallel(n, p):
    for seed in range(3):
        inst = random_series_parallel(n, seed=seed, p_series=p)
        assert is_two_terminal_series_parallel(n, sorted(arcs(inst)))
        if n >= 2:
            assert inst.preds[0] == () and inst.succs[n - 1] == ()
    if n >= 3 and p == 1.0:
        assert arcs(random_series_parallel(n, seed=1, p_series=1.0)) == {(i, i + 1) for i in range(n - 1)}
    if n >= 3 and p == 0.0:  # only parallel compositions: a fork-join around the first arc
        assert len(arcs(random_series_parallel(n, seed=1, p_series=0.0))) == 2 * n - 3


@pytest.mark.slow
def test_series_parallel_50k_is_series_parallel():
    inst = random_series_parallel(50_000, seed=1)
    assert is_two_terminal_series_parallel(inst.n, sorted(arcs(inst)))


# -------------------------------------------------------------------- layered
def layer_of(inst) -> list[int]:
    out = []
    for k, s in enumerate(inst.meta["generator"]["layer_sizes"]):
        out += [k] * s
    return out


@pytest.mark.parametrize("n,seed,width", [(100, 0, 0.27), (250, 1, 0.43), (60, 2, None), (3, 0, None), (500, 3, 0.36)])
def test_layered_structure(n, seed, width):
    ed, scd, nlv = 0.2, 0.14, 0.75
    inst = random_layered(n, seed=seed, width=width)
    g = inst.meta["generator"]
    sizes = g["layer_sizes"]
    w = g["width"]
    assert 0.25 <= w <= 0.5 and (width is None or w == width)
    assert sum(sizes) == n and sizes[0] == 1 and sizes[-1] == 1
    L = math.ceil(math.sqrt(n * (1 / w - 1)))
    lo, hi = max(1, math.ceil(n / L * (1 - nlv))), max(1, math.floor(n / L * (1 + nlv)))
    assert all(lo <= s <= hi for s in sizes[1:-2]) and 1 <= sizes[-2] <= hi  # the last layer may be cut
    layer = layer_of(inst)
    per_pair = Counter()
    skips = []
    for u, v in arcs(inst):
        d = layer[v] - layer[u]
        assert d >= 1  # arcs go down the layers
        if d == 1:
            per_pair[layer[u]] += 1
        else:
            skips.append((u, v))
    for k in range(len(sizes) - 1):
        a, b = sizes[k], sizes[k + 1]
        want = int(math.floor(ed * a * b + (1 - ed) * max(a, b) + 0.5))
        assert per_pair[k] == max(max(a, b), min(want, a * b))
    sink_layer = len(sizes) - 1
    assert all(layer[v] != sink_layer for _, v in skips)
    assert len(skips) <= math.ceil(sum(per_pair.values()) * scd / (1 - scd))
    if len(sizes) >= 5 and n >= 100:
        assert skips  # skip connections exist
    # one source and one sink, with zero time (the network's input and output)
    assert [v for v in range(n) if not inst.preds[v]] == [0]
    assert [v for v in range(n) if not inst.succs[v]] == [n - 1]
    assert inst.tasks[0].time == 0 and inst.tasks[-1].time == 0
    assert all(1 <= t.time <= 1000 for t in inst.tasks[1:-1])
    assert all(s % 10 == 0 and 10 <= s <= 8000 for s in inst.size)


def test_layered_density_parameters_act():
    dense = random_layered(200, seed=1, width=0.3, edge_density=0.8, skip_density=0.0)
    sparse = random_layered(200, seed=1, width=0.3, edge_density=0.0, skip_density=0.0)
    assert dense.meta["generator"]["layer_sizes"] == sparse.meta["generator"]["layer_sizes"]
    assert len(arcs(dense)) > 2 * len(arcs(sparse))
    layer = layer_of(sparse)
    assert all(layer[v] - layer[u] == 1 for u, v in arcs(sparse))  # no skip connections


@pytest.mark.parametrize("call,match", [
    (lambda: chain(0), "n must be an integer >= 1"),
    (lambda: chain(5, form="tensors"), "form must be one of"),
    (lambda: chain(5, sizes=(5, 1)), "sizes must be integers with 0 <= lo <= hi"),
    (lambda: chain(5, times=3), "times must be a pair"),
    (lambda: in_tree(5, max_children=0), "max_children must be an integer >= 1"),
    (lambda: random_series_parallel(5, p_series=1.5), r"p_series must be in \[0, 1\]"),
    (lambda: random_layered(5, width=1.0), r"width must be in \(0, 1\)"),
    (lambda: random_layered(5, skip_density=1), r"skip_density must be in \[0, 1\)"),
])
def test_bad_parameters_are_clear_errors(call, match):
    with pytest.raises(MemoptError, match=match):
        call()


# ------------------------------------------------------------------------ CLI
def test_cli_generate_matches_the_function(tmp_path, capsys):
    out = tmp_path / "sp.yaml"
    assert main(["generate", "series-parallel", "--n", "30", "--seed", "4", "--p-series", "0.7",
                 "--form", "buffer", "--sizes", "2,9", "-o", str(out)]) == 0
    assert load_instance(out) == random_series_parallel(30, seed=4, p_series=0.7, form="buffer", sizes=(2, 9))
    assert "30 tasks" in capsys.readouterr().err


def test_cli_generate_train_budget_bandwidth(tmp_path):
    from memopt.heuristics.orders import best_baseline
    from memopt.training import training_graph

    out = tmp_path / "t.json"
    assert main(["generate", "chain", "--n", "6", "--train", "--budget", "0.9x", "--bandwidth", "4",
                 "--grad-time-factor", "1.5", "-o", str(out)]) == 0
    inst = load_instance(out)
    train = training_graph(chain(6), grad_time_factor=1.5)
    assert inst.n == train.n == 13 and [t.id for t in inst.tasks] == [t.id for t in train.tasks]
    assert inst.machine.bandwidth == 4
    assert inst.machine.budget == math.ceil(0.9 * best_baseline(train)[1])
    out2 = tmp_path / "p.yaml"
    assert main(["generate", "in-tree", "--n", "8", "--train", "--params", "1,5", "-o", str(out2)]) == 0
    params = [inst_d for inst_d in load_instance(out2).data if inst_d.id.endswith(".params")]
    assert len(params) == 8 and all(1 <= d.size <= 5 and not d.consumers for d in params)


def test_cli_generate_errors_and_help(tmp_path, capsys):
    assert main(["generate", "chain", "--width", "0.3", "-o", str(tmp_path / "x.yaml")]) == 2
    assert "--width applies to layered" in capsys.readouterr().err
    assert main(["generate", "chain", "--params", "1,2", "-o", str(tmp_path / "x.yaml")]) == 2
    assert "need --train" in capsys.readouterr().err
    assert main(["generate", "layered", "--n", "0", "-o", str(tmp_path / "x.yaml")]) == 2
    assert "--n: expected an integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = capsys.readouterr().out
    for kind in GENERATORS:
        assert kind in text
    for opt in ("--form", "--sizes", "--p-series", "--width", "--skip-density", "--train", "--budget"):
        assert opt in text


# ---------------------------------------------------------- shipped instances
def _regenerate_commands():
    import os
    import shlex

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "instances", "regenerate.sh")) as f:
        lines = [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith(("#", "set ", "G="))]
    cmds = []
    for ln in lines:
        words = shlex.split(ln.replace("$G", "memopt generate"))
        assert words[0] == "memopt"
        cmds.append(words[1:])
    return root, cmds


def test_shipped_instances_are_reproduced_by_their_commands(tmp_path):
    import os

    root, cmds = _regenerate_commands()
    assert len(cmds) >= 12
    with open(os.path.join(root, "instances", "README.md")) as f:
        readme = f.read()
    for argv in cmds:  # the README shows the same commands
        assert "`" + " ".join(["memopt"] + argv) + "`" in readme, argv
    cwd = os.getcwd()
    os.chdir(root)  # commands use paths relative to the repository root
    try:
        for argv in cmds:
            target = argv[-1]
            out = tmp_path / os.path.basename(target)
            argv = argv[:-1] + [str(out)]
            assert main(argv) == 0, argv
            shipped = load_instance(os.path.join(root, target))
            new = load_instance(out)
            assert new == shipped and new.name == shipped.name and new.meta == shipped.meta, target
    finally:
        os.chdir(cwd)
