"""One description of a MILP: variables, linear rows, indicators, objective, hints (backend-neutral).

See :mod:`memopt.backends.linear` for how it is solved.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

BACKENDS = ("cpsat", "highs", "cbc")
INF = math.inf

Terms = Mapping[int, float] | Iterable[tuple[int, float]]


@dataclass
class LinearSolution:
    """A backend's answer. ``values[i]`` is the value of variable ``i``."""

    status: str  # optimal | feasible | infeasible | unknown
    values: list[float] | None
    objective: float | None
    bound: float | None
    seconds: float
    backend: str
    first_solution_seconds: float | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    def value(self, i: int) -> float:
        assert self.values is not None
        return self.values[i]

    def is_one(self, i: int) -> bool:
        return self.values is not None and self.values[i] > 0.5


class BuildStopped(Exception):
    """Raised while a model is being built when its ``deadline`` expires (the caller keeps its best plan)."""


#: how many variables and rows are added between two looks at the build deadline (a few ms of Python)
CHECK_EVERY = 8192


class LinearModel:
    """Variables, linear rows ``lo ≤ Σ a_i x_i ≤ hi``, indicators, objective, hints.

    Variables are integers (indices); build rows from ``(index, coef)`` pairs
    or ``{index: coef}``. Minimisation only (negate to maximise).
    """

    def __init__(self, name: str = "model"):
        self.name = name
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[bool] = []
        self.names: list[str] = []
        self.rows: list[tuple[list[int], list[float], float, float]] = []
        self.row_names: list[str | None] = []
        self.indicators: list[tuple[int, int, list[int], list[float], float, float]] = []
        self.objective: dict[int, float] = {}
        self.objective_constant: float = 0.0
        self.hint: dict[int, float] = {}
        self.cp_hooks: list[Callable[[Any, list[Any]], None]] = []
        self.infeasible_reason: str | None = None
        # a model of millions of rows takes a minute of Python to build: with a deadline (anything with an
        # ``expired()``: a memopt.core.deadline.Deadline), building stops with BuildStopped when it expires
        self.deadline: Any = None
        self._adds = 0

    def _tick(self) -> None:
        self._adds += 1
        if self._adds % CHECK_EVERY == 0 and self.deadline is not None and self.deadline.expired():
            raise BuildStopped(f"model {self.name}: the deadline expired while building it "
                               f"({self.num_vars} variables, {self.num_rows} rows so far)")

    # ---------------------------------------------------------- variables
    @property
    def num_vars(self) -> int:
        return len(self.lb)

    @property
    def num_rows(self) -> int:
        return len(self.rows) + len(self.indicators)

    def var(self, name: str, lb: float = 0, ub: float = 1, integer: bool = True) -> int:
        """A new variable; returns its index."""
        if lb > ub:
            raise ValueError(f"variable {name}: lb {lb} > ub {ub}")
        self._tick()
        self.lb.append(lb)
        self.ub.append(ub)
        self.integer.append(integer)
        self.names.append(name)
        return len(self.lb) - 1

    def binary(self, name: str) -> int:
        return self.var(name, 0, 1, True)

    def fix(self, i: int, value: float) -> None:
        """Fix variable ``i`` (used by preprocessing that proves its value)."""
        self.lb[i] = self.ub[i] = value

    # --------------------------------------------------------- constraints
    @staticmethod
    def _split(terms: Terms) -> tuple[list[int], list[float]]:
        items = terms.items() if isinstance(terms, Mapping) else terms
        acc: dict[int, float] = {}
        for i, a in items:
            acc[i] = acc.get(i, 0) + a
        idx = [i for i, a in acc.items() if a != 0]
        return idx, [acc[i] for i in idx]

    def add(self, terms: Terms, lo: float = -INF, hi: float = INF, name: str | None = None) -> int:
        """Add the row ``lo ≤ Σ a_i x_i ≤ hi``; returns its index."""
        idx, coef = self._split(terms)
        if not idx or lo > hi:
            # a constant row: either always true (dropped) or never (the model is infeasible)
            if lo > hi or not (lo <= 0 <= hi):
                self.infeasible_reason = f"row {name or len(self.rows)}: {lo} <= 0 <= {hi} fails"
            return -1
        self._tick()
        self.rows.append((idx, coef, lo, hi))
        self.row_names.append(name)
        return len(self.rows) - 1

    def add_le(self, terms: Terms, rhs: float, name: str | None = None) -> int:
        return self.add(terms, -INF, rhs, name)

    def add_ge(self, terms: Terms, rhs: float, name: str | None = None) -> int:
        return self.add(terms, rhs, INF, name)

    def add_eq(self, terms: Terms, rhs: float, name: str | None = None) -> int:
        return self.add(terms, rhs, rhs, name)

    def add_indicator(self, b: int, terms: Terms, lo: float = -INF, hi: float = INF) -> None:
        """``x_b = 1 ⇒ lo ≤ Σ a_i x_i ≤ hi`` (b binary)."""
        idx, coef = self._split(terms)
        if not idx or lo > hi:
            if lo > hi or not (lo <= 0 <= hi):
                self.add_le([(b, 1)], 0)  # the implied row can never hold: b must be 0
            return
        self._tick()
        self.indicators.append((b, 1, idx, coef, lo, hi))

    def add_cp_hook(self, hook: Callable[[Any, list[Any]], None]) -> None:
        """``hook(cp_model, cp_vars)`` adds CP-SAT-only constraints (redundant or equivalent)."""
        self.cp_hooks.append(hook)

    def minimize(self, terms: Terms, constant: float = 0.0) -> None:
        idx, coef = self._split(terms)
        self.objective = dict(zip(idx, coef))
        self.objective_constant = constant

    def set_hint(self, values: Mapping[int, float]) -> None:
        """A (partial) starting solution."""
        self.hint = dict(values)

    # ----------------------------------------------------------- helpers
    def activity_range(self, idx: Sequence[int], coef: Sequence[float]) -> tuple[float, float]:
        """Smallest and largest value of Σ a_i x_i over the variable bounds."""
        lo = hi = 0.0
        for i, a in zip(idx, coef):
            if a > 0:
                lo += a * self.lb[i]
                hi += a * self.ub[i]
            else:
                lo += a * self.ub[i]
                hi += a * self.lb[i]
        return lo, hi

    def linearized_rows(self) -> list[tuple[list[int], list[float], float, float]]:
        """The rows plus the big-M form of every indicator (for MILP backends)."""
        rows = list(self.rows)
        for b, _, idx, coef, lo, hi in self.indicators:
            amin, amax = self.activity_range(idx, coef)
            if hi < INF and amax > hi:
                # Σ a x ≤ hi + (amax − hi)(1 − b)  ⇔  Σ a x + (amax − hi) b ≤ amax
                m = amax - hi
                rows.append((idx + [b], list(coef) + [m], -INF, amax))
            if lo > -INF and amin < lo:
                # Σ a x ≥ lo − (lo − amin)(1 − b)  ⇔  Σ a x − (lo − amin) b ≥ amin
                m = lo - amin
                rows.append((idx + [b], list(coef) + [-m], amin, INF))
        return rows

    def check(self, values: Sequence[float], tol: float = 1e-6) -> list[str]:
        """Rows and indicators violated by ``values`` (for tests and debugging)."""
        bad = [self.infeasible_reason] if self.infeasible_reason else []
        for k, (idx, coef, lo, hi) in enumerate(self.rows):
            a = sum(c * values[i] for i, c in zip(idx, coef))
            if a < lo - tol or a > hi + tol:
                bad.append(f"row {self.row_names[k] or k}: {a} not in [{lo}, {hi}]")
        for b, _, idx, coef, lo, hi in self.indicators:
            if values[b] > 0.5:
                a = sum(c * values[i] for i, c in zip(idx, coef))
                if a < lo - tol or a > hi + tol:
                    bad.append(f"indicator on {self.names[b]}: {a} not in [{lo}, {hi}]")
        for i, x in enumerate(values):
            if x < self.lb[i] - tol or x > self.ub[i] + tol:
                bad.append(f"variable {self.names[i]}: {x} not in [{self.lb[i]}, {self.ub[i]}]")
        return bad


__all__ = ["BACKENDS", "CHECK_EVERY", "INF", "BuildStopped", "LinearModel", "LinearSolution", "Terms"]
