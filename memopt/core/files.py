"""Raw YAML and JSON files: read with a clear error, write stages one per line.

YAML is read with the C loader of PyYAML when it is present (about ten times
faster than the pure-Python one).

**Numbers are read exactly.** A float in a file (``1.0e+20`` in YAML,
``1e20`` in JSON) is kept as an :class:`ExactFloat`: a float that remembers
the text it was written as, so that :func:`file_number` reads ``12345678901234567891.0``
as that integer rather than the nearest double. :func:`file_number` and
:func:`file_id` are the one place where a value of a file becomes a number
or an id (instances and plans alike): booleans are not numbers, ``.inf`` and
``.nan`` are not finite, and an integral float above 2^53 whose text is lost
(a Python dict) is refused rather than trusted.
"""

from __future__ import annotations

import json
import math
import os
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from memopt.core.errors import MemoptError

try:  # the C loader/dumper are ~10x faster; fall back when libyaml is absent
    _BaseLoader = yaml.CSafeLoader
    _Dumper = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _BaseLoader = yaml.SafeLoader
    _Dumper = yaml.SafeDumper

FLOAT_EXACT_LIMIT = 2**53
"""Above this, consecutive integers are no longer all floats: an integral float may be a rounded integer."""

MAX_DIGITS = 4300
"""Longest number read (Python's own limit on converting text to int): ``1e999999999`` is refused, not built."""


# ------------------------------------------------------------ exact numbers
class ExactFloat(float):
    """A float read from a file, with ``text``: what the file wrote (its exact value)."""

    __slots__ = ("text",)

    def __new__(cls, value: float, text: str) -> ExactFloat:
        obj = super().__new__(cls, value)
        obj.text = text
        return obj

    def __reduce__(self) -> tuple:
        return (ExactFloat, (float(self), self.text))


def _keep_text(value: float, text: str) -> float:
    """``value`` as read, with its text."""
    return ExactFloat(value, text)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader, keeping the text of floats (:class:`ExactFloat`)."""


def _construct_float(loader: Any, node: yaml.ScalarNode) -> float:
    return _keep_text(loader.construct_yaml_float(node), node.value)


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def _json_float(text: str) -> float:
    """A JSON number with a fraction or exponent, or ``Infinity``/``NaN`` (Python's extension), with its text."""
    return _keep_text(float(text), text)


def _show(value: Any) -> str:
    """A value as the file wrote it (booleans as true/false, floats as their text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, ExactFloat):
        return value.text
    return repr(value)


def file_number(value: Any, what: str, kind: str = "an integer") -> Decimal | str:
    """The exact value of a number read from a file, or why it is not one: ``"<what> must be ..."``.

    Accepts ints, floats (through their text when the file gave it) and
    numeric strings (YAML reads ``1e9`` as a string). Refuses booleans,
    non-numbers, non-finite numbers (``.inf``, ``.nan``, ``Infinity``), an
    integral float above 2^53 that carries no text (it may be rounded), and
    numbers of more than :data:`MAX_DIGITS` digits. ``kind`` names what is
    expected in the messages. O(digits).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return f"{what} must be {kind}, got {_show(value)}"
    if isinstance(value, int):
        return Decimal(value)
    d = _text_decimal(value.text if isinstance(value, ExactFloat) else value) \
        if isinstance(value, (str, ExactFloat)) else None
    if d is None and isinstance(value, float) and math.isfinite(value):
        if value.is_integer() and abs(value) > FLOAT_EXACT_LIMIT:
            return (f"{what} is the float {value!r}, above 2^53 where floats are not exact; "
                    f"write it as an integer (e.g. {int(value)})")
        d = Decimal(repr(value))
    if d is None:
        if isinstance(value, float) or _non_finite_text(value):  # inf, nan, "Infinity"
            return f"{what} must be a finite number, got {_show(value)}"
        return f"{what} must be {kind}, got {_show(value)}"
    if d.adjusted() >= MAX_DIGITS:
        return f"{what} has more than {MAX_DIGITS} digits, got {_show(value)[:20]}..."
    return d


def _non_finite_text(text: str) -> bool:
    try:
        return not Decimal(text.strip()).is_finite()
    except InvalidOperation:
        return text.strip().lower() in (".inf", "+.inf", "-.inf", ".nan")


def _text_decimal(text: str) -> Decimal | None:
    """The decimal a text writes (``1e9``, ``1_000``), or ``None``; non-finite texts give ``None`` too."""
    try:
        d = Decimal(text.strip().replace("_", ""))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def file_integer(value: Any, what: str) -> int | str:
    """An exact integer >= 0 from a file (:func:`file_number`), or why not (``"<what> must be ..."``)."""
    if type(value) is int and value >= 0:  # the common case, kept fast for large files
        return value
    d = file_number(value, what)
    if isinstance(d, str):
        return d
    if d != d.to_integral_value():
        return f"{what} must be an integer, got {_show(value)}"
    if d < 0:
        return f"{what} must be >= 0, got {_show(value)}"
    return int(d)


def file_id(value: Any) -> str | None:
    """An id from a file: a string, or a finite number read as its string (``7.0`` is ``"7"``; SPEC §4).

    ``None`` for anything else (booleans, null, lists, ``.inf``, ``.nan``).
    """
    if type(value) is str:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, (int, str)):
        return str(value)
    d = file_number(value, "id")
    if isinstance(d, str):
        return None if not math.isfinite(value) else str(value)
    return str(int(d)) if d == d.to_integral_value() else str(value)


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
            raw = json.loads(text, parse_float=_json_float, parse_constant=_json_float)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise MemoptError(f"{path}: not valid JSON ({e})") from None
        except RecursionError:
            raise MemoptError(f"{path}: not valid JSON (nested too deeply)") from None
        except ValueError as e:  # e.g. an integer of more digits than Python converts
            raise MemoptError(f"{path}: not valid JSON ({str(e).split(':')[0]})") from None
    elif ext in (".yaml", ".yml"):
        try:
            raw = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as e:
            raise MemoptError(f"{path}: not valid YAML ({_short_yaml_error(e)})") from None
        except RecursionError:
            raise MemoptError(f"{path}: not valid YAML (nested too deeply)") from None
        except ValueError as e:  # e.g. an integer of more digits than Python converts
            raise MemoptError(f"{path}: not valid YAML ({str(e).split(':')[0]})") from None
    else:
        raise MemoptError(f"{path}: unknown file type {ext!r} (expected .yaml, .yml or .json)")
    if raw is None:
        raise MemoptError(f"{path}: the file is empty" if not text.strip() else f"{path}: the file holds no data")
    if b"&" in text and b"*" in text and _has_loop(raw):  # only YAML aliases can make a structure hold itself
        raise MemoptError(f"{path}: a YAML alias (*name) refers to a node that contains it; memopt files hold trees")
    return raw


def _has_loop(obj: Any) -> bool:
    """Whether a list or mapping contains itself (a YAML alias to an enclosing node). O(size)."""
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(obj, False)]
    while stack:
        x, leaving = stack.pop()
        if leaving:
            on_path.discard(id(x))
            continue
        if not isinstance(x, (list, dict)):
            continue
        if id(x) in on_path:
            return True
        on_path.add(id(x))
        stack.append((x, True))
        stack.extend((v, False) for v in (x.values() if isinstance(x, dict) else x))
    return False


def _short_yaml_error(e: yaml.YAMLError) -> str:
    """The YAML error on one line: where, then what."""
    mark = getattr(e, "problem_mark", None)
    prob = " ".join(str(getattr(e, "problem", None) or e).split())
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {prob}"
    return prob


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
_YamlDumper.add_representer(ExactFloat, _repr_float)


def dump_yaml(obj: Any) -> str:
    """YAML text for ``obj``: keys in insertion order, stages and tasks one per line."""
    return yaml.dump(obj, Dumper=_YamlDumper, sort_keys=False, width=10**9, allow_unicode=True)


def jsonable(obj: Any) -> Any:
    """``obj`` as JSON holds it: infinities as text, other values JSON has no type for (a YAML date, a set,
    bytes) as their text, mapping keys as text."""
    if isinstance(obj, dict):
        return {k if isinstance(k, (str, int, float, bool)) or k is None else str(k): jsonable(v)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and obj in (math.inf, -math.inf):
        return "inf" if obj > 0 else "-inf"
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return obj.isoformat() if hasattr(obj, "isoformat") else str(obj)



__all__ = ["FLOAT_EXACT_LIMIT", "ExactFloat", "Flow", "FlowDict", "dump_yaml", "file_id", "file_integer",
           "file_number", "jsonable", "read_raw", "write_raw"]
