"""Objectives of a stage model (SPEC §3).

- ``time``: minimise the makespan Σ_t D[t] (stages without transfers:
  their compute time) subject to memory ≤ M;
- ``peak``: minimise P subject to memory ≤ P at every point (and ≤ M when
  a budget is given) and, with a limit T, makespan ≤ T.

Both are in the model's integer units (:class:`~.variables.Scale`).
"""

from __future__ import annotations

import math

from memopt.formulations.stage.constraints import add_durations
from memopt.formulations.stage.variables import CONST, StageVariables, add_row


def set_time_objective(V: StageVariables, upper: float | None = None) -> None:
    """Minimise the makespan; with ``upper`` (instance units), only plans at least as good."""
    terms = add_durations(V)
    const = sum(a for i, a in terms if i == CONST)
    V.lm.minimize([(i, a) for i, a in terms if i != CONST], constant=const)
    if upper is not None and V.cutoff_row:
        limit = V.scale.model_time(upper)
        if not V.scale.exact_time:  # rounded-up transfers: a plan's model time may exceed its real one
            limit += sum(1 for t in range(V.T) if t in V.D)
        add_row(V.lm, terms, hi=math.floor(limit + 1e-9), name="cutoff")


def set_peak_objective(V: StageVariables, peak: int, max_makespan: float | None) -> None:
    """Minimise the peak P, with the makespan at most ``max_makespan`` (instance units)."""
    terms = add_durations(V)
    if max_makespan is not None:
        limit = V.scale.model_time(max_makespan)
        # model durations are integers (≥ the true ones): floor keeps every plan within the limit
        add_row(V.lm, terms, hi=math.floor(limit + 1e-9), name="makespan")
    V.lm.minimize([(peak, 1)])


__all__ = ["set_time_objective", "set_peak_objective"]
