"""Recomputation-chain cuts (:mod:`memopt.formulations.stage.cuts`): valid, and they tighten the LP.

- on a hand-made chain the LP relaxation regenerates a datum in slivers
  (bound 13.5); the cuts lift it to the integer optimum (15);
- validity: a cut never removes a solution of the model. Random small
  instances, the complete model with and without cuts: the same optimum for
  the makespan *and* for random objectives over the variables the cuts
  touch (a removed solution would show up as a better optimum without cuts
  for some objective);
- every valid plan of the layout satisfies every cut (its hint checks);
- solving with cuts agrees with the brute force (also in
  ``test_stage_models``, where cuts are on by default).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from stage_brute import brute_stage_time
from strategies import instances

import memopt
from memopt import from_tensors, generators
from memopt.backends.linear import Relaxation, solve_linear
from memopt.core.bounds import peak_lower_bound
from memopt.core.deadline import Deadline
from memopt.core.evaluate import schedule_peak
from memopt.formulations.stage import (
    StageLayout,
    build_stage_model,
    plan_hint,
    solve_stage_model,
)
from memopt.formulations.stage.cuts import (
    add_chain_cuts,
    chain_cut_needs,
    separate_chain_cuts,
)
from memopt.pipeline import make_request

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))


def _chain():
    # b must be regenerated for c after the x chain; holding a sliver of a is the LP's way out
    return from_tensors([("a", 3, 4, []), ("b", 2, 4, ["a"]), ("x1", 1, 6, ["a"]), ("x2", 1, 6, ["x1"]),
                         ("x3", 1, 6, ["x2"]), ("x4", 1, 1, ["x3"]), ("c", 1, 1, ["b", "x4"])])


def test_cuts_close_the_lp_gap_of_a_chain():
    inst = _chain()
    order = list(inst.topological_order)
    req = make_request(inst, "time", budget=12, recompute=True)
    sm = build_stage_model(req, StageLayout.fixed(inst, order), detailed="all")
    root = Relaxation(sm.lm).solve()
    assert sm.to_real(root.objective) == pytest.approx(13.5)
    stats = add_chain_cuts(sm.V, deadline=Deadline(10))
    assert stats["chain_cuts"] > 0
    assert sm.to_real(stats["lp_bound"]) == pytest.approx(15)
    # the integer optimum is untouched, and it is the brute force's
    out = solve_stage_model(sm, Deadline(10), threads=1, cuts=False)
    assert out.model_status == "optimal" and out.value == 15 == req.evaluate(out.plan).makespan
    assert brute_stage_time(req, StageLayout.fixed(inst, order))[0] == 15


def test_no_cuts_for_free_orders_or_without_recomputation():
    inst = _chain()
    order = list(inst.topological_order)
    req = make_request(inst, "time", budget=12, recompute=True)
    sm = build_stage_model(req, StageLayout.joint(inst, order), detailed="all")
    assert chain_cut_needs(sm.V) == []
    assert add_chain_cuts(sm.V, deadline=Deadline(5))["chain_cuts"] == 0


def _budget(inst, frac):
    pk = schedule_peak(inst, inst.topological_order)
    lb = peak_lower_bound(inst)[0]
    return None if pk <= lb else lb + (pk - lb) * frac // 100


def _check_no_solution_removed(req, seed: int) -> int:
    """Solve the complete model with and without cuts for the makespan and random objectives."""
    layout = StageLayout.fixed(req.instance, list(req.instance.topological_order))
    cut = build_stage_model(req, layout, detailed="all")
    plain = build_stage_model(req, layout, detailed="all")
    # both kinds of needs: first computations (the default) and recomputations' inputs
    add_chain_cuts(cut.V, deadline=Deadline(10), max_rounds=20, recomputations=True)
    n_cut = len(cut.lm.rows) - len(plain.lm.rows)
    rng = random.Random(seed)
    objectives = [None]
    keys = list(cut.V.R.items()) + [kv for kv in cut.V.F.items() if kv[1] >= 0]
    for _ in range(3):
        objectives.append({i: rng.randint(-3, 3) for _, i in keys})
    for obj in objectives:
        vals = []
        for sm in (cut, plain):
            if obj is not None:
                sm.lm.minimize(obj)
            sol = solve_linear(sm.lm, "cpsat", time_limit=20, threads=1)
            assert sol.status in ("optimal", "infeasible")
            vals.append(None if sol.status == "infeasible" else round(sol.objective, 6))
        assert vals[0] == vals[1], (obj is None, n_cut, vals)
    return n_cut


@settings(max_examples=40, **SETTINGS)
@given(instances(max_tasks=7, max_size=8), st.integers(0, 100), st.integers(0, 10**6))
def test_cuts_remove_no_solution(inst, frac, seed):
    b = _budget(inst, frac)
    assume(b is not None)
    n_cut = _check_no_solution_removed(make_request(inst, "time", budget=b, recompute=True), seed)
    event(f"chain cuts added: {n_cut > 0}")


def test_cuts_remove_no_solution_of_generated_graphs():
    # small random graphs rarely give the LP room for slivers: take generated ones where cuts are found
    checked = 0
    for seed in range(40):
        for inst in (generators.random_layered(12, seed=seed), generators.random_series_parallel(12, seed=seed)):
            for frac in (30, 60, 85):
                b = _budget(inst, frac)
                if b is None:
                    continue
                req = make_request(inst, "time", budget=b, recompute=True)
                sm = build_stage_model(req, StageLayout.fixed(inst, list(inst.topological_order)), detailed="all")
                if add_chain_cuts(sm.V, deadline=Deadline(10))["chain_cuts"] == 0:
                    continue
                assert _check_no_solution_removed(req, seed) > 0
                checked += 1
                if checked == 8:
                    return
    pytest.fail(f"only {checked} generated graphs with chain cuts")


@settings(max_examples=25, **SETTINGS)
@given(instances(max_tasks=7, max_size=8), st.integers(0, 100))
def test_every_valid_plan_of_the_layout_satisfies_the_cuts(inst, frac):
    b = _budget(inst, frac)
    assume(b is not None)
    req = make_request(inst, "time", budget=b, recompute=True)
    layout = StageLayout.fixed(inst, list(inst.topological_order))
    sm = build_stage_model(req, layout, detailed="all")
    out = solve_stage_model(sm, Deadline(20), threads=1, cuts=False)
    assume(out.plan is not None)
    # the plan on its own layout: the cuts separated there must hold at its hint
    own, cut_plan = StageLayout.from_plan(inst, out.plan)
    sm2 = build_stage_model(req, own, detailed="all")
    values = plan_hint(sm2, cut_plan)
    # no chain is violated at the plan itself, and the cuts separated at the LP hold there
    assert separate_chain_cuts(sm2.V, values, eps=1e-9, recomputations=True) == []
    add_chain_cuts(sm2.V, deadline=Deadline(10), max_rounds=20, recomputations=True)
    assert not sm2.lm.check(values)


def test_the_cuts_option_of_checkmate():
    inst = _chain()
    on = memopt.solve(inst, objective="time", method="checkmate", budget=12, recompute=True, time_limit=20,
                      order="given", threads=1)
    off = memopt.solve(inst, objective="time", method="checkmate", budget=12, recompute=True, time_limit=20,
                       order="given", threads=1, cuts=False)
    for res in (on, off):
        assert res.value == 15 and res.stats["model_status"] == "optimal"
        ev = memopt.evaluate(inst, res.plan, budget=12)
        assert ev.valid and ev.makespan == res.value
    assert on.stats["chain_cuts"] > 0 and "chain_cuts" not in off.stats
    assert on.stats["model_bound"] == 15


def test_an_unfinished_lp_ends_the_cuts(monkeypatch):
    from memopt.backends.linear import LinearSolution

    inst = _chain()
    req = make_request(inst, "time", budget=12, recompute=True)
    sm = build_stage_model(req, StageLayout.fixed(inst, list(inst.topological_order)), detailed="all")
    monkeypatch.setattr(Relaxation, "solve", lambda self, deadline=None: LinearSolution(
        "unknown", None, None, None, 0.0, "highs-lp"))
    first = add_chain_cuts(sm.V, deadline=Deadline(5))
    assert first["chain_cuts"] == 0 and first["lp_unfinished"] and sm.V.cuts_given_up
    assert "lp_unfinished" not in add_chain_cuts(sm.V, deadline=Deadline(5))  # not tried again
    # and the solver still proves the optimum without them
    out = solve_stage_model(sm, Deadline(10), threads=1)
    assert out.model_status == "optimal" and out.value == 15 and out.stats.get("chain_cuts", 0) == 0


def test_models_over_the_size_limit_get_no_cuts(monkeypatch):
    from memopt.formulations.stage import solver

    inst = _chain()
    req = make_request(inst, "time", budget=12, recompute=True)
    sm = build_stage_model(req, StageLayout.fixed(inst, list(inst.topological_order)), detailed="all")
    monkeypatch.setattr(solver, "CUT_MAX_ROWS", sm.lm.num_rows - 1)
    out = solve_stage_model(sm, Deadline(10), threads=1)
    assert out.value == 15 and "chain_cuts" not in out.stats and sm.V.relaxation is None


def test_lp_guided_detail_keeps_the_optimum():
    inst = _chain()
    req = make_request(inst, "time", budget=12, recompute=True)
    outs = []
    for lp_detail in (0.3, 0.0):
        sm = build_stage_model(req, StageLayout.fixed(inst, list(inst.topological_order)))
        outs.append(solve_stage_model(sm, Deadline(10), threads=1, lp_detail=lp_detail))
    assert [o.value for o in outs] == [15, 15] and all(o.model_status == "optimal" for o in outs)
    assert all(req.evaluate(o.plan).valid and req.evaluate(o.plan).makespan == 15 for o in outs)
    assert outs[0].stats["lp_detailed"] and "lp_detailed" not in outs[1].stats
