"""Time-indexed MILP of the peak, after OLLA/MODeL (Steiner et al., 2022/2023).

Steps k = 0..n-1 run one task each. With D(v, k) = 1 iff task v has run by
the end of step k (pos(v) <= k), on top of the shared position builder
(:func:`~memopt.formulations.peak_common.add_positions`):

- D(v, k) >= D(v, k-1); D(v, k) = 0 for k < lo(v) and 1 for k >= hi(v)
  (the position bounds); pos(v) = n - Σ_k D(v, k);
- Σ_v D(v, k) = k + 1 (one task per step);
- precedence u -> v: D(v, k) <= D(u, k-1); a cluster u -> u' of the
  reduction: D(u', k) = D(u, k-1);
- resident data at step k: a(d, k) = D(p(d), k) - D(r(d), k-1) for a fixed
  release task r(d), D(p(d), k) for a result, and for a datum read by
  several unordered readers a variable a(d, k) >= D(p(d), k) - D(c, k-1)
  for each reader c (the minimisation keeps it at the max);
- Σ_d s(d) a(d, k) + Σ_v w(v) (D(v, k) - D(v, k-1)) <= P for every k;
- minimise P.

O(n²) binaries: refused above ``MAX_TASKS`` tasks. Solved by HiGHS or CBC
(``--backend highs|cbc``), or CP-SAT (``--backend cpsat``); warm start from
the best baseline order (MIP start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from memopt.backends.linear import LinearModel
from memopt.core.method import Context, MethodOutput
from memopt.core.params import option
from memopt.core.request import Request
from memopt.formulations.peak_common import PeakGraph, add_peak, add_positions, hint_positions, lifetimes
from memopt.formulations.peak_run import PeakFormulationParams, run_peak_formulation
from memopt.graph.release import AMBIGUOUS, RESULT

MAX_TASKS = 400


def peak_milp_model(pg: PeakGraph, lb: int, ub: int | None, hint: list[int] | None, *,
                    integer_aux: bool = False) -> tuple[LinearModel, list[int]]:
    """The time-indexed model (see the module docstring); returns (model, pos variables).

    ``integer_aux`` makes the a(d, k) variables integer (CP-SAT needs it).
    """
    n = pg.n
    inst = pg.inst
    lo, hi = pg.lo, pg.hi
    model = LinearModel("peak-milp")
    pos = add_positions(model, pg)
    P = add_peak(model, pg, lb, ub)
    D: list[dict[int, int]] = []
    for v in range(n):
        dv = {k: model.binary(f"D[{v},{k}]") for k in range(lo[v], hi[v])}
        D.append(dv)
        for k in range(lo[v] + 1, hi[v]):
            model.add_ge([(dv[k], 1), (dv[k - 1], -1)], 0)
        # pos(v) = n - Σ_k D(v,k), with D(v,k) = 1 for the n - hi(v) steps k >= hi(v)
        model.add_eq([(pos[v], 1)] + [(x, 1) for x in dv.values()], hi[v])

    def term(v: int, k: int, coef: float, terms: list, const: list) -> None:
        """Add coef·D(v, k) to a row: a variable, or a constant 0/1 outside [lo, hi)."""
        if k < lo[v]:
            return
        if k >= hi[v]:
            const[0] += coef
            return
        terms.append((D[v][k], coef))

    for k in range(n):
        terms: list = []
        const = [0.0]
        for v in range(n):
            term(v, k, 1, terms, const)
        model.add_eq(terms, k + 1 - const[0], name=f"step[{k}]")
    chain_pairs = set()
    for members in pg.chains:
        chain_pairs.update(zip(members, members[1:]))
    for u, v in pg.arcs:
        for k in range(lo[v], hi[v]):
            terms, const = [], [0.0]
            term(v, k, 1, terms, const)
            term(u, k - 1, -1, terms, const)
            if (u, v) in chain_pairs:
                model.add_eq(terms, -const[0])
            else:
                model.add_le(terms, -const[0])
    amb: dict[tuple[int, int], int] = {}
    lts = lifetimes(pg)
    for k in range(n):
        terms, const = [(P, -1.0)], [0.0]
        for lt in lts:
            p, s = lt.producer, lt.size
            if k < lo[p]:
                continue
            if lt.release == RESULT:
                term(p, k, s, terms, const)
            elif lt.release == AMBIGUOUS:
                if k >= max(hi[c] for c in lt.readers) + 1:
                    continue  # every reader has run before step k
                a = model.var(f"a[{lt.j},{k}]", 0, 1, integer=integer_aux)
                amb[(lt.j, k)] = a
                for c in lt.readers:
                    t2, c2 = [(a, 1.0)], [0.0]
                    term(p, k, -1, t2, c2)
                    term(c, k - 1, 1, t2, c2)
                    model.add_ge(t2, -c2[0])
                terms.append((a, s))
            else:
                term(p, k, s, terms, const)
                term(lt.release, k - 1, -s, terms, const)
        for v in range(n):
            w = pg.work[v]
            if w:
                term(v, k, w, terms, const)
                term(v, k - 1, -w, terms, const)
        model.add_le(terms, -const[0], name=f"memory[{k}]")
    model.minimize({P: 1})
    if hint is not None:
        from memopt.core.evaluate import schedule_peak

        hp = hint_positions(hint, n)
        h = {pos[v]: hp[v] for v in range(n)}
        for v in range(n):
            for k, x in D[v].items():
                h[x] = 1 if hp[v] <= k else 0
        for (j, k), a in amb.items():
            alive = hp[inst.producer[j]] <= k and any(hp[c] >= k for c in inst.consumers[j])
            h[a] = 1 if alive else 0
        h[P] = max(model.lb[P], min(schedule_peak(inst, hint) // pg.unit, model.ub[P]))
        model.set_hint(h)
    return model, pos


def check_peak_milp(req: Request) -> str | None:
    if req.instance.n > MAX_TASKS:
        return (f"method 'peak-milp' has O(n²) variables: at most {MAX_TASKS} tasks "
                f"(this instance has {req.instance.n}); use peak-cp or downset-dp")
    return None


@dataclass(frozen=True)
class PeakMILPParams(PeakFormulationParams):
    backend: Literal["highs", "cbc", "cpsat"] = option("highs", "solver: highs, cbc (or cpsat)")


def run_peak_milp(req: Request, ctx: Context) -> MethodOutput:
    """Time-indexed MILP of the peak (OLLA/MODeL-like), --backend highs|cbc (or cpsat); reduce=false: no reduction."""
    backend = ctx.params.backend

    def build(pg, lb, ub, hint):
        return peak_milp_model(pg, lb, ub, hint, integer_aux=backend == "cpsat")

    return run_peak_formulation(req, ctx, build, backend)


__all__ = ["MAX_TASKS", "PeakMILPParams", "check_peak_milp", "peak_milp_model", "run_peak_milp"]
