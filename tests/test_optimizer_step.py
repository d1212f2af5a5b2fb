"""The optimizer step at the level of an instance (memopt.importers.optimizer.add_optimizer) and the
ONNX importer's ``optimizer`` option: sizes and lifetimes of parameters, gradients and optimizer states.

(The PyTorch importer's optimizer step is checked against PyTorch in tests/test_importers_pytorch.py.)
"""

from __future__ import annotations

import glob
import math
import os

import pytest

from memopt import MemoptError, Plan, evaluate, from_tensors, schedule_peak
from memopt.importers.nn import CostModel
from memopt.importers.optimizer import OPTIMIZERS, ParamGroup, add_optimizer, get_optimizer
from memopt.training import training_graph


def chain_training(params: dict[str, int]):
    """x -> a -> b -> c (with an input task x), trained: the gradients ``grad:<f>.params`` are results."""
    fwd = from_tensors([("x", 0, 8, []), ("a", 5, 40, ["x"]), ("b", 7, 30, ["a"]), ("c", 3, 10, ["b"])])
    fwd = fwd.replace(tasks=[t if t.id != "x" else t.__class__(t.id, t.time, t.workspace, False, {"op": "input"})
                             for t in fwd.tasks])
    return training_graph(fwd, params=params)


def groups_of(params: dict[str, int]) -> list[ParamGroup]:
    return [ParamGroup(f, s, (f, f"{f}.bwd"), f"grad:{f}.params") for f, s in params.items()]


def datum(inst, d):
    return inst.data[inst.datum_index[d]]


def last_consumer(inst, d: str, order) -> str:
    pos = {inst.tasks[v].id: k for k, v in enumerate(order)}
    return max(datum(inst, d).consumers, key=pos.__getitem__)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_states_parameters_and_gradients_have_their_sizes_and_lifetimes(name):
    params = {"a": 100, "c": 60}
    base = chain_training(params)
    opt = OPTIMIZERS[name]
    inst = add_optimizer(base, groups_of(params), opt, cost=CostModel())
    k = len(opt.states)
    assert inst.meta["optimizer_state_bytes"] == k * 160 and inst.meta["optimizer"] == name
    order = inst.topological_order
    first_input = min(order.index(inst.task_index["x"]), order.index(inst.task_index["a"]))
    for f, size in params.items():
        upd = f"{opt.name.replace('-', '_')}_{f}"
        # the parameter and each state: a source of time 0 that cannot be redone, run before the input
        sources = [f"param:{f}"] + [f"param:{f}.{s}" for s in opt.states]
        for s in sources:
            v = inst.task_index[s]
            assert inst.time[v] == 0 and not inst.can_recompute[v] and datum(inst, s).size == size
            assert order.index(v) < first_input
            assert last_consumer(inst, s, order) == upd  # it lives until its update
        assert set(datum(inst, f"param:{f}").consumers) == {f, f"{f}.bwd", upd}
        # the gradient dies at its update (it was a result before)
        assert datum(inst, f"grad:{f}.params").consumers == (upd,)
        # the update writes the new parameter and states: results of the same size
        outs = [inst.data[j] for j in inst.outputs[inst.task_index[upd]]]
        assert [d.size for d in outs] == [size] * (1 + k) and all(not d.consumers for d in outs)
        assert not inst.can_recompute[inst.task_index[upd]]
    ev = evaluate(inst, Plan.from_order(inst, order), allow_recompute=False, allow_offload=False)
    assert ev.valid, ev.violation
    # the traced order updates after the backward pass: every parameter, state and gradient is alive then
    assert schedule_peak(inst, order) >= schedule_peak(base, base.topological_order) + (1 + k) * 160


def test_a_task_that_follows_no_input_follows_every_source():
    """A source task of the network (a position table, read by b) allocates before any input: it comes after
    every parameter and state, which exist when the step starts (the last source's token orders it)."""
    fwd = from_tensors([("x", 0, 8, []), ("pos", 2, 6, []), ("a", 5, 40, ["x"]), ("b", 7, 30, ["a", "pos"])])
    fwd = fwd.replace(tasks=[t if t.id != "x" else t.__class__(t.id, t.time, t.workspace, False, {"op": "input"})
                             for t in fwd.tasks])
    params = {"a": 100, "b": 60}
    inst = add_optimizer(training_graph(fwd, params=params), groups_of(params), OPTIMIZERS["adam"], cost=CostModel())
    sources = [t.id for t in inst.tasks if t.id.startswith("param:")]
    assert len(sources) == 6
    before = {v for v in range(inst.n) if inst.task_index["pos"] in _descendants(inst, v)}
    assert {inst.task_index[s] for s in sources} <= before
    assert inst.task_index["x"] not in before  # and nothing more: the input need not come first
    assert datum(inst, f"{sources[-1]}.ready").consumers == ("x", "pos")
    ev = evaluate(inst, Plan.from_order(inst, inst.topological_order), allow_recompute=False, allow_offload=False)
    assert ev.valid, ev.violation


def _descendants(inst, v: int) -> set[int]:
    out, stack = set(), [v]
    while stack:
        for w in inst.succs[stack.pop()]:
            if w not in out:
                out.add(w)
                stack.append(w)
    return out


def test_on_the_host_states_take_no_memory_and_the_update_takes_the_link_time():
    params = {"a": 100, "c": 60}
    base = chain_training(params)
    inst = add_optimizer(base, groups_of(params), OPTIMIZERS["adam"], cost=CostModel(), on_host=True,
                         bandwidth=16.0)
    assert not any(d.id.endswith(("exp_avg", "exp_avg_sq")) for d in inst.data)
    assert inst.meta["optimizer_on_host"] and inst.meta["optimizer_state_bytes"] == 2 * 160
    assert inst.time[inst.task_index["adam_a"]] == math.ceil(200 / 16)  # gradient down, parameter back
    assert [inst.size[j] for j in inst.outputs[inst.task_index["adam_a"]]] == [100]
    with pytest.raises(MemoptError, match="bandwidth"):
        add_optimizer(base, groups_of(params), OPTIMIZERS["adam"], cost=CostModel(), on_host=True)


def test_optimizer_names_and_bad_groups():
    assert get_optimizer(None) is None and get_optimizer("none") is None
    assert get_optimizer("Adam").states == ("exp_avg", "exp_avg_sq")
    assert get_optimizer("sgd-momentum").states == ("momentum_buffer",) and get_optimizer("sgd").states == ()
    with pytest.raises(MemoptError, match="optimizer 'lion' unknown"):
        get_optimizer("lion")
    base = chain_training({"a": 100})
    with pytest.raises(MemoptError, match="no gradient datum"):
        add_optimizer(base, [ParamGroup("a", 100, ("a",), "grad:zzz")], OPTIMIZERS["sgd"], cost=CostModel())


# ------------------------------------------------------------------------ ONNX
def light(name: str) -> str:
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    paths = glob.glob(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                                   f"light_{name}.onnx"))
    if not paths:
        pytest.skip(f"light_{name}.onnx is not shipped by this onnx version")
    return paths[0]


def test_onnx_training_graph_with_adam():
    from memopt.importers.onnx import load_onnx

    path = light("squeezenet")
    base = load_onnx(path, train=True, batch=2)
    adam = load_onnx(path, train=True, batch=2, optimizer="adam")
    host = load_onnx(path, train=True, batch=2, optimizer="adam", optimizer_on_host="true", bandwidth=16e9)
    p = base.meta["parameter_bytes"]
    assert adam.meta["optimizer_state_bytes"] == 2 * sum(datum(adam, d.id).size for d in adam.data
                                                         if d.id.startswith("grad:") and d.id.endswith(".params"))
    peak = {k: schedule_peak(i, i.topological_order) for k, i in (("base", base), ("adam", adam), ("host", host))}
    # the traced order updates after the backward pass: parameters (and states) add to the peak
    assert peak["adam"] >= peak["host"] + adam.meta["optimizer_state_bytes"] * 0.99 and peak["host"] >= peak["base"]
    assert peak["host"] <= peak["base"] + p + max(d.size for d in host.data)
    for inst in (adam, host):
        ev = evaluate(inst, Plan.from_order(inst, inst.topological_order), allow_recompute=False,
                      allow_offload=False)
        assert ev.valid, ev.violation
    with pytest.raises(MemoptError, match="needs train=true"):
        load_onnx(path, optimizer="adam")
    with pytest.raises(MemoptError, match="optimizer_on_host needs the bandwidth"):
        load_onnx(path, train=True, optimizer="adam", optimizer_on_host=True)


def test_convert_with_the_optimizer_option(tmp_path):
    from memopt import load_instance
    from memopt.cli import main

    out = tmp_path / "sq.yaml"
    assert main(["convert", light("squeezenet"), str(out), "--train", "--batch", "2", "-I", "optimizer=adam"]) == 0
    inst = load_instance(out)
    assert inst.meta["optimizer"] == "adam" and any(t.id.startswith("adam_") for t in inst.tasks)
    assert main(["convert", light("squeezenet"), str(out), "--train", "-I", "optimizer=lion"]) == 2
