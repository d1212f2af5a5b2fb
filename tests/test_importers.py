"""Importers: networkx node-link JSON and WfCommons WfFormat (tests/data fixtures)."""

from __future__ import annotations

import json
import os

import networkx as nx
import pytest

from memopt import InstanceError, MemoptError, Plan, evaluate, load_instance, save_instance
from memopt.cli import main
from memopt.importers.nodelink import instance_from_nodelink
from memopt.importers.wfcommons import instance_from_wfformat

DATA = os.path.join(os.path.dirname(__file__), "data")


def fixture(name: str) -> str:
    return os.path.join(DATA, name)


def raw(name: str) -> dict:
    with open(fixture(name)) as f:
        return json.load(f)


def ids(inst) -> list[str]:
    return [t.id for t in inst.tasks]


def inputs_of(inst, tid: str) -> list[str]:
    return [inst.data[j].id for j in inst.inputs[inst.task_index[tid]]]


def consumers_of(inst, did: str) -> list[str]:
    return list(inst.datum(did).consumers)


def pure_schedule_is_valid(inst) -> bool:
    ev = evaluate(inst, Plan.from_order(inst, inst.topological_order), allow_recompute=False, allow_offload=False)
    return ev.valid


# ------------------------------------------------------------------ node-link
def test_checkmate_variant_structure_sizes_times_meta():
    inst = load_instance(fixture("nodelink_checkmate.json"))
    assert inst.name == "mini-mlp-train"
    assert inst.units == {"size": "B"}
    assert ids(inst) == ["dense1", "relu1", "dense2", "Loss", "dense2_backward", "relu1_backward", "dense1_backward"]
    # tensor form: one output per node, named after it, read by the link targets
    assert all(d.id == d.producer for d in inst.data)
    assert inst.datum("relu1").size == 4096 and inst.task("relu1").time == 5
    assert sorted(consumers_of(inst, "relu1")) == ["dense2", "dense2_backward", "relu1_backward"]
    assert sorted(inputs_of(inst, "dense2_backward")) == ["Loss", "dense2", "relu1"]
    assert inst.task("Loss").meta == {"backward": True}
    assert inst.task("dense1").meta == {"backward": False}
    assert [inst.data[j].id for j in inst.results] == ["dense1_backward"]
    assert inst.topological_order == tuple(range(inst.n))  # listed order is the node order
    assert pure_schedule_is_valid(inst)


def test_layered_variant_uses_graph_order_and_name_keys():
    inst = load_instance(fixture("nodelink_layered.json"))
    assert inst.name == "layered_toy_n7"
    assert ids(inst) == ["0", "3", "2", "4", "5", "6", "1"]  # graph.order
    assert inst.topological_order == tuple(range(7))
    assert sorted(inputs_of(inst, "6")) == ["2", "4", "5"]
    assert inst.task("2").time == 310 and inst.datum("2").size == 120
    assert consumers_of(inst, "1") == []  # the sink's output is the result


def test_param_cost_modes():
    r = raw("nodelink_layered.json")
    ws = instance_from_nodelink(r, "x.json")  # default: workspace
    assert ws.task("4").workspace == 16 and ws.task("4").meta == {"param_cost": 16}
    assert ws.n == 7
    ign = instance_from_nodelink(r, "x.json", param_cost="ignore")
    assert ign.task("4").workspace == 0 and ign.n == 7
    dat = instance_from_nodelink(r, "x.json", param_cost="datum")
    assert dat.n == 8
    assert ids(dat).index("4.params") == ids(dat).index("4") - 1
    d = dat.datum("4.params")
    assert (d.producer, d.consumers, d.size) == ("4.params", ("4",), 16)
    assert dat.task("4.params").time == 0 and dat.task("4").workspace == 0
    with pytest.raises(MemoptError, match="param_cost"):
        instance_from_nodelink(r, "x.json", param_cost="weights")


def test_plain_networkx_edges_key_optional_fields_and_rounding():
    inst = load_instance(fixture("nodelink_networkx.json"))
    assert ids(inst) == ["load", "left", "right", "join"]
    assert inst.task("load").recompute is False
    assert inst.task("right").workspace == 1 and inst.task("right").meta == {"kind": "conv"}
    assert inst.task("join").time == 2  # 1.5 rounded half up
    assert inst.datum("join").size == 1  # 0.5 rounded up: never under-estimates memory


@pytest.mark.parametrize("edges_key", ["links", "edges"])
def test_networkx_node_link_data_round_trip(edges_key):
    g = nx.gnp_random_graph(12, 0.3, seed=7, directed=True)
    g = nx.DiGraph((u, v) for u, v in g.edges() if u < v)  # a DAG
    g.add_nodes_from(range(12))
    for v in g.nodes:
        g.nodes[v]["time"] = v + 1
        g.nodes[v]["size"] = 10 * v
    data = nx.node_link_data(g, edges=edges_key)
    inst = instance_from_nodelink(data, "nx")
    assert inst.n == 12 and inst.num_edges == g.number_of_edges()
    for u, v in g.edges:
        assert inst.task_index[str(v)] in inst.succs[inst.task_index[str(u)]]
    for v in g.nodes:
        assert inst.task(str(v)).time == v + 1 and inst.datum(str(v)).size == 10 * v


@pytest.mark.parametrize("name", ["nodelink_checkmate.json", "nodelink_layered.json", "nodelink_networkx.json",
                                  "wfformat_v13.json", "wfformat_v14.json", "wfformat_v15.json"])
@pytest.mark.parametrize("ext", [".yaml", ".json"])
def test_imported_instance_round_trips_through_our_format(tmp_path, name, ext):
    inst = load_instance(fixture(name))
    out = tmp_path / f"out{ext}"
    save_instance(inst, out)
    back = load_instance(out)
    assert back == inst
    assert [t.meta for t in back.tasks] == [t.meta for t in inst.tasks]
    assert back.units == inst.units
    assert pure_schedule_is_valid(back)


def _nl(nodes, links, **graph):
    return {"directed": True, "multigraph": False, "graph": graph, "nodes": nodes, "links": links}


def test_nodelink_missing_cost_field_names_the_node():
    r = raw("nodelink_checkmate.json")
    del r["nodes"][1]["cost_ram"]
    with pytest.raises(InstanceError) as e:
        instance_from_nodelink(r, "mlp.json")
    msg = str(e.value)
    assert "mlp.json" in msg and "node 'relu1'" in msg and "missing field 'cost_ram'" in msg


def test_nodelink_link_to_unknown_node():
    r = raw("nodelink_checkmate.json")
    r["links"].append({"source": 2, "target": 99})
    with pytest.raises(InstanceError, match=r"links\[10\]: target 99 is not a node"):
        instance_from_nodelink(r, "mlp.json")


def test_nodelink_cycle_names_the_tasks():
    nodes = [{"id": x, "time": 1, "size": 1} for x in "abc"]
    links = [{"source": "a", "target": "b"}, {"source": "b", "target": "c"}, {"source": "c", "target": "b"}]
    with pytest.raises(InstanceError, match=r"cycle: (b -> c -> b|c -> b -> c)"):
        instance_from_nodelink(_nl(nodes, links), "cyc.json")


def test_nodelink_self_loop_is_a_cycle():
    nodes = [{"id": "a", "time": 1, "size": 1}]
    with pytest.raises(InstanceError, match="cycle: a -> a"):
        instance_from_nodelink(_nl(nodes, [{"source": "a", "target": "a"}]), "loop.json")


def test_nodelink_other_malformed_inputs():
    nodes = [{"id": x, "time": 1, "size": 1} for x in "ab"]
    with pytest.raises(InstanceError, match="graph.order: must list every node once; missing 'b'"):
        instance_from_nodelink(_nl(nodes, [], order=["a"]), "o.json")
    with pytest.raises(InstanceError, match="graph.order: 'z' is not a node"):
        instance_from_nodelink(_nl(nodes, [], order=["a", "b", "z"]), "o.json")
    with pytest.raises(InstanceError, match="duplicate node 'id'"):
        instance_from_nodelink(_nl(nodes + [{"id": "a", "time": 1, "size": 1}], []), "d.json")
    with pytest.raises(InstanceError, match=r"node 'a': time must be >= 0"):
        instance_from_nodelink(_nl([{"id": "a", "time": -1, "size": 1}], []), "n.json")
    with pytest.raises(InstanceError, match=r"links\[0\]: has no 'source'/'target'"):
        instance_from_nodelink(_nl(nodes, [{"from": "a", "to": "b"}]), "l.json")
    with pytest.raises(MemoptError, match="undirected"):
        instance_from_nodelink(dict(_nl(nodes, []), directed=False), "u.json")
    with pytest.raises(MemoptError, match="unknown option.*'batch'.*known: "):
        instance_from_nodelink(_nl(nodes, []), "u.json", batch=3)
    # defaults for missing fields, on request only
    inst = instance_from_nodelink(_nl([{"id": "a"}], []), "n.json", default_time=0, default_size=4)
    assert inst.task("a").time == 0 and inst.datum("a").size == 4


def test_load_instance_names_the_file_for_nodelink_errors(tmp_path):
    r = raw("nodelink_checkmate.json")
    del r["nodes"][0]["cost_cpu"]
    p = tmp_path / "broken.json"
    p.write_text(json.dumps(r))
    with pytest.raises(InstanceError, match=r"broken\.json: node 'dense1': missing field 'cost_cpu'"):
        load_instance(p)


# ------------------------------------------------------------------ WfCommons
def test_wfformat_15_structure_times_sizes_inputs():
    inst = load_instance(fixture("wfformat_v15.json"))
    assert inst.name == "toy-split-merge"
    assert inst.units == {"size": "B", "time": "ms"}
    assert ids(inst) == ["stage_in:reads.fq", "split_01", "stage_in:ref.fa", "align_02", "align_03", "merge_04"]
    times = {t.id: t.time for t in inst.tasks}
    assert times == {"stage_in:reads.fq": 0, "split_01": 1250, "stage_in:ref.fa": 0, "align_02": 10000,
                     "align_03": 8500, "merge_04": 1}  # 0.5 ms rounds half up
    assert inst.task("stage_in:ref.fa").recompute is False
    assert inst.task("align_02").meta == {"name": "align"}
    ref = inst.datum("ref.fa")
    assert (ref.producer, sorted(ref.consumers), ref.size) == ("stage_in:ref.fa", ["align_02", "align_03"], 3000)
    assert inst.datum("chunk_a.fq").producer == "split_01" and consumers_of(inst, "chunk_a.fq") == ["align_02"]
    assert sorted(inst.data[j].id for j in inst.results) == ["all.bam", "merge.log"]
    # split_01 -> merge_04 shares no file: a size-0 datum keeps the order
    link = inst.datum("split_01->merge_04")
    assert (link.producer, link.consumers, link.size) == ("split_01", ("merge_04",), 0)
    assert "unused.txt" not in inst.datum_index
    assert inst.topological_order == tuple(range(inst.n))
    assert pure_schedule_is_valid(inst)


def test_wfformat_options_units_and_dropped_inputs():
    r = raw("wfformat_v15.json")
    inst = instance_from_wfformat(r, "wf.json", time_unit="s", size_unit="KB", inputs="drop")
    assert ids(inst) == ["split_01", "align_02", "align_03", "merge_04"]
    assert "reads.fq" not in inst.datum_index and "ref.fa" not in inst.datum_index
    assert [t.time for t in inst.tasks] == [1, 10, 9, 0]  # 1.25 s, 10.0004 s, 8.5 s (half up), 0.0005 s
    assert inst.datum("chunk_a.fq").size == 5  # 4100 B = 4.1 KB, rounded up
    assert inst.units == {"size": "KB", "time": "s"}
    with pytest.raises(MemoptError, match="time_unit='h' must be one of"):
        instance_from_wfformat(r, "wf.json", time_unit="h")


def test_wfformat_14_legacy_layout():
    inst = load_instance(fixture("wfformat_v14.json"))
    assert ids(inst) == ["stage_in:raw.dat", "prepare_00000001", "compute_00000002", "report_00000003"]
    assert [t.time for t in inst.tasks] == [0, 2000, 4500, 500]
    assert inst.datum("clean.dat").size == 500 and consumers_of(inst, "clean.dat") == ["compute_00000002"]
    assert inst.datum("prepare_00000001->report_00000003").size == 0
    assert inst.task("compute_00000002").meta == {"category": "compute", "type": "compute"}
    assert pure_schedule_is_valid(inst)


def test_wfformat_13_size_and_runtime_keys_parents_only():
    inst = load_instance(fixture("wfformat_v13.json"))
    assert ids(inst) == ["fork", "left", "right"]  # no workflow input: no stage-in task
    assert [t.time for t in inst.tasks] == [1000, 750, 250]
    x = inst.datum("x")
    assert (x.producer, sorted(x.consumers), x.size) == ("fork", ["left", "right"], 10)
    assert inst.outputs[inst.task_index["right"]] == ()
    assert sorted(inst.data[j].id for j in inst.results) == ["y"]


def _wf(tasks, files, runtimes=None):
    wf = {"specification": {"tasks": tasks, "files": files}}
    if runtimes is not None:
        wf["execution"] = {"makespanInSeconds": 1, "executedAt": "x",
                           "tasks": [{"id": k, "runtimeInSeconds": v} for k, v in runtimes.items()]}
    return {"name": "w", "schemaVersion": "1.5", "workflow": wf}


def _t(tid, parents=(), children=(), ins=(), outs=()):
    return {"name": tid, "id": tid, "parents": list(parents), "children": list(children),
            "inputFiles": list(ins), "outputFiles": list(outs)}


def test_wfformat_file_written_twice():
    r = _wf([_t("a", outs=["f"]), _t("b", outs=["f"]), _t("c", ins=["f"])], [{"id": "f", "sizeInBytes": 3}])
    with pytest.raises(InstanceError, match=r"w\.json: file 'f': written by two tasks, 'a' and 'b'"):
        instance_from_wfformat(r, "w.json")
    inst = instance_from_wfformat(r, "w.json", duplicate_outputs="first")
    assert inst.datum("f").producer == "a" and inst.outputs[inst.task_index["b"]] == ()


def test_wfformat_malformed_references():
    r = _wf([_t("a", outs=["f"]), _t("b", parents=["zz"], ins=["f", "g"])], [{"id": "f", "sizeInBytes": 3}])
    with pytest.raises(InstanceError) as e:
        instance_from_wfformat(r, "w.json")
    msg = str(e.value)
    assert "task 'b': parent 'zz' is not a task" in msg
    assert "file 'g': used by task 'b' but has no size" in msg
    r = _wf([_t("a", outs=["f"])], [{"id": "f"}])
    with pytest.raises(InstanceError, match="file 'f': missing 'sizeInBytes'"):
        instance_from_wfformat(r, "w.json")
    r = _wf([_t("a", outs=["f"])], [{"id": "f", "sizeInBytes": 1}], runtimes={"a": -2})
    with pytest.raises(InstanceError, match="task 'a': runtime must be >= 0"):
        instance_from_wfformat(r, "w.json")
    with pytest.raises(MemoptError, match="neither 'specification'"):
        instance_from_wfformat({"workflow": {}}, "w.json")
    with pytest.raises(MemoptError, match="unknown option"):
        instance_from_wfformat(r, "w.json", time_units="s")


def test_wfformat_cycle_through_dependencies():
    r = _wf([_t("a", parents=["b"]), _t("b", parents=["a"])], [])
    with pytest.raises(InstanceError, match="cycle: (a -> b -> a|b -> a -> b)"):
        instance_from_wfformat(r, "w.json")


def test_wfformat_specification_only_and_in_place_files():
    # no execution section: times 0; a task reading and writing f updates it in place
    r = _wf([_t("a", outs=["f"]), _t("b", parents=["a"], ins=["f"], outs=["f2", "f"])],
            [{"id": "f", "sizeInBytes": 2}, {"id": "f2", "sizeInBytes": 1}])
    inst = instance_from_wfformat(r, "w.json", duplicate_outputs="first")
    assert [t.time for t in inst.tasks] == [0, 0]
    assert "no execution section" in inst.meta["note"]
    assert consumers_of(inst, "f") == []  # b's listing of f as input is its own update


# ------------------------------------------------------------------------ CLI
def test_cli_convert_writes_our_format(tmp_path, capsys):
    out = tmp_path / "wf.yaml"
    assert main(["convert", fixture("wfformat_v15.json"), str(out), "-I", "time_unit=s", "-I", "inputs=drop"]) == 0
    back = load_instance(out)
    assert back == instance_from_wfformat(raw("wfformat_v15.json"), "x", time_unit="s", inputs="drop")
    assert "4 tasks" in capsys.readouterr().err
    out2 = tmp_path / "mlp.json"
    assert main(["convert", fixture("nodelink_checkmate.json"), str(out2), "--name", "mlp"]) == 0
    assert load_instance(out2).name == "mlp"


def test_cli_convert_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["convert", fixture("nodelink_layered.json"), str(tmp_path / "o.yaml"), "-I", "param_cost=x"]) == 2
    err = capsys.readouterr().err
    assert "nodelink_layered.json" in err and "param_cost" in err
    assert main(["convert", fixture("tiny_missing.json"), str(tmp_path / "o.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["convert", fixture("nodelink_layered.json"), str(tmp_path / "o.txt")]) == 2
    assert "must end in .yaml, .yml or .json" in capsys.readouterr().err


def test_unit_arithmetic_is_exact_on_decimal_values():
    # 1.1 × 10 is 11.000000000000002 in binary floats: rounding it up must still give 11
    inst = instance_from_nodelink(_nl([{"id": "a", "time": 0.35, "size": 1.1}], []), "s.json",
                                  size_scale=10, time_scale=10)
    assert inst.datum("a").size == 11 and inst.task("a").time == 4  # 3.5 rounds half up
    # 1.0005 s is 1000.5 ms exactly: half up gives 1001 (binary floats give 1000.4999...)
    r = _wf([_t("a", outs=["f"])], [{"id": "f", "sizeInBytes": 2049}], runtimes={"a": 1.0005})
    inst = instance_from_wfformat(r, "w.json", size_unit="KiB")
    assert inst.task("a").time == 1001 and inst.datum("f").size == 3
