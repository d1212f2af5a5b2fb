"""CP-SAT and MILP formulations of the peak: exact on small graphs, with or without the reduction."""

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt import Plan, from_tensors, instance_to_dict, solve
from memopt.backends.linear import solve_linear
from memopt.core.evaluate import schedule_peak
from memopt.exact.exhaustive import exhaustive_peak
from memopt.formulations.peak_common import PeakGraph, hint_positions, order_from_positions
from memopt.formulations.peak_cp import peak_cp_model
from memopt.formulations.peak_milp import peak_milp_model
from memopt.generators import random_layered
from memopt.heuristics.orders import best_baseline
from memopt.transforms.reduction import reduce_peak


@settings(max_examples=25)
@given(instances(max_tasks=7), st.sampled_from(["peak-cp", "peak-milp:highs", "peak-milp:cbc", "peak-milp:cpsat"]),
       st.booleans(), st.booleans())
def test_formulations_match_exhaustive(inst, method, reduce, warm):
    opt, _ = exhaustive_peak(inst)
    name, _, backend = method.partition(":")
    kw = {"backend": backend} if backend else {}
    res = solve(inst, "peak", name, reduce=reduce, warm_start=warm, threads=1, **kw)
    assert res.status == "optimal" and res.value == res.bound == opt, (instance_to_dict(inst), res, opt)
    assert res.evaluation.valid


@settings(max_examples=25)
@given(instances(max_tasks=7), st.booleans())
def test_models_accept_every_optimal_order_and_no_better(inst, reduce):
    """The hinted optimal order is a feasible point of both models with P = its peak."""
    opt, order = exhaustive_peak(inst)
    red = reduce_peak(inst) if reduce else None
    if red is not None:
        from memopt.exact.downset_dp import downset_search

        order = downset_search(inst, red).order  # an optimal order that respects the clusters
    pg = PeakGraph(inst, red)
    for build in (peak_cp_model, peak_milp_model):
        model, pos = build(pg, 0, None, order)
        full = [model.hint.get(i, model.lb[i]) for i in range(model.num_vars)]
        assert not model.check(full), build.__name__
        assert full[[i for i, n in enumerate(model.names) if n == "peak"][0]] * pg.unit == opt


@pytest.mark.parametrize("method,backend", [("peak-cp", None), ("peak-milp", "highs"), ("peak-milp", "cbc")])
def test_formulation_proves_infeasible_budget(method, backend):
    inst = from_tensors([("a", 1, 4, []), ("b", 1, 10, ["a"]), ("c", 1, 1, ["a"]), ("d", 1, 1, ["b", "c"])])
    kw = {"backend": backend} if backend else {}
    res = solve(inst, "peak", method, budget=14, **kw)
    assert res.status == "infeasible" and res.plan is None and res.bound == 15
    ok = solve(inst, "peak", method, budget=15, **kw)
    assert ok.status == "optimal" and ok.value == 15


def test_formulations_return_a_plan_when_time_runs_out():
    inst = random_layered(120, seed=7)
    for method, kw in (("peak-cp", {}), ("peak-milp", {"backend": "highs"})):
        res = solve(inst, "peak", method, time_limit=1.5, **kw)
        assert res.plan is not None and res.evaluation.valid
        assert res.bound <= res.value <= best_baseline(inst)[1]


def test_peak_cp_rejects_milp_backends():
    from memopt import MemoptError

    inst = from_tensors([("a", 1, 1, [])])
    with pytest.raises(MemoptError, match="unknown option.*backend"):
        solve(inst, "peak", "peak-cp", backend="cbc")


def test_order_decoding_round_trip():
    inst = random_layered(15, seed=2)
    order = best_baseline(inst)[0]
    hp = hint_positions(order, inst.n)
    assert order_from_positions([float(x) for x in hp], list(range(inst.n))) == order
    assert schedule_peak(inst, order) == solve(inst, "peak", "given").value


def test_cli_solve_and_info_reduce(tmp_path):
    out = tmp_path / "plan.yaml"
    r = subprocess.run([sys.executable, "-m", "memopt", "solve", "instances/sp-buffer-40.yaml", "--objective", "peak",
                        "--method", "series-parallel", "-o", str(out)], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert "optimal" in r.stdout
    ev = subprocess.run([sys.executable, "-m", "memopt", "evaluate", "instances/sp-buffer-40.yaml", str(out)],
                        capture_output=True, text=True, check=False)
    assert ev.returncode == 0, ev.stderr
    r = subprocess.run([sys.executable, "-m", "memopt", "solve", "instances/layered-100.yaml", "--method", "liu"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "not a forest" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "memopt", "info", "instances/sp-buffer-40.yaml", "--reduce"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and "series-parallel" in r.stdout and "1 clusters" in r.stdout
    r = subprocess.run([sys.executable, "-m", "memopt", "solve", "instances/layered-100.yaml", "--method", "peak-milp",
                        "--backend", "cbc", "--time-limit", "2"], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "peak-milp" in r.stdout and "bound" in r.stdout


def test_plan_file_of_auto_is_valid(tmp_path):
    inst_path = "instances/out-tree-25.yaml"
    from memopt import evaluate, load_instance

    inst = load_instance(inst_path)
    res = solve(inst, "peak", "auto", time_limit=10)
    assert res.status == "optimal"
    p = tmp_path / "p.yaml"
    res.save(str(p))
    from memopt import load_plan

    assert evaluate(inst, load_plan(str(p))).peak == res.value
    assert isinstance(res.plan, Plan)


def test_highs_does_not_return_its_mip_start_as_the_optimum():
    """Regression: HiGHS solved this model to 3 from the presolved MIP start but returned the start (5)."""
    from memopt import instance_from_dict

    inst = instance_from_dict({"tasks": [{"id": "t0", "size": 0}, {"id": "t3", "size": 2},
                                         {"id": "t2", "size": 1, "inputs": ["t0", "t1"]}, {"id": "t1", "size": 2}]})
    order, peak, _ = best_baseline(inst)
    assert peak == 5 and exhaustive_peak(inst)[0] == 3
    model, _ = peak_milp_model(PeakGraph(inst), 0, peak, order)
    for backend in ("highs", "cbc", "cpsat"):
        sol = solve_linear(model, backend, warm_start=True, threads=1)
        assert sol.status == "optimal" and sol.objective == 3 == sol.bound, backend
