"""The planner's eviction state kept across evictions (for speed at scale) equals the state recomputed afresh.

The regenerability of each datum is cached across evictions and dropped downstream of every datum whose
availability changes; the resident set is kept beside the ``fast`` flags. At every eviction, both must
equal what a fresh computation gives.
"""

from __future__ import annotations

import random

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import instances

from memopt.core.instance import Task
from memopt.core.request import Request
from memopt.core.status import Objective
from memopt.generators import chain, random_layered
from memopt.heuristics.orders import best_baseline
from memopt.heuristics.planner.config import SCORES, PlannerConfig
from memopt.heuristics.planner.simulation import Simulation, Stuck
from memopt.training import training_graph


class Checked(Simulation):
    """A simulation that checks its kept state before each eviction."""

    checks = 0

    def _victim(self):
        assert self.resident == {d for d in range(self.inst.m) if self.fast[d]}
        assert self.avail == [self.fast[d] or self.slow[d] or self.lost[d] for d in range(self.inst.m)]
        kept = self._regen
        for d in sorted(self.resident):
            cached = self.regen_gone(d)
            self._regen = {}
            fresh = self.regen_gone(d)
            self._regen = kept
            assert cached == fresh, f"datum {self.inst.data[d].id}: kept {cached}, fresh {fresh}"
            Checked.checks += 1
        return super()._victim()


def run_checked(inst, ratio, recompute, offload, cfg):
    order, peak, _ = best_baseline(inst)
    req = Request(inst, Objective.TIME, peak * ratio // 10, None, recompute, offload)
    try:
        Checked(req, order, cfg).run()
    except Stuck:
        pass


@settings(max_examples=150, deadline=None)
@given(instances(max_tasks=9, no_recompute=True), st.integers(4, 9), st.booleans(),
       st.sampled_from(SCORES))
def test_kept_state_equals_a_fresh_computation(inst, ratio, offload, score):
    assume(inst.n >= 3)
    run_checked(inst.with_machine(bandwidth=2), ratio, True, offload, PlannerConfig(score=score))


def test_kept_state_on_generated_graphs_with_tasks_that_cannot_rerun():
    """Graphs where a datum's regenerability flips while it is resident (the cascade must catch it)."""
    rng = random.Random(0)
    Checked.checks = 0
    for seed in range(80):
        kind = seed % 3
        inst = (training_graph(random_layered(15, seed=seed)) if kind == 0 else
                random_layered(25, seed=seed, form="general") if kind == 1 else training_graph(chain(10, seed=seed)))
        inst = inst.replace(tasks=[Task(t.id, t.time, t.workspace, rng.random() < 0.7) for t in inst.tasks])
        inst = inst.with_machine(bandwidth=2)
        for ratio in (5, 7, 9):
            run_checked(inst, ratio, True, rng.random() < 0.5, PlannerConfig(score=rng.choice(SCORES)))
    assert Checked.checks > 1000  # evictions happened and were checked
