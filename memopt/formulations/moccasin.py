"""Moccasin: the retention-interval CP model of rematerialization (Bartan et al., ICML 2023).

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
a task that cannot rerun. When C_v ≥ U_v for every v the model is exact: its
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
from dataclasses import dataclass, field
from typing import Any, Literal

from memopt.backends.cpsat import run_cpsat, status_name
from memopt.backends.model import BuildStopped
from memopt.core.deadline import Deadline
from memopt.core.errors import MemoptError
from memopt.core.instance import Instance
from memopt.core.method import Context, MethodOutput
from memopt.core.params import Params, option
from memopt.core.plan import COMPUTE, Event, Plan
from memopt.core.request import Request
from memopt.core.status import Objective, Status
from memopt.heuristics.orders import best_baseline
from memopt.transforms.base import Identity
from memopt.transforms.fusion import fuse_request
from memopt.transforms.scaling import scale

DEFAULT_INTERVALS = 2
OFFER_SECONDS = 1.0  # how often an improving solution is turned into a plan for the incumbent during a search
LNS_MIN_COMPUTATIONS = 400
"""From this many computations (Σ C_v) on, option ``search=auto`` runs CP-SAT's LNS workers only."""
_U_CAP = 1 << 20


def useful_computations(inst: Instance, recompute: bool = True) -> list[int]:
    """U_v: at most this many computations of v are useful in an optimal plan without offloading.

    U_v = 1 if v cannot rerun, else max(1, Σ_{d ∈ out(v)} ([d result] + Σ_{w ∈ C(d)} U_w)),
    capped at 2^20. O(n + Σ consumers).
    """
    U = [1] * inst.n
    if not recompute:
        return U
    for v in reversed(inst.topological_order):
        if not inst.can_recompute[v]:
            continue
        total = 0
        for d in inst.outputs[v]:
            total += (0 if inst.consumers[d] else 1) + sum(U[w] for w in inst.consumers[d])
        U[v] = min(max(1, total), _U_CAP)
    return U


def plan_computations(inst: Instance, plan: Plan) -> list[int]:
    """How many times each task is computed in ``plan``."""
    cnt = [0] * inst.n
    for _, e in plan.events():
        if e.kind == COMPUTE:
            cnt[inst.task_index[e.target]] += 1
    return cnt


@dataclass
class MoccasinModel:
    """The CP-SAT model and its variables (see the module docstring)."""

    request: Request
    cp: Any
    C: list[int]
    T: int
    start: list[list[Any]]       # start[v][k]
    present: list[list[Any]]     # present[v][k] (literals)
    end: dict[tuple[int, int], Any]  # (datum, k) -> retention end
    exact: bool
    stats: dict[str, Any] = field(default_factory=dict)
    # the auxiliary variables, kept so that a hint can set every variable (a complete hint is
    # checked at once by CP-SAT; a partial one is completed by search: seconds on 300 tasks)
    length: dict[tuple[int, int], Any] = field(default_factory=dict)  # (datum, k) -> copy length
    reads: list[tuple[int, int, int, int, Any]] = field(default_factory=list)  # (v, k, d, j, z)
    keeps: list[tuple[int, int, Any]] = field(default_factory=list)  # (result d, k, y)
    count: Any = None  # K, the number of present computations

    def plan(self, value) -> Plan:
        """The SPEC plan of a solution (``value``: the solver's ``Value``)."""
        inst = self.request.instance
        comps = []
        for v in range(inst.n):
            for k in range(self.C[v]):
                if value(self.present[v][k]):
                    comps.append((value(self.start[v][k]), v, k))
        comps.sort()
        positions = [s for s, _, _ in comps]
        frees: list[list[int]] = [[] for _ in comps]
        import bisect

        for (d, k), e_var in self.end.items():
            v = inst.producer[d]
            if not value(self.present[v][k]):
                continue
            e = value(e_var)
            if e >= self.T - 1 and not inst.consumers[d]:
                continue  # a result's copy kept to the end
            idx = bisect.bisect_right(positions, e) - 1  # the last compute at a position <= e
            frees[idx].append(d)
        tids = [t.id for t in inst.tasks]
        dids = [dd.id for dd in inst.data]
        stages = []
        for i, (_, v, _) in enumerate(comps):
            st = [Event(COMPUTE, tids[v])]
            st += [Event("free", dids[d]) for d in sorted(frees[i])]
            stages.append(st)
        return Plan(stages)


def moccasin_model(req: Request, intervals: int | list[int] = DEFAULT_INTERVALS,
                   hint: Plan | None = None, order: list[int] | None = None,
                   deadline: Deadline | None = None) -> MoccasinModel:
    """Build the Moccasin CP-SAT model of ``req`` (objective ``time``, no offloading).

    ``order`` (task indices) fixes the order of the first computations, as
    Checkmate does; the model then solves that restriction only. Building
    stops with :class:`~memopt.backends.model.BuildStopped` when ``deadline``
    expires (thousands of tasks take seconds of Python).
    """

    def check(v: int) -> None:
        if deadline is not None and v % 64 == 0 and deadline.expired():
            raise BuildStopped(f"moccasin: the deadline expired while building the model (task {v} of {n})")

    from ortools.sat.python import cp_model

    inst = req.instance
    if req.offload:
        raise MemoptError("moccasin does not model offloading (retention intervals of fast memory only)")
    if req.budget is None:
        raise MemoptError("moccasin needs a budget")
    n = inst.n
    U = useful_computations(inst, req.recompute)
    if isinstance(intervals, int):
        C = [min(U[v], max(1, intervals)) for v in range(n)]
    else:
        C = [min(U[v], max(1, c)) for v, c in enumerate(intervals)]
    hint_counts = None
    if hint is not None:
        hint_counts = plan_computations(inst, hint)
        # room for the hint: as many computations as it makes (still at most U_v)
        C = [max(C[v], min(hint_counts[v], U[v])) for v in range(n)]
        if any(hint_counts[v] > C[v] for v in range(n)):
            hint = None  # it uses useless computations: not representable, not needed
    exact = all(C[v] >= U[v] for v in range(n))
    T = sum(C)
    m = cp_model.CpModel()
    start = [[m.new_int_var(0, T - 1, f"s[{v},{k}]") for k in range(C[v])] for v in range(n)]
    present = [[m.new_constant(1) if k == 0 else m.new_bool_var(f"a[{v},{k}]") for k in range(C[v])]
               for v in range(n)]
    end: dict[tuple[int, int], Any] = {}
    lengths: dict[tuple[int, int], Any] = {}
    reads: list[tuple[int, int, int, int, Any]] = []
    keeps: list[tuple[int, int, Any]] = []
    size = inst.size
    mem_intervals, mem_demands = [], []
    unit_intervals = []
    for v in range(n):
        check(v)
        for k in range(C[v]):
            s, a = start[v][k], present[v][k]
            if k > 0:
                m.add_implication(a, present[v][k - 1])
                m.add(s == 0).only_enforce_if(~a)  # absent computations are fixed (no symmetric copies)
            unit_intervals.append(m.new_optional_fixed_size_interval_var(s, 1, a, f"c[{v},{k}]"))
            if inst.workspace[v] > 0:
                mem_intervals.append(unit_intervals[-1])
                mem_demands.append(inst.workspace[v])
            for d in inst.outputs[v]:
                e = m.new_int_var(0, T - 1, f"e[{d},{k}]")
                end[(d, k)] = e
                m.add(e >= s)
                if k > 0:
                    m.add(e == 0).only_enforce_if(~a)
                if size[d] > 0:
                    length = m.new_int_var(1, T, f"len[{d},{k}]")
                    lengths[(d, k)] = length
                    m.add(length == e - s + 1).only_enforce_if(a)
                    iv = m.new_optional_interval_var(s, length, e + 1, a, f"r[{d},{k}]")
                    mem_intervals.append(iv)
                    mem_demands.append(size[d])
            if k > 0:
                for d in inst.outputs[v]:
                    m.add(end[(d, k - 1)] < s).only_enforce_if(a)
    m.add_no_overlap(unit_intervals)
    # the present computations fill positions 0..K-1 (no gaps): removes the symmetry of empty positions
    K = m.new_int_var(n, T, "K")
    m.add(sum(present[v][k] for v in range(n) for k in range(1, C[v])) + n == K)
    for v in range(n):
        for k in range(C[v]):
            m.add(start[v][k] < K).only_enforce_if(present[v][k])
    if mem_intervals:
        m.add_cumulative(mem_intervals, mem_demands, int(req.budget))
    # precedence: first computations follow the task graph (redundant, helps propagation)
    for v in range(n):
        for u in inst.preds[v]:
            m.add(start[u][0] < start[v][0])
    if order is not None:
        for u, v in zip(order, order[1:]):
            m.add(start[u][0] < start[v][0])
        exact = False
    # precedence through the retention intervals
    for v in range(n):
        check(v)
        for k in range(C[v]):
            for d in inst.inputs[v]:
                u = inst.producer[d]
                lits = []
                for j in range(C[u]):
                    z = m.new_bool_var(f"z[{v},{k},{d},{j}]")
                    m.add_implication(z, present[u][j])
                    m.add(start[u][j] < start[v][k]).only_enforce_if(z)
                    m.add(end[(d, j)] >= start[v][k]).only_enforce_if(z)
                    lits.append(z)
                    reads.append((v, k, d, j, z))
                m.add_bool_or(lits).only_enforce_if(present[v][k])
    # results keep a copy to the end
    for d in inst.results:
        v = inst.producer[d]
        lits = []
        for k in range(C[v]):
            y = m.new_bool_var(f"y[{d},{k}]")
            m.add_implication(y, present[v][k])
            m.add(end[(d, k)] == T - 1).only_enforce_if(y)
            lits.append(y)
            keeps.append((d, k, y))
        m.add_bool_or(lits)
    obj = [(inst.time[v], present[v][k]) for v in range(n) for k in range(1, C[v])
           if inst.time[v] > 0]
    if obj:
        m.minimize(sum(c * a for c, a in obj))
    model = MoccasinModel(req, m, C, T, start, present, end, exact,
                          stats={"intervals": sum(C), "horizon": T, "exact_model": exact,
                                 "max_useful": max(U) if U else 0, "hinted": hint is not None},
                          length=lengths, reads=reads, keeps=keeps, count=K)
    if hint is not None:
        _add_hint(model, hint)
    return model


def _add_hint(model: MoccasinModel, plan: Plan) -> None:
    """Hint every variable from a recompute-only plan: its k-th compute of v is computation k."""
    inst = model.request.instance
    m = model.cp
    n = inst.n
    pos = 0
    k_of = [0] * n
    starts: dict[tuple[int, int], int] = {}
    resident: dict[int, int] = {}   # datum -> computation k whose copy is resident
    ends: dict[tuple[int, int], int] = {}
    last_pos = -1
    for st in plan.stages:
        for e in st:
            if e.kind == COMPUTE:
                v = inst.task_index[e.target]
                k = k_of[v]
                k_of[v] += 1
                starts[(v, k)] = pos
                for d in inst.outputs[v]:
                    if d in resident:
                        # still resident from the previous computation: that copy ends just before
                        ends[(d, resident[d])] = pos - 1
                    resident[d] = k
                last_pos = pos
                pos += 1
            elif e.kind == "free":
                d = inst.datum_index[e.target]
                if d in resident:
                    ends[(d, resident.pop(d))] = max(last_pos, 0)
    for d, k in resident.items():
        ends[(d, k)] = model.T - 1
    end_of: dict[tuple[int, int], int] = {}
    for v in range(n):
        for k in range(model.C[v]):
            on = (v, k) in starts
            if k > 0:
                m.add_hint(model.present[v][k], on)
            m.add_hint(model.start[v][k], starts.get((v, k), 0))
            for d in inst.outputs[v]:
                e = ends.get((d, k), starts.get((v, k), 0)) if on else 0
                end_of[(d, k)] = e
                m.add_hint(model.end[(d, k)], e)
                if (d, k) in model.length:
                    m.add_hint(model.length[(d, k)], e - starts[(v, k)] + 1 if on else 1)
    # the auxiliaries: the copy each computation reads (the one resident at its position), the copy
    # of each result kept to the end, and the number of computations
    chosen: set[tuple[int, int, int]] = set()
    for v, k, d, j, z in model.reads:
        u = inst.producer[d]
        ok = (v, k) in starts and (u, j) in starts and starts[(u, j)] < starts[(v, k)] <= end_of[(d, j)]
        pick = ok and (v, k, d) not in chosen
        if pick:
            chosen.add((v, k, d))
        m.add_hint(z, pick)
    for d, k, y in model.keeps:
        v = inst.producer[d]
        m.add_hint(y, (v, k) in starts and end_of[(d, k)] == model.T - 1)
    if model.count is not None:
        m.add_hint(model.count, pos)


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
    try:
        model = moccasin_model(sreq, intervals=p.intervals, hint=warm_fused, order=fixed, deadline=ctx.deadline)
    except BuildStopped as e:
        stats["not_built"] = str(e)
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
    stats["build_seconds"] = round(time.perf_counter() - t0, 3)
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

    solver, status = run_cpsat(model.cp, ctx.deadline, threads=ctx.threads, seed=ctx.seed, log=ctx.solver_log,
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


__all__ = ["MoccasinModel", "MoccasinParams", "check_moccasin", "moccasin_model", "plan_computations", "run_moccasin",
           "useful_computations"]
