"""The worked example of docs/architecture.md §3: a ten-line method, one catalog line, and everything works."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

import memopt
from memopt import MemoptError
from memopt.catalog import Catalog, entry
from memopt.core.method import Context, MethodOutput
from memopt.core.params import Params, option
from memopt.core.plan import Plan
from memopt.core.request import Request
from memopt.core.status import Status
from memopt.generators import random_layered


def random_order(inst, rng):
    """A random topological order: the ready task to run next is drawn at random."""
    indeg = [len(p) for p in inst.preds]
    ready = [v for v in range(inst.n) if not indeg[v]]
    order = []
    while ready:
        v = ready.pop(rng.randrange(len(ready)))
        order.append(v)
        for w in inst.succs[v]:
            indeg[w] -= 1
            if not indeg[w]:
                ready.append(w)
    return order


# ---- the example, as in the docs ----
@dataclass(frozen=True)
class RandomOrderParams(Params):
    tries: int = option(100, "random topological orders to try")


def run_random_order(req: Request, ctx: Context) -> MethodOutput:
    """The best of random topological orders."""
    rng = random.Random(ctx.seed)
    for _ in range(ctx.params.tries):
        if ctx.deadline.expired():                      # time limit, Ctrl-C, memory limit
            break
        plan = Plan.from_order(req.instance, random_order(req.instance, rng))
        if req.evaluate(plan).valid:                    # within the budget
            ctx.offer(plan)                             # evaluated once, the best kept
    return MethodOutput(status=Status.FEASIBLE)         # nothing proven
# ---- end of the example ----


@pytest.fixture()
def catalog():
    cat = Catalog(memopt.CATALOG.entries().values())
    cat.register(entry("random-order", run_random_order, params=RandomOrderParams, objectives=("peak", "time")))
    return cat


def test_the_ten_line_method_solves_and_is_judged_by_the_evaluator(catalog):
    inst = random_layered(40, seed=3)
    res = memopt.solve(inst, "peak", "random-order", catalog=catalog, tries=50, time_limit=10)
    assert res.plan is not None and res.status in ("feasible", "optimal")
    assert res.value == memopt.evaluate(inst, res.plan).peak  # the evaluator's number
    assert res.bound is not None and res.bound <= res.value    # the pipeline's proven bound
    opt = memopt.solve(inst, "peak", "auto", time_limit=10)
    assert opt.status == "optimal" and res.value >= opt.value  # a heuristic never beats a proven optimum
    # with a budget the plans offered all fit it
    tight = memopt.solve(inst, "time", "random-order", catalog=catalog, budget=res.value, time_limit=10)
    assert tight.plan is None or memopt.evaluate(inst, tight.plan, budget=res.value).valid


def test_its_options_are_typed_and_checked(catalog):
    inst = random_layered(10, seed=1)
    with pytest.raises(MemoptError, match="tries: expected an integer"):
        memopt.solve(inst, "peak", "random-order", catalog=catalog, tries="many")
    with pytest.raises(MemoptError, match=r"unknown option\(s\) trys \(valid: tries\)"):
        memopt.solve(inst, "peak", "random-order", catalog=catalog, trys=3)
    assert RandomOrderParams.describe() == ["tries=100  (int)  random topological orders to try"]
