"""What a method receives and returns: :class:`Context` in, :class:`MethodOutput` out.

A *method* (a heuristic, an exact algorithm, a CP-SAT or MILP formulation,
a composite strategy) is a function ``run(request, ctx) -> MethodOutput``
with a catalog entry (:mod:`memopt.catalog`). The context carries

- ``params``: the method's typed parameters (:mod:`memopt.core.params`);
- ``deadline``: the one deadline of the run (:mod:`memopt.core.deadline`),
  which also expires on Ctrl-C and at the memory limit;
- ``incumbent``: where every plan found and every bound proven is offered
  (:mod:`memopt.core.incumbent`) — as soon as it is found, so that an
  interrupted run still has it;
- ``warm``: the warm starts, chosen in one place and computed once
  (:mod:`memopt.heuristics.warm`);
- ``catalog``: the methods a composite may call (never a global lookup);
- ``settings``: threads, seed, solver logs, the memory limit;
- ``stats``: the method's own details, returned in ``Result.stats``.

The returned :class:`MethodOutput` states what the method *proved*
(``optimal``: its plan is optimal for the problem; ``infeasible``: no plan
exists) and may carry its final plan and bound; the pipeline offers them
to the incumbent too, and decides the status from what is proven.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from memopt.core.deadline import Deadline
from memopt.core.incumbent import Incumbent
from memopt.core.interrupt import process_memory
from memopt.core.params import Params
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.status import Status

log = logging.getLogger("memopt")


@dataclass
class MethodOutput:
    """What a method returns (the incumbent already holds every plan it offered).

    ``status``: the method's claim — ``optimal`` (``plan`` is optimal for the
    problem), ``infeasible`` (no valid plan exists; ``message`` says why),
    ``feasible`` or ``unknown`` (nothing proven). ``bound``: a proven lower
    bound on the objective (``None``: none). ``method``: set by composites
    to the method that produced the answer. Once the catalog has run the
    method, ``plan`` is the incumbent's best and ``own`` the plan the method
    itself returned (a composite's step: its own answer, which another
    step's better plan may hide in ``plan``).
    """

    plan: Plan | None = None
    status: Status | str = Status.UNKNOWN
    bound: int | float | None = None
    message: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    method: str | None = None
    own: Plan | None = None


@dataclass(frozen=True)
class Settings:
    """Run-wide settings: solver threads, random seed, solver-internal logs, memory limit (bytes)."""

    threads: int = 2
    seed: int = 0
    solver_log: bool = False
    memory_limit: int | None = None


class WarmStartProvider(Protocol):
    given: Plan | None
    enabled: bool

    def get(self, req: Request, ctx: Context, order: list[int] | None = None,
            deadline: Deadline | None = None) -> tuple[Plan | None, str]: ...

    def orders(self, inst: Any, ctx: Context, limit: int = 5) -> list[tuple[str, list[int]]]: ...

    def remember_order(self, inst: Any, order: list[int]) -> None: ...

    def portfolio(self, req: Request) -> Any: ...

    def keep_portfolio(self, req: Request, result: Any) -> None: ...


class MethodRunner(Protocol):
    def run(self, name: str, req: Request, ctx: Context, **params: Any) -> MethodOutput: ...

    def fits(self, name: str, req: Request, backend: str | None = None) -> bool: ...

    def __getitem__(self, name: str) -> Any: ...


class Context:
    """Everything a method needs besides the request (module docstring)."""

    def __init__(self, params: Params, deadline: Deadline, incumbent: Incumbent, *,
                 settings: Settings | None = None, warm: WarmStartProvider | None = None,
                 catalog: MethodRunner | None = None, name: str = "", stats: dict[str, Any] | None = None):
        self.params = params
        self.deadline = deadline
        self.incumbent = incumbent
        self.settings = settings or Settings()
        self.warm = warm
        self.catalog = catalog
        self.name = name
        self.stats: dict[str, Any] = {} if stats is None else stats

    # ------------------------------------------------------ conveniences
    @property
    def threads(self) -> int:
        return self.settings.threads

    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def solver_log(self) -> bool:
        return self.settings.solver_log

    def memory_left(self) -> int | None:
        """Bytes the run may still take before its memory limit (``None``: no limit)."""
        if self.settings.memory_limit is None:
            return None
        return max(0, self.settings.memory_limit - process_memory())

    def offer(self, plan: Plan | None, source: str | None = None, evaluation: Any = None) -> bool:
        """Offer a plan of *this request* to the incumbent (``source``: defaults to the method's name)."""
        return self.incumbent.offer(plan, source or self.name, evaluation)

    def prove(self, bound: int | float | None, source: str | None = None) -> bool:
        """Offer a proven lower bound on the objective."""
        return self.incumbent.prove(bound, source or self.name)

    def note(self, message: str, *args: Any) -> None:
        """A line of the method's progress on the ``memopt`` logger (``--log``), with the run's clock."""
        log.info("[%s] " + message + " (at %.1f s)", self.name, *args, self.incumbent.deadline.elapsed())

    def warm_start(self, req: Request, order: list[int] | None = None,
                   deadline: Deadline | None = None) -> tuple[Plan | None, str]:
        """The valid plan that seeds a model, and where it comes from (``(None, why)`` when there is none).

        Chosen in one place (:mod:`memopt.heuristics.warm`) and computed once
        per order; offered to the incumbent when it is a plan of its request.
        """
        if self.warm is None:
            return None, "none"
        return self.warm.get(req, self, order, deadline)

    def best_known(self, req: Request) -> tuple[Plan | None, str]:
        """The best valid plan of ``req`` known so far — the incumbent's, else a plan the user gave — to hint a model.

        ``(None, "none")`` when warm starts are off (``warm_start=False``) or nothing is known yet.
        """
        if self.warm is None or not self.warm.enabled:
            return None, "none"
        if req is self.incumbent.request and self.incumbent.plan is not None:
            return self.incumbent.plan, f"incumbent ({self.incumbent.source})"
        if self.warm.given is not None:
            return self.warm.get(req, self)
        return None, "none"

    def child(self, *, params: Params | None = None, deadline: Deadline | None = None,
              incumbent: Incumbent | None = None, name: str | None = None) -> Context:
        """A context for a sub-step: the same settings, warm starts and catalog; its own stats."""
        return Context(params if params is not None else self.params, deadline or self.deadline,
                       incumbent or self.incumbent, settings=self.settings, warm=self.warm, catalog=self.catalog,
                       name=name or self.name)

    def run(self, method: str, req: Request, *, deadline: Deadline | None = None, share: float | None = None,
            cap: float = math.inf, **params: Any) -> MethodOutput:
        """Run another method through the catalog (composites), on ``deadline`` or a share of this one."""
        if self.catalog is None:
            raise RuntimeError(f"{self.name}: no catalog to run {method!r} with")
        if deadline is None:
            deadline = self.deadline if share is None else self.deadline.share(share, cap)
        sub = self.child(deadline=deadline, name=method)
        return self.catalog.run(method, req, sub, **params)


__all__ = ["Context", "MethodOutput", "MethodRunner", "Settings", "WarmStartProvider"]
