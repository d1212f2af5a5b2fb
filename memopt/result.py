"""The answer of a solve: status, evaluated value, bound, plan (SPEC §3, §4)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import PlanFormatError
from .io import _Flow, read_raw, write_raw
from .plan import Plan

STATUSES = ("optimal", "feasible", "infeasible", "unknown")


@dataclass
class Result:
    """What :func:`memopt.solve` returns.

    ``value`` is the evaluator's objective of ``plan`` (never a solver's
    number); ``bound`` a proven lower bound on the optimum; ``status`` is
    ``optimal`` only when the optimum was proven (value == bound).
    """

    instance: str
    objective: str
    status: str
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
    evaluation: Any = field(default=None, repr=False, compare=False)

    @property
    def gap(self) -> float | None:
        """(value − bound) / value, the relative optimality gap; 0 when optimal."""
        if self.value is None or self.bound is None:
            return None
        if self.value == 0:
            return 0.0
        return max(0.0, (self.value - self.bound) / self.value)

    @property
    def overhead(self) -> float | None:
        ev = self.evaluation
        return None if ev is None else ev.overhead

    @property
    def feasible(self) -> bool:
        return self.plan is not None and self.status in ("optimal", "feasible")

    def summary(self) -> str:
        """One line: instance, method, status, value, bound, gap, seconds."""
        parts = [f"{self.instance}", f"{self.method}", f"{self.objective}", self.status]
        if self.value is not None:
            parts.append(f"value {_fmt(self.value)}")
        if self.bound is not None:
            parts.append(f"bound {_fmt(self.bound)}")
        if self.gap is not None and self.status != "optimal":
            parts.append(f"gap {100 * self.gap:.2f}%")
        if self.objective == "time" and self.peak is not None:
            parts.append(f"peak {self.peak}")
        if self.objective == "peak" and self.makespan is not None and (self.recompute or self.offload):
            parts.append(f"makespan {_fmt(self.makespan)}")
        if self.budget is not None:
            parts.append(f"budget {self.budget}")
        parts.append(f"{self.solve_seconds:.2f}s")
        line = " | ".join(parts)
        if self.message:
            line += f" ({self.message})"
        return line

    # ----------------------------------------------------------------- file
    def to_dict(self) -> dict[str, Any]:
        """The plan file of SPEC §4 (plus budget, gap and statistics)."""
        out: dict[str, Any] = {
            "instance": self.instance,
            "objective": self.objective,
            "status": self.status,
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
            out["max_makespan"] = self.max_makespan
        if self.recompute or self.offload:
            out["recompute"] = self.recompute
            out["offload"] = self.offload
        if self.gap is not None:
            out["gap"] = round(self.gap, 6)
        if self.message:
            out["message"] = self.message
        if self.stats:
            out["stats"] = {k: _plain(v) for k, v in self.stats.items()}
        out["stages"] = [_Flow(e.to_dict() for e in st) for st in self.plan.stages] if self.plan else []
        return out

    @classmethod
    def from_dict(cls, raw: Any, where: str = "<plan>") -> "Result":
        if not isinstance(raw, dict):
            raise PlanFormatError(f"{where}: a plan file is a mapping with a 'stages' list")
        if "stages" not in raw:
            raise PlanFormatError(f"{where}: no 'stages' list")
        status = raw.get("status", "unknown")
        if status not in STATUSES:
            raise PlanFormatError(f"{where}: status must be one of {', '.join(STATUSES)}, got {status!r}")
        plan = Plan.from_list(raw["stages"], where)
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
        )

    def save(self, path: str | os.PathLike) -> None:
        write_raw(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Result":
        return cls.from_dict(read_raw(path), os.fspath(path))


def load_plan(path: str | os.PathLike) -> Plan:
    """Read the stages of a plan file (a result file, or a bare list of stages)."""
    raw = read_raw(path)
    where = os.fspath(path)
    if isinstance(raw, list):
        return Plan.from_list(raw, where)
    if isinstance(raw, dict) and "stages" in raw:
        return Plan.from_list(raw["stages"], where)
    raise PlanFormatError(f"{where}: a plan file is a mapping with a 'stages' list (or a list of stages)")


def save_plan(plan: Plan, path: str | os.PathLike) -> None:
    """Write a bare plan (only ``stages``)."""
    write_raw({"stages": [_Flow(e.to_dict() for e in st) for st in plan.stages]}, path)


def _plain(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def _fmt(x: int | float) -> str:
    return str(x) if isinstance(x, int) else f"{x:.6g}"


__all__ = ["Result", "STATUSES", "load_plan", "save_plan"]
