"""Solve a stage model: warm start, lazy memory rows, time limit, best plan.

:func:`solve_stage_model` runs the loop

1. hint the model with the best valid plan known (the warm start first);
2. solve (CP-SAT, HiGHS or CBC) within the remaining time;
3. extract the plan and replay it in the evaluator: if the memory after a
   recomputation breaks the budget in some stages (their detailed rows are
   not in the model yet), add those stages' rows and go to 1; else the plan
   is valid and, when the solver proved it optimal, it is optimal for the
   whole model. With CP-SAT the same check runs on every improving solution
   and stops the round at the first that breaks a stage (*early stop*):
   proving the relaxation optimal first is wasted when its optimum breaks
   a stage anyway (random-layered-n100, order given, 0.8x: 9.6–10.4 s to
   the proven optimum instead of 14–15 s).

Every model solved is a relaxation of the complete model (it lacks some
stages' detailed rows), so every bound it proves is a bound of the complete
model; the loop ends with a valid plan or with the warm start.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memopt.backends.linear import solve_linear
from memopt.core.deadline import Deadline
from memopt.core.evaluate import Evaluation
from memopt.core.plan import Plan
from memopt.formulations.stage.cuts import add_chain_cuts
from memopt.formulations.stage.model import StageModel
from memopt.formulations.stage.plans import HintError, extract_plan, plan_hint, prune_plan

#: CP-SAT workers for stage models: LP-heavy workers prove stage models far
#: faster than CP-SAT's default portfolio at 1-2 workers (measured in
#: benchmarks/budget.py); more workers keep the default portfolio.
CPSAT_WORKERS = {1: ["max_lp"], 2: ["max_lp", "pseudo_costs"]}


#: share of the time left (and most seconds) each round may spend on chain cuts (:mod:`.cuts`), and the
#: largest model (rows) they are tried on: on layered-n200 (155k rows) all cut rounds take 3.3 s and let
#: CBC prove the optimum; MobileNetV2's LP (378k rows) does not finish in 6 s, lost to the search
CUT_SHARE, CUT_SECONDS, CUT_MAX_ROWS = 0.1, 10.0, 250_000
#: LP-guided detail (see solve_stage_model): random-layered-n100, order given, 0.8x, seeds 0-4: one round,
#: 4.5-5.2 s to the proven optimum, instead of 2-7 rounds and 5.0-28.5 s; at 0.9x 1.4-3.6 s instead of 2.0-2.4
LP_DETAIL = 0.3


@dataclass
class StageOutcome:
    """The result of :func:`solve_stage_model` (values in instance units)."""

    plan: Plan | None
    value: float | None
    model_status: str  # optimal | feasible | infeasible | unknown (within the model)
    model_bound: float | None
    stats: dict[str, Any] = field(default_factory=dict)


def cpsat_params(threads: int) -> dict[str, Any]:
    """CP-SAT parameters for stage models.

    Presolve is off: the models are built already reduced (windows, cutoff,
    constants), and CP-SAT's presolve took a third of the time to the proven
    optimum on random-layered-n100 (measured: 4.6 s with, 3.0–3.3 s without).
    """
    subs = CPSAT_WORKERS.get(max(1, int(threads)))
    out: dict[str, Any] = {"cp_model_presolve": False}
    if subs:
        out["subsolvers"] = subs
    return out


def solve_stage_model(sm: StageModel, deadline: Deadline, *, threads: int = 2, seed: int = 0,
                      backend: str = "cpsat", warm: Plan | None = None, max_rounds: int = 50,
                      cutoff: float | None = None, early_stop: bool = True, cuts: bool = True,
                      lp_detail: float = LP_DETAIL, log: bool = False, memory_limit: int | None = None,
                      on_plan: Callable[[Plan, Evaluation], None] | None = None) -> StageOutcome:
    """Solve ``sm`` within ``deadline``, starting from the valid plan ``warm``.

    ``on_plan(plan, evaluation)`` is called with every valid plan found (with
    CP-SAT, at every improving solution that needs no missing row), so the
    caller's incumbent has it even if the run is stopped.

    ``cutoff``: the value the model was built to beat (``build_stage_model(upper=)``);
    a model without any plan then proves that no plan of its space is
    better than the warm start. ``cuts``: before each round, tighten the
    model with recomputation-chain cuts (:mod:`.cuts`; fixed orders only).
    ``lp_detail``: then add the detailed memory rows of every stage where
    the cut LP's optimum recomputes a task (of nonzero time) by more than
    this (0: only stages found broken, one round each).
    """
    req = sm.request
    stats: dict[str, Any] = dict(sm.stats)
    stats["backend"] = backend
    best: Plan | None = None
    best_val = math.inf
    if warm is not None:
        ev = req.evaluate(warm)
        if ev.valid:
            best, best_val = warm, req.value(ev)
    hint_from: Plan | None = best
    bound = None
    status = "unknown"
    rounds = 0
    solve_seconds = 0.0
    hint_note = None
    params = cpsat_params(threads) if backend == "cpsat" else {}
    while rounds < max_rounds:
        left = deadline.remaining()
        if left < 0.05:
            break
        rounds += 1
        sm.lm.hint = {}
        if hint_from is not None:
            try:
                sm.lm.set_hint(dict(enumerate(plan_hint(sm, hint_from))))
                hint_note = "complete"
            except HintError as e:
                hint_note = f"not used: {e}"
        # leave time to read the solution back and check the plan (a few µs per variable and row)
        # (CBC: PuLP writes and CBC reads an LP file, an order of magnitude slower)
        # (HiGHS: its root node checks the interrupt callbacks rarely; measured 3-16 s past the deadline on
        # models of ~550k variables + rows, hence a larger margin)
        per = {"cbc": 4e-5, "highs": 2e-5}.get(backend, 7e-6)
        margin = 0.3 + per * (sm.lm.num_vars + sm.lm.num_rows)
        if not math.isinf(left) and left <= margin:
            break
        if cuts and not sm.layout.free and sm.V.R and sm.lm.num_rows <= CUT_MAX_ROWS:
            cs = add_chain_cuts(sm.V, deadline=deadline.share(CUT_SHARE, CUT_SECONDS))
            stats["chain_cuts"] = stats.get("chain_cuts", 0) + cs["chain_cuts"]
            stats["cut_seconds"] = round(stats.get("cut_seconds", 0.0) + cs.get("cut_seconds", 0.0), 3)
            if cs.get("lp_unfinished"):
                stats["cut_lp_unfinished"] = True
            if "lp_bound" in cs:
                b = sm.to_real(cs["lp_bound"])
                bound = b if bound is None else max(bound, b)
            if lp_detail > 0 and "lp_values" in cs:
                # detail now the stages where the LP recomputes: the next solutions put their
                # recomputations there, and each stage found broken later costs a whole round
                vals, time_ = cs["lp_values"], req.instance.time
                new = sorted({t for (t, u), i in sm.V.R.items() if vals[i] > lp_detail and time_[u] > 0}
                             - sm.V.detailed)
                if new:
                    sm.detail(new)
                    stats.setdefault("lp_detailed", []).extend(new)
            left = deadline.remaining()
            if not math.isinf(left) and left <= margin:
                break
        stop = (lambda values: _breaks_undetailed(sm, values, on_plan)) if early_stop else None
        sol = solve_linear(sm.lm, backend, deadline=deadline.capped(left - margin) if not math.isinf(left)
                           else deadline, threads=threads, seed=seed, warm_start=bool(sm.lm.hint),
                           log=log, params=params, stop_if=stop, memory_limit=memory_limit)
        if sol.stats.get("stopped"):
            stats["early_stops"] = stats.get("early_stops", 0) + 1
        solve_seconds += sol.seconds
        stats.setdefault("round_seconds", []).append(round(sol.seconds, 3))
        if sol.bound is not None:
            b = sm.to_real(sol.bound)
            bound = b if bound is None else max(bound, b)
        if sol.status == "infeasible":
            # a relaxation of the complete model has no solution: neither has the model
            if cutoff is not None and best is not None and best_val <= cutoff + 1e-9:
                status, bound = "optimal", best_val  # nothing in the model beats the warm start
            else:
                status = "infeasible"
            break
        if sol.stats.get("rejected_solution"):
            stats["rejected_solution"] = f"{backend}: {sol.stats['rejected_solution']}"
        if sol.values is None:
            break
        raw = extract_plan(sm, sol.values)
        ev = req.evaluate(raw, trace=True)
        limit = _limit(sm, sol)
        bad = sorted({p.stage - 1 for p in ev.memory if p.memory > limit})
        if bad:
            added = sm.detail(bad)
            stats.setdefault("lazy_stages", []).extend(bad)
            if not added:  # cannot happen unless the model under-counts memory: a bug
                raise RuntimeError(f"stage model: the plan breaks the memory of already detailed stages {bad}")
            if ev.valid and req.value(ev) < best_val:  # over the model's peak but within the budget
                best, best_val = raw, req.value(ev)
                if on_plan is not None:
                    on_plan(best, ev)
            continue
        if not ev.valid:
            raise RuntimeError(f"stage model: extracted an invalid plan: {ev.violation}")
        plan = prune_plan(req.instance, raw)
        ev2 = req.evaluate(plan)
        if not ev2.valid or req.value(ev2) > req.value(ev):
            plan, ev2 = raw, ev
        val = req.value(ev2)
        if val < best_val - 1e-9:
            best, best_val = plan, val
            if on_plan is not None:
                on_plan(best, ev2)
        status = "optimal" if sol.status == "optimal" else "feasible"
        break
    if status == "optimal" and best is not None:
        bound = sm.to_real(sol.objective) if bound is None else bound
    if bound is not None and cutoff is not None:
        # the model holds only plans at least as good as the cutoff: its bounds speak of those;
        # the model's optimum is at least min(cutoff, bound)
        bound = min(bound, cutoff)
    stats.update({"rounds": rounds, "solver_seconds": round(solve_seconds, 3), "hint": hint_note,
                  "detailed_stages": len(sm.V.detailed), "vars": sm.lm.num_vars, "rows": sm.lm.num_rows})
    if status == "unknown" and best is not None:
        status = "feasible"
    return StageOutcome(best, None if best is None else best_val, status, bound, stats)


def _limit(sm: StageModel, sol) -> float:
    """The memory every point of the extracted plan must respect to match the model's solution."""
    return _limit_of(sm, sol.values)


def _limit_of(sm: StageModel, values) -> float:
    req = sm.request
    if req.objective == "time":
        return req.budget
    p = values[sm.peak_var] * sm.scale.mem
    return p if req.budget is None else min(p, req.budget)


def _breaks_undetailed(sm: StageModel, values, on_plan: Callable[[Plan, Evaluation], None] | None = None) -> bool:
    """Whether the plan of a solution breaks the memory in a stage whose detailed rows are missing.

    A solution whose plan is valid is handed to ``on_plan`` (the caller's incumbent).
    """
    plan = extract_plan(sm, values)
    ev = sm.request.evaluate(plan, trace=True)
    if ev.valid and on_plan is not None:
        on_plan(plan, ev)
    limit = _limit_of(sm, values)
    return any(p.memory > limit and p.stage - 1 not in sm.V.detailed for p in ev.memory)


__all__ = ["StageOutcome", "solve_stage_model", "cpsat_params", "CPSAT_WORKERS"]
