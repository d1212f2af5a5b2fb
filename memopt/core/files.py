"""Raw YAML and JSON files: read with a clear error, write stages one per line.

YAML is read with the C loader of PyYAML when it is present (about ten times
faster than the pure-Python one).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import yaml

from memopt.core.errors import MemoptError

try:  # the C loader/dumper are ~10x faster; fall back when libyaml is absent
    _Loader = yaml.CSafeLoader
    _Dumper = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader
    _Dumper = yaml.SafeDumper

# ---------------------------------------------------------------- raw files
def read_raw(path: str | os.PathLike) -> Any:
    """Parse a YAML or JSON file into Python objects, with a clear error."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MemoptError(f"{path}: no such file")
    if os.path.isdir(path):
        raise MemoptError(f"{path}: is a directory, not a file")
    ext = os.path.splitext(path)[1].lower()
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise MemoptError(f"{path}: cannot read ({e.strerror})") from None
    if ext == ".json":
        try:
            return json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise MemoptError(f"{path}: not valid JSON ({e})") from None
    if ext in (".yaml", ".yml"):
        try:
            return yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as e:
            raise MemoptError(f"{path}: not valid YAML ({_short_yaml_error(e)})") from None
    raise MemoptError(f"{path}: unknown file type {ext!r} (expected .yaml, .yml or .json)")


def _short_yaml_error(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    prob = getattr(e, "problem", None) or str(e)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {prob}"
    return str(prob)


def write_raw(obj: Any, path: str | os.PathLike) -> None:
    """Write Python objects as YAML or JSON, chosen by the file's extension."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    if ext == ".json":
        with open(path, "w") as f:
            json.dump(jsonable(obj), f, indent=1)
            f.write("\n")
    elif ext in (".yaml", ".yml"):
        with open(path, "w") as f:
            f.write(dump_yaml(obj))
    else:
        raise MemoptError(f"{path}: unknown file type {ext!r} (expected .yaml, .yml or .json)")


class Flow(list):
    """A list written in YAML flow style (one stage per line)."""


class FlowDict(dict):
    """A mapping written in YAML flow style (one task per line)."""


class _YamlDumper(_Dumper):  # type: ignore[misc, valid-type]
    pass


def _repr_flow_list(dumper: yaml.SafeDumper, data: Flow) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


def _repr_flow_dict(dumper: yaml.SafeDumper, data: FlowDict) -> yaml.Node:
    node = yaml.MappingNode("tag:yaml.org,2002:map", [], flow_style=True)
    for k, v in data.items():
        node.value.append((dumper.represent_data(k), dumper.represent_data(v)))
    return node


def _repr_float(dumper: yaml.SafeDumper, data: float) -> yaml.Node:
    if data != data or data in (math.inf, -math.inf):
        return dumper.represent_float(data)
    if data == int(data) and abs(data) < 1e15:
        return dumper.represent_int(int(data))
    return dumper.represent_scalar("tag:yaml.org,2002:float", repr(data))


_YamlDumper.add_representer(Flow, _repr_flow_list)
_YamlDumper.add_representer(FlowDict, _repr_flow_dict)
_YamlDumper.add_representer(float, _repr_float)


def dump_yaml(obj: Any) -> str:
    """YAML text for ``obj``: keys in insertion order, stages and tasks one per line."""
    return yaml.dump(obj, Dumper=_YamlDumper, sort_keys=False, width=10**9, allow_unicode=True)


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and obj in (math.inf, -math.inf):
        return "inf" if obj > 0 else "-inf"
    return obj



__all__ = ["Flow", "FlowDict", "dump_yaml", "jsonable", "read_raw", "write_raw"]
