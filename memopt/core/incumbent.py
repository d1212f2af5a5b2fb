"""The incumbent of a run: the best plan any method offered, the best proven bound, and their history.

Every method offers the plans it finds (:meth:`Incumbent.offer`) and the
lower bounds it proves (:meth:`Incumbent.prove`) to one incumbent per
request. The incumbent

- evaluates each offered plan **once**, with the request (the evaluator is
  the truth: the value kept is the evaluator's); an invalid plan is a bug
  of the method that offered it and raises :class:`InvalidPlanError`;
- keeps the best valid plan, the best bound, and what produced each;
- records the time to the first plan and every improvement
  (:class:`Improvement`: seconds, value, bound, source) — the run's
  trajectory;
- logs each improvement on the ``memopt.progress`` logger, and calls the
  listeners (a progress printer, a composite method waiting for a plan).

It is thread-safe: CP-SAT calls back from its own threads.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from memopt.core.deadline import Deadline
from memopt.core.evaluate import Evaluation
from memopt.core.plan import Plan
from memopt.core.request import Request

log = logging.getLogger("memopt.progress")


class InvalidPlanError(RuntimeError):
    """A method offered a plan the evaluator rejects: a bug in memopt, never a user mistake."""


@dataclass(frozen=True)
class Improvement:
    """One step of the trajectory: at ``seconds``, the best value and bound, and who improved which."""

    seconds: float
    value: int | float | None
    bound: int | float | None
    source: str


def relative_gap(value: float | None, bound: float | None) -> float | None:
    """(value − bound) / value, the relative optimality gap (0 when optimal; ``None`` without both)."""
    if value is None or bound is None:
        return None
    if value == 0:
        return 0.0
    return max(0.0, (value - bound) / value)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


class Incumbent:
    """The best evaluated plan and the best proven lower bound of one request."""

    def __init__(self, request: Request, deadline: Deadline, *, formatter: Callable[[float], str] | None = None,
                 level: int = logging.INFO):
        """``level``: how improvements are logged (a composite's sub-problem logs at DEBUG: its values are
        of another request, and the progress line is the run's)."""
        self.request = request
        self.level = level
        self.deadline = deadline
        self.plan: Plan | None = None
        self.evaluation: Evaluation | None = None
        self.value: int | float | None = None
        self.source: str | None = None
        self.bound: int | float | None = None
        self.bound_source: str | None = None
        self.infeasible: str | None = None  # the proof that no plan exists, in words
        self.infeasible_bound: tuple[str, int | float] | None = None  # (quantity, its lower bound) that shows it
        self.first_plan_seconds: float | None = None
        self.trajectory: list[Improvement] = []
        self.offers = 0
        self.method = ""  # the method running now (for progress)
        self._listeners: list[Callable[[Incumbent], None]] = []
        self._lock = threading.RLock()
        self._fmt = formatter or (lambda x: f"{x:,}" if isinstance(x, int) else f"{x:,.6g}")

    # ------------------------------------------------------------ offers
    def offer(self, plan: Plan | None, source: str, evaluation: Evaluation | None = None) -> bool:
        """Evaluate ``plan`` and keep it if it is better; True when it was kept.

        ``evaluation``: the request's own evaluation of this plan, when the
        caller has it already (it is not evaluated twice).
        """
        if plan is None:
            return False
        ev = evaluation if evaluation is not None else self.request.evaluate(plan)
        with self._lock:
            self.offers += 1
            if not ev.valid:
                raise InvalidPlanError(f"{source} offered an invalid plan for {self.request.instance.name}: "
                                       f"{ev.violation}")
            value = self.request.value(ev)
            if self.bound is not None and value < self.bound and not _close(value, self.bound):
                raise InvalidPlanError(f"{source}: a valid plan of value {value} is below the proven bound "
                                       f"{self.bound} ({self.bound_source}): that bound is wrong")
            if self.value is not None and not value < self.value:
                return False
            if self.value is not None and _close(value, self.value):
                return False
            self.plan, self.evaluation, self.value, self.source = plan, ev, value, source
            if self.first_plan_seconds is None:
                self.first_plan_seconds = self.deadline.elapsed()
            self._record(source)
            return True

    def prove(self, bound: int | float | None, source: str) -> bool:
        """A proven lower bound on the objective of every valid plan; True when it raised the bound."""
        if bound is None or (isinstance(bound, float) and not math.isfinite(bound)):
            return False
        with self._lock:
            if self.value is not None and bound > self.value and not _close(bound, self.value):
                raise InvalidPlanError(f"{source}: bound {bound} exceeds the value {self.value} of a valid plan "
                                       f"({self.source}): that bound is wrong")
            if self.bound is not None and bound <= self.bound:
                return False
            self.bound, self.bound_source = bound, source
            self._record(source)
            return True

    def prove_infeasible(self, why: str, bound: int | float | None = None, quantity: str = "peak") -> None:
        """No valid plan exists: ``why`` says what proves it; ``bound`` is the lower bound on ``quantity``
        (``peak`` or ``makespan``) that exceeds the request's limit, when one shows it."""
        with self._lock:
            if self.plan is not None:
                raise InvalidPlanError(f"proven infeasible ({why}) but a valid plan is known ({self.source})")
            self.infeasible = why
            if bound is not None:
                self.infeasible_bound = (quantity, bound)

    # ----------------------------------------------------------- queries
    @property
    def proven(self) -> bool:
        """The best plan meets the best bound: optimal."""
        return self.value is not None and self.bound is not None and (
            self.value <= self.bound or _close(self.value, self.bound))

    @property
    def gap(self) -> float | None:
        return relative_gap(self.value, self.bound)

    def meets(self, value: int | float) -> bool:
        """``value`` is at (or below) the best proven bound: no plan can do better."""
        return self.bound is not None and (value <= self.bound or _close(value, self.bound))

    def line(self) -> str:
        """One line of progress: elapsed, best value, bound, gap, method."""
        parts = [f"{self.deadline.elapsed():7.1f}s"]
        parts.append("no plan yet" if self.value is None else f"best {self._fmt(self.value)}")
        if self.bound is not None:
            parts.append(f"bound {self._fmt(self.bound)}")
        g = self.gap
        if g is not None:
            parts.append(f"gap {100 * g:.2f}%")
        if self.method:
            parts.append(self.method)
        return "  ".join(parts)

    def listen(self, fn: Callable[[Incumbent], None]) -> Callable[[], None]:
        """Call ``fn(self)`` at every improvement; returns a function that stops it."""
        with self._lock:
            self._listeners.append(fn)

        def stop() -> None:
            with self._lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return stop

    # ----------------------------------------------------------- helpers
    def _record(self, source: str) -> None:
        self.trajectory.append(Improvement(round(self.deadline.elapsed(), 4), self.value, self.bound, source))
        if log.isEnabledFor(self.level):
            log.log(self.level, "%s  (%s)", self.line(), source)
        for fn in list(self._listeners):
            fn(self)


__all__ = ["Improvement", "Incumbent", "InvalidPlanError", "relative_gap"]
