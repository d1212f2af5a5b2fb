"""Instances, plans and results: the three forms, both file formats, validation."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from strategies import instances

from memopt import (
    InstanceError,
    MemoptError,
    Plan,
    PlanFormatError,
    Result,
    evaluate,
    instance_from_dict,
    instance_to_dict,
    load_instance,
    load_plan,
    save_instance,
    save_plan,
    solve,
)
from memopt.core.instance import datum_form

MIXED = """
name: mixed
units: {size: KiB, time: us}
machine: {budget: 50, bandwidth: 2.5, slow_capacity: 1000}
tasks:
  - {id: a, time: 3, size: 10}
  - {id: b, time: 2, size: 4, inputs: [a]}
  - {id: c, time: 5, inputs: [a, b, m], workspace: 2, recompute: false}
  - {id: 7, time: 1}
edges:
  - {from: c, to: 7, size: 6}
data:
  - {id: m, producer: b, consumers: [], size: 3}
  - {id: r, producer: 7, size: 1}
"""


@pytest.fixture
def mixed(tmp_path):
    p = tmp_path / "mixed.yaml"
    p.write_text(MIXED)
    return load_instance(p)


def test_three_forms_become_one_data_model(mixed):
    inst = mixed
    assert [t.id for t in inst.tasks] == ["a", "b", "c", "7"]  # numbers are read as strings
    ids = {d.id: d for d in inst.data}
    assert set(ids) == {"a", "b", "c->7", "m", "r"}
    assert ids["a"].consumers == ("b", "c") and ids["a"].size == 10
    assert ids["c->7"].producer == "c" and ids["c->7"].consumers == ("7",) and ids["c->7"].size == 6
    assert ids["m"].consumers == ("c",)  # listed in c's inputs
    assert ids["r"].consumers == () and inst.data[inst.results[0]].id == "r"
    assert inst.task("c").workspace == 2 and inst.task("c").recompute is False
    assert inst.machine.budget == 50 and inst.machine.bandwidth == 2.5 and inst.machine.slow_capacity == 1000
    assert inst.units == {"size": "KiB", "time": "us"}
    assert datum_form(inst, inst.datum_index["a"]) == "tensor"
    assert datum_form(inst, inst.datum_index["c->7"]) == "edge"
    assert datum_form(inst, inst.datum_index["m"]) == "general"
    assert inst.preds[inst.task_index["c"]] == (0, 1)


@pytest.mark.parametrize("ext", [".yaml", ".yml", ".json"])
def test_round_trip_both_formats(mixed, tmp_path, ext):
    p = tmp_path / f"out{ext}"
    save_instance(mixed, p)
    back = load_instance(p)
    assert back == mixed
    assert back.name == "mixed" and back.units == mixed.units
    if ext == ".json":
        json.loads(p.read_text())  # plain JSON


@settings(max_examples=60)
@given(instances(max_tasks=8))
def test_round_trip_random_instances(inst):
    raw = instance_to_dict(inst)
    back = instance_from_dict(json.loads(json.dumps(raw)))
    assert back == inst


def test_infinite_bandwidth_round_trips(tmp_path):
    inst = instance_from_dict({"machine": {"bandwidth": ".inf"}, "tasks": [{"id": "a", "size": 1}]})
    assert inst.machine.bandwidth == math.inf
    for ext in (".yaml", ".json"):
        save_instance(inst, tmp_path / f"i{ext}")
        assert load_instance(tmp_path / f"i{ext}").machine.bandwidth == math.inf


def test_integral_floats_and_numeric_strings_are_accepted():
    inst = instance_from_dict({"tasks": [{"id": 1.0, "time": 3.0, "size": "1e9"}]})
    assert inst.tasks[0].id == "1" and inst.time[0] == 3 and inst.size[0] == 10**9


# ------------------------------------------------------------- validation
def problems(raw, where="bad.yaml"):
    with pytest.raises(InstanceError) as e:
        instance_from_dict(raw, where=where)
    return e.value, str(e.value)


def test_all_problems_are_reported_at_once_with_file_and_item():
    err, msg = problems({
        "machine": {"budget": -1, "bandwidth": 0, "speed": 3},
        "tasks": [
            {"id": "a", "time": -2, "size": 1.5},
            {"id": "a", "time": 1},
            {"id": "b", "time": "fast", "inputs": ["nope", "a"]},
            {"id": "c", "size": 2, "color": "red"},
        ],
        "edges": [{"from": "b", "to": "zz", "size": 1}],
        "data": [{"id": "d", "producer": "ghost", "consumers": ["b"], "size": -3}],
    })
    rules = [str(p) for p in err.problems]
    assert all(r.startswith("bad.yaml: ") for r in rules)
    expected = [
        "machine: unknown field(s) 'speed'",
        "machine.budget: budget must be >= 0",
        "machine.bandwidth: must be > 0",
        "task 'a': time must be >= 0",
        "task 'a': size must be an integer, got 1.5",
        "task 'b': time must be an integer, got 'fast'",
        "task 'c': unknown field(s) 'color'",
        "task 'b': input 'nope' is not a known datum or task (unknown id)",
        "task 'a': duplicate task id",
        "datum 'd': size must be >= 0, got -3",
        "datum 'd': producer 'ghost' is not a known task (unknown id)",
        "datum 'b->zz': consumer 'zz' is not a known task (unknown id)",
    ]
    for e in expected:
        assert any(e in r for r in rules), (e, rules)
    assert "problem(s) in the instance" in msg


def test_input_naming_a_task_without_output():
    _, msg = problems({"tasks": [{"id": "a"}, {"id": "b", "inputs": ["a"]}]})
    assert "input 'a' is a task without a size" in msg


def test_cycle_names_the_tasks_on_it():
    _, msg = problems({"tasks": [
        {"id": "x", "size": 1},
        {"id": "a", "size": 1, "inputs": ["x", "c"]},
        {"id": "b", "size": 1, "inputs": ["a"]},
        {"id": "c", "size": 1, "inputs": ["b"]},
    ]})
    assert "cycle:" in msg
    cyc = msg.split("cycle: ")[1].split(" -> ")
    assert set(cyc) == {"a", "b", "c"} and cyc[0] == cyc[-1] and len(cyc) == 4


def test_self_loop_is_a_cycle():
    _, msg = problems({"tasks": [{"id": "a", "size": 1, "inputs": ["a"]}]})
    assert "cycle: a -> a" in msg


def test_duplicate_datum_ids_across_forms():
    _, msg = problems({"tasks": [{"id": "a", "size": 1}, {"id": "b"}],
                       "data": [{"id": "a", "producer": "b", "size": 1}]})
    assert "datum 'a': duplicate datum id" in msg


def test_wrong_shapes():
    _, msg = problems([1, 2])
    assert "must be a mapping" in msg
    _, msg = problems({"tasks": "abc"})
    assert "tasks: must be a list" in msg
    _, msg = problems({"tasks": [{"time": 1}]})
    assert "id must be a string or a number" in msg
    _, msg = problems({"task": []})
    assert "unknown field(s) 'task'" in msg and "no 'tasks' list" in msg


def test_file_errors(tmp_path):
    with pytest.raises(MemoptError, match="no such file"):
        load_instance(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [ {id: a\n")
    with pytest.raises(MemoptError, match=r"bad.yaml: not valid YAML \(line"):
        load_instance(bad)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(MemoptError, match="not valid JSON"):
        load_instance(bad)
    with pytest.raises(MemoptError, match="is a directory"):
        load_instance(tmp_path)
    other = tmp_path / "x.txt"
    other.write_text("")
    with pytest.raises(MemoptError, match="unknown file type"):
        load_instance(other)


def test_error_names_the_file(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("tasks:\n  - {id: a, size: -1}\n")
    with pytest.raises(InstanceError, match="broken.yaml: task 'a': size must be >= 0"):
        load_instance(p)


# ------------------------------------------------------------- plans and results
def test_plan_file_round_trip(mixed, tmp_path):
    plan = Plan.from_order(mixed, ["a", "b", "c", "7"])
    for ext in (".yaml", ".json"):
        save_plan(plan, tmp_path / f"p{ext}")
        assert load_plan(tmp_path / f"p{ext}") == plan


def test_plan_events_as_strings_and_bare_lists(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("- [compute a]\n- ['compute b', {free: a}]\n- {compute: c}\n")
    plan = load_plan(p)
    assert [[(e.kind, e.target) for e in s] for s in plan.stages] == [
        [("compute", "a")], [("compute", "b"), ("free", "a")], [("compute", "c")]]


@pytest.mark.parametrize("text,msg", [
    ("stages: [[{jump: a}]]", "unknown event kind 'jump'"),
    ("stages: [[{compute: a, free: b}]]", "an event is one of"),
    ("stages: [[compute]]", "cannot read event"),
    ("stages: 3", "'stages' must be a list"),
    ("nothing: 1", "'stages' list"),
    ("stages: [[{compute: [a]}]]", "must be a string"),
])
def test_bad_plan_files(tmp_path, text, msg):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    with pytest.raises(PlanFormatError, match=msg):
        load_plan(p)


def test_result_file_is_the_spec_plan_file(tmp_path):
    inst = instance_from_dict({"name": "tiny", "machine": {"budget": 100, "bandwidth": 4}, "tasks": [
        {"id": "a", "time": 3, "size": 10}, {"id": "b", "time": 2, "size": 4, "inputs": ["a"]},
        {"id": "c", "time": 5, "size": 1, "inputs": ["a", "b"], "workspace": 2, "recompute": False}]})
    res = solve(inst, "peak", "greedy")
    p = tmp_path / "r.yaml"
    res.save(p)
    text = p.read_text()
    keys = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith((" ", "-"))]
    assert keys[:9] == ["instance", "objective", "status", "value", "bound", "peak", "makespan",
                        "method", "solve_seconds"]
    assert "- [{compute: a}]" in text
    back = Result.load(p)
    assert back.plan == res.plan and back.value == res.value == 17 and back.status == "optimal"
    assert evaluate(inst, load_plan(p)).peak == 17
