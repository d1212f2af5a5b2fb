"""Fuzzing the command line with broken files: every run ends well.

Valid instance and plan files (memopt's three forms, node-link JSON,
WfCommons JSON, a plan with transfers) are mutated — keys deleted, values
replaced by the wrong type, huge, negative or non-finite numbers, ids
swapped for unknown or duplicate ones (which also makes cycles), truncated
files, garbage bytes, other encodings — and given to ``memopt info``,
``evaluate``, ``solve`` and ``convert`` in-process (``memopt.cli.main``).

Every run must end in one of two ways:

* an input error: exit status 2 and a message that starts with
  ``memopt: error:`` (one line; an instance breaking several rules lists
  them below it, one indented line each);
* an answer that the evaluator confirms: the plan ``solve`` wrote is valid
  and has the value it claims; ``evaluate`` agrees with the evaluator;
  ``convert`` writes a file that reads back as the same instance.

Never a traceback, never exit status 4 (an internal error). CI runs 80 examples
of each test (about 10 s in all); ``-m slow`` runs 600.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import io
import json
import math
import os
import tempfile
from fractions import Fraction
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memopt.cli import main
from memopt.core.evaluate import evaluate
from memopt.core.result import Result, load_plan
from memopt.io import load_instance

DATA = os.path.join(os.path.dirname(__file__), "data")

TENSOR = {
    "name": "tiny", "units": {"size": "KiB", "time": "us"},
    "machine": {"budget": 100, "bandwidth": 4, "slow_capacity": 1000},
    "tasks": [
        {"id": "a", "time": 3, "size": 10},
        {"id": "b", "time": 2, "size": 4, "inputs": ["a"]},
        {"id": "c", "time": 5, "size": 1, "inputs": ["a", "b"], "workspace": 2, "recompute": False},
    ],
}
BUFFER = {
    "name": "buf", "machine": {"budget": 50, "bandwidth": 2.5},
    "tasks": [{"id": "u", "time": 1}, {"id": "v", "time": 2}, {"id": "w", "time": 3, "workspace": 1}],
    "edges": [{"from": "u", "to": "v", "size": 5}, {"from": "u", "to": "w", "size": 7},
              {"from": "v", "to": "w", "size": 2}],
}
GENERAL = {
    "name": "gen",
    "tasks": [{"id": "p", "time": 4, "size": 3}, {"id": "q", "time": 1, "inputs": ["p"]},
              {"id": "r", "time": 2, "inputs": ["p"]}],
    "data": [{"id": "x", "producer": "q", "consumers": ["r"], "size": 6},
             {"id": "y", "producer": "r", "consumers": [], "size": 1}],
}
# the plan of SPEC §4 for TENSOR: a offloaded while b runs, reloaded for c
PLAN = {"stages": [[{"compute": "a"}], [{"compute": "b"}, {"offload": "a"}], [{"free": "a"}],
                   [{"reload": "a"}], [{"compute": "c"}, {"free": "a"}, {"free": "b"}]]}


def _fixture(name: str) -> Any:
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


INSTANCES = {"tensor": TENSOR, "buffer": BUFFER, "general": GENERAL,
             "nodelink": _fixture("nodelink_checkmate.json"), "wfformat": _fixture("wfformat_v15.json")}

NASTY = [None, True, False, 0, -1, -7, 1.5, -0.0, 2**70, -(2**70), 2**63, 10**30, 1e20, 1e300, 9007199254740993.0,
         math.inf, -math.inf, math.nan, "", "x", "zz", "1e20", "1e400", "inf", ".nan", "-5", "Infinity",
         [], {}, [1, 2], {"a": 1}, [None], "é" * 5, "a" * 200, "compute a", {"compute": None},
         datetime.date(2024, 1, 1), b"\x00\xff", {3, 4}]

NUMBERS = st.one_of(st.integers(0, 2**80), st.integers(-5, 20), st.integers(0, 10**20).map(float),
                    st.integers(0, 10**25).map(lambda x: f"{x}e3"), st.floats(allow_nan=True, allow_infinity=True))


# ------------------------------------------------------------------ mutations
def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (sequence of keys/indices) to a value inside ``doc``."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


def _scalars(doc: Any) -> list[Any]:
    if isinstance(doc, dict):
        return [x for v in doc.values() for x in _scalars(v)]
    if isinstance(doc, list):
        return [x for v in doc for x in _scalars(v)]
    return [doc]


def _get(doc: Any, path: tuple) -> Any:
    for k in path:
        doc = doc[k]
    return doc


@st.composite
def mutated(draw, doc: Any) -> Any:
    """``doc`` with 1-2 structural mutations."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 2))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            return copy.deepcopy(draw(st.sampled_from(NASTY)))
        path = draw(st.sampled_from(paths))
        parent, key = _get(doc, path[:-1]), path[-1]
        op = draw(st.sampled_from(["delete", "nasty", "number", "number", "swap", "duplicate", "unknown-key",
                                   "wrap", "loop"]))
        if op == "number":  # a number that may well be right: huge, written as a float or a string
            parent[key] = draw(NUMBERS)
        elif op == "delete":
            del parent[key]
        elif op == "nasty":
            parent[key] = copy.deepcopy(draw(st.sampled_from(NASTY)))
        elif op == "swap":  # another value of the file: duplicate ids, unknown ids, cycles
            parent[key] = copy.deepcopy(draw(st.sampled_from(_scalars(doc) or NASTY)))
        elif op == "duplicate":
            if isinstance(parent, list):
                parent.insert(key, copy.deepcopy(parent[key]))
            else:
                parent[key] = [parent[key], parent[key]]
        elif op == "unknown-key":
            target = parent[key]
            if isinstance(target, dict):
                target["colour"] = "red"
            else:
                parent[key] = {"value": target}
        elif op == "wrap":
            parent[key] = [parent[key]]
        else:  # a YAML alias to an enclosing node (JSON cannot write it: YAML is used then); the last one
            parent[key] = parent
            break
    return doc


def _dump(doc: Any, fmt: str) -> tuple[bytes, str]:
    """The file's bytes and suffix (YAML when JSON cannot hold ``doc``: a loop)."""
    if fmt == "json":
        try:
            return json.dumps(doc, allow_nan=True, default=str).encode(), ".json"
        except ValueError:  # a circular reference
            pass
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode(), ".yaml"


@st.composite
def damaged(draw, text: bytes) -> bytes:
    """``text`` as is, truncated, with garbage bytes, or in another encoding."""
    op = draw(st.sampled_from(["none"] * 5 + ["truncate", "garbage", "encoding"]))
    if op == "truncate":
        return text[:draw(st.integers(0, max(0, len(text) - 1)))]
    if op == "garbage":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.binary(min_size=1, max_size=8)) + text[at:]
    if op == "encoding":
        enc = draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "utf-8-sig", "cp1252"]))
        s = text.decode().replace("a", "ä", 1)
        return s.encode(enc, errors="replace")
    return text


@st.composite
def instance_files(draw) -> tuple[bytes, str]:
    """(bytes, suffix) of a mutated instance file."""
    kind = draw(st.sampled_from(sorted(INSTANCES)))
    doc = INSTANCES[kind]
    if draw(st.integers(0, 5)) > 0:
        doc = draw(mutated(doc))
    fmt = "json" if kind in ("nodelink", "wfformat") else draw(st.sampled_from(["yaml", "json"]))
    text, suffix = _dump(doc, fmt)
    return draw(damaged(text)), suffix


@st.composite
def plan_files(draw) -> tuple[bytes, str]:
    doc = PLAN if draw(st.integers(0, 4)) == 0 else draw(mutated(PLAN))
    text, suffix = _dump(doc, draw(st.sampled_from(["yaml", "json"])))
    return draw(damaged(text)), suffix


# ----------------------------------------------------------------- running
def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def ends_well(rc: int, err: str, allowed: tuple[int, ...]) -> None:
    """No traceback, no internal error; an input error is ``memopt: error: ...`` with status 2."""
    assert "Traceback" not in err, err
    assert "internal error" not in err and rc != 4, err
    assert rc in allowed, (rc, err)
    if rc == 2:
        lines = err.rstrip("\n").split("\n")
        assert lines[0].startswith("memopt: error: "), err
        if len(lines) > 1:  # several problems of one instance: one indented line each
            assert lines[0].endswith("problem(s) in the instance:"), err
            assert all(ln.startswith("  ") and "\t" not in ln for ln in lines[1:]), err


def _write(d: str, name: str, content: bytes) -> str:
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.write(content)
    return path


def _loads(path: str):
    """The instance memopt read, or ``None`` when it is refused."""
    try:
        return load_instance(path)
    except Exception:  # noqa: BLE001 - a refused file is fine here; the CLI said why
        return None


def canonical(inst) -> tuple:
    """An instance up to the order of its records: tasks, data (producer, consumers, size), machine."""
    tasks = sorted((t.id, t.time, t.workspace, t.recompute) for t in inst.tasks)
    data = sorted((d.id, d.producer, tuple(sorted(set(d.consumers))), d.size) for d in inst.data)
    return tasks, data, inst.machine


def check_instance_commands(inst_file: tuple[bytes, str], solve_args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = _write(d, "inst" + inst_file[1], inst_file[0])
        rc, out, err = run(["info", path])
        ends_well(rc, err, (0, 2))
        inst = _loads(path)
        assert (rc == 0) == (inst is not None), err

        conv = os.path.join(d, "conv.yaml")
        rc, _, err = run(["convert", path, conv])
        ends_well(rc, err, (0, 2))
        if rc == 0:
            assert canonical(load_instance(conv)) == canonical(inst)

        plan = os.path.join(d, "plan.json")
        rc, out, err = run(["solve", path, "-t", "2", "-q", "-o", plan] + solve_args)
        ends_well(rc, err, (0, 1, 2, 3))
        if rc == 0:
            res = Result.load(plan)
            ev = evaluate(inst, load_plan(plan), budget=res.budget,
                          allow_recompute=res.recompute, allow_offload=res.offload)
            assert ev.valid, (ev.violation, out)
            assert math.isclose(float(Fraction(str(res.value))), float(ev.value(res.objective))), out
        if rc == 3:
            assert Result.load(plan).plan is None


def check_evaluate(inst_file: tuple[bytes, str], plan_file: tuple[bytes, str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        ipath = _write(d, "inst" + inst_file[1], inst_file[0])
        ppath = _write(d, "plan" + plan_file[1], plan_file[0])
        rc, out, err = run(["evaluate", ipath, ppath])
        ends_well(rc, err, (0, 1, 2))
        if rc in (0, 1):
            ev = evaluate(load_instance(ipath), load_plan(ppath))
            assert ev.valid == (rc == 0)
            assert ("peak" in out) == ev.valid, out  # no figures for an invalid plan
        rc, out, err = run(["solve", ipath, "-t", "2", "-q", "--warm-start", ppath, "-m", "greedy"])
        ends_well(rc, err, (0, 1, 2, 3))


SOLVE_ARGS = st.sampled_from([[], ["--objective", "time", "--recompute"], ["--objective", "time", "--offload",
                                                                          "--budget", "0.9x"]])
FAST = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
THOROUGH = settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(instance_files(), SOLVE_ARGS)
def test_mutated_instances_end_well(inst_file, solve_args):
    check_instance_commands(inst_file, solve_args)


@FAST
@given(st.just(_dump(TENSOR, "yaml")), plan_files())
def test_mutated_plans_end_well(inst_file, plan_file):
    check_evaluate(inst_file, plan_file)


@pytest.mark.slow
@THOROUGH
@given(instance_files(), SOLVE_ARGS)
def test_mutated_instances_end_well_thorough(inst_file, solve_args):
    check_instance_commands(inst_file, solve_args)


@pytest.mark.slow
@THOROUGH
@given(instance_files(), plan_files())
def test_mutated_plans_end_well_thorough(inst_file, plan_file):
    check_evaluate(inst_file, plan_file)
