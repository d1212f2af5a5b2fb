"""The answer of a solve: status, evaluated value, bound, plan, statistics (SPEC §3, §4).

A :class:`Result` is what :func:`memopt.solve` returns and what ``memopt
solve`` writes (the plan file of SPEC §4, plus budget, gap, the method's
details under ``stats`` and the run's :class:`Statistics` under
``statistics``). :class:`Statistics` is typed: the time to the first plan,
every improvement (the trajectory), why the run stopped, its peak memory,
the model's size and the solver's status; :meth:`Statistics.write_csv`
writes the trajectory.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from fractions import Fraction
from typing import Any

from memopt.core.errors import PlanFormatError
from memopt.core.files import Flow, FlowDict, read_raw, write_raw
from memopt.core.incumbent import Improvement, relative_gap
from memopt.core.plan import Plan
from memopt.core.status import Status, StopReason
from memopt.core.units import Units

STATUSES = Status.values()


@dataclass
class Statistics:
    """What happened during a run, with real types (written under ``statistics`` in a result file)."""

    seconds: float = 0.0
    first_plan_seconds: float | None = None
    improvements: list[Improvement] = field(default_factory=list)
    stop_reason: StopReason = StopReason.DONE
    time_limit: float | None = None
    peak_memory: int | None = None      # bytes held by the process (and its solver children), sampled
    memory_limit: int | None = None
    plans_offered: int = 0
    model_vars: int | None = None
    model_rows: int | None = None
    solver_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stop_reason"] = str(self.stop_reason)
        out["improvements"] = [FlowDict(asdict(i)) for i in self.improvements]
        return out

    @classmethod
    def from_dict(cls, raw: Any) -> Statistics:
        if not isinstance(raw, dict):
            return cls()
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        imps = known.pop("improvements", None) or []
        st = cls(**known)
        st.improvements = [Improvement(**i) for i in imps if isinstance(i, dict)]
        try:
            st.stop_reason = StopReason(st.stop_reason)
        except ValueError:
            st.stop_reason = StopReason.DONE
        return st

    def write_csv(self, path: str | os.PathLike) -> None:
        """The trajectory as CSV: seconds, value, bound, source (one row per improvement)."""
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["seconds", "value", "bound", "source"])
            for i in self.improvements:
                w.writerow([i.seconds, "" if i.value is None else i.value, "" if i.bound is None else i.bound,
                            i.source])


@dataclass
class Result:
    """What :func:`memopt.solve` returns.

    ``value`` is the evaluator's objective of ``plan`` (never a solver's
    number); ``bound`` a proven lower bound on the optimum; ``status`` is
    ``optimal`` only when the optimum was proven (value == bound).
    """

    instance: str
    objective: str
    status: Status | str
    method: str
    value: int | float | None = None
    bound: int | float | None = None
    peak: int | None = None
    makespan: int | float | None = None
    solve_seconds: float = 0.0
    plan: Plan | None = None
    budget: int | None = None
    max_makespan: float | None = None
    recompute: bool = False
    offload: bool = False
    message: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    statistics: Statistics = field(default_factory=Statistics)
    evaluation: Any = field(default=None, repr=False, compare=False)
    units: Units = field(default_factory=Units, repr=False, compare=False)  # for display only

    @property
    def gap(self) -> float | None:
        """(value − bound) / value, the relative optimality gap; 0 when optimal."""
        return relative_gap(self.value, self.bound)

    @property
    def overhead(self) -> float | None:
        ev = self.evaluation
        return None if ev is None else ev.overhead

    @property
    def feasible(self) -> bool:
        return self.plan is not None and self.status in (Status.OPTIMAL, Status.FEASIBLE, Status.INTERRUPTED)

    def summary(self) -> str:
        """One line: instance, method, objective, status, value, bound, gap, what bounds it, time used of the limit.

        Values carry the instance's units (``590 MiB``, ``92.6 ms``) when it has any.
        """
        u = self.units
        fmt = u.formatter(str(self.objective))
        parts = [f"{self.instance}", f"{self.method}", f"{self.objective}", str(self.status)]
        if self.value is not None:
            v = f"value {fmt(self.value)}"
            ov = self.overhead
            if self.objective == "time" and ov is not None and math.isfinite(ov):
                v += f" (overhead {100 * ov:.2f}%)"
            parts.append(v)
        if self.bound is not None:
            parts.append(f"bound {fmt(self.bound)}")
        if self.gap is not None and self.status != Status.OPTIMAL:
            parts.append(f"gap {100 * self.gap:.2f}%")
        if self.objective == "time" and self.peak is not None:
            parts.append(f"peak {u.size_str(self.peak)}")
        if self.objective == "peak" and self.makespan is not None and (self.recompute or self.offload):
            parts.append(f"makespan {u.time_str(self.makespan)}")
        if self.budget is not None:
            parts.append(f"budget {u.size_str(self.budget)}")
        if self.max_makespan is not None:
            parts.append(f"max makespan {u.time_str(self.max_makespan)}")
        limit = self.statistics.time_limit
        parts.append(f"{self.solve_seconds:.2f}s" + (f" of {limit:g}s" if limit else " (no time limit)"))
        line = " | ".join(parts)
        if self.message:
            line += f" ({self.message})"
        return line

    # ----------------------------------------------------------------- file
    def to_dict(self) -> dict[str, Any]:
        """The plan file of SPEC §4 (plus budget, gap and statistics)."""
        out: dict[str, Any] = {
            "instance": self.instance,
            "objective": str(self.objective),
            "status": str(self.status),
            "value": self.value,
            "bound": self.bound,
            "peak": self.peak,
            "makespan": self.makespan,
            "method": self.method,
            "solve_seconds": round(self.solve_seconds, 4),
        }
        if self.budget is not None:
            out["budget"] = self.budget
        if self.max_makespan is not None:
            out["max_makespan"] = _plain(self.max_makespan)
        if self.recompute or self.offload:
            out["recompute"] = self.recompute
            out["offload"] = self.offload
        if self.gap is not None:
            out["gap"] = round(self.gap, 6)
        if self.message:
            out["message"] = self.message
        if self.stats:
            out["stats"] = {k: _plain(v) for k, v in self.stats.items()}
        out["statistics"] = _plain(self.statistics.to_dict())
        if self.plan is not None:
            out["stages"] = [Flow(e.to_dict() for e in st) for st in self.plan.stages]
        return out

    @classmethod
    def from_dict(cls, raw: Any, where: str = "<plan>") -> Result:
        if not isinstance(raw, dict):
            raise PlanFormatError(f"{where}: a result file is a mapping (with a 'stages' list when it has a plan)")
        if "stages" not in raw and raw.get("status") != "infeasible":
            raise PlanFormatError(f"{where}: no 'stages' list")
        status = raw.get("status", "unknown")
        if status not in STATUSES:
            raise PlanFormatError(f"{where}: status must be one of {', '.join(STATUSES)}, got {status!r}")
        status = Status(status)
        plan = Plan.from_list(raw["stages"], where) if "stages" in raw else None
        return cls(
            instance=str(raw.get("instance", "")),
            objective=str(raw.get("objective", "peak")),
            status=status,
            method=str(raw.get("method", "")),
            value=raw.get("value"),
            bound=raw.get("bound"),
            peak=raw.get("peak"),
            makespan=raw.get("makespan"),
            solve_seconds=float(raw.get("solve_seconds", 0.0) or 0.0),
            plan=plan,
            budget=raw.get("budget"),
            max_makespan=raw.get("max_makespan"),
            recompute=bool(raw.get("recompute", False)),
            offload=bool(raw.get("offload", False)),
            message=raw.get("message"),
            stats=dict(raw.get("stats") or {}),
            statistics=Statistics.from_dict(raw.get("statistics")),
        )

    def save(self, path: str | os.PathLike) -> None:
        write_raw(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Result:
        return cls.from_dict(read_raw(path), os.fspath(path))


def load_plan(path: str | os.PathLike) -> Plan:
    """Read the stages of a plan file (a result file, or a bare list of stages)."""
    raw = read_raw(path)
    where = os.fspath(path)
    if isinstance(raw, list):
        return Plan.from_list(raw, where)
    if isinstance(raw, dict) and "stages" in raw:
        return Plan.from_list(raw["stages"], where)
    if isinstance(raw, dict) and raw.get("status") in (Status.INFEASIBLE, Status.UNKNOWN):
        raise PlanFormatError(f"{where}: holds no plan (status {raw['status']}: {raw.get('message') or 'no plan'})")
    raise PlanFormatError(f"{where}: a plan file is a mapping with a 'stages' list (or a list of stages)")


def save_plan(plan: Plan, path: str | os.PathLike) -> None:
    """Write a bare plan (only ``stages``)."""
    write_raw({"stages": [Flow(e.to_dict() for e in st) for st in plan.stages]}, path)


def _plain(v: Any) -> Any:
    """A value YAML and JSON can hold: enums as their text, exact fractions as text, inf as text."""
    if isinstance(v, Enum):
        return str(v.value)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, Fraction):
        return int(v) if v.denominator == 1 else str(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return (FlowDict if isinstance(v, FlowDict) else dict)({str(k): _plain(x) for k, x in v.items()})
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def _fmt(x: int | float) -> str:
    return str(x) if isinstance(x, int) else f"{x:.6g}"


__all__ = ["STATUSES", "Result", "Statistics", "load_plan", "save_plan"]
