"""Numbers with the instance's units: ``13.6 GiB``, ``92.6 ms`` (display only; files keep exact numbers).

An instance may say what its numbers mean (``units: {size: B, time: ns}``,
SPEC §4). Sizes are shown with binary prefixes (B, KiB, MiB, GiB, TiB) and
times in the largest unit of ns, µs, ms, s that keeps the number ≥ 1, to
four significant digits. Without units, numbers are shown exactly, with
thousands separators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

_SIZES = {"b": 1, "byte": 1, "bytes": 1, "kib": 2**10, "kb": 10**3, "mib": 2**20, "mb": 10**6, "gib": 2**30,
          "gb": 10**9, "tib": 2**40, "tb": 10**12}
_BINARY = [("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10), ("B", 1)]
_TIMES = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
_TIME_STEPS = [("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)]


def plain(x: int | float) -> str:
    """An exact-looking number: integers with thousands separators, others to 6 significant digits."""
    if isinstance(x, int):
        return f"{x:,}"
    if float(x).is_integer() and abs(x) < 2**53:
        return f"{int(x):,}"
    return f"{float(x):,.6g}"


def _four(x: float) -> str:
    """Four significant digits: enough to see a 0.1 % gap move (10.96 ms, not 11 ms)."""
    return f"{x:.4g}" if abs(x) < 1000 else f"{x:,.0f}"


def format_size(x: int | float, unit: str | None) -> str:
    """``x`` size units as ``13.6 GiB`` (exactly, when the unit is unknown)."""
    factor = _SIZES.get((unit or "").strip().lower())
    if factor is None:
        return plain(x) + (f" {unit}" if unit else "")
    b = float(x) * factor
    for name, f in _BINARY:
        if abs(b) >= f:
            return f"{_four(b / f)} {name}"
    return f"{plain(x)} {unit}"


def format_time(x: int | float, unit: str | None) -> str:
    """``x`` time units as ``92.6 ms`` (exactly, when the unit is unknown)."""
    factor = _TIMES.get((unit or "").strip())
    if factor is None:
        return plain(x) + (f" {unit}" if unit else "")
    s = float(x) * factor
    for name, f in _TIME_STEPS:
        if abs(s) >= f or f == 1e-9:
            return f"{_four(s / f)} {name}"
    return f"{plain(x)} {unit}"  # pragma: no cover


@dataclass(frozen=True)
class Units:
    """The size and time units of an instance (``None``: not given)."""

    size: str | None = None
    time: str | None = None

    @classmethod
    def of(cls, inst) -> Units:
        u = getattr(inst, "units", None) or {}
        return cls(u.get("size"), u.get("time"))

    def size_str(self, x: int | float) -> str:
        return format_size(x, self.size) if self.size else plain(x)

    def time_str(self, x: int | float) -> str:
        return format_time(x, self.time) if self.time else plain(x)

    def formatter(self, objective: str) -> Callable[[int | float], str]:
        """How to show values of ``objective`` (a peak is a size, a makespan a time)."""
        return self.size_str if objective == "peak" else self.time_str


__all__ = ["Units", "format_size", "format_time", "plain"]
