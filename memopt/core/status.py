"""The words of an answer, as str-valued enums: status, objective, why a run stopped.

Each member equals its string (``Status.OPTIMAL == "optimal"``), so files,
CSV rows and comparisons with plain strings are unchanged.
"""

from __future__ import annotations

from enum import Enum


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)


class Status(_StrEnum):
    """What is known of the returned plan (SPEC §3; ``interrupted`` added by docs/spec.md).

    - ``optimal``: the plan's value equals a proven lower bound;
    - ``feasible``: a valid plan, not proven optimal;
    - ``infeasible``: proven that no valid plan exists (no plan returned);
    - ``unknown``: no plan found and nothing proven;
    - ``interrupted``: the run was stopped by a signal (Ctrl-C, SIGTERM); the
      best plan found so far, if any, is returned with its bound.
    """

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNKNOWN = "unknown"
    INTERRUPTED = "interrupted"


class Objective(_StrEnum):
    """``peak``: minimise the peak memory; ``time``: minimise the makespan under a budget (SPEC §3)."""

    PEAK = "peak"
    TIME = "time"


class StopReason(_StrEnum):
    """Why a run ended: it finished, or a limit or a signal stopped it."""

    DONE = "done"
    TIME_LIMIT = "time limit"
    MEMORY_LIMIT = "memory limit"
    INTERRUPTED = "interrupted"


#: exit statuses of ``memopt solve`` (docs/spec.md §6): a plan, nothing found, a usage or input error,
#: proven infeasible, an internal error (a bug), interrupted.
EXIT_PLAN, EXIT_UNKNOWN, EXIT_USAGE, EXIT_INFEASIBLE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


__all__ = ["EXIT_BUG", "EXIT_INFEASIBLE", "EXIT_INTERRUPTED", "EXIT_PLAN", "EXIT_UNKNOWN", "EXIT_USAGE", "Objective",
           "Status", "StopReason"]
