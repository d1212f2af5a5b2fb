"""What to solve: an instance, an objective and the techniques allowed (SPEC §3)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from memopt.core.evaluate import Evaluation, evaluate
from memopt.core.instance import Instance
from memopt.core.plan import Plan
from memopt.core.status import Objective


@dataclass(frozen=True)
class Request:
    """The instance, the objective and the allowed techniques; scheduling is always free.

    - ``objective="peak"``: minimise the peak; with ``recompute``/``offload``
      and ``max_makespan`` T, subject to makespan ≤ T (SPEC §3);
    - ``objective="time"``: minimise the makespan subject to peak ≤ ``budget``.

    Build one with :func:`memopt.make_request`, which checks every piece.
    """

    instance: Instance
    objective: Objective | str = Objective.PEAK
    budget: int | None = None
    max_makespan: int | float | Fraction | None = None
    recompute: bool = False
    offload: bool = False

    @property
    def pure(self) -> bool:
        """Scheduling only: each task once, no transfers."""
        return not self.recompute and not self.offload

    def evaluate(self, plan: Plan, trace: bool = False) -> Evaluation:
        """The evaluator, with this request's budget, limit and allowed techniques."""
        return evaluate(
            self.instance, plan, budget=self.budget, max_makespan=self.max_makespan,
            allow_recompute=self.recompute, allow_offload=self.offload, trace=trace,
            use_machine_budget=False,  # the request's budget is the whole truth (None: no budget)
        )

    def value(self, ev: Evaluation) -> int | float:
        """The objective's value of an evaluated plan."""
        return ev.value(str(self.objective))

    def kind(self) -> str:
        """The request in words: ``time, recompute+offload, budget 1000``."""
        tech = "+".join(t for t, on in (("recompute", self.recompute), ("offload", self.offload)) if on) or "pure"
        parts = [str(self.objective), tech]
        if self.budget is not None:
            parts.append(f"budget {self.budget}")
        if self.max_makespan is not None:
            parts.append(f"max makespan {self.max_makespan}")
        return ", ".join(parts)


__all__ = ["Request"]
