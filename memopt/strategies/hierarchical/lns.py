"""Polish a plan by large neighbourhood search: windows of its computes re-solved by an exact model.

Each round takes the incumbent (a plan without transfers), its compute
sequence and the data resident before each compute, and visits windows of
``window`` computes — those that recompute the most first (only there can
time be saved) — building each window's request (:mod:`.window`) and
solving it from the window's own computes with the stage model on their
order (Checkmate, Jain et al. 2020) or Moccasin (free order, Bartan et al.
2023), alternately (``model="both"``). A window plan shorter than the
window's computes is spliced in; the whole plan is rebuilt with liveness
frees, pruned of useless recomputations, judged by the evaluator and
offered. Rounds repeat (windows shifted by half a window) until the
deadline; when two rounds improve nothing the windows double (up to
:data:`MAX_WINDOW` tasks), and the search ends when even those do not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from memopt.core.deadline import Deadline
from memopt.core.method import Context
from memopt.core.plan import OFFLOAD, RELOAD, Plan
from memopt.core.request import Request
from memopt.formulations.stage.plans import prune_plan
from memopt.strategies.hierarchical.sequence import plan_from_sequence, sequence_of
from memopt.strategies.hierarchical.window import Window, build_window, splice

log = logging.getLogger("memopt")

MAX_WINDOW = 192
"""Windows double (from the method's ``window``) each time two rounds improve nothing, up to this size."""
WINDOW_SECONDS = 5.0
"""Most seconds one window's model may take (on GPT-2 training graphs, windows of 20 tasks: Checkmate ends
in 1-4 s; Moccasin proves nothing in 20 s)."""


def solve_window(w: Window, model: str, deadline: Deadline, threads: int, seed: int) -> Plan | None:
    """A plan of the window's request at least as good as its warm start (``None``: none found)."""
    wreq = w.request
    if model == "checkmate":
        from memopt.formulations.stage.layout import LayoutError, StageLayout
        from memopt.formulations.stage.model import build_stage_model
        from memopt.formulations.stage.solver import solve_stage_model

        upper = wreq.evaluate(w.warm).makespan
        try:
            lay, cut = StageLayout.from_plan(wreq.instance, w.warm)
        except LayoutError:
            return None
        sm = build_stage_model(wreq, lay, upper=upper, deadline=deadline)
        if sm is None:
            return None
        out = solve_stage_model(sm, deadline, threads=threads, seed=seed, warm=cut, cutoff=upper)
        return out.plan
    from memopt.backends.cpsat import run_cpsat, status_name
    from memopt.formulations.moccasin import LNS_MIN_COMPUTATIONS
    from memopt.formulations.moccasin_model import moccasin_model

    m = moccasin_model(wreq, hint=w.warm)
    params = {"use_lns_only": True, "cp_model_probing_level": 0} if m.T >= LNS_MIN_COMPUTATIONS else {}
    solver, status = run_cpsat(m.cp, deadline, threads=threads, seed=seed, params=params)
    if status_name(status) in ("optimal", "feasible"):
        return m.plan(solver.value)
    return None


def neighbourhoods(req: Request, seq: Sequence[int], size: int, offset: int) -> list[set[int]]:
    """Task sets to re-solve: slices of ``size`` tasks of the order of first computations, those whose
    tasks are recomputed the longest first (a slice recomputing nothing cannot save time)."""
    inst = req.instance
    first: list[int] = []
    seen: set[int] = set()
    again = [0] * inst.n
    for v in seq:
        if v in seen:
            again[v] += inst.time[v]
        else:
            seen.add(v)
            first.append(v)
    out = []
    step = max(1, size // 2)
    for i in range(offset % step, max(1, len(first) - 1), step):
        U = first[i:i + size]
        gain = sum(again[v] for v in U)
        if gain > 0:
            out.append((-gain, i, set(U)))
    return [U for _, _, U in sorted(out, key=lambda x: (x[0], x[1]))]


def polish(req: Request, ctx: Context, *, window: int, model: str = "both") -> int:
    """Improve the incumbent by windows until the deadline (module docstring); returns the improvements."""
    inst = req.instance
    stats = ctx.stats.setdefault("lns", {"windows": 0, "improved": 0, "skipped": 0})
    models = ["checkmate", "moccasin"] if model == "both" else [model]
    improved_total = 0
    idle_rounds = 0
    rnd = 0
    while not ctx.deadline.expired():
        plan = ctx.incumbent.plan
        if plan is None or any(e.kind in (OFFLOAD, RELOAD) for _, e in plan.events()):
            break  # a plan with transfers is not a compute sequence
        name = models[rnd % len(models)]
        seq = sequence_of(inst, plan)
        gained = 0
        for U in neighbourhoods(req, seq, window, rnd * max(1, window // 4)):
            if ctx.deadline.expired():
                break
            w = build_window(req, seq, U)
            if w is None:
                stats["skipped"] += 1
                continue
            before = w.request.evaluate(w.warm)
            if not before.valid:  # the window's summary of the fixed part is too coarse here
                stats["skipped"] += 1
                continue
            stats["windows"] += 1
            dl = ctx.deadline.share(1.0, WINDOW_SECONDS)
            sub = solve_window(w, name, dl, ctx.threads, ctx.seed)
            if sub is None:
                continue
            ev = w.request.evaluate(sub)
            if not ev.valid or ev.makespan >= before.makespan:
                continue
            full = prune_plan(inst, plan_from_sequence(inst, splice(inst, seq, w, sub)))
            fev = req.evaluate(full)
            if not fev.valid:
                log.warning("hierarchical: a spliced window gives an invalid plan: %s", fev.violation)
                stats["invalid_splices"] = stats.get("invalid_splices", 0) + 1
                continue
            if ctx.incumbent.value is not None and fev.makespan >= ctx.incumbent.value:
                continue
            ctx.offer(full, f"hierarchical (window, {name})", evaluation=fev)
            seq = sequence_of(inst, full)
            gained += 1
            stats["improved"] += 1
            if ctx.incumbent.proven:
                return improved_total + gained
        improved_total += gained
        rnd += 1
        idle_rounds = 0 if gained else idle_rounds + 1
        if idle_rounds >= 2 * len(models):
            # nothing moves at this size: larger windows (their models are larger, their moves too)
            if window >= MAX_WINDOW or window >= inst.n // 2:
                break
            window *= 2
            stats["window"] = window
            idle_rounds = 0
    return improved_total


__all__ = ["neighbourhoods", "polish", "solve_window"]
