"""Typed method options: each method declares its parameters as a frozen dataclass.

A method's catalog entry names a :class:`Params` subclass; ``-O key=value``
on the command line and keyword arguments of :func:`memopt.solve` are
converted and checked against it (:meth:`Params.parse`): an unknown key or
a value of the wrong kind is an input error that names the valid keys.
``memopt solve -m METHOD --help-options`` prints them (:meth:`Params.describe`).

Declare a field with :func:`option` to give it a help text::

    @dataclass(frozen=True)
    class MyParams(Params):
        width: int = option(16, "beam width")
        backend: Literal["cpsat", "highs"] = option("cpsat", "solver backend")

Supported types: ``bool``, ``int``, ``float``, ``str``, ``Literal[...]`` of
strings, and ``X | None`` of those. Strings are parsed exactly (an ``int``
never goes through a float; a ``float`` must be finite).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar

from memopt.core.errors import MemoptError

P = TypeVar("P", bound="Params")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def option(default: Any, help: str) -> Any:
    """A dataclass field with a default and a help text (shown by ``--help-options``)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Params:
    """Base class of method parameters (a frozen dataclass; no fields: the method takes no option)."""

    @classmethod
    def fields_info(cls) -> list[tuple[str, Any, Any, str]]:
        """(name, type, default, help) of every parameter."""
        hints = typing.get_type_hints(cls)
        return [(f.name, hints[f.name], f.default, f.metadata.get("help", ""))
                for f in dataclasses.fields(cls) if f.init]

    @classmethod
    def parse(cls: type[P], raw: Mapping[str, Any] | None, method: str = "") -> P:
        """Parameters from ``raw`` (strings from the command line, or Python values); input errors name the rule."""
        raw = dict(raw or {})
        info = {name: (tp, dflt) for name, tp, dflt, _ in cls.fields_info()}
        who = f"method {method!r}" if method else cls.__name__
        unknown = sorted(k for k in raw if k not in info)
        if unknown:
            valid = ", ".join(sorted(info)) or "none"
            raise MemoptError(f"{who}: unknown option(s) {', '.join(unknown)} (valid: {valid})")
        values = {}
        for key, val in raw.items():
            values[key] = convert(val, info[key][0], f"{who}: option {key}")
        try:
            return cls(**values)
        except MemoptError as e:  # a rule across values (a range, two options together), said by the class
            raise MemoptError(f"{who}: {e}") from None

    @classmethod
    def describe(cls) -> list[str]:
        """One line per parameter: ``name=DEFAULT  (type)  help``."""
        rows = []
        for name, tp, dflt, hlp in cls.fields_info():
            rows.append(f"{name}={_show(dflt)}  ({type_name(tp)})  {hlp}".rstrip())
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self: P, **changes: Any) -> P:
        """A copy with ``changes`` converted and checked like :meth:`parse`."""
        checked = type(self).parse(changes).to_dict()
        return dataclasses.replace(self, **{k: checked[k] for k in changes})


def _show(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _args(tp: Any) -> tuple[Any, ...]:
    return typing.get_args(tp)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in _args(tp) if a is not type(None)]
        if len(rest) == 1 and len(rest) < len(_args(tp)):
            return True, rest[0]
    return False, tp


def type_name(tp: Any) -> str:
    opt, base = _is_optional(tp)
    if typing.get_origin(base) is Literal:
        name = "|".join(str(a) for a in _args(base))
    else:
        name = getattr(base, "__name__", str(base))
    return name + (" or none" if opt else "")


def convert(value: Any, tp: Any, what: str) -> Any:
    """``value`` as an instance of ``tp``, parsed exactly; a :class:`MemoptError` naming ``what`` otherwise."""
    opt, base = _is_optional(tp)
    if value is None or (opt and isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
        if opt:
            return None
        raise MemoptError(f"{what}: a value is required ({type_name(tp)})")
    origin = typing.get_origin(base)
    if origin is Literal:
        choices = _args(base)
        s = value if not isinstance(value, str) else value.strip()
        for c in choices:
            if s == c or (isinstance(c, str) and isinstance(s, str) and s.lower() == c.lower()):
                return c
        raise MemoptError(f"{what}: {value!r} is not one of {', '.join(map(str, choices))}")
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise MemoptError(f"{what}: expected true or false, got {value!r}")
    if base is int:
        if isinstance(value, bool):
            raise MemoptError(f"{what}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        n = parse_exact(value)
        if n is None or n != int(n):
            raise MemoptError(f"{what}: expected an integer, got {value!r}")
        return int(n)
    if base is float:
        if isinstance(value, bool):
            raise MemoptError(f"{what}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            f = float(value)
        else:
            n = parse_exact(value)
            if n is None:
                raise MemoptError(f"{what}: expected a number, got {value!r}")
            f = float(n)
        if not math.isfinite(f):
            raise MemoptError(f"{what}: expected a finite number, got {value!r}")
        return f
    if base is str:
        if isinstance(value, str):
            return value
        raise MemoptError(f"{what}: expected text, got {value!r}")
    if isinstance(value, base):
        return value
    raise MemoptError(f"{what}: expected {type_name(tp)}, got {value!r}")


#: numbers beyond 10^4300 (or below 10^-4300) are refused: Python refuses to print integers of more digits,
#: and turning ``1e99999999`` into an integer would take the machine (memopt.core.files has the same limit)
MAX_EXPONENT = 4300


def parse_exact(value: Any) -> Decimal | None:
    """A finite decimal number from an int or a numeric string (``1e9``, ``0.25``), exactly; else ``None``.

    ``None`` too for a number whose exponent passes :data:`MAX_EXPONENT`.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            d = Decimal(value.strip().replace("_", ""))
        except InvalidOperation:
            return None
        return d if d.is_finite() and (d == 0 or abs(d.adjusted()) < MAX_EXPONENT) else None
    return None


__all__ = ["Params", "convert", "option", "parse_exact", "type_name"]
