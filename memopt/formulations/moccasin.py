"""Moccasin: the retention-interval CP model of rematerialization (Bartan et al., ICML 2023).

(The model itself is built in :mod:`memopt.formulations.moccasin_model`.)

A very different encoding from the stage models: instead of a time-indexed
grid (Checkmate's O(n²) booleans), every task v has C_v optional
*computations* k = 1..C_v, each a point s_{v,k} on a line of T = Σ_v C_v
positions, and every datum d of v keeps, for each computation, a
*retention interval* [s_{v,k}, e_{d,k}] during which that copy of d is in
fast memory. With a_{v,k} the presence of computation k:

- a_{v,1} = 1 (every task runs), a_{v,k+1} ⇒ a_{v,k}; a task whose
  ``recompute`` is false (or every task, without ``--recompute``) has C_v = 1;
- computations take distinct positions (``NoOverlap`` of unit intervals);
- the copies of a datum do not overlap: a_{v,k+1} ⇒ e_{d,k} < s_{v,k+1};
- **precedence through the intervals**: computation k of v needs every
  input d (of producer u) held by some present copy j:
  s_{u,j} < s_{v,k} ≤ e_{d,j};
- **memory**: ``Cumulative`` of the retention intervals [s, e + 1) with
  demand s(d) and of the unit intervals [s, s + 1) with demand w(v), all
  optional on a_{v,k}, capacity M;
- every result keeps one copy to the last position T − 1;
- minimise Σ_v c(v) · Σ_{k ≥ 2} a_{v,k} (plus the constant Σ_v c(v)).

**Meaning in SPEC terms.** Sorting the present computations by position
gives a plan of one compute per stage; the copy (d, k) is freed right after
the last compute at a position ≤ e_{d,k} (never, for a result's last copy).
At a compute at position t the memory of SPEC §2 — resident data + new
outputs + w(v) — is exactly the cumulative's demand at t (the copies with
s ≤ t ≤ e, and the workspace of the compute at t); positions without a
compute carry no more than the compute before them. So the model and the
evaluator agree, and the plan is what the evaluator judges.

**Order.** Option ``order``: ``free`` (default; the positions decide the
order), ``fixed`` (first computations in the warm start's order) or
``given`` (in the instance's own order made topological: the protocol of
the Checkmate and Moccasin papers; no fusion, the warm start follows it).
A fixed order makes the model a restriction (never ``optimal`` unless
nothing beats Σ c(v)).

**What it supports.** Objective ``time`` with recomputation, or pure
scheduling (C_v = 1). No offloading (Moccasin has none: refused).

**Exactness.** The model allows at most C_v computations of v. An optimal
plan needs no more than U_v *useful* computations (a computation none of
whose copies is read later, nor kept as a result, can be dropped), where
U_v = max(1, Σ_{d ∈ out(v)} ([d result] + Σ_{w ∈ C(d)} U_w)), U_v = 1 for
a task that cannot rerun (with the order of first computations fixed, one
more: the first computation stays even when useless, so
U_v = 1 + Σ_{d ∈ out(v)} (…) for a task that can rerun). When C_v ≥ U_v for
every v the model is exact: its
optimum is the optimum and its bound is a bound. Otherwise it solves a
restriction: its plans are valid, but its optimum is only the best plan
with ≤ C_v computations per task, so the status stays ``feasible`` and the
model's bound is not reported (``stats["restricted_optimal"]`` says when the
restriction was solved to optimality). By default C_v = min(U_v, 2)
(``intervals=`` changes the 2, as in the paper's experiments).

Size: Σ C_v computations, as many retention intervals per output, and
Σ_{edges} C_v·C_u precedence literals — O(C²·(n + e)), no time index.
Sizes and times are divided by their gcds first (:mod:`memopt.transforms.scaling`,
option ``reduce``) and private links from sources are fused when that is
exact (:mod:`memopt.transforms.fusion`, option ``fuse``: ``exact`` by default,
``off`` by default when a warm-start plan is given — it can only hint the
unfused model —, ``chains`` to fuse chains heuristically — the model is
then not exact —, ``off``).

**Hint.** A warm start sets every variable (computations, retention ends
and lengths, the copy each computation reads, the copy each result keeps,
the count of computations): CP-SAT checks a complete hint at once, where a
partial one is completed by search (on a 300-task layered graph the first
solution came 4.8 s later with the partial hint of earlier versions).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from memopt.backends.cpsat import run_cpsat, status_name
from memopt.backends.model import BuildStopped
from memopt.core.method import Context, MethodOutput
from memopt.core.params import Params, option
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.status import Objective, Status
from memopt.formulations.moccasin_model import DEFAULT_INTERVALS, moccasin_model
from memopt.heuristics.orders import best_baseline
from memopt.transforms.base import Identity
from memopt.transforms.fusion import fuse_request
from memopt.transforms.scaling import scale

OFFER_SECONDS = 1.0  # how often an improving solution is turned into a plan for the incumbent during a search
LNS_MIN_COMPUTATIONS = 400
"""From this many computations (Σ C_v) on, option ``search=auto`` runs CP-SAT's LNS workers only."""
SOLVE_RESERVE_SHARE = 0.4
"""What a CP-SAT solve of the model costs outside its own time limit — loading the model, then past the
limit the end of presolve and the response, turning a solution into a plan, freeing the model — as a share of
the Python time that built it (a measure of the model's size on this machine at this load): on the 20,005-task
training graph about 3 s (CP-SAT 1.2-2 s past its limit, 0.7-0.8 s to free the model) after 7.6-14.7 s of
building. CP-SAT gets the time left minus this reserve; with less than twice the reserve left it is not run
(there, on a 60 s limit, it got the last 6 s, was still in presolve at its limit, and the run took 61.8 s)."""


def _warm_plans(req: Request, freq: Request, fz, ctx: Context,
                order: list[int] | None = None) -> tuple[Plan | None, Plan | None]:
    """(warm start for ``req``, hint for the fused request ``freq``).

    The best known plan of ``req`` (the user's, or the incumbent's) is the
    warm start, and the hint when nothing was fused; otherwise the planner
    runs on the fused request (on ``order``, tasks of ``freq``, when the
    order is fixed: the hint must follow it) and its plan is expanded back.
    """
    known, _ = ctx.best_known(req)
    if known is not None and (order is None or fz.fused == 0):
        if order is None or [req.instance.task_index[t] for t in known.compute_order()] == order:
            return known, (known if fz.fused == 0 else None)
    hint, _ = ctx.warm_start(freq, order)
    return (None if hint is None else fz.expand(hint)), hint


def check_moccasin(req: Request) -> str | None:
    if req.offload:
        return "method 'moccasin' has no offloading (Moccasin retains data in fast memory only)"
    if req.objective != Objective.TIME:
        return "method 'moccasin' minimises the time under a budget (objective 'time')"
    return None


@dataclass(frozen=True)
class MoccasinParams(Params):
    order: Literal["free", "fixed", "given"] = option("free", "free (the positions decide), fixed (the warm "
                                                              "start's order) or given (the instance's order: the "
                                                              "literature's protocol)")
    fuse: Literal["exact", "chains", "off"] | None = option(None, "fuse private links: exact, chains (heuristic: "
                                                                  "the model is then not exact) or off (default: "
                                                                  "exact, off with a known plan or order=given)")
    reduce: bool = option(True, "divide sizes and times by their gcds first (exact)")
    intervals: int = option(DEFAULT_INTERVALS, "at most this many computations per task (C_v = min(U_v, this))")
    floor: int | None = option(None, "a lower bound on the makespan known to the caller: the search stops when "
                                     "a plan reaches it (the method then claims no bound of its own)")
    search: Literal["auto", "lns", "complete"] = option("auto", "CP-SAT workers: lns (improve only), complete, "
                                                                "or auto (lns on large hinted models)")


def run_moccasin(req: Request, ctx: Context) -> MethodOutput:
    """Moccasin's retention-interval CP-SAT model (intervals, cumulative memory; ICML 2023)."""
    from ortools.sat.python import cp_model

    p: MoccasinParams = ctx.params
    inst = req.instance
    t0 = time.perf_counter()
    stats = ctx.stats
    if ctx.deadline.expired():  # nothing to start (the warm start alone takes seconds on large graphs)
        stats["not_built"] = "no time left"
        return MethodOutput(message="moccasin: no time left to build its model")
    how = p.order
    # the given order names every task; a known plan is a hint only on the unfused tasks, and a complete
    # hint is worth more than the few tasks exact fusion removes
    default = "off" if ctx.best_known(req)[0] is not None else "exact"
    mode = (p.fuse or default) if how != "given" else "off"
    # fusion then gcd scaling: one transform, plans and values mapped back through both
    fz = fuse_request(req, mode)
    freq = fz.request
    sc = scale(freq) if p.reduce else Identity(freq)
    tf = fz.then(sc)
    sreq = tf.request
    gs, gt = getattr(sc, "size_factor", 1), getattr(sc, "time_factor", 1)
    stats.update(size_factor=gs, time_factor=gt, fused=fz.fused, fusion_exact=fz.exact)
    given = None
    if how == "given":  # the literature's protocol: the order of first computations is the input's
        given = list(freq.instance.topological_order)
    warm, warm_fused = _warm_plans(req, freq, fz, ctx, order=given)
    warm_value = None
    if warm is not None:
        warm_value = req.evaluate(warm).makespan
        stats["warm_start_makespan"] = warm_value
        ctx.offer(warm, "warm start")
        if warm_value <= inst.total_time:  # nothing beats Σ c(v): no model to solve
            stats["returned"] = "warm start"
            return MethodOutput(warm, Status.OPTIMAL, inst.total_time)
    fixed = None
    if how == "given":
        fixed = given
        stats["order"] = "given"
    elif how == "fixed":
        fixed = ([inst.task_index[t] for t in warm.compute_order()] if warm is not None
                 else best_baseline(inst)[0])
        stats["order"] = "fixed"
    if how == "fixed" and fz.fused:
        keep = {t.id for t in sreq.instance.tasks}
        fixed = [sreq.instance.task_index[inst.tasks[v].id] for v in fixed if inst.tasks[v].id in keep]
    t_build = time.perf_counter()
    # a model built too late to be solved (less than twice its reserve left, below) is freed unused: stop
    # building it as soon as that is sure (freeing a half-built model of 20,005 tasks takes 0.6 s too)
    build_deadline = ctx.deadline.share(1 / (1 + 2 * SOLVE_RESERVE_SHARE))
    try:
        model = moccasin_model(sreq, intervals=p.intervals, hint=warm_fused, order=fixed, deadline=build_deadline)
    except BuildStopped as e:
        stats["not_built"] = str(e) + ("" if ctx.deadline.expired() else ": too late to be solved in the time left")
        return MethodOutput(warm, Status.FEASIBLE if warm is not None else Status.UNKNOWN,
                            message=None if warm is not None else "moccasin: out of time while building its model")
    if p.floor is not None and model.cp.has_objective():
        # a proven lower bound on the makespan (e.g. auto's recomputation bound): the search stops, proven
        # optimal, when a plan reaches it instead of running to the time limit
        need = math.ceil((p.floor - inst.total_time) / gt - 1e-9)
        if need > 0:
            model.cp.add(sum(sreq.instance.time[v] * model.present[v][k] for v in range(sreq.instance.n)
                             for k in range(1, model.C[v]) if sreq.instance.time[v] > 0) >= need)
            stats["floor"] = p.floor
    if not fz.exact:  # heuristic fusion: the fused optimum is only an upper bound
        model.exact = False
        model.stats["exact_model"] = False
    stats.update(model.stats)
    now = time.perf_counter()
    stats["build_seconds"] = round(now - t0, 3)
    deadline = ctx.deadline
    if deadline.limited:
        reserve = SOLVE_RESERVE_SHARE * (now - t_build)
        left = deadline.remaining()
        stats["solve_reserve_seconds"] = round(reserve, 3)
        if left < 2 * reserve:
            # CP-SAT would spend what is left loading the model and overrun the limit ending its presolve
            stats["not_solved"] = f"{left:.1f} s left, a solve of the model costs about {reserve:.1f} s more"
            return MethodOutput(warm, Status.FEASIBLE if warm is not None else Status.UNKNOWN,
                                message=None if warm is not None else "moccasin: no time left to solve its model")
        deadline = deadline.capped(left - reserve)
    hinted = bool(model.stats.get("hinted"))  # (LNS needs a first solution)
    params: dict[str, Any] = {}
    if p.search == "lns" or (p.search == "auto" and hinted and model.T >= LNS_MIN_COMPUTATIONS):
        # every worker improves the incumbent by large-neighbourhood search, none proves: on large
        # models the proof is out of reach in minutes anyway (layered-n300-s2 at 0.8x, 60 s, seeds 0-3:
        # overhead 4.5-5.2 %, mean 4.8 %, against 5.2-6.0 %, mean 5.5 %, with the default portfolio);
        # probing, 2 s of presolve there, is skipped too
        params = {"use_lns_only": True, "cp_model_probing_level": 0}
        stats["search"] = "lns"
    else:
        stats["search"] = "complete"

    class _CB(cp_model.CpSolverSolutionCallback):
        """Improving solutions' plans go to the incumbent (at most one a second: LNS finds hundreds)."""

        last = -math.inf

        def on_solution_callback(self) -> None:
            now = time.perf_counter()
            if now - self.last >= OFFER_SECONDS:
                self.last = now
                ctx.offer(tf.expand(model.plan(self.value)), "moccasin")

    solver, status = run_cpsat(model.cp, deadline, threads=ctx.threads, seed=ctx.seed, log=ctx.solver_log,
                               params=params, callback=_CB(), memory_limit=ctx.settings.memory_limit)
    st = status_name(status)
    stats.update(cp_status=st, branches=solver.num_branches, conflicts=solver.num_conflicts,
                 cp_seconds=round(solver.wall_time, 3))
    plan = None
    if st in ("optimal", "feasible"):
        plan = tf.expand(model.plan(solver.value))
        stats["restricted_optimal"] = st == "optimal"
    # a floor is the caller's word, not a proof of this model: with one, the model claims no bound, no
    # infeasibility and no optimality (auto, which passes its proven bound, reports that bound itself)
    claims = model.exact and "floor" not in stats
    bound = None
    base = inst.total_time  # every task runs once
    if claims and st in ("optimal", "feasible"):
        # CP-SAT's bound is trusted only with a solution status (never with UNKNOWN)
        extra = math.ceil(solver.best_objective_bound - 1e-6)
        bound = base + tf.unscale(extra) if model.cp.has_objective() else base
    if st == "infeasible":
        if claims:
            return MethodOutput(status=Status.INFEASIBLE,
                                message=f"no plan within the budget {req.budget} (proved by the moccasin model)")
        st = "unknown"
    # the better of the model's plan and the warm start, as the evaluator sees them
    if plan is not None:
        value = req.evaluate(plan).makespan
        if warm is not None and warm_value is not None and warm_value < value:
            plan, stats["returned"] = warm, "warm start"
        else:
            stats["returned"] = "model"
    elif warm is not None:
        plan, stats["returned"] = warm, "warm start"
    if plan is None:
        return MethodOutput(message="moccasin found no plan in the time limit")
    proven = st == "optimal" and claims and stats.get("returned") == "model"
    return MethodOutput(plan, Status.OPTIMAL if proven else Status.FEASIBLE, bound=bound)


__all__ = ["LNS_MIN_COMPUTATIONS", "MoccasinParams", "check_moccasin", "run_moccasin"]
