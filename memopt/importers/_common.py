"""Helpers shared by the importers: options, numbers, units.

Every importer collects the problems it finds in a list of
:class:`~memopt.errors.Problem` and raises them together, like
:func:`memopt.io.instance_from_dict` does for our own format.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from ..errors import MemoptError, Problem

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


def number(value: Any) -> float | int | None:
    """An int or a finite float from a number or a numeric string; else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            return None
        if not math.isfinite(f):
            return None
        try:
            return int(value)
        except ValueError:
            return f
    return None


def round_half_up(x: float) -> int:
    """Nearest integer, halves rounded up (Python's round() rounds halves to even)."""
    return int(math.floor(x + 0.5))


def to_time(value: Any, scale: float, problems: list[Problem], where: str, item: str, what: str) -> int:
    """A non-negative time, multiplied by ``scale`` and rounded to the nearest integer."""
    v = number(value)
    if v is None:
        problems.append(Problem(where, item, f"{what} must be a number, got {value!r}"))
        return 0
    if v < 0:
        problems.append(Problem(where, item, f"{what} must be >= 0, got {value!r}"))
        return 0
    if isinstance(v, int) and scale == 1:
        return v
    return round_half_up(v * scale)


def to_size(value: Any, divisor: int | float, problems: list[Problem], where: str, item: str, what: str) -> int:
    """A non-negative size divided by ``divisor`` and rounded *up*.

    Rounding up never under-estimates memory: a plan that fits the rounded
    sizes fits the true ones.
    """
    v = number(value)
    if v is None:
        problems.append(Problem(where, item, f"{what} must be a number, got {value!r}"))
        return 0
    if v < 0:
        problems.append(Problem(where, item, f"{what} must be >= 0, got {value!r}"))
        return 0
    if isinstance(v, int) and isinstance(divisor, int):
        return -(-v // divisor)
    return int(math.ceil(v / divisor))
