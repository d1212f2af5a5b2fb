"""The training-graph builder: a hand example, then every rule on random graphs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import instances

from memopt import Datum, Instance, MemoptError, Plan, Task, evaluate, from_tensors
from memopt.generators import random_layered
from memopt.training import training_graph


def pure_peak(inst) -> int:
    ev = evaluate(inst, Plan.from_order(inst, inst.topological_order), allow_recompute=False, allow_offload=False)
    assert ev.valid, ev.violation
    return ev.peak


def datum(inst, did):
    d = inst.datum(did)
    return d.producer, sorted(d.consumers), d.size


# x (data loading) -> a -> {b, c} -> d, with parameters on a and d
FORWARD = Instance(
    [Task("x", 0, 0, False), Task("a", 3), Task("b", 2), Task("c", 5, 7), Task("d", 1)],
    [Datum("x", "x", ("a",), 8), Datum("a", "a", ("b", "c"), 4), Datum("b", "b", ("d",), 3),
     Datum("c", "c", ("d",), 6), Datum("d", "d", (), 2)], name="fork")


def test_hand_example():
    tr = training_graph(FORWARD, params={"a": 5, "d": 1})
    assert tr.name == "fork-train"
    assert [t.id for t in tr.tasks] == ["x", "a", "b", "c", "d", "loss", "d.bwd", "c.bwd", "b.bwd", "a.bwd"]
    # x has no parameters and no input needing a gradient: no backward task, no gradient of x
    assert "x.bwd" not in tr.task_index and not any(d.id.startswith("grad:x") for d in tr.data)
    # forward data: unchanged sizes and producers, read by the backward tasks of their consumers
    assert datum(tr, "x") == ("x", ["a", "a.bwd"], 8)
    assert datum(tr, "a") == ("a", ["b", "b.bwd", "c", "c.bwd"], 4)
    assert datum(tr, "b") == ("b", ["d", "d.bwd"], 3)
    assert datum(tr, "c") == ("c", ["d", "d.bwd"], 6)
    assert datum(tr, "d") == ("d", ["loss"], 2)
    # gradients: one datum per (input, reader), of the input's size
    assert datum(tr, "grad:d@loss") == ("loss", ["d.bwd"], 2)
    assert datum(tr, "grad:b@d") == ("d.bwd", ["b.bwd"], 3)
    assert datum(tr, "grad:c@d") == ("d.bwd", ["c.bwd"], 6)
    assert datum(tr, "grad:a@b") == ("b.bwd", ["a.bwd"], 4)
    assert datum(tr, "grad:a@c") == ("c.bwd", ["a.bwd"], 4)
    # parameter gradients are results
    assert datum(tr, "grad:d.params") == ("d.bwd", [], 1)
    assert datum(tr, "grad:a.params") == ("a.bwd", [], 5)
    assert tr.m == 5 + 7
    # times, workspaces, recompute flags
    assert [(t.id, t.time, t.workspace, t.recompute) for t in tr.tasks[5:]] == [
        ("loss", 0, 0, False), ("d.bwd", 2, 0, True), ("c.bwd", 10, 7, True), ("b.bwd", 4, 0, True),
        ("a.bwd", 6, 0, True)]
    assert tr.tasks[:5] == FORWARD.tasks
    assert tr.task("a.bwd").meta == {"backward_of": "a"} and tr.task("loss").meta == {"loss": True}
    # its pure schedule is valid; peak by hand, at d.bwd: resident x 8 + a 4 + b 3 + c 6 + grad:d@loss 2
    # = 23, + outputs grad:b@d 3 + grad:c@d 6 + grad:d.params 1 = 33 (and at c.bwd: 22 + 4 + workspace 7)
    assert pure_peak(tr) == 33


def test_params_none_makes_every_task_trainable():
    tr = training_graph(FORWARD)
    assert [t.id for t in tr.tasks][5:] == ["loss", "d.bwd", "c.bwd", "b.bwd", "a.bwd", "x.bwd"]
    assert datum(tr, "grad:x@a") == ("a.bwd", ["x.bwd"], 8)
    assert not any(d.id.endswith(".params") for d in tr.data)
    assert tr.outputs[tr.task_index["x.bwd"]] == ()  # parameter sizes unknown: no parameter gradient


def test_params_on_a_late_task_only():
    tr = training_graph(FORWARD, params={"d": 3})
    # only d requires a gradient: nothing flows to b, c, a
    assert [t.id for t in tr.tasks][5:] == ["loss", "d.bwd"]
    assert datum(tr, "grad:d@loss") == ("loss", ["d.bwd"], 2)
    assert sorted(tr.data[j].id for j in tr.outputs[tr.task_index["d.bwd"]]) == ["grad:d.params"]
    assert sorted(tr.datum("b").consumers) == ["d", "d.bwd"]
    pure_peak(tr)


def test_buffer_form_sink_links_to_the_loss():
    fwd = Instance([Task("u", 1), Task("v", 2), Task("w", 3)],
                   [Datum("u->v", "u", ("v",), 5), Datum("u->w", "u", ("w",), 7)], name="fan")
    tr = training_graph(fwd, grad_time_factor=0.5)
    assert datum(tr, "v->loss") == ("v", ["loss"], 0)
    assert datum(tr, "grad:v->loss@loss") == ("loss", ["v.bwd"], 0)
    assert datum(tr, "grad:u->v@v") == ("v.bwd", ["u.bwd"], 5)
    assert datum(tr, "u->w") == ("u", ["w", "w.bwd"], 7)  # read by w and by w.bwd (w's saved input)
    u_bwd_inputs = [tr.data[j].id for j in tr.inputs[tr.task_index["u.bwd"]]]
    assert sorted(u_bwd_inputs) == ["grad:u->v@v", "grad:u->w@w"]  # u has no input to save
    assert [t.time for t in tr.tasks if t.id.endswith(".bwd")] == [2, 1, 1]  # 1.5, 1.0, 0.5 rounded half up
    pure_peak(tr)


def test_general_form_multi_output_task():
    fwd = Instance([Task("p", 1), Task("q", 1), Task("r", 1)],
                   [Datum("p.0", "p", ("q",), 2), Datum("p.1", "p", ("q", "r"), 3), Datum("p.2", "p", (), 4),
                    Datum("q.0", "q", ("r",), 1), Datum("r.0", "r", (), 1)], name="multi")
    tr = training_graph(fwd)
    ins = {tr.data[j].id for j in tr.inputs[tr.task_index["p.bwd"]]}
    assert ins == {"grad:p.0@q", "grad:p.1@q", "grad:p.1@r", "grad:p.2@loss"}  # p has no input
    assert datum(tr, "grad:p.2@loss") == ("loss", ["p.bwd"], 4)
    assert sorted(tr.datum("p.2").consumers) == ["loss"]
    pure_peak(tr)


def test_errors_and_id_collisions():
    with pytest.raises(MemoptError, match="params names 'zz'"):
        training_graph(FORWARD, params={"zz": 1})
    with pytest.raises(MemoptError, match=r"params\['a'\] must be an integer >= 0"):
        training_graph(FORWARD, params={"a": -1})
    with pytest.raises(MemoptError, match="grad_time_factor"):
        training_graph(FORWARD, grad_time_factor=-1)
    clash = from_tensors([("a", 1, 1, []), ("a.bwd", 1, 1, ["a"])])
    with pytest.raises(MemoptError, match="'a.bwd' it needs is already used"):
        training_graph(clash)
    named_loss = from_tensors([("loss", 1, 1, [])])
    tr = training_graph(named_loss)
    assert [t.id for t in tr.tasks] == ["loss", "loss.1", "loss.bwd"]


def test_training_graph_of_a_layered_graph_is_schedulable():
    fwd = random_layered(80, seed=3)
    tr = training_graph(fwd, params={t.id: 7 for t in fwd.tasks[::3]})
    assert tr.topological_order == tuple(range(tr.n))  # the listed order is topological
    assert pure_peak(tr) >= pure_peak(fwd)


@st.composite
def forward_and_params(draw):
    fwd = draw(instances(min_tasks=1, max_tasks=7))
    mode = draw(st.sampled_from(["none", "some"]))
    if mode == "none":
        return fwd, None
    return fwd, {t.id: draw(st.sampled_from([0, 0, 1, 5])) for t in fwd.tasks}


@given(forward_and_params(), st.sampled_from([0.0, 1.0, 2.0, 2.5]))
def test_every_rule_on_random_graphs(fp, factor):
    fwd, params = fp
    tr = training_graph(fwd, params=params, grad_time_factor=factor)
    n = fwd.n
    P = {t.id: (params or {}).get(t.id, 0) for t in fwd.tasks}
    # requires grad, computed independently: trainable or fed by a task that requires grad
    req = {t.id: (params is None or P[t.id] > 0) for t in fwd.tasks}
    for v in fwd.topological_order:
        tid = fwd.tasks[v].id
        req[tid] = req[tid] or any(req[fwd.data[j].producer] for j in fwd.inputs[v])

    # forward tasks unchanged, then the loss, then one backward task per task requiring grad
    assert tr.tasks[:n] == fwd.tasks
    loss = tr.tasks[n]
    assert (loss.id, loss.time, loss.recompute) == ("loss", 0, False)
    bwd_ids = [t.id for t in tr.tasks[n + 1:]]
    assert sorted(bwd_ids) == sorted(f"{t}.bwd" for t in req if req[t])
    for t in tr.tasks[n + 1:]:
        f = fwd.task(t.id[:-4])
        assert t.time == math.floor(factor * f.time + 0.5) and t.workspace == f.workspace and t.recompute

    results = {fwd.data[j].id for j in fwd.results}
    sinks = [t.id for v, t in enumerate(fwd.tasks) if not fwd.outputs[v]]
    # forward data: same producer and size; extra readers are the loss and backward tasks of readers
    for d in fwd.data:
        e = tr.datum(d.id)
        assert (e.producer, e.size) == (d.producer, d.size)
        extra = {f"{c}.bwd" for c in d.consumers if req[c]} | ({"loss"} if d.id in results else set())
        assert set(e.consumers) == set(d.consumers) | extra
    # the loss reads every result and one size-0 link per output-less task
    loss_ins = {tr.data[j].id for j in tr.inputs[n]}
    assert loss_ins == results | {f"{s}->loss" for s in sinks}
    assert all(tr.datum(f"{s}->loss").size == 0 for s in sinks)

    for v, f in enumerate(fwd.tasks):
        if not req[f.id]:
            continue
        b = tr.task_index[f"{f.id}.bwd"]
        ins = {tr.data[j].id for j in tr.inputs[b]}
        want_in = {fwd.data[j].id for j in fwd.inputs[v]}  # saved inputs
        for j in fwd.outputs[v]:
            d = fwd.data[j]
            want_in |= {f"grad:{d.id}@{c}" for c in d.consumers}  # one contribution per reader
            if d.id in results:
                want_in.add(f"grad:{d.id}@loss")
        if not fwd.outputs[v]:
            want_in.add(f"grad:{f.id}->loss@loss")
        assert ins == want_in
        outs = {tr.data[j].id: tr.data[j] for j in tr.outputs[b]}
        want_out = {f"grad:{fwd.data[j].id}@{f.id}" for j in fwd.inputs[v] if req[fwd.data[j].producer]}
        if P[f.id] > 0:
            want_out.add(f"grad:{f.id}.params")
        assert set(outs) == want_out
        for did, d in outs.items():
            if did.endswith(".params"):
                assert d.size == P[f.id] and d.consumers == ()
            else:
                x = fwd.datum(did[5:].rsplit("@", 1)[0])
                assert d.size == x.size and d.consumers == (f"{x.producer}.bwd",)
    pure_peak(tr)
