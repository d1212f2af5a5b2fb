"""The catalog: every method memopt has, listed explicitly, with what it solves and its typed options.

A method is a function ``run(request, ctx) -> MethodOutput``
(:mod:`memopt.core.method`) with an entry here: its name, its parameters
(a :class:`~memopt.core.params.Params` dataclass), the objectives and
techniques it handles, whether it can prove optimality, and which
arithmetic its solver needs (for the pipeline's number check). **A new
formulation is one new module plus one line in** :data:`CATALOG` (see
docs/methods.md for a worked example).

Composite methods (``auto``...) call other methods through the catalog
object their context carries (``ctx.run(name, request, ...)``), never
through a global lookup. Plugins (e.g. a test's probe method) are added
explicitly with :meth:`Catalog.register`.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from memopt.core.errors import MemoptError
from memopt.core.incumbent import Incumbent
from memopt.core.method import Context, MethodOutput
from memopt.core.numbers import numbers_fit
from memopt.core.params import Params
from memopt.core.request import Request
from memopt.core.status import Objective, Status
from memopt.core.units import Units
from memopt.exact.downset_dp import DownsetParams, run_downset_dp
from memopt.exact.exhaustive import check_exhaustive, run_exhaustive
from memopt.exact.liu import check_liu, run_liu
from memopt.exact.series_parallel import check_series_parallel, run_series_parallel
from memopt.formulations.moccasin import MoccasinParams, check_moccasin, run_moccasin
from memopt.formulations.peak_cp import PeakCPParams, run_peak_cp
from memopt.formulations.peak_milp import PeakMILPParams, check_peak_milp, run_peak_milp
from memopt.formulations.stage.methods import (
    FixedStageParams,
    FreeStageParams,
    needs_bandwidth,
    run_checkmate,
    run_joint,
    run_poet,
    run_stage,
)
from memopt.heuristics.orders import BASELINE_DESCRIPTIONS, BASELINES, order_method, run_baseline
from memopt.heuristics.planner.method import PlannerParams, run_planner_method
from memopt.strategies.auto import AutoParams, run_auto
from memopt.strategies.auto_peak import AutoPeakParams, run_auto_peak
from memopt.strategies.auto_time import AutoTimeParams, check_auto_time, run_auto_time
from memopt.strategies.hierarchical.method import HierarchicalParams, check_hierarchical, run_hierarchical

Run = Callable[[Request, Context], MethodOutput]
NUMERIC = {"cpsat": "int64", "highs": "double", "cbc": "double"}


@dataclass(frozen=True)
class MethodEntry:
    """A method and what it can solve.

    ``numbers``: the arithmetic of its solver — ``"int64"`` (CP-SAT),
    ``"backend"`` (that of its ``backend`` option: CP-SAT int64, HiGHS and
    CBC doubles) or ``None`` (Python integers: any size).
    """

    name: str
    run: Run
    params: type[Params] = Params
    objectives: frozenset[str] = frozenset({"peak"})
    pure: bool = True        # scheduling only (no recompute, no offload)
    recompute: bool = False  # can plan recomputation
    offload: bool = False    # can plan offloading
    both: bool | None = None  # recompute and offload together (default: recompute and offload)
    exact: bool = False      # can prove optimality
    family: str = "heuristic"  # heuristic | exact | cp | milp | composite
    description: str = ""
    requires: tuple[str, ...] = ()  # importable modules needed
    check: Callable[[Request], str | None] | None = None  # extra refusal reason
    numbers: str | None = None

    def refuse(self, req: Request) -> str | None:
        """Why this method cannot solve ``req`` (``None``: it can)."""
        if str(req.objective) not in self.objectives:
            return f"method {self.name!r} does not handle objective {str(req.objective)!r}"
        if req.pure and not self.pure:
            return f"method {self.name!r} needs --recompute or --offload"
        both = self.both if self.both is not None else (self.recompute and self.offload)
        if req.recompute and req.offload and not both:
            return f"method {self.name!r} cannot combine recomputation and offloading"
        if req.recompute and not self.recompute:
            return f"method {self.name!r} does not plan recomputation"
        if req.offload and not self.offload:
            return f"method {self.name!r} does not plan offloading"
        for mod in self.requires:
            if importlib.util.find_spec(mod) is None:
                return f"method {self.name!r} needs the Python package {mod!r}"
        if self.check is not None:
            return self.check(req)
        return None

    def numeric(self, backend: str | None) -> str | None:
        """The arithmetic the method's solver needs with this ``backend`` (``None``: exact Python integers)."""
        if self.numbers == "backend":
            return NUMERIC.get(backend or "cpsat", "int64")
        return self.numbers


def entry(name: str, run: Run, *, objectives: Iterable[str] = ("peak",), **info: Any) -> MethodEntry:
    """A catalog entry; the description defaults to the first line of ``run``'s docstring."""
    if not info.get("description") and run.__doc__:
        info["description"] = run.__doc__.strip().splitlines()[0]
    return MethodEntry(name=name, run=run, objectives=frozenset(objectives), **info)


class Catalog:
    """Methods by name, and the one way to run one (:meth:`run`, :meth:`execute`)."""

    def __init__(self, entries: Iterable[MethodEntry]):
        self._entries: dict[str, MethodEntry] = {}
        for e in entries:
            self.register(e)

    def register(self, e: MethodEntry) -> None:
        """Add a method (a plugin); a name is registered once."""
        if e.name in self._entries and self._entries[e.name] is not e:
            raise ValueError(f"method {e.name!r} is in the catalog already")
        self._entries[e.name] = e

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def __getitem__(self, name: str) -> MethodEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise MemoptError(f"unknown method {name!r}; known: {', '.join(sorted(self._entries))}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self._entries)

    def get(self, name: str) -> MethodEntry | None:
        return self._entries.get(name)

    def entries(self) -> dict[str, MethodEntry]:
        return dict(self._entries)

    def for_request(self, req: Request, *, exact_only: bool = False) -> list[str]:
        """Names of the (non-composite) methods able to solve ``req``."""
        return sorted(n for n, m in self._entries.items()
                      if m.refuse(req) is None and (m.exact or not exact_only) and m.family != "composite")

    def fits(self, name: str, req: Request, backend: str | None = None) -> bool:
        """Whether ``name`` handles ``req`` and its numbers fit its solver (composites ask before calling)."""
        e = self._entries.get(name)
        return e is not None and e.refuse(req) is None and numbers_fit(req, e.numeric(backend))

    # -------------------------------------------------------------- runs
    def run(self, name: str, req: Request, ctx: Context, **params: Any) -> MethodOutput:
        """Run ``name`` on ``req`` for a composite: its options checked, its own incumbent for another request."""
        e = self[name]
        why = e.refuse(req)
        if why:
            raise MemoptError(why)
        p = e.params.parse(params, name)
        if ctx.deadline.stopped:  # interrupted or at the memory limit: start nothing new
            return MethodOutput(message=f"{name}: not run ({ctx.deadline.stop.reason})")
        if req is not ctx.incumbent.request:
            ctx = ctx.child(incumbent=Incumbent(req, ctx.deadline, level=logging.DEBUG,
                                                formatter=Units.of(req.instance).formatter(str(req.objective))))
        return self.execute(e, req, ctx.child(params=p, name=name), p)

    @staticmethod
    def execute(e: MethodEntry, req: Request, ctx: Context, params: Params) -> MethodOutput:
        """Run a checked method and fold what it returns into the incumbent.

        The returned output carries the incumbent's best plan and bound, and
        the method's claims checked against them: an ``optimal`` plan proves
        its value as a bound, ``infeasible`` records the proof.
        """
        if ctx.params is not params or ctx.name != e.name:
            ctx = ctx.child(params=params, name=e.name)
        inc = ctx.incumbent
        before, inc.method = inc.method, e.name
        try:
            out = e.run(req, ctx)
        finally:
            inc.method = before
        who = out.method or e.name
        if out.status == Status.INFEASIBLE:
            q = "peak" if req.objective == Objective.PEAK else "makespan"
            inc.prove_infeasible(out.message or who, out.bound if q == "peak" else None)
        else:
            if out.plan is not None and out.plan is not inc.plan:
                inc.offer(out.plan, who)
            if out.bound is not None:
                inc.prove(out.bound, who)
            if out.status == Status.OPTIMAL and out.plan is not None:
                value = inc.value if out.plan is inc.plan else req.value(req.evaluate(out.plan))
                inc.prove(value, f"{who} (optimal)")
        out.stats = {**ctx.stats, **out.stats}
        out.own, out.plan, out.bound = out.plan, inc.plan, inc.bound
        return out


_PEAK_TIME = ("peak", "time")

CATALOG = Catalog([
    # baselines and the planner (heuristics)
    *(entry(n, order_method(n, fn), objectives=_PEAK_TIME, description=BASELINE_DESCRIPTIONS[n])
      for n, fn in BASELINES.items()),
    entry("baseline", run_baseline, objectives=_PEAK_TIME),
    entry("planner", run_planner_method, params=PlannerParams, objectives=_PEAK_TIME, recompute=True, offload=True,
          both=True),
    # exact algorithms for the peak
    entry("liu", run_liu, family="exact", exact=True, check=check_liu),
    entry("series-parallel", run_series_parallel, family="exact", exact=True, check=check_series_parallel),
    entry("exhaustive", run_exhaustive, family="exact", exact=True, check=check_exhaustive),
    entry("downset-dp", run_downset_dp, params=DownsetParams, family="exact", exact=True),
    # CP-SAT and MILP formulations
    entry("peak-cp", run_peak_cp, params=PeakCPParams, family="cp", exact=True, requires=("ortools",),
          numbers="backend"),
    entry("peak-milp", run_peak_milp, params=PeakMILPParams, family="milp", exact=True, check=check_peak_milp,
          numbers="backend"),
    entry("checkmate", run_checkmate, params=FixedStageParams, objectives=_PEAK_TIME, pure=False, recompute=True,
          family="milp", requires=("ortools",), numbers="backend"),
    entry("poet", run_poet, params=FixedStageParams, objectives=_PEAK_TIME, pure=False, recompute=True,
          offload=True, both=True, family="milp", requires=("ortools",), check=needs_bandwidth, numbers="backend"),
    entry("stage", run_stage, params=FreeStageParams, objectives=_PEAK_TIME, exact=True, family="milp",
          requires=("ortools",), numbers="backend"),
    entry("joint", run_joint, params=FreeStageParams, objectives=_PEAK_TIME, recompute=True, offload=True,
          both=True, family="milp", requires=("ortools",), check=needs_bandwidth, numbers="backend"),
    entry("moccasin", run_moccasin, params=MoccasinParams, objectives=("time",), recompute=True, exact=True,
          family="cp", requires=("ortools",), check=check_moccasin, numbers="int64"),
    # composite strategies
    entry("auto", run_auto, params=AutoParams, objectives=_PEAK_TIME, recompute=True, offload=True, both=True,
          exact=True, family="composite"),
    entry("auto-peak", run_auto_peak, params=AutoPeakParams, family="composite", exact=True,
          description="reduction + polynomial cases + exact search, best plan found when time runs out"),
    entry("auto-time", run_auto_time, params=AutoTimeParams, objectives=_PEAK_TIME, recompute=True, offload=True,
          both=True, exact=True, family="composite", check=check_auto_time,
          description="fit the budget: a schedule that fits, else the planner + a warm-started model"),
    entry("hierarchical", run_hierarchical, params=HierarchicalParams, objectives=("time",), pure=False,
          recompute=True, offload=True, both=True, family="composite", requires=("ortools",),
          check=check_hierarchical, numbers="int64"),
])
"""Every method of memopt (``memopt solve --list-methods``)."""


__all__ = ["CATALOG", "Catalog", "MethodEntry", "entry"]
