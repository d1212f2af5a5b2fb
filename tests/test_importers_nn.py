"""The NN-graph → instance rules (memopt.importers.nn), without torch or onnx.

Hand examples for each rule, and properties on random traced networks:
contracting aliases changes no schedule's peak, counted parameters are a
fixed offset on every schedule's peak, and every instance is valid under
its traced order.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memopt import MemoptError, Plan, evaluate, schedule_peak
from memopt.importers.nn import (
    OPTIMIZER_STATE,
    PARAMETER,
    CostModel,
    NNGraph,
    Op,
    Tensor,
    keep_to_end,
    to_instance,
    unique_name,
)


def inp(name: str, nbytes: int) -> Op:
    return Op(name, [], [Tensor(name, nbytes)], op="input", kind="input", recompute=False)


def op(name: str, inputs, nbytes: int, *, alias: str | None = None, flops: int = 0, **kw) -> Op:
    return Op(name, list(inputs), [Tensor(name, nbytes, alias_of=alias)], op="x", flops=flops, **kw)


def datum(inst, d):
    return inst.data[inst.datum_index[d]]


def traced_peak(inst) -> int:
    return schedule_peak(inst, inst.topological_order)


# ------------------------------------------------------------------ rules
def test_alias_takes_no_memory_and_keeps_its_root_alive():
    # x -> a (100) -> v = view(a) -> b reads v
    g = NNGraph("g", [inp("x", 10), op("a", ["x"], 100), op("v", ["a"], 100, alias="a"),
                      op("b", ["v"], 7)], ["b"])
    inst = to_instance(g)
    assert datum(inst, "v").size == 0
    assert set(datum(inst, "a").consumers) == {"v", "b"}  # the reader of the view reads the root too
    assert inst.time[inst.task_index["v"]] == 0
    ev = evaluate(inst, Plan.from_order(inst, inst.topological_order), trace=True)
    at_b = [mp.memory for mp in ev.memory if mp.kind == "compute" and mp.target == "b"]
    assert ev.valid and at_b == [100 + 7]  # a is alive while b runs


def test_in_place_ops_take_time_and_are_never_contracted():
    relu_ = Op("relu_", ["a"], [Tensor("relu_", 100, alias_of="a")], op="relu_", inplace=True, recompute=False)
    g = NNGraph("g", [inp("x", 10), op("a", ["x"], 100), relu_, op("b", ["relu_"], 7)], ["b"])
    for keep_views in (True, False):
        inst = to_instance(g, keep_views=keep_views, cost=CostModel(bytes_per_second=1e9))
        v = inst.task_index["relu_"]
        assert inst.time[v] == 200 and inst.output_size[v] == 0  # reads and writes 100 bytes at 1 GB/s


def test_alias_chain_resolves_to_the_root():
    g = NNGraph("g", [inp("x", 1), op("a", ["x"], 50), op("v1", ["a"], 50, alias="a"),
                      op("v2", ["v1"], 50, alias="v1"), op("b", ["v2"], 3)], ["b"])
    inst = to_instance(g)
    assert {inst.data[j].id for j in inst.inputs[inst.task_index["b"]]} == {"v2", "a"}


def test_dead_ops_are_dropped_and_unread_outputs_are_workspace():
    bn = Op("bn", ["x"], [Tensor("bn", 40), Tensor("bn.mean", 8)], op="bn")
    g = NNGraph("g", [inp("x", 10), bn, op("dead", ["x"], 1000), op("y", ["bn"], 5)], ["y"])
    inst = to_instance(g)
    assert "dead" not in inst.task_index
    assert "bn.mean" not in inst.datum_index
    assert inst.workspace[inst.task_index["bn"]] == 8


def test_outputs_are_results_or_kept_by_the_output_task():
    plain = to_instance(NNGraph("g", [inp("x", 1), op("y", ["x"], 5)], ["y"]))
    assert "output" not in plain.task_index and [plain.data[j].id for j in plain.results] == ["y"]
    # an output also read inside the graph must stay to the end: the output task reads it
    g = NNGraph("g", [inp("x", 1), op("y", ["x"], 5), op("z", ["y"], 2)], ["y", "z"])
    inst = to_instance(g)
    assert inst.tasks[-1].id == "output" and not inst.can_recompute[-1]
    assert [inst.data[j].id for j in inst.results] == ["output"]
    assert "output" in datum(inst, "y").consumers
    # an output that is a view keeps its root alive to the end
    g = NNGraph("g", [inp("x", 1), op("y", ["x"], 5), op("v", ["y"], 5, alias="y")], ["v"])
    inst = to_instance(g)
    assert "output" in datum(inst, "y").consumers
    assert traced_peak(inst) == 6  # x (1) + y (5) while y runs


def test_count_params_is_a_fixed_offset_on_the_traced_order():
    ops = [inp("x", 4), op("a", ["x", "w1"], 20), op("b", ["a", "w2"], 8)]
    g = NNGraph("g", ops, ["b"], params={"w1": 100, "w2": 30, "unused": 999})
    base = to_instance(g)
    withp = to_instance(g, count_params=True)
    assert withp.tasks[0].id == "parameters" and datum(withp, "parameters").size == 130
    assert withp.meta["parameter_bytes"] == 130 and base.meta["parameter_bytes"] == 130
    assert "parameters" not in base.datum_index
    assert traced_peak(withp) == traced_peak(base) + 130


def test_size_unit_rounds_up_and_units_are_recorded():
    g = NNGraph("g", [inp("x", 1), op("y", ["x"], 1025)], ["y"])
    inst = to_instance(g, size_unit="KiB")
    assert datum(inst, "x").size == 1 and datum(inst, "y").size == 2
    assert inst.units == {"size": "KiB", "time": "ns"}
    with pytest.raises(MemoptError, match="size unit"):
        to_instance(g, size_unit="kb")


def test_bandwidth_is_in_size_units_per_ns():
    g = NNGraph("g", [inp("x", 1), op("y", ["x"], 1)], ["y"])
    assert to_instance(g, bandwidth=16.0).machine.bandwidth == 16.0
    assert to_instance(g, bandwidth=16.0, size_unit="KiB").machine.bandwidth == 16.0 / 1024


def test_roofline_time_is_an_exact_ceiling_in_ns():
    c = CostModel(flops_per_second=1e12, bytes_per_second=1e9)
    assert c.time_ns(2_000_000, 0) == 2000        # compute-bound: 2 MFLOP at 1 TFLOP/s
    assert c.time_ns(0, 3000) == 3000             # memory-bound: 3 kB at 1 GB/s
    assert c.time_ns(1, 0) == 1                   # 1 ps rounds up to 1 ns
    assert c.time_ns(10**6, 10**3) == 1000        # the larger of the two
    with pytest.raises(MemoptError, match="flops-per-second"):
        CostModel(flops_per_second=0)
    g = NNGraph("g", [inp("x", 1000), op("y", ["x"], 1000, flops=10**9)], ["y"])
    inst = to_instance(g, cost=c)
    assert inst.time == (0, max(10**9 * 10**9 // 10**12, 2000))


def test_bad_graphs_are_clear_errors():
    with pytest.raises(MemoptError, match="nothing produces"):
        to_instance(NNGraph("g", [op("y", ["ghost"], 1)], ["y"]))
    with pytest.raises(MemoptError, match="written twice"):
        to_instance(NNGraph("g", [inp("x", 1), op("x", [], 1)], ["x"]))
    with pytest.raises(MemoptError, match="produced by no op"):
        to_instance(NNGraph("g", [inp("x", 1)], ["nope"]))


def test_unique_name_and_keep_to_end():
    assert unique_name("output", {"a"}) == "output"
    assert unique_name("output", {"output", "output_1"}) == "output_2"
    g = NNGraph("g", [inp("x", 3), op("a", ["x"], 5), op("b", ["a"], 2)], ["b"])
    inst = keep_to_end(to_instance(g), ["x"])
    assert inst.tasks[-1].id == "output" and "output" in datum(inst, "x").consumers
    assert traced_peak(inst) == 3 + 5 + 2 - 0  # x stays: 3 + a + b while b runs
    with pytest.raises(MemoptError, match="no such datum"):
        keep_to_end(inst, ["nope"])


# ------------------------------------------------------------- properties
@st.composite
def nn_graphs(draw, max_ops: int = 7):
    """A random traced network: inputs, ops (some aliases, some with two outputs), parameters."""
    n_in = draw(st.integers(1, 2))
    ops = [inp(f"in{k}", draw(st.integers(0, 9))) for k in range(n_in)]
    tensors = [f"in{k}" for k in range(n_in)]
    params = {"w0": draw(st.integers(0, 20)), "w1": draw(st.integers(0, 20))}
    for k in range(draw(st.integers(1, max_ops))):
        name = f"op{k}"
        kind = draw(st.sampled_from(["plain", "plain", "alias", "two"]))
        if kind == "alias":  # a view of an activation, or now and then of a parameter
            base = draw(st.sampled_from(tensors + ["w0"]))
            ops.append(op(name, [base], 0, alias=base))
            tensors.append(name)
            continue
        ins = draw(st.lists(st.sampled_from(tensors), min_size=1, max_size=3, unique=True))
        ins += draw(st.lists(st.sampled_from(sorted(params)), max_size=1))
        outs = [Tensor(name, draw(st.integers(0, 9)))]
        if kind == "two":
            outs.append(Tensor(f"{name}.1", draw(st.integers(0, 9))))
        ops.append(Op(name, ins, outs, op="x", flops=draw(st.integers(0, 10**4))))
        tensors += [t.id for t in outs]
    outs = draw(st.lists(st.sampled_from(tensors[n_in:] or tensors), min_size=1, max_size=2, unique=True))
    return NNGraph("rand", ops, outs, params)


def topological_orders(inst):
    for perm in itertools.permutations(range(inst.n)):
        pos = {v: k for k, v in enumerate(perm)}
        if all(pos[u] < pos[v] for v in range(inst.n) for u in inst.preds[v]):
            yield perm


def brute_min_peak(inst) -> int:
    return min(schedule_peak(inst, o) for o in topological_orders(inst))


@settings(max_examples=40)
@given(nn_graphs())
def test_every_imported_graph_is_valid_under_its_traced_order(g):
    for kw in ({}, {"keep_views": False}, {"count_params": True}):
        inst = to_instance(g, **kw)
        ev = evaluate(inst, Plan.from_order(inst, inst.topological_order),
                      allow_recompute=False, allow_offload=False)
        assert ev.valid, ev.violation
        assert all(isinstance(t, int) and t >= 0 for t in inst.time)


@settings(max_examples=40)
@given(nn_graphs(max_ops=5))
def test_contracting_aliases_preserves_the_traced_and_the_optimal_peak(g):
    kept = to_instance(g)
    contracted = to_instance(g, keep_views=False)
    assert contracted.n <= kept.n
    assert traced_peak(contracted) == traced_peak(kept)
    if kept.n <= 8:
        assert brute_min_peak(contracted) == brute_min_peak(kept)


@settings(max_examples=30)
@given(nn_graphs(max_ops=5))
def test_counted_parameters_are_a_fixed_offset_on_every_order(g):
    base = to_instance(g, sink=True)
    withp = to_instance(g, count_params=True)
    offset = withp.meta["parameter_bytes"]
    assert traced_peak(withp) == traced_peak(base) + offset
    if base.n <= 7:
        assert brute_min_peak(withp) == brute_min_peak(base) + offset


def test_alias_ops_take_no_time_and_inputs_may_not_be_recomputed():
    g = NNGraph("g", [inp("x", 8), op("a", ["x"], 8, flops=10**6), op("v", ["a"], 8, alias="a")], ["v"])
    inst = to_instance(g)
    assert inst.time[inst.task_index["v"]] == 0 and inst.time[inst.task_index["a"]] > 0
    assert not inst.can_recompute[inst.task_index["x"]]
    assert math.isclose(inst.meta["flops_per_second"], 10e12)


def test_shipped_network_instances_need_neither_torch_nor_onnx():
    import glob
    import os
    import sys

    from memopt import load_instance

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = sorted(glob.glob(os.path.join(root, "instances", "nn", "*.yaml")))
    assert len(paths) == 38
    had_torch = "torch" in sys.modules
    for p in paths:
        inst = load_instance(p)
        assert inst.units == {"size": "B", "time": "ns"} and inst.meta["source"] == "pytorch"
        assert inst.machine.bandwidth == 16
        ev = evaluate(inst, Plan.from_order(inst, inst.topological_order), allow_recompute=False,
                      allow_offload=False)
        assert ev.valid, (p, ev.violation)
    assert had_torch or "torch" not in sys.modules  # loading did not import torch


# ------------------------------------------------------------- persistent tensors and results
def state(name: str, nbytes: int, kind: str = PARAMETER) -> Op:
    return Op(name, [], [Tensor(name, nbytes)], op=kind, kind="state", recompute=False)


def update(name: str, inputs, nbytes: int, outs: int, **kw) -> Op:
    return Op(name, list(inputs), [Tensor(name if k == 0 else f"{name}.{k}", nbytes) for k in range(outs)],
              op="optimizer.x", recompute=False, **kw)


def training_step() -> NNGraph:
    """w (100 B) and its state m (100 B) exist at the start; x -> a -> g (w's gradient); the update
    reads w, g, m and writes w', m' (results)."""
    ops = [state("w", 100), state("m", 100, OPTIMIZER_STATE), inp("x", 10), op("a", ["x", "w"], 20),
           op("g", ["a", "w"], 100), update("upd", ["w", "g", "m"], 100, 2, time_ns=7)]
    return NNGraph("step", ops, [], results=["upd", "upd.1"])


def test_persistent_tensors_come_first_without_being_held_together():
    inst = to_instance(training_step())
    for s in ("w", "m"):
        v = inst.task_index[s]
        assert inst.time[v] == 0 and not inst.can_recompute[v]
        token = datum(inst, f"{s}.ready")
        assert token.size == 0 and token.producer == s and token.consumers == ("x",)
    assert datum(inst, "m").consumers == ("upd",)  # the state lives from the start to its update
    assert set(datum(inst, "w").consumers) == {"a", "g", "upd"}
    assert inst.meta["parameter_bytes"] == 100 and inst.meta["optimizer_state_bytes"] == 100
    assert inst.meta["parameters_counted"]



def test_an_op_on_parameters_only_follows_every_source():
    """GPT-2's position embedding allocates but follows no graph input: it reads the last source's token
    (not every token), the last source reads the others', so no order runs it before a persistent tensor
    exists (and the input may still come after it)."""
    ops = [state("w", 100), state("p", 50), inp("x", 10), op("pos", ["p"], 30), op("a", ["x", "w", "pos"], 20)]
    inst = to_instance(NNGraph("step", ops, ["a"], results=[]))
    assert datum(inst, "w.ready").consumers == ("x", "p") and datum(inst, "p.ready").consumers == ("x", "pos")
    orders = list(topological_orders(inst))
    assert orders
    for order in orders:
        ids = [inst.tasks[v].id for v in order]
        assert {"w", "p"} <= set(ids[:ids.index("pos")])
    assert any(ids.index("x") > ids.index("pos") for ids in ([inst.tasks[v].id for v in o] for o in orders))

def test_results_stay_to_the_end_and_the_update_holds_old_and_new():
    inst = to_instance(training_step())
    assert {inst.data[j].id for j in inst.results} == {"upd", "upd.1"}
    assert "output" not in inst.task_index  # no task forces the results into fast memory at the end
    assert inst.time[inst.task_index["upd"]] == 7  # a fixed time overrides the cost model
    assert datum(inst, "g").consumers == ("upd",)  # the gradient dies at its update
    # the update holds w, m, g and the new w', m' (out of place): 500; every order has the sources first
    assert traced_peak(inst) == 500 == brute_min_peak(inst)
    ev = evaluate(inst, Plan.from_order(inst, inst.topological_order))
    assert ev.valid and ev.peak == 500


def test_a_result_read_inside_or_an_alias_is_kept_by_the_output_task():
    ops = [inp("x", 1), op("y", ["x"], 5), op("z", ["y"], 2), op("v", ["z"], 2, alias="z")]
    inst = to_instance(NNGraph("g", ops, [], results=["y", "v"]))
    assert "output" in datum(inst, "y").consumers and "output" in datum(inst, "z").consumers
    with pytest.raises(MemoptError, match="produced by no op"):
        to_instance(NNGraph("g", ops, [], results=["nope"]))


def test_host_tensors_are_never_counted():
    g = NNGraph("g", [inp("x", 4), op("a", ["x", "param:w", "host:m"], 20)], ["a"],
                params={"param:w": 100, "host:m": 100})
    inst = to_instance(g, count_params=True)
    assert datum(inst, "parameters").size == 100 and inst.meta["parameter_bytes"] == 100
    assert inst.meta["optimizer_state_bytes"] == 100


@settings(max_examples=200)
@given(st.integers(0, 10**15), st.integers(0, 10**13), st.sampled_from([1e13, 3.3e12, 1e12, 7.0]),
       st.sampled_from([5e11, 1.7e11, 16e9, 3.0]))
def test_roofline_integer_path_equals_the_exact_fraction(flops, nbytes, f, b):
    from fractions import Fraction

    exact = math.ceil(max(Fraction(flops) * 10**9 / Fraction(f), Fraction(nbytes) * 10**9 / Fraction(b)))
    assert CostModel(f, b).time_ns(flops, nbytes) == exact


def as_persistent(g: NNGraph) -> NNGraph:
    """``g`` with its parameters as persistent tensors (source ops), kept to the end (graph outputs)."""
    sources = [state(p, size) for p, size in g.params.items()]
    return NNGraph(g.name, sources + g.ops, g.outputs + list(g.params), {})


@settings(max_examples=40)
@given(nn_graphs(max_ops=5))
def test_persistent_parameters_kept_to_the_end_are_a_fixed_offset(g):
    base = to_instance(g, sink=True)
    pers = to_instance(as_persistent(g))
    offset = sum(g.params.values())
    assert traced_peak(pers) == traced_peak(base) + offset
    ev = evaluate(pers, Plan.from_order(pers, pers.topological_order), allow_recompute=False, allow_offload=False)
    assert ev.valid, ev.violation
    if base.n <= 6:
        assert brute_min_peak(pers) == brute_min_peak(base) + offset


def test_offloading_may_move_states_and_results():
    """The state lives in slow memory between the start and its update, the new parameter at the end."""
    inst = to_instance(training_step(), bandwidth=10.0)
    plan = Plan([[("compute", "w")], [("compute", "m")], [("compute", "x"), ("offload", "m")],
                 [("free", "m"), ("compute", "a"), ("free", "x")], [("compute", "g"), ("free", "a")],
                 [("reload", "m")],
                 [("compute", "upd"), ("free", "w"), ("free", "g"), ("free", "m")],
                 [("offload", "upd")], [("free", "upd")]])
    ev = evaluate(inst, plan, trace=True)
    assert ev.valid, ev.violation
    at_g = [mp.memory for mp in ev.memory if mp.kind == "compute" and mp.target == "g"]
    assert at_g == [100 + 20 + 100]  # w, a and g: m is in slow memory
