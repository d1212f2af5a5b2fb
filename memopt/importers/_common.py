"""Helpers shared by the importers: options, numbers, units.

Every importer collects the problems it finds in a list of
:class:`~memopt.core.errors.Problem` and raises them together, like
:func:`memopt.io.instance_from_dict` does for our own format.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from memopt.core.errors import MemoptError, Problem
from memopt.core.files import file_number

# size units: bytes per unit
SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "KB": 1000, "kB": 1000, "KiB": 1024,
    "MB": 1000**2, "MiB": 1024**2,
    "GB": 1000**3, "GiB": 1024**3,
}
# time units: units per second
TIME_UNITS: dict[str, int] = {"s": 1, "ms": 1000, "us": 1000**2, "ns": 1000**3}


def check_options(where: str, options: Mapping[str, Any], known: Iterable[str], fmt: str) -> None:
    """Refuse unknown importer options with the list of known ones."""
    known = sorted(known)
    extra = sorted(k for k in options if k not in known)
    if extra:
        raise MemoptError(f"{where}: unknown option(s) {', '.join(map(repr, extra))} for the {fmt} importer "
                          f"(known: {', '.join(known)})")


def choice(where: str, name: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    if value not in allowed:
        raise MemoptError(f"{where}: option {name}={value!r} must be one of {', '.join(allowed)}")
    return value


def number(value: Any) -> Fraction | None:
    """The exact value of a finite number, or of a numeric string, as written (1.1 is 11/10); else None.

    Read by :func:`memopt.core.files.file_number`, as memopt's own files are.
    """
    d = file_number(value, "value", "a number")
    return None if isinstance(d, str) else Fraction(d)


def exact(x: int | float | Fraction) -> Fraction:
    """The decimal value of a number as written (1.1 is 11/10, not the nearest binary float)."""
    return Fraction(x) if isinstance(x, (int, Fraction)) else Fraction(repr(x))


def round_half_up(x: float | Fraction) -> int:
    """Nearest integer, halves rounded up (Python's round() rounds halves to even)."""
    return int(math.floor(x + Fraction(1, 2))) if isinstance(x, Fraction) else int(math.floor(x + 0.5))


def to_time(value: Any, scale: int | float, problems: list[Problem], where: str, item: str, what: str) -> int:
    """A non-negative time, multiplied by ``scale`` and rounded to the nearest integer (halves up).

    Computed exactly on the decimal values, so 1.0005 s in ms is 1000.5 -> 1001.
    """
    v = number(value)
    if v is None:
        problems.append(Problem(where, item, f"{what} must be a number, got {value!r}"))
        return 0
    if v < 0:
        problems.append(Problem(where, item, f"{what} must be >= 0, got {value!r}"))
        return 0
    return round_half_up(v * exact(scale))


def to_size(value: Any, scale: int | float, problems: list[Problem], where: str, item: str, what: str,
            divisor: int = 1) -> int:
    """A non-negative size, times ``scale`` over ``divisor``, rounded *up*.

    Rounding up never under-estimates memory: a plan that fits the rounded
    sizes fits the true ones. Computed exactly on the decimal values.
    """
    v = number(value)
    if v is None:
        problems.append(Problem(where, item, f"{what} must be a number, got {value!r}"))
        return 0
    if v < 0:
        problems.append(Problem(where, item, f"{what} must be >= 0, got {value!r}"))
        return 0
    return int(math.ceil(v * exact(scale) / divisor))
